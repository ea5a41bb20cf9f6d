"""IQL-style value functions (paper Eq. 2-3): double Q with a Polyak target and V by expectile regression.

    L_V = E_D[ |tau - 1(u < 0)| u^2 ],  u = min_k Q_target_k(s, a) - V(s)        (Eq. 3)
    L_Q = E_D[ sum_k (r + gamma (1 - terminal) V(s') - Q_k(s, a))^2 ]             (Eq. 2)

Only terminals (falls) zero the bootstrap; time-limit truncations bootstrap from V(s') (the public code
treats timeouts as terminal, REFERENCE section 1). The Q heads are one ensemble-batched network.
The advantage used for policy improvement is A(s, a) = min_k Q_target_k(s, a) - V(s).
"""
import copy
from typing import Dict, Optional

import torch
from go1o4.offline_finetune.config import ValueConfig

from go1o4 import contract as C
from go1o4.rl.device import finite_check_due
from go1o4.rl.losses import expectile_loss
from go1o4.rl.networks import Critic, ObsNormalizer


def q_target(rewards: torch.Tensor, terminals: torch.Tensor, next_v: torch.Tensor, gamma: float) -> torch.Tensor:
    """r + gamma (1 - terminal) V(s'). Timeouts are not terminals: they bootstrap."""
    return rewards + gamma * (1.0 - terminals) * next_v


@torch.no_grad()
def polyak_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    for pt, p in zip(target.parameters(), source.parameters()):
        pt.lerp_(p, tau)


class IQLValue:
    """Q (``q_heads`` heads, batched), its Polyak target, and V, sharing one frozen observation normaliser."""

    def __init__(self, cfg: ValueConfig, obs_mean=None, obs_std=None, obs_dim: int = C.POLICY_INPUT_DIM,
                 act_dim: int = C.NUM_ACTIONS):
        self.cfg = cfg
        self.normalizer = ObsNormalizer(obs_dim)
        if obs_mean is not None:
            self.normalizer.set_stats(obs_mean, obs_std)
        self.q = Critic(obs_dim, cfg.q_hidden, act_dim=act_dim, ensemble_size=cfg.q_heads,
                        activation=cfg.activation, normalizer=self.normalizer)
        self.v = Critic(obs_dim, cfg.v_hidden, activation=cfg.activation, normalizer=self.normalizer)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.q_opt = torch.optim.Adam(self.q.net.parameters(), lr=cfg.lr)
        self.v_opt = torch.optim.Adam(self.v.net.parameters(), lr=cfg.lr)
        self.steps = 0
        self.check_every = 1  # finite-loss check period (a host sync on a GPU)

    def to(self, device) -> "IQLValue":
        """Move Q, its target, V and the shared normaliser (in place: the optimisers keep their parameters)."""
        for net in (self.q, self.q_target, self.v):
            net.to(device)
        return self

    def _heads(self, q: torch.Tensor) -> torch.Tensor:
        return q.unsqueeze(0) if self.cfg.q_heads == 1 else q  # (H, B)

    def min_q(self, obs: torch.Tensor, actions: torch.Tensor, target: bool = True) -> torch.Tensor:
        """min over heads of Q(s, a); leading batch axes of ``actions`` beyond ``obs`` are allowed."""
        net = self.q_target if target else self.q
        return self._heads(net(obs, actions)).min(0).values

    def advantage(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.min_q(obs, actions) - self.v(obs)

    def losses(self, batch: Dict[str, torch.Tensor]):
        obs, act = batch["observations"], batch["actions"]
        with torch.no_grad():
            q_t = self.min_q(obs, act, target=True)
            target = q_target(batch["rewards"], batch["terminals"], self.v(batch["next_observations"]), self.cfg.gamma)
        v = self.v(obs)
        v_loss = expectile_loss(q_t - v, self.cfg.expectile)
        q = self._heads(self.q(obs, act))
        q_loss = (q - target.unsqueeze(0)).pow(2).mean(-1).sum()
        return q_loss, v_loss, {"value/q_mean": q.detach().mean(), "value/v_mean": v.detach().mean()}

    def update(self, batch: Dict[str, torch.Tensor]) -> Dict:
        """One step; returns 0-dim tensors (``go1o4.rl.device.to_floats`` when logging)."""
        q_loss, v_loss, info = self.losses(batch)
        if finite_check_due(self.steps, self.check_every) and not bool(torch.isfinite(q_loss + v_loss)):
            raise FloatingPointError("value losses not finite at step %d (Q %s, V %s)" % (self.steps, q_loss, v_loss))
        self.v_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        self.v_opt.step()
        self.q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.q_opt.step()
        polyak_update(self.q_target, self.q, self.cfg.polyak)
        self.steps += 1
        out = {"value/q_loss": q_loss.detach(), "value/v_loss": v_loss.detach()}
        out.update(info)
        return out

    @torch.no_grad()
    def evaluate(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        q_loss, v_loss, _ = self.losses(batch)
        return {"value/val_q_loss": float(q_loss), "value/val_v_loss": float(v_loss)}

    def state_dict(self) -> Dict:
        return {"q": self.q.state_dict(), "q_target": self.q_target.state_dict(), "v": self.v.state_dict(),
                "q_opt": self.q_opt.state_dict(), "v_opt": self.v_opt.state_dict(), "steps": self.steps}

    def load_state_dict(self, d: Dict, optimizers: Optional[bool] = True) -> None:
        self.q.load_state_dict(d["q"])
        self.q_target.load_state_dict(d["q_target"])
        self.v.load_state_dict(d["v"])
        if optimizers:
            self.q_opt.load_state_dict(d["q_opt"])
            self.v_opt.load_state_dict(d["v_opt"])
        self.steps = int(d["steps"])
