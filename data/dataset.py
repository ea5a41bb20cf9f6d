"""Training-ready transition datasets built from episodes (real imported logs or runtime logs).

    ds = build_dataset("logs/", BuildConfig(reward="uni_o4_body"))
    train, val = ds.split(0.1, seed=0)          # by episode
    ds.save("mattress.h5"); ds = TransitionDataset.load("mattress.h5")

``observations`` (N, 290) is the 5-step history of the 58-float observation, oldest first; at an
episode start the history is filled with the episode's first observation (never the previous
episode's: the one history stacker of :mod:`go1o4.contract`, ``stack_logged_history``). A transition t of an episode
with T steps is (s_t, a_t, r_t, s_t+1) for t = 0..T-2, so every next observation is a real
logged one; the last transition carries ``terminals`` (fall: s_T-1 is terminal) or ``timeouts``
(truncation: bootstrap from s_T-1). Fully vectorised (no per-step Python loop).
"""
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import h5py
import numpy as np
from go1o4.data.h5file import open_h5
from go1o4.data.import_uni_o4 import stale_start_and_fall
from go1o4.data.log_format import Episode, LogReadError, to_jsonable
from go1o4.data.rewards import compute_reward, reward_names
from go1o4.data.validate import physical_ok

from go1o4 import __version__
from go1o4 import contract as C

DATASET_FORMAT = "go1o4.transitions"
DATASET_VERSION = 1
ARRAYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts", "episode_ids")


class DatasetBuildError(ValueError):
    """An episode cannot go into a dataset; the message names it."""


@dataclass
class BuildConfig:
    reward: str = "uni_o4_world"  # name in data.rewards
    history: int = C.HISTORY_LEN
    std_floor: float = 1e-2  # floor on every normalisation std (constant features, e.g. gait commands)
    skip_stale_start: bool = True  # drop leading steps where the robot still lies tilted (stale rows)
    min_steps: int = 2  # episodes shorter than this (after trimming) give no transition
    robot: str = C.GO1.name  # the RobotSpec (go1o4.contract.ROBOTS) whose observation layout the episodes have

    def validate(self) -> None:
        if self.reward not in reward_names():
            raise ValueError("reward %r unknown; choose from %s" % (self.reward, ", ".join(reward_names())))
        if self.robot not in C.ROBOTS:
            raise ValueError("robot %r unknown; choose from %s" % (self.robot, ", ".join(C.ROBOTS)))
        if self.history < 1:
            raise ValueError("history must be >= 1, got %d" % self.history)
        if not self.std_floor > 0:
            raise ValueError("std_floor must be > 0, got %r" % self.std_floor)
        if self.min_steps < 2:
            raise ValueError("min_steps must be >= 2 (a transition needs two steps), got %d" % self.min_steps)


