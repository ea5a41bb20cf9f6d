"""Derived per-step series of an episode for viewers and exports (pure: no I/O, no plotting).

Falls back to what an episode has: the logged command or the one inside the policy observation; the T265 body
velocity or the world velocity rotated into the trunk (:func:`go1o4.data.rewards.body_velocities`); roll/pitch from
the IMU, else from the T265, else from the projected gravity ``g_b = (sin p, -cos p sin r, -cos p cos r)``.
"""
from typing import Dict, List, Tuple

import numpy as np
from go1o4.data.log_format import SAFETY_STATE_NAMES, Episode
from go1o4.data.rewards import RewardInputError, body_velocities

from go1o4 import contract as C


def roll_pitch_from_gravity(g: np.ndarray) -> np.ndarray:
    """(T, 2) roll, pitch (rad) from the projected gravity (T, 3) (ZYX Euler angles)."""
    g = np.asarray(g, dtype=np.float64)
    return np.stack([np.arctan2(-g[:, 1], -g[:, 2]), np.arcsin(np.clip(g[:, 0], -1.0, 1.0))], axis=1)


def episode_series(ep: Episode) -> Dict[str, np.ndarray]:
    """``t`` (s from the start), ``cmd`` (vx, vy, yaw rate), ``v_body``, ``w_body``, ``roll_pitch`` (T, 2)."""
    n, s = ep.num_steps, ep.steps
    t = np.asarray(s["time"], dtype=np.float64) if "time" in s else np.arange(n) / ep.rate_hz
    t = t - (t[0] if n else 0.0)
    if "command" in s:
        cmd = np.asarray(s["command"], dtype=np.float64)[:, :3]
    else:
        cmd = np.asarray(s["obs"], dtype=np.float64)[:, C.OBS_SLICES["commands"]][:, :3] / C.COMMAND_SCALES[:3]
    try:
        v, w = body_velocities(s)
    except RewardInputError:
        nan = np.full((n, 3), np.nan)
        v = np.asarray(s.get("t265_velocity_body", nan), dtype=np.float64)
        w = np.asarray(s.get("imu_gyro", nan), dtype=np.float64)
    if "imu_rpy" in s:
        rp = np.asarray(s["imu_rpy"], dtype=np.float64)[:, :2]
    elif "t265_rpy" in s:
        rp = np.asarray(s["t265_rpy"], dtype=np.float64)[:, :2]
    else:
        rp = roll_pitch_from_gravity(np.asarray(s["obs"])[:, C.OBS_SLICES["projected_gravity"]])
    return {"t": t, "cmd": cmd, "v_body": np.asarray(v, dtype=np.float64), "w_body": np.asarray(w, dtype=np.float64),
            "roll_pitch": rp}


def safety_name(code: int) -> str:
    return SAFETY_STATE_NAMES.get(int(code), "state %d" % int(code))


def safety_events(states: np.ndarray) -> List[Tuple[int, str]]:
    """(step, "old -> new") at every change of the logged safety state, the first state at step 0."""
    s = np.asarray(states).astype(np.int64)
    if len(s) == 0:
        return []
    out = [(0, safety_name(s[0]))]
    for i in np.flatnonzero(np.diff(s) != 0) + 1:
        out.append((int(i), "%s -> %s" % (safety_name(s[i - 1]), safety_name(s[i]))))
    return out
