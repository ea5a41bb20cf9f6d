"""The episode log format: schema, the in-memory ``Episode``, errors and small file helpers.

One HDF5 file per episode, ``<root>/<session_id>/episode_00000.h5``, beside ``session.yaml``
(session metadata) and ``episode_00000.status.json`` (open / complete / crashed, written
atomically at the start and the end). Inside a file::

    /                 attrs: format, schema_version, rate_hz, profile, session_id, episode_index,
                             created, meta_json, end, reason, closed, software_version
    /steps/<field>    (T, *shape) chunked, resizable, gzip + fletcher32 checksums;
                      attrs unit, frame, description
    /flushed_steps    (1,) int64: steps known complete on disk (written after their data)

Every per-step array is in **simulation order** (FL, FR, RL, RR), see :mod:`go1o4.contract`.
Python 3.8 syntax, no mujoco/torch: the on-robot runtime imports this.
"""
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, NamedTuple, Optional, Tuple

import numpy as np

from go1o4 import contract as C

FORMAT_NAME = "go1o4.episode"
SCHEMA_VERSION = 1
RATE_HZ = 1.0 / C.POLICY_DT  # 50 Hz policy steps
EPISODE_GLOB = "episode_*.h5"
SESSION_FILE = "session.yaml"

# Episode ends (gymnasium semantics): a terminal state (fall) vs a cut-off that must bootstrap.
END_TERMINAL = "terminal"
END_TRUNCATION = "truncation"
ENDS = (END_TERMINAL, END_TRUNCATION)
#: Usual reasons; any short string is accepted.
REASONS = ("fall", "time_limit", "operator_stop", "t265_loss", "safety", "end_of_file", "crashed",
           "exception", "non_finite")

#: Logged ``safety_state`` codes (robot_runtime.safety uses these).
SAFETY_STATE_NAMES = {0: "damping", 1: "calibrating", 2: "running", 3: "paused", 4: "estop"}

STATUS_OPEN = "open"
STATUS_COMPLETE = "complete"
STATUS_CRASHED = "crashed"

PROFILE_RUNTIME = "runtime"
PROFILE_UNI_O4 = "uni_o4_import"


class LogWriteError(OSError):
    """Logging cannot go on (disk full, unwritable folder...). The runtime stops logging cleanly."""


