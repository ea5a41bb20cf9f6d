"""Ensemble behaviour cloning with a disagreement term (paper Eq. 6), K members as one batched computation.

Member i minimises  -E_D[log pi_i(a|s)] - alpha * E_{s~D}[KL(pi_i(.|s) || pi_mix(.|s))],
pi_mix = (1/K) sum_j pi_j. The KL is estimated with reparameterised samples a = mu_i + sigma_i * eps and
only member i's own density carries gradient (the others are detached), so the term really moves
pi_i away from the other members. The public code's "heuristic" variant evaluates the term on dataset
actions with the others detached, which makes its gradient a mere rescale -(1 + alpha) grad log pi_i
(REFERENCE section 1): no push-apart at all. KL to a mixture that contains pi_i is at most log K, so the
term cannot run away; alpha = 0 is exactly plain BC.
"""
import math
from typing import Dict, Optional

import numpy as np
import torch
from go1o4.offline_finetune.config import BCConfig

from go1o4.rl.device import finite_check_due
from go1o4.rl.networks import GaussianActor


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(std^2)) summed over the last axis (broadcasting)."""
    z = (x - mean) / std
    return (-0.5 * z.pow(2) - std.log() - 0.5 * math.log(2.0 * math.pi)).sum(-1)


def kl_to_mixture(mean: torch.Tensor, std: torch.Tensor, num_samples: int = 1,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Monte-Carlo KL(pi_i || pi_mix) for every member: (K, B, A) means/stds -> (K, B).

    Gradient flows only through member i's own parameters (its samples and its own component of the
    mixture); the other members enter detached.
    """
    k = mean.shape[0]
    eps = torch.randn((num_samples,) + mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    a = mean + std * eps  # (S, K, B, A): samples of member i, reparameterised
    # log pi_j(a_i) for all pairs with detached j: (S, K_i, K_j, B)
    lp_detached = gaussian_log_prob(a.unsqueeze(2), mean.detach().unsqueeze(0), std.detach().unsqueeze(0))
    lp_own = gaussian_log_prob(a, mean, std)  # (S, K, B): log pi_i(a_i) with gradient
    eye = torch.eye(k, dtype=torch.bool, device=mean.device).view(1, k, k, 1)
    lp = torch.where(eye, lp_own.unsqueeze(2).expand_as(lp_detached), lp_detached)
    log_mix = torch.logsumexp(lp, dim=2) - math.log(k)
    return (lp_own - log_mix).mean(0)


def bc_loss(actor: GaussianActor, obs: torch.Tensor, actions: torch.Tensor, alpha: float,
            num_samples: int = 1, generator: Optional[torch.Generator] = None):
    """Eq. 6 as a loss. Summed over members (each member's gradient is its own mean loss)."""
    dist = actor.distribution(obs)
    mean, std = dist.mean, dist.stddev
    if mean.dim() == 2:  # K = 1
        mean, std = mean.unsqueeze(0), std.unsqueeze(0)
    nll = -gaussian_log_prob(actions, mean, std).mean(-1)  # (K,)
    loss = nll.sum()
    info = {"bc/nll": nll.detach()}
    if alpha > 0.0:
        kl = kl_to_mixture(mean, std, num_samples, generator).mean(-1)  # (K,)
        loss = loss - alpha * kl.sum()
        info["bc/kl_to_mixture"] = kl.detach()
    return loss, info


@torch.no_grad()
def member_disagreement(actor: GaussianActor, obs: torch.Tensor) -> Dict[str, float]:
    """How far apart the members are on ``obs``: std over members of the mean action (action units,
    averaged over states and joints) and the mean pairwise KL(pi_i || pi_j)."""
    dist = actor.distribution(obs)
    mean, std = dist.mean, dist.stddev
    if mean.dim() == 2 or mean.shape[0] < 2:
        return {"action_std": 0.0, "pairwise_kl": 0.0}
    k = mean.shape[0]
    mi, mj, si, sj = mean.unsqueeze(1), mean.unsqueeze(0), std.unsqueeze(1), std.unsqueeze(0)
    kl = (torch.log(sj / si) + (si.pow(2) + (mi - mj).pow(2)) / (2 * sj.pow(2)) - 0.5).sum(-1).mean(-1)  # (K, K)
    off = ~torch.eye(k, dtype=torch.bool, device=mean.device)
    return {"action_std": float(mean.std(0).mean()), "pairwise_kl": float(kl[off].mean())}


class EnsembleBC:
    """Trains all members of ``actor`` (K >= 1) with one optimiser and one batched forward/backward."""

    def __init__(self, actor: GaussianActor, cfg: BCConfig):
        self.actor, self.cfg = actor, cfg
        self.opt = torch.optim.Adam([p for p in actor.parameters() if p.requires_grad], lr=cfg.lr)
        self.steps = 0
        self.check_every = 1  # finite-loss check period (a host sync on a GPU)

    def update(self, batch: Dict[str, torch.Tensor], generator: Optional[torch.Generator] = None) -> Dict:
        """One step; returns 0-dim tensors (convert with ``go1o4.rl.device.to_floats`` when logging)."""
        loss, info = bc_loss(self.actor, batch["observations"], batch["actions"], self.cfg.alpha,
                             self.cfg.kl_samples, generator)
        if finite_check_due(self.steps, self.check_every) and not torch.isfinite(loss):
            raise FloatingPointError("BC loss is not finite at step %d" % self.steps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.actor.log_std.clamp_(min=self.cfg.min_log_std)
        self.steps += 1
        out = {"bc/loss": loss.detach()}
        out.update({k: v.mean() for k, v in info.items()})
        return out

    @torch.no_grad()
    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> Dict[str, np.ndarray]:
        """Held-out log-likelihood per member (nats per transition) and the members' disagreement."""
        ll = self.actor.log_prob(obs, actions)
        ll = ll.unsqueeze(0) if ll.dim() == 1 else ll
        out = {"log_likelihood": ll.mean(-1).cpu().numpy()}
        out.update({k: np.asarray(v) for k, v in member_disagreement(self.actor, obs).items()})
        return out

    def state_dict(self) -> Dict:
        return {"actor": self.actor.state_dict(), "opt": self.opt.state_dict(), "steps": self.steps}

    def load_state_dict(self, d: Dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.opt.load_state_dict(d["opt"])
        self.steps = int(d["steps"])
