"""The runtime's T265 velocity source: ``t265_pose_t`` over LCM -> trunk-frame velocity readings.

    src = T265Source(T265Config(lcm_url="udpm://239.255.76.67:7667?ttl=0", serial="905312110116"), robot="go1-lab2")
    src.start()
    r = src.latest()          # VelocityReading; r.ok False -> r.reason in frames.REASONS
    src.stop()

A background thread runs ``lc.handle_timeout`` (no busy waiting) and converts every sample with
:func:`robot_runtime.t265.frames.body_velocity`. :meth:`T265Source.latest` adds the age check: no
sample for more than ``stale_after_s`` (0.1 s: Uni-O4 cut an episode when a T265 read took longer)
gives ``t265_stale``; NaN fields ``t265_nan``; tracker confidence below ``min_confidence``
``t265_low_confidence``. Identity (:mod:`robot_runtime.t265.identity`): the source listens on
``T265_POSE/<robot>`` and refuses samples whose ``robot_name`` / ``camera_serial`` are not the
configured ones (counted in ``refused``, described in ``refusal``); if only refused samples arrive the
reading is ``t265_foreign``. The runtime ends the episode (truncation, reason ``t265_loss``) and logs the
reason. Python 3.8 syntax; lcm is imported only when the source starts.
"""
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np
from go1o4.robot_runtime.t265 import frames as F
from go1o4.robot_runtime.t265.identity import channel_regex, identity_problem, robot_channel

DEFAULT_CHANNEL = "T265_POSE"
DEFAULT_LCM_URL = "udpm://239.255.76.67:7667?ttl=0"


