"""Import the real Uni-O4 Go1 logs (shared/data/uni_o4_go1_mattress_2023_08, see its README).

Each ``.hdf5`` file (``actions`` (T, 12) f32, ``states`` (T, 76) f64) is one run and becomes one
:class:`~data.log_format.Episode` with every one of its T steps:

* fields: obs = states[:, :58]; q = dof_pos + default pose; dq = dof_vel / 0.05; command = the 15
  commands unscaled; q_des from the action (go1o4.contract); T265 columns 58-75; time = step / 50 Hz
  (the files hold no timestamps); reward recomputed (``data.rewards``, default ``uni_o4_world``).
* end: a fall (|roll| or |pitch| from the gravity vector > 1.6 rad) after the robot was upright is
  ``terminal`` and the episode is cut after that step; otherwise ``truncation`` (end of file).
  Most files recorded after a recalibration start with one stale row showing the robot still
  lying (tilted, zero joint velocity): it is kept (step counts are preserved) and counted in
  ``meta["stale_start_steps"]``; the dataset builder drops such rows by default.
"""
import datetime
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
from go1o4.data.h5file import open_h5
from go1o4.data.log_format import (
    END_TERMINAL,
    END_TRUNCATION,
    PROFILE_UNI_O4,
    RATE_HZ,
    STATUS_COMPLETE,
    Episode,
    LogReadError,
)
from go1o4.data.rewards import compute_reward

from go1o4 import contract as C

NUM_COLUMNS = 76
SOURCE = "Lei-Kun/Uni-O4 branch unio4-offline-robot dataset_0808 (commit a021fbe8), MIT licence"
TERRAIN = "latex_mattress"
_T265 = {
    "t265_position": slice(58, 61), "t265_velocity_world": slice(61, 64), "t265_acceleration": slice(64, 67),
    "t265_rpy": slice(67, 70), "t265_angular_velocity": slice(70, 73), "t265_angular_acceleration": slice(73, 76),
}


# ----------------------------------------------------------------------------- pure functions
def tilted(obs: np.ndarray) -> np.ndarray:
    """(T,) bool: |roll| or |pitch| from the projected gravity above FALL_ROLL_PITCH."""
    roll, pitch = C.gravity_to_roll_pitch(np.asarray(obs)[:, C.OBS_SLICES["projected_gravity"]])
    return (np.abs(roll) > C.FALL_ROLL_PITCH) | (np.abs(pitch) > C.FALL_ROLL_PITCH)


def stale_start_and_fall(obs: np.ndarray) -> Tuple[int, Optional[int]]:
    """(number of leading tilted steps before the robot is first upright, index of the first fall after)."""
    tilt = tilted(obs)
    upright = np.flatnonzero(~tilt)
    if len(upright) == 0:
        return len(tilt), None
    first_up = int(upright[0])
    falls = np.flatnonzero(tilt[first_up:])
    return first_up, (first_up + int(falls[0])) if len(falls) else None


def steps_from_states(states: np.ndarray, actions: np.ndarray) -> Dict[str, np.ndarray]:
    """Our per-step fields from the 76 state columns and the actions (vectorised)."""
    n = len(states)
    obs = states[:, :C.OBS_DIM]
    steps = {
        "time": np.arange(n, dtype=np.float64) * C.POLICY_DT,
        "tick": np.arange(n, dtype=np.int64),
        "obs": obs.astype(np.float32),
        "action": actions.astype(np.float32),
        "q": (obs[:, C.OBS_SLICES["dof_pos"]] + C.DEFAULT_Q).astype(np.float32),
        "dq": (obs[:, C.OBS_SLICES["dof_vel"]] / C.OBS_BLOCKS[3].scale).astype(np.float32),
        "q_des": C.action_to_q_des(actions).astype(np.float32),
        "command": (obs[:, C.OBS_SLICES["commands"]] / C.COMMAND_SCALES).astype(np.float32),
    }
    for name, cols in _T265.items():
        steps[name] = states[:, cols].astype(np.float32)
    return steps


