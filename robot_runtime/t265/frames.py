"""Intel RealSense T265 frames and the conversion of a pose sample to trunk-frame velocities.

Pure numpy, no I/O. Conventions (REFERENCE.md section 3, librealsense ``rs2_pose``):

- T265 axes ("RUB"): X right, Y up, Z backward, both for the camera body and for the world
  frame (world Y against gravity, origin and yaw where tracking started).
- ``rotation`` is the quaternion (x, y, z, w) of R(pose): camera body frame -> world frame.
  ``velocity`` and ``angular_velocity`` are expressed in the world frame.
- Robot trunk axes ("FLU"): x forward, y left, z up. The fixed axis remap RUB -> FLU is
  ``(x, y, z) -> (-z, -x, y)`` (:data:`RUB_TO_FLU`): the remap the Uni-O4 logs applied to every
  T265 vector (states columns 58-75, data README) and to the quaternion before taking roll/pitch/yaw.

Trunk-frame velocity (the Uni-O4 logs skipped this and used the world-frame velocity)::

    v_body = R_mount . R(pose)^T . v_world - omega_body x r_mount,   R_mount = R_rpy(mount) . RUB_TO_FLU

where R_rpy(mount) is the camera's orientation on the trunk (roll, pitch, yaw of the camera's FLU
axes relative to the trunk; zero = facing forward, mounted level) and r_mount the camera's position
in the trunk frame (lever arm; zero disables the correction). Speeds are clipped to +-1.5 m/s (APRL).
Bad samples (NaN, zero quaternion) give ``ok=False`` and a reason, never an exception.
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

#: RUB (T265) -> FLU (trunk) axes: (x, y, z) -> (-z, -x, y). A proper rotation (det +1).
RUB_TO_FLU = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
#: APRL clips the T265 speed to this (m/s), per axis.
MAX_SPEED = 1.5

# Reasons (stable strings: the runtime logs them and cuts the episode).
T265_STALE = "t265_stale"
T265_NAN = "t265_nan"
T265_LOW_CONFIDENCE = "t265_low_confidence"
T265_BAD_QUATERNION = "t265_bad_quaternion"
T265_BAD_SAMPLE = "t265_bad_sample"
T265_FOREIGN = "t265_foreign"  # only another robot's / camera's samples arrive (t265.identity): refused
REASONS = (T265_STALE, T265_NAN, T265_LOW_CONFIDENCE, T265_BAD_QUATERNION, T265_BAD_SAMPLE, T265_FOREIGN)


class PoseSample(NamedTuple):
    """One ``rs2_pose`` in T265 (RUB) axes, quaternion (x, y, z, w)."""

    translation: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    rotation_xyzw: np.ndarray
    angular_velocity: np.ndarray
    angular_acceleration: np.ndarray
    tracker_confidence: int
    mapper_confidence: int


class BodyVelocity(NamedTuple):
    ok: bool
    reason: str  # "" when ok
    v_body: np.ndarray  # (3,) m/s trunk frame; NaN when not ok
    omega_body: np.ndarray  # (3,) rad/s trunk frame; NaN when not ok
    clipped: bool  # True if a speed component was clipped to +-MAX_SPEED


# ----------------------------------------------------------------------------- rotations
def remap_axes(v):
    """RUB -> FLU for vectors (..., 3): (x, y, z) -> (-z, -x, y), as the Uni-O4 logs stored them."""
    v = np.asarray(v, dtype=np.float64)
    return np.stack([-v[..., 2], -v[..., 0], v[..., 1]], axis=-1)


def remap_quat_xyzw(q):
    """The quaternion of RUB_TO_FLU . R . RUB_TO_FLU^T: (x, y, z, w) -> (-z, -x, y, w) (Uni-O4 ``flip``)."""
    q = np.asarray(q, dtype=np.float64)
    return np.stack([-q[..., 2], -q[..., 0], q[..., 1], q[..., 3]], axis=-1)


def quat_xyzw_to_matrix(q):
    """Rotation matrix (..., 3, 3) of a unit quaternion (..., 4) in (x, y, z, w) order."""
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def rpy_to_matrix(rpy):
    """R = Rz(yaw) Ry(pitch) Rx(roll) for (..., 3) roll, pitch, yaw (ZYX, as in the logs).

    Same as ``go1o4.geometry.rpy_to_matrix``, kept here on purpose: the T265 publisher process (this
    package, Python 3.8/3.10 with pyrealsense2) imports nothing of go1o4 (tests/test_t265_publisher.py).
    """
    rpy = np.asarray(rpy, dtype=np.float64)
    cr, sr = np.cos(rpy[..., 0]), np.sin(rpy[..., 0])
    cp, sp = np.cos(rpy[..., 1]), np.sin(rpy[..., 1])
    cy, sy = np.cos(rpy[..., 2]), np.sin(rpy[..., 2])
    rows = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def quat_xyzw_to_rpy(q):
    """Roll, pitch, yaw (ZYX) of quaternion(s) (x, y, z, w); pitch saturates at +-pi/2."""
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.stack([roll, pitch, yaw], axis=-1)


def remapped_rpy(q_xyzw):
    """Roll, pitch, yaw of the T265 pose in FLU axes: the Uni-O4 logs' columns 67-69."""
    return quat_xyzw_to_rpy(remap_quat_xyzw(q_xyzw))


