"""Export a TransitionDataset as a D4RL-style flat HDF5 or as a Minari dataset (written by ``minari`` itself).

D4RL: one file with ``observations, actions, rewards, next_observations, terminals, timeouts``
(bool flags, float32 arrays) plus ``infos/episode_ids``.
Minari: ``minari.create_dataset_from_buffers`` into a datasets root (``MINARI_DATASETS_PATH``).
"""
import json
import os
import warnings
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


def export_minari(ds: TransitionDataset, out_root: str, dataset_id: str = "go1o4/mattress-v0") -> Dict[str, Any]:
    """Write ``ds`` with Minari's own ``create_dataset_from_buffers`` under the datasets root ``out_root``.

    One Minari episode per dataset episode (ids 0..E-1 in order): ``observations`` (T+1, obs_dim), ``actions``,
    ``rewards``, ``terminations`` (falls), ``truncations`` (cut-offs). Load it back with
    ``MINARI_DATASETS_PATH=<out_root>`` and ``minari.load_dataset(dataset_id)``.
    """
    try:
        import minari
        from gymnasium.spaces import Box
        from minari.data_collector import EpisodeBuffer
    except ImportError as e:
        raise ValueError("the Minari export needs the minari package (pip install 'minari>=0.5,<0.6'): %s" % e)
    ids = ds.episode_ids
    boundaries = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], boundaries]).astype(np.int64)
    stops = np.concatenate([boundaries, [len(ids)]]).astype(np.int64)
    buffers = []
    for i, (a, b) in enumerate(zip(starts, stops)):
        obs = np.concatenate([ds.observations[a:b], ds.next_observations[b - 1:b]]).astype(np.float32)
        buffers.append(EpisodeBuffer(id=i, observations=obs, actions=ds.actions[a:b].astype(np.float32),
                                     rewards=ds.rewards[a:b].astype(np.float64), terminations=ds.terminals[a:b] > 0.5,
                                     truncations=ds.timeouts[a:b] > 0.5))
    box = lambda n: Box(-np.inf, np.inf, (n,), np.float32)  # noqa: E731
    names = [str(e.get("name", "")) for e in ds.meta.get("episodes", [])]
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = os.path.abspath(out_root)
    try:
        with warnings.catch_warnings():  # no gymnasium env behind real-robot logs: minari warns "env_spec is None"
            warnings.filterwarnings("ignore", message="env_spec is None")
            minari.create_dataset_from_buffers(
                dataset_id, buffers, observation_space=box(ds.observations.shape[1]),
                action_space=box(ds.actions.shape[1]), author="go1o4",
                algorithm_name="go1o4 runtime logs (reward %s)" % ds.meta.get("reward"),
                description="Unitree Go1 transitions (go1o4 %s), reward %s, episodes %s"
                            % (__version__, ds.meta.get("reward"), ", ".join(names)[:2000]),
                data_format="hdf5")
    finally:
        if before is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = before
    return {"path": os.path.join(out_root, dataset_id), "episodes": int(len(starts)), "steps": int(len(ds)),
            "load_with": "MINARI_DATASETS_PATH=%s python -c \"import minari; minari.load_dataset('%s')\""
                         % (os.path.abspath(out_root), dataset_id)}
