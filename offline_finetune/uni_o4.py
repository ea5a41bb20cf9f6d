"""Multi-step PPO policy improvement of every ensemble member, gated by OPE (paper Eq. 7-9, Algorithm 2).

For member i, with actions sampled from pi_i,old on dataset states:

    L_i = -E[min(r_i A, clip(r_i, 1 - eps, 1 + eps) A)],  r_i = pi_i(a|s) / pi_i,old(a|s),  A = Q(s,a) - V(s)

(A normalised per member and batch; lr and eps decay linearly). Every ``ope_every`` steps each member is
scored by AM-Q; if the score beats that member's best so far, pi_i,old <- pi_i (accepted), otherwise
pi_i,old stays (rejected). ``one_step`` never replaces pi_old (the one-step baseline, BPPO without
online evaluation). With ``alpha`` > 0 the disagreement term of Eq. 25 (KL(pi_i || pi_mix), see
:mod:`offline_finetune.bc`) is added, as in the pretrained-init recipe. The best-scoring policy of each
member is kept; the final pick is the member with the best OPE score: selection never sees real returns.
"""
import copy
from typing import Callable, Dict, Optional

import numpy as np
import torch
from go1o4.offline_finetune.bc import kl_to_mixture
from go1o4.offline_finetune.config import ImproveConfig
from go1o4.offline_finetune.value import IQLValue
from torch import nn

from go1o4.rl.device import finite_check_due
from go1o4.rl.losses import clipped_surrogate
from go1o4.rl.networks import GaussianActor

MODES = ("uni_o4", "one_step")


@torch.no_grad()
def copy_member(dst: GaussianActor, src: GaussianActor, i: int) -> None:
    """Copy ensemble member ``i``'s parameters from ``src`` into ``dst`` (other members untouched)."""
    for pd, ps in zip(dst.parameters(), src.parameters()):
        pd[i].copy_(ps[i])


def ensemble_advantage(value: IQLValue, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """A(s, a) = min_k Q(s, a) - V(s) for (K, B, A) actions on shared (B, obs) states -> (K, B)."""
    k, b = actions.shape[0], actions.shape[1]
    q = value.min_q(obs.repeat(k, 1), actions.reshape(k * b, -1)).view(k, b)
    return q - value.v(obs).unsqueeze(0)


def normalize_per_member(adv: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, keepdim=True) + eps)


def linear_decay(step: int, total: int) -> float:
    return max(0.0, 1.0 - step / max(1, total))


def acceptance(scores: np.ndarray, best: np.ndarray, margin=0.0) -> np.ndarray:
    """The Uni-O4 rule: accept member i's update only if its OPE score beats its best so far (by ``margin``)."""
    return np.asarray(scores) > np.asarray(best) + np.asarray(margin)


