"""Simulated Intel RealSense T265: a 200 Hz pose stream (sim time) from the trunk and a camera mount.

Frames (REFERENCE.md section 3). The camera frame is X right, Y up, Z backward (the lens looks
along -Z). The T265 world frame is the camera frame at the start of tracking with roll and pitch
removed (Y against gravity): origin and yaw are set at start. With robot-world/trunk axes
(x forward, y left, z up) the forward, level mount has ``R_trunk_cam = M^T``, M = [[0,-1,0],[0,0,1],[-1,0,0]].

Reported, like ``rs2_pose``: translation, velocity, acceleration, angular velocity/acceleration
(all in the T265 world frame), rotation (x, y, z, w) of the camera frame in the world frame,
tracker confidence 0-3. Body-frame velocity for the runtime: ``R_trunk_cam @ R(q)^T @ v``
(:func:`camera_to_body_velocity`). Faults: noise, translation drift, stalls, NaN and zero quaternions.
Consumers: Python callbacks, a queue, and LCM (``t265_pose_t``) via :class:`LcmT265Publisher`.
"""
import queue
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

M_TRUNK_TO_CAM = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
DEFAULT_CHANNEL = "T265_POSE"


# ----------------------------------------------------------------------------- rotation helpers
def quat_wxyz_to_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat_xyzw(r: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (x, y, z, w) with w >= 0 (Shepperd's method)."""
    t = np.trace(r)
    if t > 0:
        s = 2.0 * np.sqrt(t + 1.0)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    q = np.asarray(q)
    return q if q[3] >= 0 else -q


def quat_xyzw_to_matrix(q) -> np.ndarray:
    x, y, z, w = q
    return quat_wxyz_to_matrix([w, x, y, z])


def rpy_to_matrix(rpy) -> np.ndarray:
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    return rz @ ry @ rx


def camera_to_body_velocity(rotation_xyzw, velocity, body_from_camera: np.ndarray) -> np.ndarray:
    """Velocity of the camera point in the trunk frame: R_trunk_cam @ R(q)^T @ v_world (REFERENCE 3)."""
    return body_from_camera @ quat_xyzw_to_matrix(rotation_xyzw).T @ np.asarray(velocity, dtype=np.float64)


# ----------------------------------------------------------------------------- config and sample
@dataclass
class SimT265Config:
    rate_hz: float = 200.0
    mount_pos: Tuple[float, float, float] = (0.28, 0.0, 0.03)  # camera origin in the trunk frame (m)
    mount_rpy: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # rotation from the forward, level mount
    pos_noise: float = 0.0  # m, white noise std per sample
    drift: float = 0.0  # m / sqrt(s), random-walk drift of the translation
    vel_noise: float = 0.0  # m/s std
    gyro_noise: float = 0.0  # rad/s std
    stall_rate: float = 0.0  # stalls per second (Poisson)
    stall_ms: float = 0.0  # length of a stall: no samples
    relocalize_s: float = 0.5  # after a stall, confidence is 1 for this long
    nan_prob: float = 0.0  # probability a sample carries NaN pose fields
    zero_quat_prob: float = 0.0  # probability a sample carries a zero quaternion
    seed: int = 0
    lcm_url: str = ""  # "" = no LCM; e.g. udpm://239.255.76.67:7667?ttl=0
    lcm_channel: str = DEFAULT_CHANNEL  # base name: published on <lcm_channel>/<robot name>
    serial: str = ""  # camera serial in its messages ("": SIM-T265-<port>)

    def validate(self) -> None:
        if not 0 < self.rate_hz <= 1000:
            raise ValueError("rate_hz must be in (0, 1000], got %r" % self.rate_hz)
        for name in ("pos_noise", "drift", "vel_noise", "gyro_noise", "stall_rate", "stall_ms", "relocalize_s"):
            if not getattr(self, name) >= 0:
                raise ValueError("%s must be >= 0" % name)
        for name in ("nan_prob", "zero_quat_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError("%s is a probability in [0, 1]" % name)
        if len(self.mount_pos) != 3 or len(self.mount_rpy) != 3:
            raise ValueError("mount_pos and mount_rpy need 3 numbers each")

    def body_from_camera(self) -> np.ndarray:
        """R_trunk_cam: camera-frame vectors -> trunk-frame vectors."""
        return rpy_to_matrix(self.mount_rpy) @ M_TRUNK_TO_CAM.T


@dataclass
class T265Sample:
    utime: int
    frame_number: int
    translation: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    rotation: np.ndarray  # x, y, z, w
    angular_velocity: np.ndarray
    angular_acceleration: np.ndarray
    tracker_confidence: int
    mapper_confidence: int

    def to_lcm(self, robot: str = "", serial: str = ""):
        from go1o4.robot_runtime.lcm_types import t265_pose_t
        m = t265_pose_t()
        m.robot_name, m.camera_serial = robot, serial
        m.utime, m.frame_number = int(self.utime), int(self.frame_number)
        for name in ("translation", "velocity", "acceleration", "rotation", "angular_velocity", "angular_acceleration"):
            setattr(m, name, [float(x) for x in getattr(self, name)])
        m.tracker_confidence, m.mapper_confidence = int(self.tracker_confidence), int(self.mapper_confidence)
        return m

    @classmethod
    def from_lcm(cls, data: bytes) -> "T265Sample":
        """Decode a ``t265_pose_t`` message (raises ValueError on a wrong fingerprint)."""
        from go1o4.robot_runtime.lcm_types import t265_pose_t
        m = t265_pose_t.decode(data)
        arrays = {n: np.asarray(getattr(m, n), dtype=np.float64) for n in (
            "translation", "velocity", "acceleration", "rotation", "angular_velocity", "angular_acceleration")}
        return cls(utime=m.utime, frame_number=m.frame_number, tracker_confidence=m.tracker_confidence,
                   mapper_confidence=m.mapper_confidence, **arrays)


# ----------------------------------------------------------------------------- the sensor
class SimulatedT265:
    """Feed it the trunk state every physics step (:meth:`update`); samples go to the subscribers."""

    def __init__(self, cfg: Optional[SimT265Config] = None, queue_size: int = 1000):
        self.cfg = cfg or SimT265Config()
        self.cfg.validate()
        self.queue: "queue.Queue[T265Sample]" = queue.Queue(maxsize=queue_size)
        self._subscribers: List[Callable[[T265Sample], None]] = []
        self.r_trunk_cam = self.cfg.body_from_camera()
        self.reset()

    def reset(self) -> None:
        """Restart tracking: the next sample defines the world origin and yaw."""
        self.rng = np.random.default_rng(self.cfg.seed)
        self.frame_number = 0
        self.next_time: Optional[float] = None
        self.stall_window = (0.0, -1.0)  # [start, end) of the current stall, sim time
        self.low_conf_until = -1.0
        self._origin = None  # (p0 in W, R_W_w0)
        self._drift = np.zeros(3)
        self._prev = None  # (time, v_w0, w_w0)
        self.samples_emitted = 0
        self.samples_dropped = 0

    def subscribe(self, callback: Callable[[T265Sample], None]) -> None:
        self._subscribers.append(callback)

    def stall(self, start: float, seconds: float) -> None:
        """No samples during [start, start + seconds) of sim time; low confidence for a while after."""
        self.stall_window = (start, start + seconds)

    def update(self, t: float, base_pos, base_quat_wxyz, base_lin_vel_world, base_ang_vel_body) -> None:
        """Emit a sample if one is due at sim time ``t`` (call at every physics step)."""
        period = 1.0 / self.cfg.rate_hz
        if self.next_time is None:
            self.next_time = t
        if t + 1e-9 < self.next_time:
            return
        self.next_time += period
        if self.next_time <= t:  # the caller stepped coarser than the sample period
            self.next_time = t + period
        c = self.cfg
        if c.stall_rate > 0 and c.stall_ms > 0 and self.rng.random() < c.stall_rate * period:
            self.stall(t, c.stall_ms * 1e-3)
        if self.stall_window[0] <= t < self.stall_window[1]:
            self.low_conf_until = self.stall_window[1] + c.relocalize_s
            return
        sample = self._measure(t, period, base_pos, base_quat_wxyz, base_lin_vel_world, base_ang_vel_body)
        self.samples_emitted += 1
        self._publish(sample)

    def _measure(self, t, period, base_pos, base_quat_wxyz, v_base_w, w_body) -> T265Sample:
        c = self.cfg
        r_w_trunk = quat_wxyz_to_matrix(base_quat_wxyz)
        r_w_cam = r_w_trunk @ self.r_trunk_cam
        lever = r_w_trunk @ np.asarray(c.mount_pos, dtype=np.float64)
        p_cam = np.asarray(base_pos, dtype=np.float64) + lever
        w_w = r_w_trunk @ np.asarray(w_body, dtype=np.float64)
        v_cam = np.asarray(v_base_w, dtype=np.float64) + np.cross(w_w, lever)
        if self._origin is None:
            fwd = -r_w_cam[:, 2]
            yaw0 = np.arctan2(fwd[1], fwd[0])
            self._origin = (p_cam.copy(), rpy_to_matrix((0.0, 0.0, yaw0)) @ M_TRUNK_TO_CAM.T)
        p0, r_w_w0 = self._origin
        rot = r_w_w0.T @ r_w_cam
        vel, ang = r_w_w0.T @ v_cam, r_w_w0.T @ w_w
        if self._prev is None:
            acc, ang_acc = np.zeros(3), np.zeros(3)
        else:
            dt = max(t - self._prev[0], 1e-9)
            acc, ang_acc = (vel - self._prev[1]) / dt, (ang - self._prev[2]) / dt
        self._prev = (t, vel, ang)
        if c.drift > 0:
            self._drift += self.rng.normal(0.0, c.drift * np.sqrt(period), 3)
        pos = r_w_w0.T @ (p_cam - p0) + self._drift
        if c.pos_noise > 0:
            pos = pos + self.rng.normal(0.0, c.pos_noise, 3)
        if c.vel_noise > 0:
            vel = vel + self.rng.normal(0.0, c.vel_noise, 3)
        if c.gyro_noise > 0:
            ang = ang + self.rng.normal(0.0, c.gyro_noise, 3)
        quat = matrix_to_quat_xyzw(rot)
        if c.nan_prob > 0 and self.rng.random() < c.nan_prob:
            pos, vel, quat = np.full(3, np.nan), np.full(3, np.nan), np.full(4, np.nan)
        if c.zero_quat_prob > 0 and self.rng.random() < c.zero_quat_prob:
            quat = np.zeros(4)
        conf = 1 if t < self.low_conf_until else 3
        self.frame_number += 1
        return T265Sample(int(round(t * 1e6)), self.frame_number, pos, vel, acc, quat, ang, ang_acc, conf, conf)

    def _publish(self, sample: T265Sample) -> None:
        if self.queue.full():
            try:
                self.queue.get_nowait()
                self.samples_dropped += 1
            except queue.Empty:
                pass
        self.queue.put_nowait(sample)
        for cb in self._subscribers:
            cb(sample)


class LcmT265Publisher:
    """A subscriber that publishes each sample as ``t265_pose_t`` from (robot, serial) on ``<channel>/<robot>``."""

    def __init__(self, url: str, channel: str = DEFAULT_CHANNEL, robot: str = "", serial: str = ""):
        import lcm
        from go1o4.robot_runtime.t265.identity import robot_channel
        self.lc = lcm.LCM(url) if url else lcm.LCM()
        self.channel, self.robot, self.serial = robot_channel(channel, robot), robot, serial
        self.published = 0

    def __call__(self, sample: T265Sample) -> None:
        self.lc.publish(self.channel, sample.to_lcm(self.robot, self.serial).encode())
        self.published += 1
