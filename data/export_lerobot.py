"""Export episode logs as a LeRobot dataset (``LeRobotDataset`` v3.0 on-disk format, no video).

Written with pyarrow/pandas to the layout of ``lerobot.datasets.utils`` (lerobot 0.4, ``CODEBASE_VERSION =
"v3.0"``) because lerobot itself pins ``torch<2.11`` and imports ``torchvision``, which does not import beside
this project's torch; ``LeRobotDataset(repo_id, root=<out>)`` reads the folder (checked in the tests from the
separate ``make lerobot-venv``)::

    meta/info.json                                  fps 50, features, data_path template, splits
    meta/stats.json                                 per-feature mean/std/min/max/count
    meta/tasks.parquet                              task string (index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        episode_index, tasks, length, data/chunk_index,
                                                    data/file_index, dataset_from_index, dataset_to_index
    data/chunk-000/file-000.parquet                 one row per 50 Hz step (all episodes)

Per step: ``observation.state`` (the 58-float policy observation), ``observation.joint_pos/joint_vel``,
``observation.t265_velocity`` (T265, trunk frame), ``observation.command`` (vx, vy, yaw rate),
``observation.roll_pitch`` (see :mod:`go1o4.data.series` for the fallbacks),
``action`` (raw policy output), ``next.reward``, ``next.done`` (fall), ``next.truncated`` (cut-off), plus
LeRobot's ``timestamp, frame_index, episode_index, index, task_index``.
"""
import json
import os
from typing import Any, Dict, Iterable, List

import numpy as np
from go1o4.data.log_format import Episode
from go1o4.data.rewards import compute_reward
from go1o4.data.series import episode_series

from go1o4 import contract as C

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"

#: feature -> (log field or :func:`episode_series` key, columns, names); missing log fields are written as NaN.
_VECTORS = (
    ("observation.state", "obs", slice(None), ["obs_%d" % i for i in range(C.OBS_DIM)]),
    ("observation.joint_pos", "q", slice(None), list(C.JOINT_NAMES_SIM)),
    ("observation.joint_vel", "dq", slice(None), list(C.JOINT_NAMES_SIM)),
    ("observation.t265_velocity", "v_body", slice(None), ["vx", "vy", "vz"]),
    ("observation.command", "cmd", slice(None), ["vx", "vy", "yaw_rate"]),
    ("observation.roll_pitch", "roll_pitch", slice(None), ["roll", "pitch"]),
    ("action", "action", slice(None), list(C.JOINT_NAMES_SIM)),
)


