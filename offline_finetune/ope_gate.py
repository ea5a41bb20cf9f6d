"""The OPE gate of the multi-step update: a score per member, and the margin a new score must clear.

``ope.method``: am_q (the paper: Q of the PPO critic along learned-model rollouts, :mod:`.ope`), fqe
(:mod:`.fqe`) or model_return (predicted rewards along model rollouts, pessimistic over the elites,
:func:`.ope.model_return_per_start`); the last two are independent of the critic PPO climbs. All give per-start-state sums and counts, so the
gate can measure its own noise: with ``ope.margin`` m > 0 a member is accepted only if
score - best > m * std_boot(score - best), the std over ``ope.bootstrap`` resamples of the start states
(paired: the same resample for the candidate and the best's per-start values recorded when it was
accepted). m = 0 is the paper's strict rule.

AM-Q's critics, model and start states are fixed during the improvement, so a best score recorded at
acceptance stays valid; FQE keeps fitting, so with ``reference`` (the members' current best policies) it
scores candidates and references with the same fit every check and :meth:`OPEGate.reference_scores`
replaces the recorded best scores.
"""
from typing import Dict, Optional

import numpy as np
import torch
from go1o4.offline_finetune.config import OPEConfig
from go1o4.offline_finetune.critic_check import discounted_returns
from go1o4.offline_finetune.fqe import FQE
from go1o4.offline_finetune.ope import am_q_per_start, model_return_per_start, pooled_score, start_states

from go1o4.rl.networks import GaussianActor


def paired_bootstrap_std(total: np.ndarray, count: np.ndarray, best_total: np.ndarray, best_count: np.ndarray,
                         resamples: int, seed: int = 0) -> np.ndarray:
    """(K,) std over start-state resamples of pooled(candidate) - pooled(best); inputs (K, B)."""
    rng = np.random.default_rng(seed)
    b = total.shape[-1]
    idx = rng.integers(0, b, size=(resamples, b))
    def pooled(t, c):  # noqa: E306 - (R, K)
        return t[:, idx].sum(-1).T / np.maximum(c[:, idx].sum(-1).T, 1.0)
    return (pooled(total, count) - pooled(best_total, best_count)).std(0)