# ----------------------------------------------------------------------------- file I/O
def read_raw(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """(states (T, 76) f64, actions (T, 12) f32) with precise errors for anything else."""
    f = open_h5(path)
    try:
        keys = sorted(f.keys())
        for key, width in (("states", NUM_COLUMNS), ("actions", C.NUM_ACTIONS)):
            if key not in f:
                raise LogReadError(path, "not a Uni-O4 log: dataset %r missing (found: %s)" % (key, ", ".join(keys) or "none"))
            shape = f[key].shape
            if len(shape) != 2 or shape[1] != width:
                raise LogReadError(path, "dataset %r has shape %s, expected (T, %d)" % (key, shape, width))
        states, actions = f["states"][()], f["actions"][()]
    except LogReadError:
        raise
    except Exception as e:  # noqa: BLE001 - damaged content: name the file
        raise LogReadError(path, "damaged Uni-O4 log: %s: %s" % (type(e).__name__, str(e).splitlines()[-1][:200]))
    finally:
        f.close()
    if len(states) != len(actions):
        raise LogReadError(path, "states has %d rows but actions has %d" % (len(states), len(actions)))
    if len(states) == 0:
        raise LogReadError(path, "no steps")
    return np.asarray(states, dtype=np.float64), np.asarray(actions, dtype=np.float32)


def session_meta(folder: str) -> Dict[str, Any]:
    """Session metadata for a source session folder (``YYYYMMDD-HHMMSS``)."""
    from go1o4.policy_contract import runtime_contract

    sid = os.path.basename(os.path.normpath(folder))
    try:
        start = datetime.datetime.strptime(sid, "%Y%m%d-%H%M%S").isoformat()
    except ValueError:
        start = None
    return {"session_id": sid, "start_time": start, "terrain": TERRAIN, "source": SOURCE,
            "policy_hash": None, "policy": "walk-these-ways style policy pretrained in simulation (Uni-O4 authors)",
            "operator_note": "imported real log; no timestamps (time = step / 50 Hz)", "config": None,
            "contract": runtime_contract(), "profile": PROFILE_UNI_O4}


def load_uni_o4_file(path: str, reward: str = "uni_o4_world", session: Optional[Dict[str, Any]] = None,
                     name: str = "") -> Episode:
    """One real log file -> Episode (fall = terminal, cut after the fall step; else truncation)."""
    states, actions = read_raw(path)
    if not (np.all(np.isfinite(states)) and np.all(np.isfinite(actions))):
        raise LogReadError(path, "NaN/inf in the states or actions")
    n_file = len(states)
    stale, fall = stale_start_and_fall(states[:, :C.OBS_DIM])
    n = n_file if fall is None else fall + 1
    steps = steps_from_states(states[:n], actions[:n])
    steps["reward"] = compute_reward(reward, steps)
    folder = os.path.dirname(os.path.abspath(path))
    meta = {"source_file": os.path.join(os.path.basename(folder), os.path.basename(path)),
            "steps_in_file": n_file, "stale_start_steps": min(stale, n), "cut_after_fall": n_file - n,
            "reward_name": reward, "time_synthesized": True, "terrain": TERRAIN}
    return Episode(steps=steps, end=END_TERMINAL if fall is not None else END_TRUNCATION,
                   reason="fall" if fall is not None else "end_of_file", meta=meta,
                   session=session if session is not None else session_meta(folder), status=STATUS_COMPLETE,
                   name=name or "%s/%s" % (os.path.basename(folder), os.path.splitext(os.path.basename(path))[0]),
                   source=path, profile=PROFILE_UNI_O4, rate_hz=RATE_HZ)


def find_uni_o4_files(root: str) -> List[str]:
    """Every ``.hdf5`` under ``root``, sorted by session folder then file name."""
    out = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        out.extend(os.path.join(folder, f) for f in sorted(files) if f.endswith(".hdf5") and not f.startswith("."))
    return out


def iter_uni_o4_episodes(root: str, reward: str = "uni_o4_world") -> Iterator[Episode]:
    for path in find_uni_o4_files(root):
        yield load_uni_o4_file(path, reward=reward)


def import_uni_o4(src_root: str, dst_root: str, reward: str = "uni_o4_world", progress: bool = True,
                  compression: int = 4) -> Dict[str, Any]:
    """Write every real log as our format: one session per source folder, one episode per file.

    Unreadable source files are skipped and listed in the returned summary (nothing else is lost).
    """
    from go1o4.data.writer import SessionWriter
    from tqdm import tqdm

    files = find_uni_o4_files(src_root)
    if not files:
        raise LogReadError(src_root, "no Uni-O4 .hdf5 files found")
    summary: Dict[str, Any] = {"sessions": 0, "episodes": 0, "steps": 0, "falls": 0, "skipped": []}
    writers: Dict[str, Any] = {}
    for path in tqdm(files, desc="import", unit="file", disable=not progress):
        folder = os.path.dirname(os.path.abspath(path))
        try:
            ep = load_uni_o4_file(path, reward=reward)
        except LogReadError as e:
            summary["skipped"].append(str(e))
            continue
        if folder not in writers:
            writers[folder] = SessionWriter(dst_root, session_meta(folder), session_id=os.path.basename(folder),
                                            profile=PROFILE_UNI_O4, fsync=False, compression=compression,
                                            flush_every_steps=4096)
            summary["sessions"] += 1
        w = writers[folder].start_episode(ep.meta)
        w.append_many(ep.steps)
        w.close(ep.end, ep.reason)
        summary["episodes"] += 1
        summary["steps"] += ep.num_steps
        summary["falls"] += int(ep.terminal)
    return summary
