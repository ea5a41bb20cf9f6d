"""Pure PPO / Uni-O4 math: advantages, clipped surrogate, value loss, expectile loss. No I/O, no loops over data."""
from typing import Dict, Tuple

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, terminals: torch.Tensor,
        dones: torch.Tensor, gamma: float, lam: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over (T, N) tensors.

    ``next_values[t]`` is V(s_{t+1}) of the transition's own next state, also when the episode
    was truncated by a time limit (so truncations bootstrap, REFERENCE §1 defect 2), while
    ``terminals`` (falls) zero the bootstrap. ``dones`` (terminal or truncated) cut the GAE trace.
    Returns (advantages, returns).
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    not_terminal = 1.0 - terminals.float()
    not_done = 1.0 - dones.float()
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * not_terminal[t] * next_values[t] - values[t]
        last = delta + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + values


def normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return (x - x.mean()) / (x.std() + eps)


def clipped_surrogate(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
                      clip: float) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """PPO clipped objective (paper Eq. 8/9), as a loss to minimise: -E[min(r A, clip(r, 1-e, 1+e) A)].

    Works element-wise on any shape (e.g. (K, B) for an ensemble); returns the mean and diagnostics.
    """
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    surr = torch.min(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages)
    with torch.no_grad():
        info = {
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
            "clip_fraction": ((ratio - 1.0).abs() > clip).float().mean(),
        }
    return -surr.mean(), info


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               clip: float = 0.0) -> torch.Tensor:
    """Squared error to the returns; with ``clip`` > 0, PPO's clipped value loss (max of clipped/unclipped)."""
    unclipped = (values - returns).pow(2)
    if clip <= 0:
        return unclipped.mean()
    clipped = (old_values + (values - old_values).clamp(-clip, clip) - returns).pow(2)
    return torch.max(unclipped, clipped).mean()


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """IQL's asymmetric L2 (paper Eq. 3): |tau - 1(u < 0)| u^2 with u = Q(s,a) - V(s)."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal Gaussian, summed over action dims."""
    return (0.5 + 0.5 * torch.log(torch.tensor(2.0 * torch.pi)) + log_std).sum(-1)
