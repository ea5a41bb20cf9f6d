"""Rewards recomputed from logged steps, chosen by name (``compute_reward("uni_o4_world", steps)``).

The Uni-O4 real-robot reward (paper A.4.2, Table 3; shared data README):

    r = (0.8 exp(-|c_xy - v_xy|^2 / 0.25) + 0.7 exp(-(c_yaw - w_z)^2 / 0.25)) * exp(neg) / 10
    neg = -0.02 v_z^2 - 0.001 |w_xy|^2 - 5e-5 |a_t|^2 - 2.5e-7 |ddq|^2 - 0.01 |a_t - a_t-1|^2
          - 1e-4 |dq|^2 - 0.1 (|a_t - a_t-1|^2 + |a_t - 2 a_t-1 + a_t-2|^2)

Conventions (all per episode, vectorised):
* ``c`` = the command as the policy saw it (obs columns 3-5: vx, vy x2.0, yaw x0.25), as the paper
  did; ``uni_o4_body_si`` uses the physical command (m/s, rad/s) instead.
* ``dq`` in rad/s (the observation's x0.05 scale undone); ``ddq = (dq_t - dq_t-1) / dt``, dt = 1/50 s.
  The public Uni-O4 code used the scaled observation values for both terms (400x smaller).
* ``a_t-1`` is the previous action as logged in the observation (obs columns 42-53, equal to the
  previous step's action on every real log); ``a_t-2`` is the one logged a step earlier, so the
  second-order smoothness term is 0 at an episode's first step, and so is ddq (no dq_t-1).
* ``uni_o4_world``: T265 velocity (x fwd-at-start, y left, z up) and angular velocity as logged,
  i.e. world frame: exactly what the paper computed. ``uni_o4_body``: both rotated into the trunk
  frame, ``v_b = R_mount . R(rpy)^T . v_w`` with R(rpy) = Rz(yaw) Ry(pitch) Rx(roll) from the T265
  rpy. Assumptions: the T265 (after the (-z, -x, y) axis remap) is mounted level and facing
  forward, so R_mount = I (its roll/pitch match the IMU's, correlation 0.99, slope 0.99 on the
  real logs); the lever-arm term w x r of the camera offset is neglected. Body-frame velocity
  tracks the command far better on the real logs (corr(v_x, c_x) 0.22 world -> 0.47 body).
"""
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from go1o4 import contract as C
from go1o4.geometry import rpy_to_matrix

Steps = Dict[str, np.ndarray]
RewardFn = Callable[[Steps, float], np.ndarray]

UNI_O4_WEIGHTS = {
    "lin_vel": 0.8, "ang_vel": 0.7, "sigma": 0.25, "scale": 0.1,
    "lin_vel_z": 0.02, "ang_vel_xy": 1e-3, "action": 5e-5, "dof_acc": 2.5e-7, "action_rate": 0.01,
    "dof_vel": 1e-4, "smoothness": 0.1,
}
#: Rotation from the (remapped) T265 frame to the trunk frame. Identity: see the module docstring.
MOUNT_ROTATION = np.eye(3)
_CMD = C.OBS_SLICES["commands"]
_DOF_VEL = C.OBS_SLICES["dof_vel"]
_LAST_ACTION = C.OBS_SLICES["last_action"]


class RewardInputError(ValueError):
    """The steps lack a field the chosen reward needs."""


