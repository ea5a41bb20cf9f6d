"""Offline transitions as the trainers see them: thin torch-side glue over the data layer's dataset.

The data layer (``data.dataset.TransitionDataset``: arrays, statistics, the split by episode;
``data.import_uni_o4``) owns files, rewards and the one dataset type; this module only checks what it hands
over (clear errors naming the field, float32 arrays) and turns it into torch tensors sampled in minibatches.
Never imports mujoco.
"""
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch
from go1o4.data.dataset import ARRAYS, BuildConfig, TransitionDataset, build_dataset
from go1o4.data.import_uni_o4 import find_uni_o4_files, load_uni_o4_file

from go1o4 import contract as C

FIELDS = ARRAYS  # observations (N, 290), actions (N, 12), rewards, next_observations, terminals, timeouts, episode_ids
#: the real Uni-O4 mattress logs, beside the repository (shared/data/...)
REAL_LOGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "uni_o4_go1_mattress_2023_08"


class DatasetError(ValueError):
    pass


def _field(ds: Any, name: str, source: str) -> np.ndarray:
    value = ds.get(name) if isinstance(ds, dict) else getattr(ds, name, None)
    if value is None:
        raise DatasetError("%s: field %r is missing" % (source, name))
    return np.asarray(value)


def as_transitions(ds: Any, source: Optional[str] = None) -> TransitionDataset:
    """Check a dataset-like object (attributes or dict keys in FIELDS) and return it as a float32
    :class:`TransitionDataset` (its obs statistics kept, the rest recomputed when needed)."""
    source = source or str(getattr(ds, "path", None) or getattr(ds, "source", None) or type(ds).__name__)
    arrays = {name: _field(ds, name, source) for name in FIELDS}
    n = arrays["observations"].shape[0] if arrays["observations"].ndim else 0
    if n == 0:
        raise DatasetError("%s: the dataset is empty" % source)
    want = {"observations": (n, C.POLICY_INPUT_DIM), "next_observations": (n, C.POLICY_INPUT_DIM),
            "actions": (n, C.NUM_ACTIONS)}
    for name in FIELDS:
        a = arrays[name]
        shape = want.get(name, (n,))
        if a.shape != shape:
            raise DatasetError("%s: field %r has shape %s, expected %s" % (source, name, a.shape, shape))
        if name != "episode_ids" and not np.all(np.isfinite(a)):
            bad = int(np.argmax(~np.isfinite(a).reshape(n, -1).all(1)))
            raise DatasetError("%s: field %r has NaN/inf values (first at row %d)" % (source, name, bad))
    for name in ("terminals", "timeouts"):
        if not np.all(np.isin(arrays[name], (0, 1))):
            raise DatasetError("%s: field %r must hold 0/1 flags" % (source, name))
    out = {k: v.astype(np.float32, copy=False) for k, v in arrays.items() if k != "episode_ids"}
    out["episode_ids"] = arrays["episode_ids"].astype(np.int64, copy=False)
    stats = getattr(ds, "stats", None) if not isinstance(ds, dict) else ds.get("stats")
    stats = {k: np.asarray(v) for k, v in (stats or {}).items() if k in ("obs_mean", "obs_std")}
    for k, v in stats.items():
        if v.shape != (C.POLICY_INPUT_DIM,) or not np.all(np.isfinite(v)):
            raise DatasetError("%s: stats[%r] has shape %s or non-finite values" % (source, k, v.shape))
    return TransitionDataset(source=source, stats=stats, meta=dict(getattr(ds, "meta", None) or {}), **out)


def split_transitions(ds: Any, val_fraction: float, seed: int) -> Tuple[TransitionDataset, TransitionDataset]:
    """(train, val) by whole episodes with the data layer's ``TransitionDataset.split`` (val keeps train's stats)."""
    if not isinstance(ds, TransitionDataset):
        ds = as_transitions(ds)
    source = ds.source or str(ds.meta.get("source", "") or type(ds).__name__)
    if val_fraction > 0 and ds.num_episodes < 2:
        raise DatasetError("%s: need at least 2 episodes to hold some out, got %d" % (source, ds.num_episodes))
    train, val = ds.split(val_fraction, seed)
    return as_transitions(train, source), as_transitions(val, source + " (val)")


def load_dataset(spec: str, reward: str = "uni_o4_world", progress: bool = True, max_files: int = 0) -> Any:
    """``spec``: ``uni_o4_real`` (the real mattress logs, read by ``data.import_uni_o4``), a built dataset
    file (``data.dataset.TransitionDataset.load``), or a directory of our episode logs (``build_dataset``).
    Returns the data layer's ``TransitionDataset`` (checked: shapes, finite values, 0/1 flags)."""
    try:
        if spec == "uni_o4_real":
            if not REAL_LOGS.exists():
                raise DatasetError("the real Uni-O4 logs are not at %s" % REAL_LOGS)
            files = find_uni_o4_files(str(REAL_LOGS))
            files = files[:max_files] if max_files > 0 else files
            episodes = (load_uni_o4_file(f, reward=reward) for f in files)
            ds = build_dataset(episodes, BuildConfig(reward=reward), progress=progress)
            ds.source = "uni_o4_real (%d files, reward %s)" % (len(files), reward)
        elif not os.path.exists(spec):
            raise DatasetError("dataset %s not found (give a dataset file, a log directory or 'uni_o4_real')" % spec)
        elif os.path.isdir(spec):
            ds = build_dataset(spec, BuildConfig(reward=reward), progress=progress)
            ds.source = spec
        else:
            ds = TransitionDataset.load(spec)
            ds.source = spec
    except DatasetError:
        raise
    except (ValueError, OSError) as e:  # data layer errors (LogReadError, DatasetBuildError) name the file
        raise DatasetError("cannot read dataset %s: %s" % (spec, e))
    as_transitions(ds, ds.source)  # fail early with a clear message
    return ds


class TorchData:
    """All transitions as float32 tensors on ``device``; uniform minibatches with a seeded generator
    (on the same device: indices are drawn and gathered there, no host round-trip)."""

    def __init__(self, tr: TransitionDataset, device: Union[str, torch.device] = "cpu"):
        self.n, self.device = len(tr), torch.device(device)
        self.t = {k: torch.as_tensor(getattr(tr, k), device=self.device) for k in FIELDS if k != "episode_ids"}

    def sample(self, batch_size: int, generator: torch.Generator) -> Dict[str, torch.Tensor]:
        idx = torch.randint(0, self.n, (batch_size,), generator=generator, device=self.device)
        return {k: v[idx] for k, v in self.t.items()}

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.t[key]
