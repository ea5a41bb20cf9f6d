"""Critic convergence check: Q and V against the Monte-Carlo discounted return on held-out episodes.

    G_t = r_t + gamma (1 - terminal_t) G_{t+1}, within an episode, G = r at its last step.

A time-limit truncation cuts the tail, so only steps whose discounted tail is negligible (the episode ends
in a fall, or at least log(tail_tol) / log(gamma) steps remain) are compared; if none qualify (short
episodes) all steps are used and ``critic/mc_tail_cut`` says so. Reported: mean Q / mean G (a converged
critic of the behaviour policy gives ~1; IQL's expectile V sits a little above), and Spearman rank
correlations of Q(s, a_data) and V(s) with G. Pure numpy on arrays; the value module only evaluates.
"""
import math
from typing import Dict, Tuple

import numpy as np
import torch


def discounted_returns(rewards: np.ndarray, terminals: np.ndarray, episode_ids: np.ndarray,
                       gamma: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step: (G_t, steps left in its episode segment, whether that segment ends in a fall)."""
    r, term, ep = np.asarray(rewards, np.float64), np.asarray(terminals) > 0.5, np.asarray(episode_ids)
    n = len(r)
    g, left, falls = np.zeros(n), np.zeros(n, np.int64), np.zeros(n, bool)
    ends = np.flatnonzero(np.r_[ep[1:] != ep[:-1], True])  # last index of each contiguous episode segment
    start = 0
    for end in ends:
        acc = 0.0
        for t in range(end, start - 1, -1):
            acc = r[t] + (0.0 if term[t] else gamma * acc) if t < end else r[t]
            g[t] = acc
        left[start:end + 1] = np.arange(end - start, -1, -1)
        falls[start:end + 1] = term[end]
        start = end + 1
    return g, left, falls


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(v):
        order = np.argsort(v, kind="mergesort")
        rk = np.empty(len(v))
        rk[order] = np.arange(len(v))
        _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, rk)
        return sums[inv] / counts[inv]
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2:
        return float("nan")
    rx, ry = ranks(x), ranks(y)
    sx, sy = rx.std(), ry.std()
    return float(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy)) if sx > 0 and sy > 0 else float("nan")


@torch.no_grad()
def critic_check(value, transitions, gamma: float, tail_tol: float = 0.05, max_states: int = 20000,
                 seed: int = 0) -> Dict[str, float]:
    """Q(s, a) = min-head target Q and V(s) of ``value`` (an IQLValue) vs G on ``transitions`` (held out)."""
    g, left, falls = discounted_returns(transitions.rewards, transitions.terminals, transitions.episode_ids, gamma)
    need = int(math.ceil(math.log(tail_tol) / math.log(gamma))) if 0.0 < gamma < 1.0 else 0
    mask = falls | (left >= need)
    cut = not mask.any()
    idx = np.flatnonzero(np.ones_like(mask) if cut else mask)
    if len(idx) > max_states:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_states, replace=False))
    obs = torch.as_tensor(transitions.observations[idx])
    act = torch.as_tensor(transitions.actions[idx])
    q = value.min_q(obs, act).numpy().astype(np.float64)
    v = value.v(obs).numpy().astype(np.float64)
    mc = g[idx]
    mc_mean = float(mc.mean())

    def ratio(m: float) -> float:
        return m / mc_mean if abs(mc_mean) > 1e-12 else float("nan")
    return {"critic/mc_mean": mc_mean, "critic/q_mean": float(q.mean()), "critic/v_mean": float(v.mean()),
            "critic/q_mc_ratio": ratio(float(q.mean())), "critic/v_mc_ratio": ratio(float(v.mean())),
            "critic/q_mc_spearman": spearman(q, mc), "critic/v_mc_spearman": spearman(v, mc),
            "critic/states": float(len(idx)), "critic/mc_tail_cut": float(cut)}
