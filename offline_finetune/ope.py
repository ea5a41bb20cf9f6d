"""AM-Q offline policy evaluation (paper Sec. 3.2, Definition 1 and Eq. 14).

Roll each member's deterministic policy out in the learned model from the same dataset start states for
H steps; the score is the mean of Q(s, pi(s)) over the visited (not yet fallen) states (``fall_value``
None: the paper's and the public code's rule, ``dynamics_eval.rollout``). A policy that falls early then
drops its low-value states from its score; with a ``fall_value`` (e.g. 0, the value of a terminal state
under the Q target) every start state counts H steps and each step after a fall counts with that value.
All members and start states go through the networks as one batch. The start states, the elite member
drawn per start state and any model noise are fixed by the seed, so every evaluation of every member sees
the same model randomness (score differences come from the policies, not the draws).

:func:`model_return_per_start` is the Q-free alternative (``ope.method: model_return``, issue 17): the
discounted sum of the model's *predicted rewards* over H steps, every start rolled out once by every elite
member, scored pessimistically as mean - ``pessimism`` * std over the members (MOPO's idea, applied to the
evaluation). It does not read the critic the PPO step climbs; the model's reward head, fitted to the same
data, turned out to be fooled by the same drift (``offline_finetune/OPE_STUDY_GATES.md``).
"""
from typing import Optional, Tuple

import numpy as np
import torch
from go1o4.offline_finetune.dynamics import EnsembleDynamics
from go1o4.offline_finetune.value import IQLValue

from go1o4.rl.device import make_generator
from go1o4.rl.networks import GaussianActor

ALIVE_CHECK_EVERY = 5  # rollout steps between "has every rollout fallen?" checks


def start_states(observations: torch.Tensor, num: int, seed: int) -> torch.Tensor:
    g = make_generator(observations.device, seed)
    return observations[torch.randint(0, observations.shape[0], (num,), generator=g, device=observations.device)]


def pooled_score(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(K, B) per-start sums of counted Q values and counts -> (K,) mean over every counted step."""
    return total.sum(-1) / np.maximum(count.sum(-1), 1.0)


@torch.no_grad()
def am_q(actor: GaussianActor, dynamics: EnsembleDynamics, value: IQLValue, starts: torch.Tensor, horizon: int,
         seed: int = 0, sample: bool = False, members: Optional[torch.Tensor] = None,
         fall_value: Optional[float] = None) -> np.ndarray:
    """AM-Q score per ensemble member: (K,) (K = 1 for a single policy)."""
    return pooled_score(*am_q_per_start(actor, dynamics, value, starts, horizon, seed, sample, members, fall_value))


@torch.no_grad()
def am_q_per_start(actor: GaussianActor, dynamics: EnsembleDynamics, value: IQLValue, starts: torch.Tensor,
                   horizon: int, seed: int = 0, sample: bool = False, members: Optional[torch.Tensor] = None,
                   fall_value: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Per start state: (sum of the counted Q values, number of counted steps), each (K, B)."""
    k, b, dev = actor.ensemble_size, starts.shape[0], starts.device
    g = make_generator(dev, seed)
    if members is None:
        members = dynamics.elites[torch.randint(0, len(dynamics.elites), (b,), generator=g, device=dev)]
    members = members.repeat(k)  # same model member for a start state, whichever policy
    obs = starts.unsqueeze(0).expand(k, b, -1).contiguous()
    alive = torch.ones(k, b, device=dev)
    total, count = torch.zeros(k, b, device=dev), torch.zeros(k, b, device=dev)
    for t in range(horizon):
        act = actor(obs) if k > 1 else actor(obs[0]).unsqueeze(0)  # (K, B, A), deterministic mean
        flat_obs, flat_act = obs.reshape(k * b, -1), act.reshape(k * b, -1)
        q = value.min_q(flat_obs, flat_act).view(k, b)
        total += q * alive
        count += alive
        nxt, _, term = dynamics.step(flat_obs, flat_act, g, members, sample)
        fell = alive * term.view(k, b).float()  # fell on this transition
        alive = alive - fell
        if fall_value is not None:  # the H - 1 - t steps it will not live count with the terminal value
            left = float(horizon - 1 - t)
            total += fell * (fall_value * left)
            count += fell * left
        if (t + 1) % ALIVE_CHECK_EVERY == 0 and not alive.any():  # early exit costs a host sync: not every step
            break
        obs = nxt.view(k, b, -1)
    return total.cpu().numpy(), count.cpu().numpy()


@torch.no_grad()
def model_return_per_start(actor: GaussianActor, dynamics: EnsembleDynamics, starts: torch.Tensor, horizon: int,
                           gamma: float, seed: int = 0, sample: bool = False, pessimism: float = 1.0,
                           fall_value: float = 0.0) -> np.ndarray:
    """(K, B) pessimistic model return per member and start: sum_t gamma^t r_hat_t over H model steps (each step
    after a predicted fall counts ``fall_value``), mean - ``pessimism`` * std over the elite members."""
    k, b, dev = actor.ensemble_size, starts.shape[0], starts.device
    elites = dynamics.elites
    e = len(elites)
    g = make_generator(dev, seed)
    members = elites.repeat_interleave(b).repeat(k)  # row (k, e, b) stays in elite e for the whole rollout
    obs = starts.unsqueeze(0).expand(k * e, b, -1).reshape(k, e * b, -1).contiguous()
    alive = torch.ones(k, e * b, device=dev)
    ret = torch.zeros(k, e * b, device=dev)
    tail = [sum(gamma ** u for u in range(t + 1, horizon)) for t in range(horizon)]
    for t in range(horizon):
        act = actor(obs) if k > 1 else actor(obs[0]).unsqueeze(0)  # (K, E*B, A), deterministic mean
        nxt, r, term = dynamics.step(obs.reshape(k * e * b, -1), act.reshape(k * e * b, -1), g, members, sample)
        fell = alive * term.view(k, e * b).float()
        ret += gamma ** t * alive * r.view(k, e * b)  # the reward of the transition that fell still counts
        alive = alive - fell
        ret += fell * (fall_value * tail[t])
        if (t + 1) % ALIVE_CHECK_EVERY == 0 and not alive.any():
            break
        obs = nxt.view(k, e * b, -1)
    ret = ret.view(k, e, b)
    spread = ret.std(1, unbiased=False)  # 0 with one elite
    return (ret.mean(1) - pessimism * spread).cpu().numpy()
