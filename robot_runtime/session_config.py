"""Configuration of a runtime session: the robot YAML (deploy/config/go1_default.yaml) plus ``runtime:``.

    cfg = load_session_config("deploy/config/go1_default.yaml", ["runtime.episode_steps=500"])

Sections: ``robot`` (addresses), ``t265`` (:class:`robot_runtime.t265.source.T265Config`), ``safety``
(:class:`robot_runtime.safety.SafetyLimits`), ``commands`` (stick ranges), ``remote`` (button and stick
mapping), ``logging``, ``reward`` and ``runtime`` (loop timing, calibration gains, episode length; see
robot_runtime/configs/session.yaml). Every field has a working default. Python 3.8 syntax.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from go1o4.robot_runtime.reward import ONLINE_REWARDS
from go1o4.robot_runtime.safety import BANDS, SafetyLimits, outside_normal
from go1o4.robot_runtime.t265.source import T265Config
from go1o4.robot_runtime.wire import BUTTON_BITS

from go1o4 import contract as C
from go1o4.config import ConfigError, load_config

STICK_AXES = ("lx", "ly", "rx", "ry")
MAX_COMMAND = 3.0  # m/s, rad/s: no stick may command more (the Go1 runs at most ~3.5 m/s)


@dataclass
class RobotConfig:
    name: str = "go1-default"
    serial: str = ""
    robot_ip: str = "192.168.123.10"
    robot_port: int = 8007
    local_ip: str = "192.168.123.162"
    local_port: int = 8080

    def validate(self) -> None:
        for name in ("robot_port", "local_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ValueError("%s must be a UDP port number, got %r" % (name, getattr(self, name)))


@dataclass
class CommandsConfig:
    """Velocity command ranges: a full stick gives the end of the range."""

    vx: List[float] = field(default_factory=lambda: [-0.6, 1.5])  # m/s
    vy: List[float] = field(default_factory=lambda: [-0.6, 0.6])  # m/s
    yaw_rate: List[float] = field(default_factory=lambda: [-1.0, 1.0])  # rad/s
    deadzone: float = 0.05
    gait: Dict[str, float] = field(default_factory=dict)  # overrides of contract.DEFAULT_GAIT
    key_step: List[float] = field(default_factory=lambda: [0.1, 0.1, 0.2])  # keyboard vx, vy, yaw per press

    def validate(self) -> None:
        for name in ("vx", "vy", "yaw_rate"):
            r = getattr(self, name)
            if len(r) != 2 or not -MAX_COMMAND <= r[0] <= 0.0 <= r[1] <= MAX_COMMAND:
                raise ValueError("%s must be [min <= 0, max >= 0] within +-%g, got %r" % (name, MAX_COMMAND, r))
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError("deadzone must be in [0, 1), got %r" % self.deadzone)
        if len(self.key_step) != 3 or min(self.key_step) <= 0:
            raise ValueError("key_step needs 3 positive numbers (vx, vy, yaw_rate), got %r" % self.key_step)
        C.command_vector(0.0, 0.0, 0.0, self.gait)  # unknown gait names raise ValueError

    def clip(self, vel: Sequence[float]) -> np.ndarray:
        lo = np.array([self.vx[0], self.vy[0], self.yaw_rate[0]])
        hi = np.array([self.vx[1], self.vy[1], self.yaw_rate[1]])
        return np.clip(np.asarray(vel, dtype=np.float64), lo, hi)


@dataclass
class StickAxis:
    axis: str = "ly"
    sign: float = 1.0

    def validate(self) -> None:
        if self.axis not in STICK_AXES:
            raise ValueError("axis must be one of %s, got %r" % (STICK_AXES, self.axis))
        if self.sign not in (-1.0, 1.0):
            raise ValueError("sign must be 1.0 or -1.0, got %r" % self.sign)


@dataclass
class SticksConfig:
    vx: StickAxis = field(default_factory=lambda: StickAxis("ly", 1.0))
    vy: StickAxis = field(default_factory=lambda: StickAxis("lx", -1.0))
    yaw_rate: StickAxis = field(default_factory=lambda: StickAxis("rx", -1.0))


def _check_combos(name: str, combos: List[List[str]]) -> None:
    for combo in combos:
        bad = [b for b in combo if b not in BUTTON_BITS]
        if not combo or bad:
            raise ValueError("%s: %r is not a button combination (buttons: %s)" % (name, combo, ", ".join(BUTTON_BITS)))


@dataclass
class RemoteMapConfig:
    """Remote buttons: each entry a list of combinations; any one combination fires."""

    calibrate_start_pause: List[List[str]] = field(default_factory=lambda: [["R2"]])
    toggle_logging: List[List[str]] = field(default_factory=lambda: [["L2"]])
    estop: List[List[str]] = field(default_factory=lambda: [["L1", "R1"], ["B"]])
    hold_s: float = 0.0
    sticks: SticksConfig = field(default_factory=SticksConfig)

    def validate(self) -> None:
        for name in ("calibrate_start_pause", "toggle_logging", "estop"):
            _check_combos(name, getattr(self, name))
        if not self.estop:
            raise ValueError("estop = [] : at least one e-stop button combination is required (e.g. [[B]])")
        if self.hold_s < 0:
            raise ValueError("hold_s must be >= 0, got %r" % self.hold_s)


@dataclass
class LoggingConfig:
    log_dir: str = "logs"
    enabled_at_start: bool = False
    flush_every_s: float = 1.0
    terrain: str = "unknown"
    operator_note: str = ""

    def validate(self) -> None:
        if not 0 < self.flush_every_s <= 1.0:
            raise ValueError("flush_every_s must be in (0, 1] s (crash safety), got %r" % self.flush_every_s)


@dataclass
class RewardConfig:
    name: str = "uni_o4_body"

    def validate(self) -> None:
        if self.name not in ONLINE_REWARDS:
            raise ValueError("name must be one of %s, got %r" % (sorted(ONLINE_REWARDS), self.name))


@dataclass
class RuntimeConfig:
    """Loops, calibration and episodes (robot_runtime/configs/session.yaml documents each field)."""

    episode_steps: int = C.EPISODE_STEPS
    calibrate_kp: float = C.KP
    calibrate_kd: float = C.KD
    settle_s: float = 0.5
    t265_required: bool = True
    link_miss_tolerance_s: float = 0.001
    policy_miss_tolerance_s: float = 0.002
    spin_s: float = 0.0004
    policy_phase_s: float = 0.0008
    prewarm_s: float = 0.0004
    switch_interval_s: float = 0.0002
    gc_young_every: int = 25
    lockstep_recv_timeout_s: float = 0.02
    # lock-step only: wall seconds a policy step waits for the T265 reader thread to take the samples the paused
    # simulator has already sent (a loaded host must not make the simulated T265 look stale); a silent T265 is
    # waited for once, then judged stale as on the robot
    lockstep_t265_wait_s: float = 0.25
    status_hz: float = 5.0
    cpu_affinity: List[int] = field(default_factory=list)
    rt_priority: int = 40  # SCHED_FIFO of the link loop (policy loop: -1, helpers: -2); 0: normal

    def validate(self) -> None:
        if self.episode_steps < 1:
            raise ValueError("episode_steps must be >= 1, got %r" % self.episode_steps)
        if not (0 < self.calibrate_kp <= 60.0 and 0 <= self.calibrate_kd <= 5.0 and 0 <= self.settle_s <= 10.0):
            raise ValueError("need calibrate_kp in (0, 60], calibrate_kd in [0, 5], settle_s in [0, 10] (got %r, %r, %r)"
                             % (self.calibrate_kp, self.calibrate_kd, self.settle_s))
        if not (0 < self.link_miss_tolerance_s < C.LINK_DT and 0 < self.policy_miss_tolerance_s < C.POLICY_DT):
            raise ValueError("miss tolerances must be shorter than the loop periods (2 ms, 20 ms)")
        if not (0 <= self.spin_s < C.LINK_DT and 0 < self.switch_interval_s <= 0.005
                and 0 <= self.policy_phase_s < C.LINK_DT and 0 <= self.prewarm_s <= self.policy_phase_s):
            raise ValueError("need 0 <= spin_s < 2 ms, 0 < switch_interval_s <= 5 ms, 0 <= policy_phase_s < 2 ms, "
                             "0 <= prewarm_s <= policy_phase_s")
        if not (self.lockstep_recv_timeout_s > 0 and self.status_hz > 0 and 0 <= self.rt_priority <= 99):
            raise ValueError("need lockstep_recv_timeout_s > 0, status_hz > 0, rt_priority in 0-99")
        if not 0 < self.lockstep_t265_wait_s <= 5.0:
            raise ValueError("lockstep_t265_wait_s must be in (0, 5] s, got %r" % self.lockstep_t265_wait_s)
        if self.gc_young_every < 0:
            raise ValueError("gc_young_every must be >= 0 (0: automatic garbage collection), got %r" % self.gc_young_every)


@dataclass
class SessionConfig:
    robot: RobotConfig = field(default_factory=RobotConfig)
    t265: T265Config = field(default_factory=T265Config)
    safety: SafetyLimits = field(default_factory=SafetyLimits)
    commands: CommandsConfig = field(default_factory=CommandsConfig)
    remote: RemoteMapConfig = field(default_factory=RemoteMapConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def validate(self) -> None:
        for sub in (self.robot, self.t265, self.safety, self.commands, self.remote, self.logging, self.reward,
                    self.runtime):
            sub.validate()
        if abs(self.safety.policy_dt - C.POLICY_DT) > 1e-12:
            raise ValueError("safety.policy_dt must be the contract's %g s, got %r" % (C.POLICY_DT, self.safety.policy_dt))


def load_session_config(path: Optional[str] = None, overrides: Sequence[str] = (),
                        unsafe_override: Optional[Sequence[str]] = None) -> SessionConfig:
    """Defaults <- robot YAML ``path`` <- ``key=value`` overrides; raises go1o4.config.ConfigError.

    Safety fields must be inside their hard band always (:data:`robot_runtime.safety.BANDS`). With
    ``unsafe_override`` given (the CLI's ``--unsafe-override``, ``[]`` if none), a field outside its normal
    band is refused unless named there ("safety.state_timeout"); ``None`` skips that check (Python API).
    """
    cfg = load_config(SessionConfig, path, overrides=overrides)
    if unsafe_override is not None:
        unsafe_fields(cfg, unsafe_override)
    return cfg


def unsafe_fields(cfg: SessionConfig, allowed: Sequence[str]) -> Dict[str, float]:
    """{"safety.FIELD": value} outside the normal band, all in ``allowed``; else ConfigError naming them."""
    unknown = sorted(set(a for a in allowed if a.split(".", 1)[-1] not in BANDS))
    if unknown:
        raise ConfigError("--unsafe-override %s: not a safety field (fields: %s)"
                          % (", ".join(unknown), ", ".join("safety." + b for b in BANDS)))
    allowed_names = set(a.split(".", 1)[-1] for a in allowed)
    out, refused = {}, []
    for name, value, band in outside_normal(cfg.safety):
        if name in allowed_names:
            out["safety." + name] = value
        else:
            refused.append("safety.%s = %r is outside the normal range [%g, %g] %s (hard limits [%g, %g]): pass "
                           "--unsafe-override safety.%s to use it" % (name, value, band.normal[0], band.normal[1],
                                                                      band.unit, band.hard[0], band.hard[1], name))
    if refused:
        raise ConfigError("; ".join(refused))
    return out