class MultiStepPPO:
    """All K members improved as one batched computation (one forward/backward for the ensemble)."""

    def __init__(self, actor: GaussianActor, value: IQLValue, cfg: ImproveConfig, mode: str = "uni_o4",
                 alpha: float = 0.0):
        if mode not in MODES:
            raise ValueError("mode must be one of %s, got %r" % (MODES, mode))
        self.actor, self.value, self.cfg, self.mode, self.alpha = actor, value, cfg, mode, alpha
        self.k = actor.ensemble_size
        self.old = copy.deepcopy(actor).requires_grad_(False)
        self.best = copy.deepcopy(actor).requires_grad_(False)
        self.opt = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
        self.best_score = np.full(self.k, -np.inf)
        self.accepts = np.zeros(self.k, dtype=np.int64)
        self.rejects = np.zeros(self.k, dtype=np.int64)
        self.steps = 0
        self.check_every = 1  # finite-loss check period (a host sync on a GPU)

    def loss(self, obs: torch.Tensor, clip: float, generator: Optional[torch.Generator] = None):
        with torch.no_grad():
            old = self.old.distribution(obs)
            mean_o, std_o = old.mean, old.stddev
            actions = mean_o + std_o * torch.randn(mean_o.shape, generator=generator, device=mean_o.device)
            if actions.dim() == 2:
                actions = actions.unsqueeze(0)
            old_logp = old.log_prob(actions).sum(-1)  # (K, B); K = 1 broadcasts
            adv = normalize_per_member(ensemble_advantage(self.value, obs, actions))
        dist = self.actor.distribution(obs)
        logp = dist.log_prob(actions).sum(-1)
        loss, info = clipped_surrogate(logp, old_logp, adv, clip)
        loss = loss * self.k  # sum over members: each member's gradient is its own mean objective
        if self.alpha > 0.0 and self.k > 1:
            kl = kl_to_mixture(dist.mean, dist.stddev, 1, generator).mean(-1)
            loss = loss - self.alpha * kl.sum()
            info["improve/kl_to_mixture"] = kl.detach().mean()
        return loss, info

    def update(self, batch: Dict[str, torch.Tensor], generator: Optional[torch.Generator] = None) -> Dict:
        """One step; returns numbers and 0-dim tensors (``go1o4.rl.device.to_floats`` when logging)."""
        cfg = self.cfg
        frac = linear_decay(self.steps, cfg.steps)
        lr = cfg.lr * (frac if cfg.lr_decay else 1.0)
        until = cfg.clip_decay_until or cfg.steps  # public code: 200 (clip frozen afterwards)
        clip = cfg.clip * (linear_decay(min(self.steps, until), cfg.steps) if cfg.clip_decay else 1.0)
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss, info = self.loss(batch["observations"], max(clip, 1e-6), generator)
        if finite_check_due(self.steps, self.check_every) and not torch.isfinite(loss):
            raise FloatingPointError("policy improvement loss not finite at step %d" % self.steps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
        self.opt.step()
        with torch.no_grad():
            self.actor.log_std.clamp_(min=cfg.min_log_std)
        self.steps += 1
        out = {"improve/loss": loss.detach(), "improve/lr": lr, "improve/clip": clip}
        out.update({k: v.detach() for k, v in info.items()})
        return out

    def evaluate(self, score_fn: Callable[[GaussianActor], np.ndarray],
                 margin_fn: Optional[Callable[[], np.ndarray]] = None,
                 reference_fn: Optional[Callable[[], Optional[np.ndarray]]] = None) -> Dict[str, np.ndarray]:
        """Score the current members by OPE and apply the acceptance rule; returns scores and decisions.

        ``margin_fn`` (called after ``score_fn``): how much each member must beat its best by (default 0).
        ``reference_fn`` (called after ``score_fn``): the best policies' scores under the evaluator's current
        state, replacing the scores recorded when they were accepted (None: keep those).
        The first call (before any update) only records the starting scores ("improved" is then all True).
        """
        scores = np.asarray(score_fn(self.actor), dtype=np.float64)
        first = not np.isfinite(self.best_score).any()
        fresh = reference_fn() if (reference_fn is not None and not first) else None
        if fresh is not None:
            self.best_score = np.asarray(fresh, dtype=np.float64)
        margin = margin_fn() if (margin_fn is not None and not first) else 0.0
        accept = acceptance(scores, self.best_score, margin)
        for i in np.flatnonzero(accept):
            copy_member(self.best, self.actor, int(i))
            if self.mode == "uni_o4":
                copy_member(self.old, self.actor, int(i))  # pi_old <- pi: the multi-step update
        if not first:
            self.accepts += accept
            self.rejects += ~accept
        self.best_score = np.where(accept, scores, self.best_score)
        return {"scores": scores, "accepted": accept & (not first), "improved": accept,
                "margin": np.broadcast_to(np.asarray(margin, dtype=np.float64), scores.shape)}

    def selected(self) -> int:
        """Index of the member with the best OPE score (offline only)."""
        return int(np.argmax(self.best_score))

    def state_dict(self) -> Dict:
        return {"actor": self.actor.state_dict(), "old": self.old.state_dict(), "best": self.best.state_dict(),
                "opt": self.opt.state_dict(), "best_score": torch.as_tensor(self.best_score),
                "accepts": torch.as_tensor(self.accepts), "rejects": torch.as_tensor(self.rejects),
                "steps": self.steps}

    def load_state_dict(self, d: Dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.old.load_state_dict(d["old"])
        self.best.load_state_dict(d["best"])
        self.opt.load_state_dict(d["opt"])
        self.best_score = d["best_score"].numpy().astype(np.float64)
        self.accepts, self.rejects = d["accepts"].numpy().copy(), d["rejects"].numpy().copy()
        self.steps = int(d["steps"])