class OPEGate:
    def __init__(self, cfg: OPEConfig, gamma: float, dynamics=None, value=None, am_q_starts=None,
                 model_sample: bool = False, fqe_data: Optional[Dict[str, torch.Tensor]] = None,
                 fqe_episodes: Optional[Dict[str, np.ndarray]] = None, obs_mean=None, obs_std=None):
        self.cfg, self.gamma, self.dynamics, self.value = cfg, gamma, dynamics, value
        self.model_sample = model_sample
        self.am_q_starts = am_q_starts
        self.fqe_data, self.fqe_episodes, self.obs_stats = fqe_data, fqe_episodes, (obs_mean, obs_std)
        self.fqe: Optional[FQE] = None
        self._pending: Optional[Dict] = None  # restored FQE state, applied when the FQE is built
        self.last = None  # (total, count) of the latest score
        self.reference = None  # FQE: per-start values of the members' current best, same fit as ``last``
        self.best = None  # per member: (total, count) recorded when it was last accepted
        if cfg.method == "fqe":
            if fqe_data is None:
                raise ValueError("ope.method=fqe needs the transitions to fit on")
            self.fqe_starts = start_states(fqe_data["observations"], cfg.num_starts, cfg.seed)

    def _build_fqe(self, k: int) -> FQE:
        cfg, ep = self.cfg, self.fqe_episodes
        mc = None
        if cfg.fqe.mc_init_steps and ep is not None:
            mc = discounted_returns(ep["rewards"], ep["terminals"], ep["episode_ids"], self.gamma)[0]
        d = self.fqe_data
        fqe = FQE(cfg.fqe, k, self.gamma, d, *self.obs_stats, mc_returns=mc, seed=cfg.seed,
                  obs_dim=d["observations"].shape[-1], act_dim=d["actions"].shape[-1])
        if self._pending is not None:
            fqe.load_state_dict(self._pending)
            self._pending = None
        else:
            if mc is not None:
                fqe.mc_init(cfg.fqe.mc_init_steps)
            fqe.tie_heads()  # every head the same function before the first fit (common random numbers)
        return fqe

    def per_start(self, actor: GaussianActor, reference: Optional[GaussianActor] = None):
        cfg = self.cfg
        if cfg.method == "am_q":
            fall = cfg.fall_value if cfg.falls == "terminal" else None
            return am_q_per_start(actor, self.dynamics, self.value, self.am_q_starts, cfg.horizon, cfg.seed,
                                  self.model_sample, fall_value=fall)
        if cfg.method == "model_return":
            v = model_return_per_start(actor, self.dynamics, self.am_q_starts, cfg.horizon, self.gamma, cfg.seed,
                                       self.model_sample, cfg.pessimism, cfg.fall_value)
            return v, np.ones_like(v)
        k = actor.ensemble_size
        policies = actor if reference is None else GaussianActor.stack(
            [actor.member(i) for i in range(k)] + [reference.member(i) for i in range(k)]).to(self.fqe_starts.device)
        if self.fqe is None:  # built at the first check, or rebuilt from a checkpoint on resume
            self.fqe = self._build_fqe(policies.ensemble_size)
        if reference is not None and self.fqe.fits > 0:  # each candidate's head starts from its reference's fit
            for i in range(k):
                self.fqe.copy_head(k + i, i)
        self.fqe.fit(policies, cfg.fqe.first_steps if self.fqe.fits == 0 else cfg.fqe.steps)
        v = self.fqe.values(policies, self.fqe_starts)
        self.reference = None if reference is None else v[k:]
        return v[:k], np.ones_like(v[:k])

    def score(self, actor: GaussianActor, reference: Optional[GaussianActor] = None) -> np.ndarray:
        """(K,) scores of the members; ``reference`` (FQE): their current best, scored with the same fit."""
        self.last = self.per_start(actor, reference)
        if self.reference is not None and self.best is not None:
            self.best = (self.reference.copy(), np.ones_like(self.reference))
        return pooled_score(*self.last)

    def reference_scores(self) -> Optional[np.ndarray]:
        """The members' current best re-scored with the latest fit (FQE with a reference), else None."""
        return None if self.reference is None else pooled_score(self.reference, np.ones_like(self.reference))

    def margin(self) -> np.ndarray:
        """How much each member's latest score must beat its best by (0 without ``ope.margin``)."""
        if self.last is None:  # nothing scored through this gate
            return np.zeros(1)
        k = self.last[0].shape[0]
        if self.cfg.margin <= 0 or self.best is None:
            return np.zeros(k)
        std = paired_bootstrap_std(self.last[0], self.last[1], self.best[0], self.best[1], self.cfg.bootstrap,
                                   self.cfg.seed)
        return self.cfg.margin * std

    def commit(self, improved: np.ndarray) -> None:
        """Record the per-start values of the members whose score was accepted as their new best."""
        improved = np.asarray(improved, bool)
        if self.last is None:
            return
        if self.best is None:
            self.best = (self.last[0].copy(), self.last[1].copy())
        self.best[0][improved], self.best[1][improved] = self.last[0][improved], self.last[1][improved]
        if self.reference is not None and self.fqe is not None:  # the accepted candidate is the new reference
            k = len(improved)
            for i in np.flatnonzero(improved):
                self.fqe.copy_head(int(i), k + int(i))

    def state_dict(self) -> Dict:
        d: Dict = {}
        if self.best is not None:
            d["best_total"], d["best_count"] = torch.as_tensor(self.best[0]), torch.as_tensor(self.best[1])
        if self.fqe is not None:
            d["fqe"] = self.fqe.state_dict()
        return d

    def load_state_dict(self, d: Dict) -> None:
        if "best_total" in d:
            self.best = (d["best_total"].numpy().copy(), d["best_count"].numpy().copy())
        if "fqe" in d:
            self._pending = d["fqe"]