# ----------------------------------------------------------------------------- pure math
def world_to_body(v_world: np.ndarray, rpy: np.ndarray, mount_rotation: np.ndarray = MOUNT_ROTATION) -> np.ndarray:
    """v_body = R_mount . R(rpy)^T . v_world, batched over leading axes."""
    r = rpy_to_matrix(rpy)
    v_cam = np.einsum("...ji,...j->...i", r, np.asarray(v_world, dtype=np.float64))
    return np.einsum("ij,...j->...i", np.asarray(mount_rotation, dtype=np.float64), v_cam)


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted k steps later along axis 0; the first k rows copy x (so differences there are 0)."""
    out = np.empty_like(x)
    out[k:] = x[:-k] if k else x
    out[:k] = x[:k]
    return out


def uni_o4_terms(cmd: np.ndarray, v: np.ndarray, w: np.ndarray, action: np.ndarray, dq: np.ndarray,
                 prev_action: Optional[np.ndarray] = None, dt: float = C.POLICY_DT,
                 weights: Optional[Dict[str, float]] = None) -> Dict[str, np.ndarray]:
    """Every term of the Uni-O4 reward, (T,) each, plus ``reward``. Inputs (T, 3|12), float.

    ``prev_action`` (T, 12) is a_t-1 (default: the previous row of ``action``, a_-1 = a_0).
    """
    k = dict(UNI_O4_WEIGHTS, **(weights or {}))
    cmd, v, w = (np.asarray(x, dtype=np.float64) for x in (cmd, v, w))
    a, dq = np.asarray(action, dtype=np.float64), np.asarray(dq, dtype=np.float64)
    a1 = _lag(a, 1) if prev_action is None else np.asarray(prev_action, dtype=np.float64)
    da = a - a1
    d2a = a - 2.0 * a1 + _lag(a1, 1)
    d2a[:1] = 0.0  # a_-2 unknown
    ddq = (dq - _lag(dq, 1)) / dt
    t = {
        "tracking_lin_vel": np.exp(-np.sum((cmd[:, :2] - v[:, :2]) ** 2, axis=1) / k["sigma"]),
        "tracking_ang_vel": np.exp(-((cmd[:, 2] - w[:, 2]) ** 2) / k["sigma"]),
        "lin_vel_z": v[:, 2] ** 2,
        "ang_vel_xy": np.sum(w[:, :2] ** 2, axis=1),
        "action": np.sum(a ** 2, axis=1),
        "dof_acc": np.sum(ddq ** 2, axis=1),
        "action_rate": np.sum(da ** 2, axis=1),
        "dof_vel": np.sum(dq ** 2, axis=1),
        "smoothness_1": np.sum(da ** 2, axis=1),
        "smoothness_2": np.sum(d2a ** 2, axis=1),
    }
    positive = k["lin_vel"] * t["tracking_lin_vel"] + k["ang_vel"] * t["tracking_ang_vel"]
    negative = -(k["lin_vel_z"] * t["lin_vel_z"] + k["ang_vel_xy"] * t["ang_vel_xy"] + k["action"] * t["action"]
                 + k["dof_acc"] * t["dof_acc"] + k["action_rate"] * t["action_rate"] + k["dof_vel"] * t["dof_vel"]
                 + k["smoothness"] * (t["smoothness_1"] + t["smoothness_2"]))
    t["positive"], t["negative"] = positive, negative
    t["reward"] = positive * np.exp(negative) * k["scale"]
    return t


# ----------------------------------------------------------------------------- inputs from logged steps
def _need(steps: Steps, name: str, reward: str) -> np.ndarray:
    if name not in steps:
        raise RewardInputError("reward %r needs field %r, which the episode lacks (has: %s)"
                               % (reward, name, ", ".join(sorted(steps))))
    return np.asarray(steps[name], dtype=np.float64)


def _common(steps: Steps, reward: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(obs-scaled command (T,3), action (T,12), logged previous action (T,12), dq in rad/s (T,12))."""
    obs = _need(steps, "obs", reward)
    action = _need(steps, "action", reward)
    dq = np.asarray(steps["dq"], dtype=np.float64) if "dq" in steps else obs[:, _DOF_VEL] / C.OBS_BLOCKS[3].scale
    return obs[:, _CMD][:, :3], action, obs[:, _LAST_ACTION], dq


def body_velocities(steps: Steps, reward: str = "uni_o4_body") -> Tuple[np.ndarray, np.ndarray]:
    """T265 linear and angular velocity in the trunk frame (logged body velocity used when present)."""
    rpy = _need(steps, "t265_rpy", reward)
    w_b = world_to_body(_need(steps, "t265_angular_velocity", reward), rpy)
    if "t265_velocity_body" in steps:
        return np.asarray(steps["t265_velocity_body"], dtype=np.float64), w_b
    return world_to_body(_need(steps, "t265_velocity_world", reward), rpy), w_b


# ----------------------------------------------------------------------------- registry
REWARDS: Dict[str, Tuple[RewardFn, str]] = {}


def register_reward(name: str, doc: str) -> Callable[[RewardFn], RewardFn]:
    def deco(fn: RewardFn) -> RewardFn:
        REWARDS[name] = (fn, doc)
        return fn
    return deco


def reward_names() -> List[str]:
    return sorted(REWARDS)


def compute_reward(name: str, steps: Steps, dt: float = C.POLICY_DT) -> np.ndarray:
    """Reward (T,) float32 of every step of one episode."""
    if name not in REWARDS:
        raise ValueError("unknown reward %r; choose from %s" % (name, ", ".join(reward_names())))
    r = REWARDS[name][0](steps, dt)
    return np.asarray(r, dtype=np.float32)


@register_reward("uni_o4_world", "Uni-O4 paper reward, world-frame T265 velocity, obs-scaled command (as published)")
def _uni_o4_world(steps: Steps, dt: float) -> np.ndarray:
    cmd, a, a1, dq = _common(steps, "uni_o4_world")
    v = _need(steps, "t265_velocity_world", "uni_o4_world")
    w = _need(steps, "t265_angular_velocity", "uni_o4_world")
    return uni_o4_terms(cmd, v, w, a, dq, a1, dt)["reward"]


@register_reward("uni_o4_body", "Uni-O4 reward with T265 velocities rotated into the trunk frame")
def _uni_o4_body(steps: Steps, dt: float) -> np.ndarray:
    cmd, a, a1, dq = _common(steps, "uni_o4_body")
    v, w = body_velocities(steps, "uni_o4_body")
    return uni_o4_terms(cmd, v, w, a, dq, a1, dt)["reward"]


@register_reward("uni_o4_body_si", "uni_o4_body with the physical command (m/s, rad/s) instead of the obs-scaled one")
def _uni_o4_body_si(steps: Steps, dt: float) -> np.ndarray:
    cmd, a, a1, dq = _common(steps, "uni_o4_body_si")
    v, w = body_velocities(steps, "uni_o4_body_si")
    return uni_o4_terms(cmd / C.COMMAND_SCALES[:3], v, w, a, dq, a1, dt)["reward"]


@register_reward("logged", "the reward field as logged by the runtime")
def _logged(steps: Steps, dt: float) -> np.ndarray:
    return _need(steps, "reward", "logged")
