"""Fitted Q evaluation (FQE, Le et al. 2019) of the candidate policies: an OPE independent of the PPO critic.

For each ensemble member k (one Q head each, batched), with its deterministic policy mu_k:

    L = E_D[ sum_k (r + gamma (1 - terminal) Q_target_k(s', mu_k(s')) - Q_k(s, a))^2 ]

on held-out episodes (by default), Polyak target. J(pi_k) is estimated as the mean over start states of
Q_k(s0, mu_k(s0)). In the gate the heads come in pairs: K for the candidates and K for each member's current
best (pi_old), fitted together, so a candidate is compared with its reference under the same fit (a score
recorded at an earlier check came from an earlier fit and drifts with it). Each check a candidate's head starts
as a copy of its reference's (:meth:`FQE.copy_head`; common random numbers: the same batches then move both
alike, so a candidate equal to its reference scores exactly the same); on acceptance it becomes the reference's. Before the first fit every head can regress the data's Monte-Carlo discounted return
(:func:`go1o4.offline_finetune.critic_check.discounted_returns`), the behaviour policy's value: candidates
stay near the data, so this start is close and the few thousand warm-started steps per check go further.
Timeouts bootstrap, falls do not (as in :mod:`go1o4.offline_finetune.value`).
"""
import copy
from typing import Dict, Optional

import numpy as np
import torch
from go1o4.offline_finetune.config import FQEConfig
from go1o4.offline_finetune.value import polyak_update, q_target

from go1o4 import contract as C
from go1o4.rl.networks import Critic, EnsembleLinear, GaussianActor, ObsNormalizer


def member_actions(actor: GaussianActor, obs: torch.Tensor) -> torch.Tensor:
    """Deterministic actions of every member on shared states: (K, B, A) (K = 1 included)."""
    act = actor(obs)
    return act if act.dim() == 3 else act.unsqueeze(0)


class FQE:
    """K-head FQE on a fixed set of transitions (dict of tensors, as ``TorchData.t``)."""

    def __init__(self, cfg: FQEConfig, k: int, gamma: float, data: Dict[str, torch.Tensor], obs_mean=None,
                 obs_std=None, mc_returns: Optional[np.ndarray] = None, seed: int = 0,
                 obs_dim: int = C.POLICY_INPUT_DIM, act_dim: int = C.NUM_ACTIONS):
        self.cfg, self.k, self.gamma, self.data = cfg, k, gamma, data
        self.n = int(data["observations"].shape[0])
        self.normalizer = ObsNormalizer(obs_dim)
        if obs_mean is not None:
            self.normalizer.set_stats(obs_mean, obs_std)
        self.q = Critic(obs_dim, cfg.hidden, act_dim=act_dim, ensemble_size=k, activation=cfg.activation,
                        normalizer=self.normalizer)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.opt = torch.optim.Adam(self.q.net.parameters(), lr=cfg.lr)
        self.gen = torch.Generator().manual_seed(seed)
        self.mc = None if mc_returns is None else torch.as_tensor(mc_returns, dtype=torch.float32)
        self.steps, self.fits = 0, 0

    def _heads(self, q: torch.Tensor) -> torch.Tensor:
        return q.unsqueeze(0) if self.k == 1 else q

    def _batch(self) -> torch.Tensor:
        return torch.randint(0, self.n, (min(self.cfg.batch_size, self.n),), generator=self.gen)

    def _step(self, loss: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        polyak_update(self.q_target, self.q, self.cfg.polyak)
        self.steps += 1
        return float(loss.detach())

    def mc_init(self, steps: int) -> None:
        """Regress every head on the Monte-Carlo return of the data's own actions (behaviour value)."""
        if self.mc is None:
            return
        d = self.data
        for _ in range(steps):
            i = self._batch()
            q = self._heads(self.q(d["observations"][i], d["actions"][i]))
            self._step((q - self.mc[i].unsqueeze(0)).pow(2).mean(-1).sum())
        self.q_target.load_state_dict(self.q.state_dict())

    @torch.no_grad()
    def next_actions(self, actor: GaussianActor, chunk: int = 4096) -> torch.Tensor:
        """mu_k(s') of every member on every transition, (K, N, A): the policies do not change during a fit,
        so their actions are computed once instead of once per minibatch."""
        nxt = self.data["next_observations"]
        return torch.cat([member_actions(actor, nxt[i:i + chunk]) for i in range(0, self.n, chunk)], 1)

    def fit(self, actor: GaussianActor, steps: int) -> float:
        """``steps`` FQE updates for the members of ``actor``; returns the last loss."""
        d, loss = self.data, float("nan")
        next_act = self.next_actions(actor) if steps > 0 else None
        for _ in range(steps):
            i = self._batch()
            with torch.no_grad():
                nxt = d["next_observations"][i]
                next_q = self._heads(self.q_target(nxt, next_act[:, i]))
                target = q_target(d["rewards"][i].unsqueeze(0), d["terminals"][i].unsqueeze(0), next_q, self.gamma)
            q = self._heads(self.q(d["observations"][i], d["actions"][i]))
            loss = self._step((q - target).pow(2).mean(-1).sum())
        self.fits += 1
        return loss

    @torch.no_grad()
    def copy_head(self, src: int, dst: int) -> None:
        """Head ``dst`` takes head ``src``'s Q, target and optimiser state: the two heads are then the same
        function and, fitted to the same policy on the same batches, stay the same."""
        for net in (self.q, self.q_target):
            for m in net.net.modules():
                if isinstance(m, EnsembleLinear):
                    m.weight[dst].copy_(m.weight[src])
                    m.bias[dst].copy_(m.bias[src])
        for p in self.q.net.parameters():
            for v in self.opt.state.get(p, {}).values():
                if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == self.k:
                    v[dst].copy_(v[src])

    def tie_heads(self) -> None:
        """Every head becomes a copy of head 0 (Q, target, optimiser state): policies that are equal then
        score exactly equal, and score differences come from the policies, not from how each head was
        initialised (the members of the A.4 recipe all start as the same policy)."""
        for i in range(1, self.k):
            self.copy_head(0, i)

    @torch.no_grad()
    def values(self, actor: GaussianActor, starts: torch.Tensor) -> np.ndarray:
        """(K, B): Q_k(s0, mu_k(s0)) for every start state."""
        return self._heads(self.q(starts, member_actions(actor, starts))).numpy().astype(np.float64)

    def state_dict(self) -> Dict:
        return {"q": self.q.state_dict(), "q_target": self.q_target.state_dict(), "opt": self.opt.state_dict(),
                "gen": self.gen.get_state(), "steps": self.steps, "fits": self.fits}

    def load_state_dict(self, d: Dict) -> None:
        self.q.load_state_dict(d["q"])
        self.q_target.load_state_dict(d["q_target"])
        self.opt.load_state_dict(d["opt"])
        self.gen.set_state(d["gen"])
        self.steps, self.fits = int(d["steps"]), int(d["fits"])