@dataclass
class T265Config:
    """The ``t265`` section of deploy/config/go1_default.yaml."""

    lcm_url: str = DEFAULT_LCM_URL
    channel: str = DEFAULT_CHANNEL  # base name: the robot's stream is <channel>/<robot.name>
    serial: str = ""  # the camera's serial number: samples from another camera are refused ("": any camera)
    stale_after_s: float = 0.1  # no sample for longer -> t265_stale
    min_confidence: int = 2  # tracker confidence 0-3; below -> t265_low_confidence
    max_speed: float = F.MAX_SPEED  # m/s, per-axis clip (APRL)
    mount_rpy: List[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # camera on the trunk, rad
    mount_matrix: Optional[List[List[float]]] = None  # replaces mount_rpy if given (FLU camera -> trunk)
    lever_arm: List[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # camera origin in trunk frame, m

    def validate(self) -> None:
        if not self.channel:
            raise ValueError("channel must not be empty")
        if not 0 < self.stale_after_s <= 5.0:
            raise ValueError("stale_after_s must be in (0, 5] s, got %r" % self.stale_after_s)
        if not 0 <= self.min_confidence <= 3:
            raise ValueError("min_confidence must be 0-3 (T265 tracker confidence), got %r" % self.min_confidence)
        if not self.max_speed > 0:
            raise ValueError("max_speed must be > 0 m/s, got %r" % self.max_speed)
        if len(self.lever_arm) != 3 or not np.all(np.isfinite(self.lever_arm)):
            raise ValueError("lever_arm must be 3 finite numbers (m), got %r" % (self.lever_arm,))
        self.mount()  # raises ValueError naming mount_rpy / mount matrix

    def mount(self) -> np.ndarray:
        return F.mount_matrix(self.mount_rpy, self.mount_matrix)


@dataclass
class VelocityReading:
    """What the runtime sees of the T265 at one policy step. Vectors are numpy (3,) / (4,)."""

    ok: bool
    reason: str  # "" when ok, else one of frames.REASONS
    v_body: np.ndarray  # m/s trunk frame (x fwd, y left, z up), clipped; NaN if the sample is bad
    omega_body: np.ndarray  # rad/s trunk frame
    position: np.ndarray  # m, T265 world (RUB axes)
    quat_xyzw: np.ndarray  # camera -> T265 world
    confidence: int  # tracker confidence 0-3 (-1: no sample yet)
    age_s: float  # now - time the sample was received (inf: none yet)
    sample_time: float  # the sample's own time stamp (s, from utime)
    frame_number: int = -1
    clipped: bool = False
    sample: Optional[F.PoseSample] = None  # the raw sample (for logging: frames.log_columns)

    def log_fields(self) -> dict:
        """Per-step log fields (data.log_format names); empty if there was never a sample."""
        if self.sample is None:
            return {}
        out = F.log_columns(self.sample)
        out["t265_velocity_body"] = self.v_body
        return out


def sample_from_message(msg) -> F.PoseSample:
    """A decoded ``t265_pose_t`` -> :class:`frames.PoseSample`."""
    def arr(name):
        return np.asarray(getattr(msg, name), dtype=np.float64)
    return F.PoseSample(arr("translation"), arr("velocity"), arr("acceleration"), arr("rotation"),
                        arr("angular_velocity"), arr("angular_acceleration"),
                        int(msg.tracker_confidence), int(msg.mapper_confidence))


class _Latest:
    __slots__ = ("sample", "conv", "utime", "frame_number", "received")

    def __init__(self, sample, conv, utime, frame_number, received):
        self.sample, self.conv, self.utime = sample, conv, utime
        self.frame_number, self.received = frame_number, received


class T265Source:
    """Subscribes to ``t265_pose_t`` on LCM in a daemon thread; :meth:`latest` is thread-safe."""

    def __init__(self, cfg: Optional[T265Config] = None, clock: Callable[[], float] = time.monotonic,
                 robot: str = ""):
        """``robot``: the robot name this session is (``robot.name``); it picks the channel and is checked
        on every sample together with ``cfg.serial``."""
        self.cfg = cfg or T265Config()
        self.cfg.validate()
        self.robot = robot
        self.channel = robot_channel(self.cfg.channel, robot)
        self.refused, self.refusal, self._last_refused = 0, "", float("-inf")
        self._mount = self.cfg.mount()
        self._lever = np.asarray(self.cfg.lever_arm, dtype=np.float64)
        self._clock = clock
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._latest: Optional[_Latest] = None
        self._gave_up_at = -1  # samples_received when await_fresh last waited in vain
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lc = None
        self.samples_received = 0
        self.decode_errors = 0
        self.last_error = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "T265Source":
        if self._thread is not None:
            return self
        import lcm  # runtime extra; imported here so that configs load without it
        from go1o4.robot_runtime.lcm_types import t265_pose_t

        self._decode = t265_pose_t.decode
        try:
            self._lc = lcm.LCM(self.cfg.lcm_url)
        except Exception as e:
            raise RuntimeError("T265Source: cannot open LCM url %r (t265.lcm_url): %s" % (self.cfg.lcm_url, e))
        self._sub = self._lc.subscribe(channel_regex(self.channel), self._on_message)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="t265-lcm", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._lc is not None:
            try:
                self._lc.unsubscribe(self._sub)
            except Exception:
                pass
            self._lc = None

    def __enter__(self) -> "T265Source":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._lc.handle_timeout(50)  # ms; returns early when a message arrives
            except Exception as e:
                self.last_error = "lcm handle failed: %s" % e
                self._stop.wait(0.05)

    # ------------------------------------------------------------------ samples
    def _on_message(self, channel: str, data: bytes) -> None:
        received = self._clock()
        try:
            msg = self._decode(data)
        except Exception as e:
            self.decode_errors += 1
            self.last_error = "cannot decode t265_pose_t on %s: %s" % (channel, e)
            return
        problem = identity_problem(msg.robot_name, msg.camera_serial, self.robot, self.cfg.serial)
        if problem:  # another robot's pose: never fed, never used for reward
            with self._lock:
                self.refused, self.refusal, self._last_refused = self.refused + 1, problem, received
            return
        self.feed(sample_from_message(msg), msg.utime, msg.frame_number, received)

    def feed(self, sample: F.PoseSample, utime: int, frame_number: int, received: Optional[float] = None) -> None:
        """Take one sample (called by the LCM thread; usable directly by an in-process producer)."""
        conv = F.body_velocity(sample.velocity, sample.angular_velocity, sample.rotation_xyzw,
                               self._mount, self._lever, self.cfg.max_speed)
        item = _Latest(sample, conv, int(utime), int(frame_number), self._clock() if received is None else received)
        with self._lock:
            self._latest = item
            self.samples_received += 1
            self._arrived.notify_all()

    def await_fresh(self, now: float, within_s: float, timeout_s: float) -> bool:
        """Lock-step only: wait up to ``timeout_s`` wall seconds for a sample received within ``within_s`` of ``now``.

        The paused simulator has already sent every sample up to ``now``; on a loaded host the reader thread may
        not have taken them yet, and the simulated T265 would look stale for a reason the robot never has. A
        publisher that stays silent is waited for once (until it sends again), then :meth:`latest` judges it
        stale exactly as in real time. True when a fresh sample is there."""
        deadline = time.monotonic() + timeout_s

        def fresh() -> bool:
            return self._latest is not None and now - self._latest.received <= within_s

        with self._arrived:
            if fresh():
                return True
            if self.samples_received == self._gave_up_at or self._thread is None:
                return False
            while not fresh():
                left = deadline - time.monotonic()
                if left <= 0:
                    self._gave_up_at = self.samples_received
                    return False
                self._arrived.wait(left)
            return True

    def latest(self, now: Optional[float] = None) -> VelocityReading:
        """The newest sample as a :class:`VelocityReading` judged at ``now`` (default: the clock)."""
        now = self._clock() if now is None else now
        with self._lock:
            item, foreign = self._latest, now - self._last_refused <= self.cfg.stale_after_s
        nan3 = np.full(3, np.nan)
        if item is None or (foreign and now - item.received > self.cfg.stale_after_s):
            return VelocityReading(False, F.T265_FOREIGN if foreign else F.T265_STALE, nan3, nan3, nan3,
                                   np.full(4, np.nan), -1, float("inf"), float("nan"))
        s, conv = item.sample, item.conv
        age = max(0.0, now - item.received)
        reason = conv.reason
        finite = all(np.all(np.isfinite(x)) for x in (s.translation, s.velocity, s.rotation_xyzw, s.angular_velocity))
        if age > self.cfg.stale_after_s:
            reason = F.T265_STALE
        elif not finite:
            reason = F.T265_NAN
        elif conv.ok and s.tracker_confidence < self.cfg.min_confidence:
            reason = F.T265_LOW_CONFIDENCE
        return VelocityReading(ok=not reason, reason=reason, v_body=conv.v_body.copy(),
                               omega_body=conv.omega_body.copy(), position=s.translation.copy(),
                               quat_xyzw=s.rotation_xyzw.copy(),
                               confidence=s.tracker_confidence, age_s=age, sample_time=item.utime * 1e-6,
                               frame_number=item.frame_number, clipped=conv.clipped, sample=s)
