"""The simulated side and the search: run a policy as on the robot in a candidate world, grid over candidates.

As on the robot: the policy's mean plus its own std times N(0, 1) (the logs' sampling), the command held
at each band's mean logged command, observation noise, domain randomisation and pushes off. Each robot
of one in-process env group holds one band's command; statistics use the steps after ``warmup`` s,
up to a fall. Results are appended to a JSONL file, one line per candidate: a rerun skips the
candidates already there (resumable).
"""
import dataclasses
import itertools
import json
import os
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np
from go1o4.sim_pretrain.calibration import stats as S

from go1o4 import contract as C

PolicyFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Candidate:
    motor_model: str = "ideal_pd"
    stiffness: float = 1200.0  # N/m per foot
    damping: float = 20.0  # N s/m per foot
    friction: float = 0.8
    thickness: float = 0.15  # m; the contact stiffens towards it (foam densification)

    @property
    def key(self) -> str:
        return "%s|K%g|B%g|mu%g|t%g" % (self.motor_model, self.stiffness, self.damping, self.friction, self.thickness)

    def terrain(self):
        from go1o4.sim_pretrain.model.terrain import TerrainConfig

        return TerrainConfig(kind="mattress", mattress_stiffness=self.stiffness, mattress_damping=self.damping,
                             mattress_friction=self.friction, mattress_thickness=self.thickness)


def grid(motor_models: Iterable[str], stiffness: Iterable[float], damping: Iterable[float],
         friction: Iterable[float], thickness: Iterable[float]) -> List[Candidate]:
    return [Candidate(m, float(k), float(b), float(f), float(t))
            for m, k, b, f, t in itertools.product(motor_models, stiffness, damping, friction, thickness)]


def simulate(cand: Candidate, policy: PolicyFn, log_std: np.ndarray, commands: Dict[str, float],
             episodes: int = 2, seconds: float = 12.0, warmup: float = 2.0, seed: int = 0
             ) -> Dict[str, Dict[str, np.ndarray]]:
    """Per band, the per-step arrays (stats.per_step_arrays) of ``episodes`` robots holding that band's command."""
    from go1o4.sim_pretrain.cli_evaluate import evaluation_env_config
    from go1o4.sim_pretrain.env.config import EnvConfig
    from go1o4.sim_pretrain.env.group import Go1EnvGroup

    bands = list(commands)
    n = episodes * len(bands)
    base = EnvConfig()
    base.ground, base.motor_model = cand.terrain(), cand.motor_model
    cfg = evaluation_env_config(base, n, "mattress", dr=False, noise=False, workers=0, seed=seed)
    cfg.episode_steps = int(round(seconds / cfg.policy_dt)) + 10
    group = Go1EnvGroup(cfg, ["mattress"] * n, seed)
    band_of = np.repeat(np.arange(len(bands)), episodes)
    group.set_fixed_commands(np.stack([C.command_vector(commands[bands[b]], 0.0, 0.0) for b in band_of]))
    obs = group.reset(seed)
    rng = np.random.default_rng(seed)
    std = np.exp(np.asarray(log_std, dtype=np.float64))
    alive = np.ones(n, dtype=bool)
    rows: List[Dict[str, np.ndarray]] = []
    masks: List[np.ndarray] = []
    prev = np.zeros((n, C.NUM_ACTIONS))
    warm = int(round(warmup / cfg.policy_dt))
    for t in range(int(round(seconds / cfg.policy_dt))):
        qpos, qvel = group.robots.qpos, group.robots.qvel
        yaw = np.arctan2(2 * (qpos[:, 3] * qpos[:, 6] + qpos[:, 4] * qpos[:, 5]),
                         1 - 2 * (qpos[:, 5] ** 2 + qpos[:, 6] ** 2))
        speed = S.heading_speed(qvel[:, 0:2], yaw)
        a = policy(obs) + std * rng.normal(size=(n, C.NUM_ACTIONS))
        a = np.clip(a, -C.CLIP_ACTIONS, C.CLIP_ACTIONS)
        if t >= warm:
            rows.append(S.per_step_arrays(obs[:, -C.OBS_DIM:], a, prev, speed))
            masks.append(alive.copy())
        obs, _, term, _, _ = group.step(a)
        prev = a
        alive &= ~term
    out = {}
    for b, band in enumerate(bands):
        sel = band_of == b
        parts = [{k: v[sel & m] for k, v in r.items()} for r, m in zip(rows, masks)]
        out[band] = S.concat(parts)
        out[band]["falls"] = np.array([int(np.sum(~alive[sel]))])
    return out


def load_done(path: str) -> Dict[str, dict]:
    done: Dict[str, dict] = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        rec = json.loads(line)
                    except ValueError:  # a line cut by a kill: that candidate runs again
                        continue
                    done[rec["key"]] = rec
    return done


def evaluate_candidate(cand: Candidate, policy: PolicyFn, log_std, real: Dict[str, dict],
                       commands: Dict[str, float], episodes: int, seconds: float, seed: int = 0) -> dict:
    arrays = simulate(cand, policy, log_std, commands, episodes, seconds, seed=seed)
    sim = {b: dict(S.summarize(a), falls=int(a["falls"][0])) for b, a in arrays.items()}
    total, parts = S.score(real, sim)
    return {"key": cand.key, "candidate": dataclasses.asdict(cand), "score": total, "parts": parts, "sim": sim,
            "targets": S.within_targets(real, sim), "episodes": episodes, "seconds": seconds}


def run_search(cands: List[Candidate], policy: PolicyFn, log_std, real: Dict[str, dict], commands: Dict[str, float],
               out_jsonl: str, episodes: int = 2, seconds: float = 12.0, progress: bool = True,
               say: Optional[Callable[[str], None]] = None) -> List[dict]:
    """Evaluate every candidate not yet in ``out_jsonl`` (appending one line each); returns all records."""
    done = load_done(out_jsonl)
    todo = [c for c in cands if c.key not in done]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(cands), initial=len(cands) - len(todo), desc="calibrate", unit="cand")
    for c in todo:
        rec = evaluate_candidate(c, policy, log_std, real, commands, episodes, seconds)
        with open(out_jsonl, "a") as f:
            f.write(json.dumps(rec) + "\n")
        done[c.key] = rec
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str("%s score %.2f" % (c.key, rec["score"]))
        elif say:
            say("%s score %.2f" % (c.key, rec["score"]))
    if bar is not None:
        bar.close()
    return sorted(done.values(), key=lambda r: r["score"])
