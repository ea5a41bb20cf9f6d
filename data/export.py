"""Export a TransitionDataset as a D4RL-style flat HDF5 or as a Minari-style dataset folder.

D4RL: one file with ``observations, actions, rewards, next_observations, terminals, timeouts``
(bool flags, float32 arrays) plus ``infos/episode_ids``.
Minari (hdf5 storage layout): ``<out>/data/metadata.json`` + ``<out>/data/main_data.hdf5`` with
groups ``episode_<i>`` holding ``observations`` (T+1, 290), ``actions`` (T, 12), ``rewards``,
``terminations``, ``truncations`` (T,). Written with h5py: the ``minari`` package is not needed.
"""
import json
import os
from typing import Any, Dict

import h5py
import numpy as np
from go1o4.data.dataset import TransitionDataset
from go1o4.data.log_format import to_jsonable

from go1o4 import __version__


def export_d4rl(ds: TransitionDataset, path: str) -> Dict[str, Any]:
    with h5py.File(path, "w") as f:
        for k in ("observations", "actions", "rewards", "next_observations"):
            f.create_dataset(k, data=getattr(ds, k).astype(np.float32))
        f.create_dataset("terminals", data=ds.terminals > 0.5)
        f.create_dataset("timeouts", data=ds.timeouts > 0.5)
        f.create_dataset("infos/episode_ids", data=ds.episode_ids)
        for k, v in ds.stats.items():
            f.create_dataset("metadata/stats/" + k, data=v)
        f.attrs["meta_json"] = json.dumps(to_jsonable(ds.meta))
        f.attrs["reward"] = str(ds.meta.get("reward", ""))
    return {"path": path, "transitions": len(ds), "episodes": ds.num_episodes}


def _box(dim: int, dtype: str = "float32") -> str:
    inf = float("inf")
    return json.dumps({"type": "Box", "dtype": dtype, "shape": [dim], "low": [-inf] * dim, "high": [inf] * dim})


def export_minari(ds: TransitionDataset, out_dir: str, dataset_id: str = "go1o4/mattress-v0") -> Dict[str, Any]:
    """Write the Minari hdf5 layout; one Minari episode per dataset episode (ids 0..E-1 in order)."""
    data_dir = os.path.join(out_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    ids = ds.episode_ids
    boundaries = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], boundaries]).astype(np.int64)
    stops = np.concatenate([boundaries, [len(ids)]]).astype(np.int64)
    names = ds.meta.get("episodes", [])
    with h5py.File(os.path.join(data_dir, "main_data.hdf5"), "w", track_order=True) as f:
        for i, (a, b) in enumerate(zip(starts, stops)):
            g = f.create_group("episode_%d" % i)
            g.attrs["id"] = i
            g.attrs["total_steps"] = int(b - a)
            src = int(ids[a])
            if src < len(names):
                g.attrs["go1o4_episode"] = str(names[src].get("name", ""))
            obs = np.concatenate([ds.observations[a:b], ds.next_observations[b - 1:b]])
            g.create_dataset("observations", data=obs, chunks=True, maxshape=(None,) + obs.shape[1:])
            g.create_dataset("actions", data=ds.actions[a:b], chunks=True, maxshape=(None,) + ds.actions.shape[1:])
            g.create_dataset("rewards", data=ds.rewards[a:b].astype(np.float64), chunks=True, maxshape=(None,))
            g.create_dataset("terminations", data=ds.terminals[a:b] > 0.5, chunks=True, maxshape=(None,))
            g.create_dataset("truncations", data=ds.timeouts[a:b] > 0.5, chunks=True, maxshape=(None,))
    metadata = {
        "dataset_id": dataset_id, "total_episodes": int(len(starts)), "total_steps": int(len(ds)),
        "data_format": "hdf5", "observation_space": _box(ds.observations.shape[1]),
        "action_space": _box(ds.actions.shape[1]), "author": "go1o4", "code_permalink": "",
        "minari_version": "0.5", "requirements": [], "dataset_size": 0.0,
        "description": "Unitree Go1 transitions (go1o4 %s), reward %s" % (__version__, ds.meta.get("reward")),
    }
    size = sum(os.path.getsize(os.path.join(data_dir, n)) for n in os.listdir(data_dir))
    metadata["dataset_size"] = round(size / 1e6, 1)
    with open(os.path.join(data_dir, "metadata.json"), "w") as fh:
        json.dump(metadata, fh)
    return {"path": out_dir, "episodes": int(len(starts)), "steps": int(len(ds))}
