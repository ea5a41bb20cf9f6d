"""The Go1 contract: joint orders, default pose, limits, gains, action mapping, observation layout.

Defined once here and imported by the simulator, the runtime, the datasets and the trainers.
Every array in this module is in **simulation order** (FL, FR, RL, RR x hip, thigh, calf) unless
its name says ``sdk``. The SDK (and the robot's wire protocol) use FR, FL, RR, RL.

Figures: ``shared/REFERENCE.md`` section 2 (unitree_legged_sdk 3.8 go1_const.h, walk-these-ways).
Pure numpy, Python 3.8 syntax: the robot's onboard computer imports this.
"""
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np


# ----------------------------------------------------------------------------- the robot as a value
@dataclass(frozen=True, eq=False)
class RobotSpec:
    """A quadruped as every stage sees it: name, joint orders, pose, limits, gains, action mapping, timing.

    Arrays in simulation order unless named ``sdk``. The simulator model, the runtime, the policy contract and
    the datasets take one; adding a robot (e.g. a Go2) is a new spec, a link and a model (docs/extending.md)."""

    name: str  # the policy contract's ``robot``
    legs_sim: Tuple[str, ...]
    legs_sdk: Tuple[str, ...]
    sdk_to_sim: np.ndarray  # x_sim = x_sdk[sdk_to_sim] (joints)
    feet_sdk_to_sim: np.ndarray  # f_sim = f_sdk[feet_sdk_to_sim]
    default_q: np.ndarray  # standing pose (rad)
    lying_q: np.ndarray  # pose when powered in damping (legs folded)
    q_min: np.ndarray
    q_max: np.ndarray
    torque_limit: np.ndarray  # N m
    velocity_limit: np.ndarray  # rad/s
    kp: float  # N m / rad
    kd: float  # N m s / rad
    damping_kd: float  # Kd of the damping fallback
    hip_ids: np.ndarray
    action_scale: float
    hip_scale_reduction: float
    clip_actions: float
    sim_dt: float  # physics step of the pretraining simulator
    decimation: int
    link_dt: float  # low-level link period
    episode_steps: int
    joint_kinds: Tuple[str, ...] = ("hip", "thigh", "calf")

    @property
    def num_joints(self) -> int:
        return len(self.legs_sim) * len(self.joint_kinds)

    @property
    def joint_names_sim(self) -> Tuple[str, ...]:
        return tuple("%s_%s" % (leg, kind) for leg in self.legs_sim for kind in self.joint_kinds)

    @property
    def joint_names_sdk(self) -> Tuple[str, ...]:
        return tuple("%s_%s" % (leg, kind) for leg in self.legs_sdk for kind in self.joint_kinds)

    @property
    def policy_dt(self) -> float:
        return self.sim_dt * self.decimation


_HIP_RANGE = (-1.047, 1.047)
_THIGH_RANGE = (-0.663, 2.966)
_CALF_RANGE = (-2.721, -0.837)

#: The Unitree Go1 (shared/REFERENCE.md section 2: unitree_legged_sdk 3.8 go1_const.h, walk-these-ways).
GO1 = RobotSpec(
    name="unitree_go1",
    legs_sim=("FL", "FR", "RL", "RR"),
    legs_sdk=("FR", "FL", "RR", "RL"),
    # The permutation swaps left/right, so it is its own inverse.
    sdk_to_sim=np.array([3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8], dtype=np.int64),
    feet_sdk_to_sim=np.array([1, 0, 3, 2], dtype=np.int64),
    # hips +-0.1, thighs 0.8 front / 1.0 rear, calves -1.5
    default_q=np.array([0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5]),
    lying_q=np.array([0.0, 1.1, -2.7] * 4),
    q_min=np.array([_HIP_RANGE[0], _THIGH_RANGE[0], _CALF_RANGE[0]] * 4),
    q_max=np.array([_HIP_RANGE[1], _THIGH_RANGE[1], _CALF_RANGE[1]] * 4),
    torque_limit=np.array([23.7, 23.7, 35.55] * 4),
    velocity_limit=np.array([30.1, 30.1, 20.06] * 4),  # go1_const.h / Menagerie
    kp=20.0,
    kd=0.5,
    damping_kd=2.0,  # motor mode servo, Kp 0, dq_des 0
    hip_ids=np.array([0, 3, 6, 9], dtype=np.int64),  # same indices in both orders
    action_scale=0.25,
    hip_scale_reduction=0.5,
    clip_actions=10.0,
    sim_dt=0.005,
    decimation=4,
    link_dt=0.002,  # SDK link, 500 Hz
    episode_steps=1000,  # 20 s
)