class LogReadError(ValueError):
    """A log file or folder cannot be read. The message names the file and the problem."""

    def __init__(self, path: str, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__("%s: %s" % (path, problem))


class FieldSpec(NamedTuple):
    name: str
    shape: Tuple[int, ...]  # per-step shape; () for scalars
    dtype: str
    unit: str
    frame: str
    description: str


_T265_FRAME = "T265 world (camera axes remapped to x fwd, y left, z up: (-z, -x, y)); yaw 0 at start"

#: Every known per-step field. Extras for online PPO: ``log_prob``/``value``; any ``extra_*`` name.
FIELDS = (
    FieldSpec("time", (), "f8", "s", "", "monotonic clock at the policy step"),
    FieldSpec("tick", (), "i8", "ms", "", "SDK LowState tick (imported logs: step index)"),
    FieldSpec("q", (12,), "f4", "rad", "sim joint order", "joint positions"),
    FieldSpec("dq", (12,), "f4", "rad/s", "sim joint order", "joint velocities"),
    FieldSpec("tau_est", (12,), "f4", "N m", "sim joint order", "estimated joint torques"),
    FieldSpec("imu_quat", (4,), "f4", "1", "body to world, (w, x, y, z)", "IMU orientation"),
    FieldSpec("imu_gyro", (3,), "f4", "rad/s", "body", "IMU angular velocity"),
    FieldSpec("imu_acc", (3,), "f4", "m/s^2", "body", "IMU linear acceleration"),
    FieldSpec("imu_rpy", (3,), "f4", "rad", "roll, pitch, yaw (ZYX)", "IMU Euler angles"),
    FieldSpec("foot_force", (4,), "f4", "SDK units", "sim foot order FL FR RL RR", "foot contact forces"),
    FieldSpec("obs", (C.OBS_DIM,), "f4", "mixed (go1o4.contract.OBS_BLOCKS)", "", "58-float policy observation"),
    FieldSpec("policy_input", (C.POLICY_INPUT_DIM,), "f4", "mixed", "oldest first", "5-step history fed to the policy"),
    FieldSpec("action", (C.NUM_ACTIONS,), "f4", "1", "sim joint order", "raw policy output (before scale/clip)"),
    FieldSpec("q_des", (12,), "f4", "rad", "sim joint order", "joint targets sent to the motors"),
    FieldSpec("command", (15,), "f4", "m/s, m/s, rad/s, then gait units", "body",
              "unscaled command (vx, vy, yaw rate[, 12 gait parameters]); shape (3,) or (15,)"),
    FieldSpec("t265_position", (3,), "f4", "m", _T265_FRAME, "T265 translation"),
    FieldSpec("t265_velocity_world", (3,), "f4", "m/s", _T265_FRAME, "T265 linear velocity"),
    FieldSpec("t265_velocity_body", (3,), "f4", "m/s", "body (x fwd, y left, z up)", "T265 velocity in the trunk frame"),
    FieldSpec("t265_acceleration", (3,), "f4", "m/s^2", _T265_FRAME, "T265 linear acceleration"),
    FieldSpec("t265_rpy", (3,), "f4", "rad", "roll, pitch, yaw (ZYX) of the remapped T265 frame", "T265 orientation"),
    FieldSpec("t265_angular_velocity", (3,), "f4", "rad/s", _T265_FRAME, "T265 angular velocity"),
    FieldSpec("t265_angular_acceleration", (3,), "f4", "rad/s^2", _T265_FRAME, "T265 angular acceleration"),
    FieldSpec("t265_confidence", (), "i1", "0-3", "", "T265 tracker confidence (3 = high)"),
    FieldSpec("reward", (), "f4", "1", "", "reward of the step (see data.rewards)"),
    FieldSpec("safety_state", (), "i2", "code", "", "robot_runtime safety state (SAFETY_STATE_NAMES)"),
    FieldSpec("log_prob", (), "f4", "nat", "", "log pi(a|s) of the behaviour policy (online PPO)"),
    FieldSpec("value", (), "f4", "1", "", "V(s) of the behaviour critic (online PPO)"),
)
FIELD_SPECS = {f.name: f for f in FIELDS}
EXTRA_PREFIX = "extra_"
#: Per-field alternative per-step shapes.
ALT_SHAPES = {"command": ((3,), (15,))}

#: Needed to use an episode at all.
CORE_FIELDS = ("time", "obs", "action")
#: What each profile is expected to contain (missing ones are reported as warnings).
PROFILE_FIELDS = {
    PROFILE_RUNTIME: ("time", "tick", "q", "dq", "tau_est", "imu_quat", "imu_gyro", "imu_acc", "imu_rpy",
                      "foot_force", "obs", "action", "q_des", "command", "t265_position", "t265_velocity_world",
                      "t265_velocity_body", "t265_angular_velocity", "t265_confidence", "reward", "safety_state"),
    PROFILE_UNI_O4: ("time", "tick", "q", "dq", "obs", "action", "q_des", "command", "t265_position",
                     "t265_velocity_world", "t265_acceleration", "t265_rpy", "t265_angular_velocity",
                     "t265_angular_acceleration", "reward"),
}


def spec_for(name: str, value_shape: Optional[Tuple[int, ...]] = None) -> FieldSpec:
    """The spec of field ``name``; ``extra_*`` fields take their shape from the first value (float32)."""
    if name in FIELD_SPECS:
        spec = FIELD_SPECS[name]
        if value_shape is not None and name in ALT_SHAPES and tuple(value_shape) in ALT_SHAPES[name]:
            return spec._replace(shape=tuple(value_shape))
        return spec
    if name.startswith(EXTRA_PREFIX) and value_shape is not None:
        return FieldSpec(name, tuple(value_shape), "f4", "", "", "user extra")
    raise ValueError("unknown log field %r: use one of %s or a name starting with %r"
                     % (name, ", ".join(FIELD_SPECS), EXTRA_PREFIX))


def allowed_shapes(name: str) -> Tuple[Tuple[int, ...], ...]:
    if name in ALT_SHAPES:
        return ALT_SHAPES[name]
    return (FIELD_SPECS[name].shape,) if name in FIELD_SPECS else ()


@dataclass
class Episode:
    """One episode in memory, whatever its source (runtime log or imported real log).

    ``steps`` maps field names to (T, ...) arrays; ``end`` is ``terminal`` (fall) or ``truncation``.
    ``status`` is ``complete``, ``crashed`` (writer died: steps up to the last flush) or ``open``.
    """

    steps: Dict[str, np.ndarray]
    end: str = END_TRUNCATION
    reason: str = "end_of_file"
    meta: Dict[str, Any] = field(default_factory=dict)
    session: Dict[str, Any] = field(default_factory=dict)
    status: str = STATUS_COMPLETE
    name: str = ""
    source: str = ""
    profile: str = PROFILE_RUNTIME
    rate_hz: float = RATE_HZ

    @property
    def num_steps(self) -> int:
        return int(len(self.steps["action"])) if "action" in self.steps else 0

    @property
    def crashed(self) -> bool:
        return self.status != STATUS_COMPLETE

    @property
    def terminal(self) -> bool:
        return self.end == END_TERMINAL

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.steps[name]
        except KeyError:
            raise KeyError("episode %s has no field %r (has: %s)" % (self.name or self.source, name,
                                                                     ", ".join(sorted(self.steps))))

    def __contains__(self, name: str) -> bool:
        return name in self.steps

    def slice(self, start: int, stop: Optional[int] = None) -> "Episode":
        """A copy restricted to steps [start, stop) (metadata shared)."""
        steps = {k: v[start:stop] for k, v in self.steps.items()}
        return Episode(steps, self.end, self.reason, dict(self.meta), self.session, self.status, self.name,
                       self.source, self.profile, self.rate_hz)


# ----------------------------------------------------------------------------- file helpers
def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays (and tuples) so json/yaml can write them."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same folder, fsync, rename, fsync dir."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", dir=folder)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; logs are meant to be shared
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # some filesystems refuse fsync on folders; the rename is still atomic


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=1, sort_keys=True) + "\n")


def status_path(episode_path: str) -> str:
    """``.../episode_00003.h5`` -> ``.../episode_00003.status.json``."""
    base = episode_path[:-3] if episode_path.endswith(".h5") else episode_path
    return base + ".status.json"


def episode_filename(index: int) -> str:
    return "episode_%05d.h5" % index