def features() -> Dict[str, Dict[str, Any]]:
    """LeRobot's ``info.json`` features (dtype, shape, names) of this export."""
    out = {k: {"dtype": "float32", "shape": [len(names)], "names": names} for k, _, _, names in _VECTORS}
    out["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    out["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    out["next.truncated"] = {"dtype": "bool", "shape": [1], "names": None}
    for k in ("timestamp",):
        out[k] = {"dtype": "float32", "shape": [1], "names": None}
    for k in ("frame_index", "episode_index", "index", "task_index"):
        out[k] = {"dtype": "int64", "shape": [1], "names": None}
    return out


def episode_columns(ep: Episode, episode_index: int, start_index: int, reward: str) -> Dict[str, np.ndarray]:
    """One episode's rows as column arrays (pure: no I/O)."""
    n = ep.num_steps
    src = dict(ep.steps)
    src.update(episode_series(ep))
    cols = {}
    for key, field_name, cut, names in _VECTORS:
        if field_name in src:
            v = np.asarray(src[field_name], dtype=np.float32).reshape(n, -1)[:, cut]
        else:
            v = np.full((n, len(names)), np.nan, dtype=np.float32)
        if v.shape[1] != len(names):
            raise ValueError("%s: field %r has %d columns, expected %d" % (ep.name, field_name, v.shape[1], len(names)))
        cols[key] = v
    cols["next.reward"] = np.asarray(compute_reward(reward, ep.steps, dt=1.0 / ep.rate_hz), dtype=np.float32)
    last = np.arange(n) == n - 1
    cols["next.done"] = last & ep.terminal
    cols["next.truncated"] = last & (not ep.terminal)
    cols["frame_index"] = np.arange(n, dtype=np.int64)
    cols["timestamp"] = (cols["frame_index"] / ep.rate_hz).astype(np.float32)
    cols["episode_index"] = np.full(n, episode_index, dtype=np.int64)
    cols["index"] = start_index + cols["frame_index"]
    cols["task_index"] = np.zeros(n, dtype=np.int64)
    return cols


def _stats(x: np.ndarray) -> Dict[str, Any]:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return {"min": np.nanmin(x, 0).tolist(), "max": np.nanmax(x, 0).tolist(), "mean": np.nanmean(x, 0).tolist(),
            "std": np.nanstd(x, 0).tolist(), "count": [int(len(x))]}


def export_lerobot(episodes: Iterable[Episode], out_dir: str, repo_id: str = "go1o4/mattress",
                   reward: str = "logged", task: str = "walk following the velocity command",
                   robot_type: str = "unitree_go1") -> Dict[str, Any]:
    """Write the LeRobot v3.0 folder ``out_dir`` (must not exist) from episode logs at their 50 Hz rate."""
    try:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ValueError("the LeRobot export needs pyarrow and pandas (pip install -e '.[loaders]'): %s" % e)
    if os.path.exists(out_dir):
        raise ValueError("%s already exists: the LeRobot export writes a new folder" % out_dir)
    parts: List[Dict[str, np.ndarray]] = []
    rows, total = [], 0
    fps = None
    for ep in episodes:
        name = reward if reward != "logged" or "reward" in ep.steps else "uni_o4_world"
        if ep.num_steps == 0:
            continue
        if fps is None:
            fps = int(round(ep.rate_hz))
        elif int(round(ep.rate_hz)) != fps:
            raise ValueError("%s: rate %.1f Hz differs from %d Hz of the first episode" % (ep.name, ep.rate_hz, fps))
        cols = episode_columns(ep, len(parts), total, name)
        parts.append(cols)
        rows.append({"episode_index": len(parts) - 1, "tasks": [task], "length": ep.num_steps,
                     "data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": total,
                     "dataset_to_index": total + ep.num_steps, "meta/episodes/chunk_index": 0,
                     "meta/episodes/file_index": 0, "go1o4_episode": ep.name, "go1o4_end": ep.reason})
        total += ep.num_steps
    if not parts:
        raise ValueError("no episode with steps to export")
    feats = features()
    table = {}
    for key, ft in feats.items():
        v = np.concatenate([p[key] for p in parts])
        if ft["shape"] == [1]:
            table[key] = pa.array(v.reshape(-1))
        else:
            table[key] = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), ft["shape"][0])
    data_path = os.path.join(out_dir, DATA_PATH.format(chunk_index=0, file_index=0))
    os.makedirs(os.path.dirname(data_path))
    pq.write_table(pa.table(table), data_path, compression="snappy")
    os.makedirs(os.path.join(out_dir, os.path.dirname(EPISODES_PATH)))
    pq.write_table(pa.Table.from_pylist(rows), os.path.join(out_dir, EPISODES_PATH))
    pd.DataFrame({"task_index": [0]}, index=[task]).to_parquet(os.path.join(out_dir, "meta", "tasks.parquet"))
    stats = {k: _stats(np.concatenate([p[k] for p in parts])) for k in feats}
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "total_episodes": len(parts),
            "total_frames": total, "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200, "fps": fps, "splits": {"train": "0:%d" % len(parts)},
            "data_path": DATA_PATH, "video_path": None, "features": feats}
    for name, obj in (("info.json", info), ("stats.json", stats)):
        with open(os.path.join(out_dir, "meta", name), "w") as f:
            json.dump(obj, f, indent=2)
    return {"path": out_dir, "episodes": len(parts), "frames": total, "fps": fps,
            "load_with": "LeRobotDataset(%r, root=%r)" % (repo_id, os.path.abspath(out_dir))}