#: Robots by the name their policy contracts and datasets carry.
ROBOTS = {GO1.name: GO1}

# ----------------------------------------------------------------------------- joint orders (GO1's, by name)
LEGS_SIM = GO1.legs_sim
LEGS_SDK = GO1.legs_sdk
JOINT_KINDS = GO1.joint_kinds
JOINT_NAMES_SIM = GO1.joint_names_sim
JOINT_NAMES_SDK = GO1.joint_names_sdk
NUM_JOINTS = GO1.num_joints
NUM_FEET = len(GO1.legs_sim)

#: ``x_sim = x_sdk[SDK_TO_SIM]``. The permutation swaps left/right, so it is its own inverse.
SDK_TO_SIM = GO1.sdk_to_sim
#: ``x_sdk = x_sim[SIM_TO_SDK]``.
SIM_TO_SDK = np.argsort(SDK_TO_SIM)
#: Feet (foot forces, contacts): ``f_sim = f_sdk[FEET_SDK_TO_SIM]``.
FEET_SDK_TO_SIM = GO1.feet_sdk_to_sim
FEET_SIM_TO_SDK = np.argsort(FEET_SDK_TO_SIM)

HIP_IDS = GO1.hip_ids  # same indices in both orders


def sdk_to_sim(x_sdk):
    """Reorder the last axis (12 joints) from SDK order to simulation order."""
    return np.asarray(x_sdk)[..., SDK_TO_SIM]


def sim_to_sdk(x_sim):
    """Reorder the last axis (12 joints) from simulation order to SDK order."""
    return np.asarray(x_sim)[..., SIM_TO_SDK]


# ----------------------------------------------------------------------------- pose, limits, gains
#: Default standing pose (rad), sim order: hips +-0.1, thighs 0.8 front / 1.0 rear, calves -1.5.
DEFAULT_Q = GO1.default_q
#: Pose the robot lies in when powered in damping mode (legs folded, belly on the ground).
LYING_Q = GO1.lying_q
Q_MIN = GO1.q_min
Q_MAX = GO1.q_max
TORQUE_LIMIT = GO1.torque_limit  # N m
VELOCITY_LIMIT = GO1.velocity_limit  # rad/s

KP = GO1.kp  # N m / rad
KD = GO1.kd  # N m s / rad

# SDK motor modes and "disable this term" sentinels (unitree_legged_sdk comm.h).
MODE_SERVO = 0x0A
MODE_DAMPING = 0x00
POS_STOP_F = 2.146e9
VEL_STOP_F = 16000.0
DAMPING_KD = GO1.damping_kd  # Kd used for the damping fallback (motor mode servo, Kp 0, dq_des 0)

# ----------------------------------------------------------------------------- action mapping
ACTION_SCALE = GO1.action_scale
HIP_SCALE_REDUCTION = GO1.hip_scale_reduction
CLIP_ACTIONS = GO1.clip_actions
NUM_ACTIONS = GO1.num_joints

# ----------------------------------------------------------------------------- timing
SIM_DT = GO1.sim_dt  # physics step of the pretraining simulator
DECIMATION = GO1.decimation
POLICY_DT = GO1.policy_dt  # 0.02 s -> 50 Hz
LINK_DT = GO1.link_dt  # SDK link, 500 Hz
EPISODE_STEPS = GO1.episode_steps  # 20 s


def action_to_q_des(action, default_q=DEFAULT_Q):
    """Map a raw policy action (..., 12) to joint targets q_des (..., 12), sim order.

    q_des = q_default + 0.25 * clip(a, +-10), with the hip entries scaled by a further 0.5
    (walk-these-ways ``_compute_torques``). NaN/inf are *not* handled here: the runtime's safety
    layer refuses such actions before they get this far.
    """
    a = np.clip(np.asarray(action, dtype=np.float64), -CLIP_ACTIONS, CLIP_ACTIONS) * ACTION_SCALE
    a[..., HIP_IDS] *= HIP_SCALE_REDUCTION
    return a + default_q


def clip12(x, lo, hi):
    """np.clip(x, lo, hi) for the 12-joint arrays of the 500 Hz path, at a third of np.clip's call overhead.

    NaN stays NaN (callers that must refuse NaN check for it)."""
    return np.minimum(np.maximum(x, lo), hi)


def pd_torque(q_des, q, dq, kp=KP, kd=KD, dq_des=0.0, tau_ff=0.0):
    """Joint torque the Go1 motor applies: Kp (q_des - q) + Kd (dq_des - dq) + tau_ff, clipped to limits."""
    tau = kp * (q_des - q) + kd * (dq_des - dq) + tau_ff
    return clip12(tau, -TORQUE_LIMIT, TORQUE_LIMIT)