def mount_matrix(mount_rpy: Sequence[float] = (0.0, 0.0, 0.0),
                 matrix: Optional[Sequence[Sequence[float]]] = None) -> np.ndarray:
    """R_mount: T265 camera (RUB) axes -> trunk (FLU) axes.

    ``mount_rpy`` is the camera's roll, pitch, yaw (rad, ZYX) on the trunk, zero = facing forward and
    level; ``matrix`` (3x3, FLU camera axes -> trunk, columns = camera x/y/z in trunk axes) replaces it.
    Raises ValueError (named field) if the matrix is not a rotation.
    """
    if matrix is not None:
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (3, 3) or not np.all(np.isfinite(m)):
            raise ValueError("mount matrix must be a finite 3x3 matrix, got %r" % (matrix,))
        if not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
            raise ValueError("mount matrix is not a rotation (orthonormal, det +1): %r" % (m.tolist(),))
    else:
        rpy = np.asarray(mount_rpy, dtype=np.float64)
        if rpy.shape != (3,) or not np.all(np.isfinite(rpy)):
            raise ValueError("mount_rpy must be 3 finite angles (rad), got %r" % (mount_rpy,))
        m = rpy_to_matrix(rpy)
    return m @ RUB_TO_FLU


DEFAULT_MOUNT = mount_matrix()  # facing forward, level: exactly the (-z, -x, y) remap


# ----------------------------------------------------------------------------- conversion
def check_quaternion(q_xyzw) -> Tuple[Optional[np.ndarray], str]:
    """(unit quaternion, "") or (None, reason) for NaN/inf or near-zero norm."""
    q = np.asarray(q_xyzw, dtype=np.float64)
    if q.shape != (4,):
        return None, T265_BAD_QUATERNION
    if not np.all(np.isfinite(q)):
        return None, T265_NAN
    n = float(np.sqrt(np.sum(q * q)))
    if n < 0.5:  # the T265 reports (0, 0, 0, 0) before tracking starts
        return None, T265_BAD_QUATERNION
    return q / n, ""


