"""Reward terms and termination as pure functions on batched numpy arrays.

legged_gym rewards (REFERENCE.md section 4) plus the walk-these-ways gait terms that make the feet
follow the gait clock in the observation. Every term takes a :class:`RewardState` (arrays with a
leading env axis, all in **sim order**, velocities in the base frame) and the reward config, and
returns an (N,) array; :func:`compute_rewards` multiplies by scale * dt, sums, and clips the total
at 0 (legged_gym ``only_positive_rewards``). Shared by the MuJoCo env and the Isaac Gym backend.
"""
from typing import Dict, NamedTuple, Tuple

import numpy as np
from scipy.special import ndtr

from go1o4 import contract as C


class RewardState(NamedTuple):
    commands: np.ndarray  # (N, 15) raw commands
    base_lin_vel: np.ndarray  # (N, 3) base frame
    base_ang_vel: np.ndarray  # (N, 3) base frame
    projected_gravity: np.ndarray  # (N, 3)
    base_height: np.ndarray  # (N,) above the surface
    q: np.ndarray  # (N, 12)
    dq: np.ndarray  # (N, 12)
    last_dq: np.ndarray  # (N, 12)
    torques: np.ndarray  # (N, 12)
    actions: np.ndarray  # (N, 12) clipped raw actions
    last_actions: np.ndarray  # (N, 12)
    foot_forces: np.ndarray  # (N, 4) normal force per foot
    foot_vel: np.ndarray  # (N, 4, 3) world frame
    foot_height: np.ndarray  # (N, 4) above the surface
    first_contact: np.ndarray  # (N, 4) bool, touchdown this step
    air_time: np.ndarray  # (N, 4) air time accumulated before this touchdown (s)
    collisions: np.ndarray  # (N,) undesired (thigh/calf) contacts
    gait_index: np.ndarray  # (N,)
    dt: float


# ----------------------------------------------------------------------------- gait clock
def desired_contact_states(gait_index, commands, kappa: float = 0.07) -> np.ndarray:
    """Smoothed desired stance (1) / swing (0) per foot (walk-these-ways ``_step_contact_targets``).

    A foot is in stance while its phase is in [0, 0.5) (sin clock > 0), smoothed by a normal CDF of
    width ``kappa`` around the transitions.
    """
    p = C.foot_phases(gait_index, commands)

    def cdf(x):
        return ndtr(x / kappa)

    return cdf(p) * (1.0 - cdf(p - 0.5)) + cdf(p - 1.0) * (1.0 - cdf(p - 1.5))


def swing_height_target(gait_index, commands) -> np.ndarray:
    """Foot apex target during swing (walk-these-ways ``feet_clearance_cmd_linear``): 0 in stance."""
    p = C.foot_phases(gait_index, commands)
    swing = 1.0 - np.abs(1.0 - np.clip(p * 2.0 - 1.0, 0.0, 1.0) * 2.0)  # 0 -> 1 -> 0 over the swing half
    return commands[..., 9:10] * swing + 0.02 * (p >= 0.5)


# ----------------------------------------------------------------------------- legged_gym terms
def _tracking_lin_vel(s: RewardState, cfg) -> np.ndarray:
    err = np.sum((s.commands[:, :2] - s.base_lin_vel[:, :2]) ** 2, axis=1)
    return np.exp(-err / cfg.tracking_sigma)


def _tracking_ang_vel(s: RewardState, cfg) -> np.ndarray:
    return np.exp(-(s.commands[:, 2] - s.base_ang_vel[:, 2]) ** 2 / cfg.tracking_sigma)


def _lin_vel_z(s: RewardState, cfg) -> np.ndarray:
    return s.base_lin_vel[:, 2] ** 2


def _ang_vel_xy(s: RewardState, cfg) -> np.ndarray:
    return np.sum(s.base_ang_vel[:, :2] ** 2, axis=1)


def _orientation(s: RewardState, cfg) -> np.ndarray:
    return np.sum(s.projected_gravity[:, :2] ** 2, axis=1)


def _torques(s: RewardState, cfg) -> np.ndarray:
    return np.sum(s.torques ** 2, axis=1)


def _dof_acc(s: RewardState, cfg) -> np.ndarray:
    return np.sum(((s.dq - s.last_dq) / s.dt) ** 2, axis=1)


def _dof_pos_limits(s: RewardState, cfg) -> np.ndarray:
    mid, half = 0.5 * (C.Q_MAX + C.Q_MIN), 0.5 * (C.Q_MAX - C.Q_MIN) * cfg.soft_dof_pos_limit
    lo, hi = mid - half, mid + half
    return np.sum(np.clip(lo - s.q, 0.0, None) + np.clip(s.q - hi, 0.0, None), axis=1)


def _feet_air_time(s: RewardState, cfg) -> np.ndarray:
    moving = np.linalg.norm(s.commands[:, :2], axis=1) > 0.1
    return np.sum((s.air_time - cfg.air_time_target) * s.first_contact, axis=1) * moving


def _collision(s: RewardState, cfg) -> np.ndarray:
    return s.collisions.astype(np.float64)