# ----------------------------------------------------------------------------- observation layout
class ObsBlock(NamedTuple):
    name: str
    size: int
    scale: float  # value stored = raw * scale (1 where the block has its own per-entry scales)


#: The walk-these-ways observation Uni-O4 used on the robot: 58 floats per step.
OBS_BLOCKS = (
    ObsBlock("projected_gravity", 3, 1.0),
    ObsBlock("commands", 15, 1.0),  # per-entry scales in COMMAND_SCALES
    ObsBlock("dof_pos", 12, 1.0),  # q - default_q
    ObsBlock("dof_vel", 12, 0.05),
    ObsBlock("last_action", 12, 1.0),  # previous raw action (clipped)
    ObsBlock("clock", 4, 1.0),  # sin(2 pi foot phase), FL FR RL RR
)
OBS_DIM = sum(b.size for b in OBS_BLOCKS)  # 58
HISTORY_LEN = 5
POLICY_INPUT_DIM = OBS_DIM * HISTORY_LEN  # 290, oldest step first, newest last


def _block_slices():
    out, start = {}, 0
    for b in OBS_BLOCKS:
        out[b.name] = slice(start, start + b.size)
        start += b.size
    return out


OBS_SLICES = _block_slices()

COMMAND_NAMES = (
    "lin_vel_x", "lin_vel_y", "ang_vel_yaw", "body_height", "gait_frequency", "gait_phase",
    "gait_offset", "gait_bound", "gait_duration", "footswing_height", "body_pitch", "body_roll",
    "stance_width", "stance_length", "aux_reward",
)
#: walk-these-ways obs_scales applied to the 15 commands.
COMMAND_SCALES = np.array([2.0, 2.0, 0.25, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.15, 0.3, 0.3, 1.0, 1.0, 1.0])
#: Gait commands (unscaled) as recorded in the mattress logs: trot at 3 Hz.
DEFAULT_GAIT = {
    "body_height": 0.0, "gait_frequency": 3.0, "gait_phase": 0.5, "gait_offset": 0.0,
    "gait_bound": 0.0, "gait_duration": 0.5, "footswing_height": 0.03, "body_pitch": 0.0,
    "body_roll": 0.0, "stance_width": 0.33, "stance_length": 0.40, "aux_reward": 0.0,
}


def command_vector(vx, vy, yaw_rate, gait=None):
    """The 15 unscaled commands: velocity command plus the gait parameters (default: trot)."""
    g = dict(DEFAULT_GAIT)
    if gait:
        unknown = set(gait) - set(g)
        if unknown:
            raise ValueError("unknown gait command(s): %s" % sorted(unknown))
        g.update(gait)
    return np.array([vx, vy, yaw_rate] + [g[n] for n in COMMAND_NAMES[3:]], dtype=np.float64)


# ----------------------------------------------------------------------------- builders
def quat_rotate_inverse(quat_wxyz, v):
    """Rotate vector(s) v from world into the body frame of quaternion(s) (w, x, y, z): R^T v."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w, xyz = q[..., :1], q[..., 1:]
    a = v * (2.0 * w ** 2 - 1.0)
    b = np.cross(xyz, v) * w * 2.0
    c = xyz * np.sum(xyz * v, axis=-1, keepdims=True) * 2.0
    return a - b + c


def projected_gravity(quat_wxyz):
    """Unit gravity expressed in the body frame: (0, 0, -1) when standing level."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm < 1e-6) or not np.all(np.isfinite(q)):
        raise ValueError("invalid IMU quaternion %r (zero norm or non-finite)" % (q.tolist(),))
    return quat_rotate_inverse(q / norm, np.broadcast_to([0.0, 0.0, -1.0], q.shape[:-1] + (3,)))


def foot_phases(gait_index, commands):
    """Foot phases (FL, FR, RL, RR) in [0, 1) from the gait clock and the gait commands.

    walk-these-ways ``_step_contact_targets``: FL = g + phase + offset + bound, FR = g + offset,
    RL = g + bound, RR = g + phase.
    """
    g = np.asarray(gait_index, dtype=np.float64)
    c = np.asarray(commands, dtype=np.float64)
    phase, offset, bound = c[..., 5], c[..., 6], c[..., 7]
    return np.remainder(np.stack([g + phase + offset + bound, g + offset, g + bound, g + phase], -1), 1.0)


def clock_inputs(gait_index, commands):
    return np.sin(2.0 * np.pi * foot_phases(gait_index, commands))