def body_velocity(velocity_world, angular_velocity_world, rotation_xyzw,
                  mount: np.ndarray = DEFAULT_MOUNT, lever_arm: Sequence[float] = (0.0, 0.0, 0.0),
                  max_speed: float = MAX_SPEED) -> BodyVelocity:
    """Trunk-frame linear and angular velocity of one T265 sample (see the module docstring).

    ``omega_body = R_mount R^T omega_world``;
    ``v_body = clip(R_mount R^T v_world - omega_body x lever_arm, +-max_speed)``.
    """
    nan3 = np.full(3, np.nan)
    v_w = np.asarray(velocity_world, dtype=np.float64).reshape(-1)
    w_w = np.asarray(angular_velocity_world, dtype=np.float64).reshape(-1)
    if v_w.shape != (3,) or w_w.shape != (3,):
        return BodyVelocity(False, T265_BAD_SAMPLE, nan3, nan3, False)
    if not (np.all(np.isfinite(v_w)) and np.all(np.isfinite(w_w))):
        return BodyVelocity(False, T265_NAN, nan3, nan3, False)
    q, reason = check_quaternion(rotation_xyzw)
    if q is None:
        return BodyVelocity(False, reason, nan3, nan3, False)
    to_body = np.asarray(mount, dtype=np.float64) @ quat_xyzw_to_matrix(q).T
    omega = to_body @ w_w
    v = to_body @ v_w - np.cross(omega, np.asarray(lever_arm, dtype=np.float64))
    v_clipped = np.clip(v, -max_speed, max_speed)
    return BodyVelocity(True, "", v_clipped, omega, bool(np.any(v_clipped != v)))


def body_velocity_from_remapped(v_world_flu, omega_world_flu, rpy_flu,
                                mount_rpy: Sequence[float] = (0.0, 0.0, 0.0),
                                lever_arm: Sequence[float] = (0.0, 0.0, 0.0),
                                max_speed: float = MAX_SPEED) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same conversion on Uni-O4-style log columns (remapped world vectors and rpy), batched (T, 3).

    Returns (v_body (T, 3), omega_body (T, 3), valid (T,) bool); invalid rows (non-finite) are NaN.
    Equal to :func:`body_velocity` on the raw sample the columns were made from.
    """
    v = np.atleast_2d(np.asarray(v_world_flu, dtype=np.float64))
    w = np.atleast_2d(np.asarray(omega_world_flu, dtype=np.float64))
    rpy = np.atleast_2d(np.asarray(rpy_flu, dtype=np.float64))
    for name, a in (("v_world_flu", v), ("omega_world_flu", w), ("rpy_flu", rpy)):
        if a.ndim != 2 or a.shape[-1] != 3:
            raise ValueError("%s must have shape (T, 3), got %s" % (name, a.shape))
    if not (len(v) == len(w) == len(rpy)):
        raise ValueError("v_world_flu, omega_world_flu, rpy_flu have different lengths %d, %d, %d"
                         % (len(v), len(w), len(rpy)))
    valid = np.all(np.isfinite(v), -1) & np.all(np.isfinite(w), -1) & np.all(np.isfinite(rpy), -1)
    r_t = np.swapaxes(rpy_to_matrix(np.where(valid[:, None], rpy, 0.0)), -1, -2)  # world FLU -> camera FLU
    mount = rpy_to_matrix(np.asarray(mount_rpy, dtype=np.float64))
    omega = np.einsum("ij,tjk,tk->ti", mount, r_t, w)
    v_b = np.einsum("ij,tjk,tk->ti", mount, r_t, v) - np.cross(omega, np.asarray(lever_arm, dtype=np.float64))
    v_b = np.clip(v_b, -max_speed, max_speed)
    v_b[~valid] = np.nan
    omega[~valid] = np.nan
    return v_b, omega, valid


def log_columns(sample: PoseSample) -> dict:
    """The sample's T265 fields as the episode log stores them (Uni-O4 remapped FLU axes, data.log_format)."""
    return {
        "t265_position": remap_axes(sample.translation),
        "t265_velocity_world": remap_axes(sample.velocity),
        "t265_acceleration": remap_axes(sample.acceleration),
        "t265_rpy": remapped_rpy(sample.rotation_xyzw),
        "t265_angular_velocity": remap_axes(sample.angular_velocity),
        "t265_angular_acceleration": remap_axes(sample.angular_acceleration),
        "t265_confidence": int(sample.tracker_confidence),
    }
