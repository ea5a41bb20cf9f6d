"""The OPE gate of the multi-step update: a score per member, and the margin a new score must clear.

``ope.method``: am_q (the paper: Q of the PPO critic along learned-model rollouts, :mod:`.ope`) or fqe
(:mod:`.fqe`, independent of the critic PPO climbs). Both give per-start-state sums and counts, so the
gate can measure its own noise: with ``ope.margin`` m > 0 a member is accepted only if
score - best > m * std_boot(score - best), the std over ``ope.bootstrap`` resamples of the start states
(paired: the same resample for the candidate and the best's per-start values recorded when it was
accepted). m = 0 is the paper's strict rule.
"""
from typing import Dict, Optional

import numpy as np
import torch
from go1o4.offline_finetune.config import OPEConfig
from go1o4.offline_finetune.critic_check import discounted_returns
from go1o4.offline_finetune.fqe import FQE
from go1o4.offline_finetune.ope import am_q_per_start, pooled_score, start_states

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
        elif mc is not None:
            fqe.mc_init(cfg.fqe.mc_init_steps)
        return fqe

    def per_start(self, actor: GaussianActor):
        cfg = self.cfg
        if cfg.method == "am_q":
            fall = cfg.fall_value if cfg.falls == "terminal" else None
            return am_q_per_start(actor, self.dynamics, self.value, self.am_q_starts, cfg.horizon, cfg.seed,
                                  self.model_sample, fall_value=fall)
        if self.fqe is None:
            self.fqe = self._build_fqe(actor.ensemble_size)
        self.fqe.fit(actor, cfg.fqe.first_steps if self.fqe.fits == 0 else cfg.fqe.steps)
        v = self.fqe.values(actor, self.fqe_starts)
        return v, np.ones_like(v)

    def score(self, actor: GaussianActor) -> np.ndarray:
        self.last = self.per_start(actor)
        return pooled_score(*self.last)

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