def advance_gait_index(gait_index, commands, dt=POLICY_DT):
    """One policy step of the gait clock: g <- (g + dt * frequency) mod 1."""
    return np.remainder(np.asarray(gait_index) + dt * np.asarray(commands)[..., 4], 1.0)


def build_observation(quat_wxyz, q, dq, commands, last_action, gait_index):
    """The 58-float observation of one policy step (batched over leading axes).

    Arguments are in **sim order** and unscaled: IMU quaternion (w, x, y, z), joint positions and
    velocities, the 15 raw commands, the previous raw action and the gait clock index.
    Runtime code reorders SDK arrays with :func:`sdk_to_sim` first.
    """
    q = np.asarray(q, dtype=np.float64)
    parts = [
        projected_gravity(quat_wxyz),
        np.asarray(commands, dtype=np.float64) * COMMAND_SCALES,
        q - DEFAULT_Q,
        np.asarray(dq, dtype=np.float64) * OBS_BLOCKS[3].scale,
        np.clip(np.asarray(last_action, dtype=np.float64), -CLIP_ACTIONS, CLIP_ACTIONS),
        clock_inputs(gait_index, commands),
    ]
    shape = np.broadcast_shapes(*[p.shape[:-1] for p in parts])
    return np.concatenate([np.broadcast_to(p, shape + p.shape[-1:]) for p in parts], axis=-1)


def stack_history(history: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate the last HISTORY_LEN observations, oldest first, into the 290 policy input."""
    if len(history) != HISTORY_LEN:
        raise ValueError("history needs %d observations, got %d" % (HISTORY_LEN, len(history)))
    return np.concatenate(list(history), axis=-1)


def push_history(history: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Shift a (..., HISTORY_LEN, OBS_DIM) history one step in place and append ``obs`` as the newest entry."""
    history[..., :-1, :] = history[..., 1:, :]
    history[..., -1, :] = obs
    return history


def fill_history(history: np.ndarray, idx, obs: np.ndarray) -> None:
    """A new episode starts with its history filled by its first observation (never the previous episode's)."""
    history[idx] = np.asarray(obs)[..., None, :]


def history_index(rows: np.ndarray, episode_start: np.ndarray, history: int = HISTORY_LEN) -> np.ndarray:
    """(len(rows), history) indices of the stacked observations of logged steps ``rows``, oldest first, clamped to
    each step's episode start (``episode_start[row]``): :func:`push_history` / :func:`fill_history` over a log."""
    lags = np.arange(history - 1, -1, -1)
    return np.maximum(rows[:, None] - lags[None, :], episode_start[rows][:, None])


def stack_logged_history(obs: np.ndarray, rows: np.ndarray, episode_start: np.ndarray,
                         history: int = HISTORY_LEN) -> np.ndarray:
    """(len(rows), history * obs_dim) float32 policy inputs of logged steps, all at once (datasets)."""
    idx = history_index(rows, episode_start, history)
    return obs[idx].reshape(len(rows), -1).astype(np.float32, copy=False)


class ObservationHistory:
    """Rolling 5-step history of one robot (the runtime). A new episode starts filled with its first observation.

    The same rule as :func:`push_history` / :func:`fill_history` (vectorised environments) and
    :func:`stack_logged_history` (datasets): one stacker, three call sites."""

    def __init__(self, length: int = HISTORY_LEN, obs_dim: int = OBS_DIM):
        self.length, self.obs_dim = length, obs_dim
        self._buf: Optional[np.ndarray] = None

    def reset(self, first_obs: np.ndarray) -> np.ndarray:
        first = np.asarray(first_obs, dtype=np.float64)
        self._buf = np.empty((self.length,) + first.shape, dtype=np.float64)
        fill_history(self._buf[None], 0, first[None])
        return self.stacked()

    def push(self, obs: np.ndarray) -> np.ndarray:
        if self._buf is None:
            return self.reset(obs)
        push_history(self._buf, np.asarray(obs, dtype=np.float64))
        return self.stacked()

    def stacked(self) -> np.ndarray:
        return self._buf.reshape(-1).copy()


def gravity_to_roll_pitch(gravity_body):
    """Roll and pitch (rad) from the projected gravity vector (works on logs without rpy)."""
    g = np.asarray(gravity_body, dtype=np.float64)
    roll = np.arctan2(-g[..., 1], -g[..., 2])
    pitch = np.arcsin(np.clip(g[..., 0], -1.0, 1.0))
    return roll, pitch


FALL_ROLL_PITCH = 1.6  # rad; |roll| or |pitch| above this is a fall (walk-these-ways)