def _action_rate(s: RewardState, cfg) -> np.ndarray:
    return np.sum((s.actions - s.last_actions) ** 2, axis=1)


def _base_height(s: RewardState, cfg) -> np.ndarray:
    return (s.base_height - cfg.base_height_target) ** 2


# ----------------------------------------------------------------------------- walk-these-ways gait terms
def _tracking_contacts_shaped_force(s: RewardState, cfg) -> np.ndarray:
    """Penalise foot force during desired swing (in [-1, 0]; positive scale)."""
    desired = desired_contact_states(s.gait_index, s.commands, cfg.kappa_gait_probs)
    return -np.mean((1.0 - desired) * (1.0 - np.exp(-s.foot_forces ** 2 / cfg.gait_force_sigma)), axis=1)


def _tracking_contacts_shaped_vel(s: RewardState, cfg) -> np.ndarray:
    """Penalise foot velocity during desired stance (in [-1, 0]; positive scale)."""
    desired = desired_contact_states(s.gait_index, s.commands, cfg.kappa_gait_probs)
    v2 = np.sum(s.foot_vel ** 2, axis=2)
    return -np.mean(desired * (1.0 - np.exp(-v2 / cfg.gait_vel_sigma)), axis=1)


def _feet_clearance(s: RewardState, cfg) -> np.ndarray:
    target = swing_height_target(s.gait_index, s.commands)
    desired = desired_contact_states(s.gait_index, s.commands, cfg.kappa_gait_probs)
    return np.sum((s.foot_height - target) ** 2 * (1.0 - desired), axis=1)


def _feet_slip(s: RewardState, cfg) -> np.ndarray:
    contact = s.foot_forces > cfg.contact_force_threshold
    return np.sum(contact * np.sum(s.foot_vel[:, :, :2] ** 2, axis=2), axis=1)


REWARD_FUNCTIONS = {
    "tracking_lin_vel": _tracking_lin_vel,
    "tracking_ang_vel": _tracking_ang_vel,
    "lin_vel_z": _lin_vel_z,
    "ang_vel_xy": _ang_vel_xy,
    "orientation": _orientation,
    "torques": _torques,
    "dof_acc": _dof_acc,
    "dof_pos_limits": _dof_pos_limits,
    "feet_air_time": _feet_air_time,
    "collision": _collision,
    "action_rate": _action_rate,
    "base_height": _base_height,
    "tracking_contacts_shaped_force": _tracking_contacts_shaped_force,
    "tracking_contacts_shaped_vel": _tracking_contacts_shaped_vel,
    "feet_clearance": _feet_clearance,
    "feet_slip": _feet_slip,
}


def combine_terms(terms: Dict[str, np.ndarray], mode: str, sigma_neg: float = 0.02) -> np.ndarray:
    """Total reward from the scaled terms.

    ``clip`` (legged_gym ``only_positive_rewards``): max(sum, 0). ``exp`` (walk-these-ways
    ``only_positive_rewards_ji22_style``): pos * exp(neg / sigma_neg) with pos/neg the sums of the
    positive/negative parts, which keeps a gradient from the penalties when they outweigh the
    tracking terms. ``sum``: plain sum.
    """
    vals = list(terms.values())
    if not vals:
        raise ValueError("no reward terms with a non-zero scale")
    if mode == "sum":
        return np.sum(vals, axis=0)
    if mode == "clip":
        return np.clip(np.sum(vals, axis=0), 0.0, None)
    if mode == "exp":
        pos = np.sum([np.clip(v, 0.0, None) for v in vals], axis=0)
        neg = np.sum([np.clip(v, None, 0.0) for v in vals], axis=0)
        return pos * np.exp(neg / sigma_neg)
    raise ValueError("reward mode must be clip, exp or sum, got %r" % (mode,))


def compute_rewards(s: RewardState, cfg) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """Total reward (N,) from the terms scale_k * dt * r_k(s) (:func:`combine_terms`), and the terms."""
    terms = {}
    for name, scale in cfg.scales.items():
        if scale == 0.0:
            continue
        terms[name] = REWARD_FUNCTIONS[name](s, cfg) * (scale * s.dt)
    return combine_terms(terms, cfg.mode, cfg.sigma_neg), terms


# ----------------------------------------------------------------------------- termination
def check_termination(projected_gravity, bad_contact, episode_step, episode_steps: int,
                      fall_roll_pitch: float = C.FALL_ROLL_PITCH) -> Tuple[np.ndarray, np.ndarray]:
    """(terminated, truncated): a fall (|roll| or |pitch| > limit, or trunk/hip touching the ground) ends
    the episode as terminal; reaching ``episode_steps`` without falling is a time-limit truncation."""
    roll, pitch = C.gravity_to_roll_pitch(projected_gravity)
    upside_down = np.asarray(projected_gravity)[..., 2] > 0.0
    fell = (np.abs(roll) > fall_roll_pitch) | (np.abs(pitch) > fall_roll_pitch) | upside_down
    terminated = fell | np.asarray(bad_contact, dtype=bool)
    truncated = (np.asarray(episode_step) >= episode_steps) & ~terminated
    return terminated, truncated