# ----------------------------------------------------------------------------- pure math
def compute_stats(observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                  std_floor: float) -> Dict[str, np.ndarray]:
    """Per-feature mean/std (float32) with std >= std_floor."""
    def ms(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if len(x) == 0:
            return np.zeros(x.shape[1:], np.float32), np.ones(x.shape[1:], np.float32)
        x64 = x.astype(np.float64, copy=False)
        mean = x64.mean(axis=0)
        std = np.sqrt(np.maximum((x64 * x64).mean(axis=0) - mean * mean, 0.0))
        return mean.astype(np.float32), np.maximum(std, std_floor).astype(np.float32)

    out = {}
    for key, arr in (("obs", observations), ("action", actions), ("reward", rewards[:, None])):
        m, s = ms(arr)
        out[key + "_mean"], out[key + "_std"] = (m[0], s[0]) if key == "reward" else (m, s)
    return out


# ----------------------------------------------------------------------------- the dataset
@dataclass
class TransitionDataset:
    observations: np.ndarray  # (N, 290) float32
    actions: np.ndarray  # (N, 12) float32
    rewards: np.ndarray  # (N,) float32
    next_observations: np.ndarray  # (N, 290) float32
    terminals: np.ndarray  # (N,) float32, 1 = s' is terminal (fall)
    timeouts: np.ndarray  # (N,) float32, 1 = episode cut after this transition (bootstrap)
    episode_ids: np.ndarray  # (N,) int32, index into meta["episodes"]
    stats: Dict[str, np.ndarray] = field(default_factory=dict)
    meta: Dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where it came from (a file, a log folder, the real logs), for messages; not saved

    def __len__(self) -> int:
        return int(len(self.rewards))

    @property
    def std_floor(self) -> float:
        return float(self.meta.get("config", {}).get("std_floor", BuildConfig.std_floor))

    def obs_stats(self) -> Tuple[np.ndarray, np.ndarray]:
        """Observation mean / std (std floored): the stored statistics, else computed from the observations."""
        stats = self.stats
        if "obs_mean" not in stats or "obs_std" not in stats:
            stats = compute_stats(self.observations, self.actions, self.rewards, self.std_floor)
        return np.asarray(stats["obs_mean"]), np.asarray(stats["obs_std"])

    @property
    def num_episodes(self) -> int:
        return int(len(np.unique(self.episode_ids)))

    def normalize(self, observations: np.ndarray) -> np.ndarray:
        return (observations - self.stats["obs_mean"]) / self.stats["obs_std"]

    def subset(self, mask: np.ndarray, stats: Optional[Dict[str, np.ndarray]] = None) -> "TransitionDataset":
        arrays = {k: getattr(self, k)[mask] for k in ARRAYS}
        if stats is None:
            stats = compute_stats(arrays["observations"], arrays["actions"], arrays["rewards"], self.std_floor)
        return TransitionDataset(stats=dict(stats), meta=dict(self.meta), source=self.source, **arrays)

    def split(self, val_fraction: float, seed: int = 0) -> Tuple["TransitionDataset", "TransitionDataset"]:
        """(train, val) by whole episodes, deterministic in ``seed``; val uses the train statistics."""
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError("val_fraction must be in [0, 1), got %r" % val_fraction)
        ids = np.unique(self.episode_ids)
        n_val = int(round(val_fraction * len(ids)))
        if val_fraction > 0 and len(ids) > 1:
            n_val = min(max(n_val, 1), len(ids) - 1)
        val_ids = np.sort(np.random.default_rng(seed).permutation(ids)[:n_val])
        in_val = np.isin(self.episode_ids, val_ids)
        train = self.subset(~in_val)
        val = self.subset(in_val, stats=train.stats)
        for part, name in ((train, "train"), (val, "val")):
            part.meta["split"] = {"part": name, "val_fraction": val_fraction, "seed": seed,
                                  "val_episode_ids": val_ids.tolist()}
        return train, val

    # -------------------------------------------------------------- HDF5 I/O
    def save(self, path: str, compression: Optional[str] = None) -> None:
        """Write to HDF5 (atomically: temp file then rename)."""
        tmp = "%s.tmp%d" % (path, os.getpid())
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with h5py.File(tmp, "w") as f:
                f.attrs.update({"format": DATASET_FORMAT, "version": DATASET_VERSION,
                                "meta_json": json.dumps(to_jsonable(self.meta)), "software_version": __version__})
                for k in ARRAYS:
                    a = getattr(self, k)
                    f.create_dataset(k, data=a, compression=compression,
                                     chunks=(min(len(a), 4096),) + a.shape[1:] if len(a) else None)
                g = f.create_group("stats")
                for k, v in self.stats.items():
                    g.create_dataset(k, data=np.asarray(v))
            os.replace(tmp, path)
        except OSError as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise OSError("cannot write dataset %s: %s" % (path, e))

    @classmethod
    def load(cls, path: str) -> "TransitionDataset":
        """Read a dataset file; any problem raises LogReadError naming the file and the field."""
        f = open_h5(path)
        try:
            if str(f.attrs.get("format", "")) != DATASET_FORMAT:
                raise LogReadError(path, "not a go1o4 transition dataset (attribute 'format' is %r)"
                                   % (f.attrs.get("format"),))
            arrays = {}
            for k in ARRAYS:
                if k not in f:
                    raise LogReadError(path, "dataset %r missing" % k)
                arrays[k] = f[k][()]
            stats = {k: v[()] for k, v in f["stats"].items()} if "stats" in f else {}
            meta = json.loads(str(f.attrs.get("meta_json", "{}")))
        except LogReadError:
            raise
        except Exception as e:  # noqa: BLE001 - damaged file: name it
            raise LogReadError(path, "damaged dataset file: %s: %s" % (type(e).__name__, str(e)[:200]))
        finally:
            f.close()
        n = len(arrays["rewards"])
        for k, a in arrays.items():
            if len(a) != n:
                raise LogReadError(path, "dataset %r has %d rows, expected %d" % (k, len(a), n))
        if arrays["observations"].shape[1:] != arrays["next_observations"].shape[1:]:
            raise LogReadError(path, "observations and next_observations differ in width")
        return cls(stats=stats, meta=meta, **arrays)


# ----------------------------------------------------------------------------- building
def _episodes_from(source: Any, errors: List[str]) -> Iterable[Episode]:
    from go1o4.data.reader import LogDataset, open_dataset

    if isinstance(source, (str, os.PathLike)) or (isinstance(source, (list, tuple)) and source
                                                  and isinstance(source[0], (str, os.PathLike))):
        source = open_dataset(source)
    if isinstance(source, LogDataset):
        for p, problem in source.problems:
            errors.append("%s: %s" % (p, problem))
        errs: List[LogReadError] = []
        for ep in source.iter_episodes("skip", errs):
            yield ep
        errors.extend(str(e) for e in errs)
        return
    for ep in source:
        yield ep


def _prepare(ep: Episode, cfg: BuildConfig, info: Dict[str, int]) -> Optional[Tuple[Episode, np.ndarray, str, str]]:
    """Trim one episode (stale start, non-finite tail) and compute its reward."""
    for name, width in (("obs", C.OBS_DIM), ("action", C.NUM_ACTIONS)):
        if name not in ep.steps:
            raise DatasetBuildError("episode %s (%s) has no %r field" % (ep.name, ep.source, name))
        shape = np.shape(ep.steps[name])
        if len(shape) != 2 or shape[1] != width:
            raise DatasetBuildError("episode %s (%s): field %r has shape %s, expected (T, %d)"
                                    % (ep.name, ep.source, name, shape, width))
    end, reason = ep.end, ep.reason
    ok_obs, ok_act = physical_ok("obs", ep.steps["obs"]), physical_ok("action", ep.steps["action"])
    if ok_obs is not None and ok_act is not None:
        with np.errstate(invalid="ignore"):
            bad = ~(ok_obs & ok_act) & np.isfinite(ep.steps["obs"]).all(axis=1) & np.isfinite(ep.steps["action"]).all(axis=1)
        if bad.any():  # quarantined: the episode ends before its first impossible step (zeroed rows are no fall)
            cut = int(np.argmax(bad))
            info["quarantined_out_of_range_steps"] += ep.num_steps - cut
            ep, end, reason = ep.slice(0, cut), "truncation", "out_of_range"
            if ep.num_steps < cfg.min_steps:
                info["skipped_short_episodes"] += 1
                return None
    if cfg.skip_stale_start and ep.num_steps:
        stale, _ = stale_start_and_fall(ep.steps["obs"])
        if stale:
            info["dropped_stale_steps"] += stale
            ep = ep.slice(stale)
    reward = compute_reward(cfg.reward, ep.steps, dt=1.0 / ep.rate_hz)
    ok = (np.isfinite(ep.steps["obs"]).all(axis=1) & np.isfinite(ep.steps["action"]).all(axis=1)
          & np.isfinite(reward))
    if not ok.all():
        cut = int(np.argmin(ok))
        info["dropped_nonfinite_steps"] += ep.num_steps - cut
        ep, reward, end, reason = ep.slice(0, cut), reward[:cut], "truncation", "non_finite"
    if ep.num_steps < cfg.min_steps:
        info["skipped_short_episodes"] += 1
        return None
    return ep, reward, end, reason


def build_dataset(source: Union[str, Sequence[str], Iterable[Episode], Any], config: Optional[BuildConfig] = None,
                  progress: bool = False) -> TransitionDataset:
    """Episodes (paths, a LogDataset or Episode objects) -> TransitionDataset. Deterministic."""
    from tqdm import tqdm

    cfg = config or BuildConfig()
    cfg.validate()
    errors: List[str] = []
    info = {"dropped_stale_steps": 0, "dropped_nonfinite_steps": 0, "skipped_short_episodes": 0,
            "quarantined_out_of_range_steps": 0}
    obs, act, rew, lengths, episodes, skipped = [], [], [], [], [], []
    for ep in tqdm(_episodes_from(source, errors), desc="episodes", unit="ep", disable=not progress):
        prepared = _prepare(ep, cfg, info)
        if prepared is None:
            skipped.append("%s (%s): fewer than %d usable steps" % (ep.name, ep.source, cfg.min_steps))
            continue
        ep, reward, end, reason = prepared
        obs.append(np.asarray(ep.steps["obs"], dtype=np.float32))
        act.append(np.asarray(ep.steps["action"], dtype=np.float32))
        rew.append(reward)
        lengths.append(ep.num_steps)
        episodes.append({"name": ep.name, "source": ep.source, "end": end, "reason": reason,
                         "steps": ep.num_steps, "status": ep.status,
                         "terrain": ep.session.get("terrain") or ep.meta.get("terrain"),
                         "policy_hash": ep.session.get("policy_hash")})
    if not episodes:
        raise DatasetBuildError("no usable episode (need >= %d steps each)%s"
                                % (cfg.min_steps, "; errors: " + "; ".join(errors) if errors else ""))
    all_obs, all_act, all_rew = np.concatenate(obs), np.concatenate(act), np.concatenate(rew)
    lens = np.asarray(lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    ep_of_row = np.repeat(np.arange(len(lens)), lens)
    episode_start = starts[ep_of_row]
    last = starts + lens - 1
    rows = np.flatnonzero(np.arange(len(all_obs)) != last[ep_of_row])
    is_last = np.zeros(len(all_obs), dtype=bool)
    is_last[last - 1] = True  # the final transition of each episode (T >= 2 guaranteed)
    terminal_ep = np.array([e["end"] == "terminal" for e in episodes])
    observations = C.stack_logged_history(all_obs, rows, episode_start, cfg.history)
    next_observations = C.stack_logged_history(all_obs, rows + 1, episode_start, cfg.history)
    terminals = (is_last & terminal_ep[ep_of_row])[rows].astype(np.float32)
    timeouts = (is_last & ~terminal_ep[ep_of_row])[rows].astype(np.float32)
    actions, rewards = all_act[rows], all_rew[rows].astype(np.float32)
    meta = {"format": DATASET_FORMAT, "robot": cfg.robot, "reward": cfg.reward, "history": cfg.history,
            "obs_layout": "%d x %d, oldest first" % (cfg.history, C.OBS_DIM),
            "config": dataclasses.asdict(cfg), "episodes": episodes, "load_errors": errors, "skipped_episodes": skipped,
            "software_version": __version__, "transitions": int(len(rows)), "steps": int(lens.sum())}
    meta.update(info)
    return TransitionDataset(observations, actions, rewards, next_observations, terminals, timeouts,
                             ep_of_row[rows].astype(np.int32),
                             compute_stats(observations, actions, rewards, cfg.std_floor), meta)


def merge_datasets(parts: Sequence[TransitionDataset]) -> TransitionDataset:
    """Concatenate datasets built with the same reward and history; episode ids are renumbered."""
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    for p in parts[1:]:
        for key in ("reward", "history"):
            if p.meta.get(key) != first.meta.get(key):
                raise ValueError("cannot merge datasets with different %s: %r vs %r"
                                 % (key, first.meta.get(key), p.meta.get(key)))
    arrays: Dict[str, List[np.ndarray]] = {k: [] for k in ARRAYS}
    episodes: List[Any] = []
    for p in parts:
        for k in ARRAYS:
            arrays[k].append(getattr(p, k) + len(episodes) if k == "episode_ids" else getattr(p, k))
        episodes.extend(p.meta.get("episodes", []))
    merged = {k: np.concatenate(v) for k, v in arrays.items()}
    merged["episode_ids"] = merged["episode_ids"].astype(np.int32)
    meta = dict(first.meta)
    meta.update({"episodes": episodes, "transitions": int(len(merged["rewards"])), "merged_from": len(parts)})
    meta.pop("split", None)
    floor = float(meta.get("config", {}).get("std_floor", BuildConfig.std_floor))
    stats = compute_stats(merged["observations"], merged["actions"], merged["rewards"], floor)
    return TransitionDataset(stats=stats, meta=meta, **merged)
