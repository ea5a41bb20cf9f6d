"""The safety layer: pure decisions, no I/O. Every command sent to the robot passes through here.

- :func:`clamp_q_des`: joint limits, then the band in which the motor's PD torque
  Kp (q_des - q) - Kd dq stays inside the torque limits.
- :func:`check_action`: a policy output with NaN/inf or the wrong shape is refused.
- :class:`Watchdog` inputs -> :func:`evaluate`: stale policy target (> 3 policy periods), robot
  state stopped arriving, CRC failures piling up, |roll| or |pitch| over the limit, motor over
  temperature, e-stop. Any of them -> damping, with the cause recorded as a :class:`SafetyEvent`.
- :func:`ramp_toward`: the calibration ramp (at most 0.05 rad per policy step).

Figures: REFERENCE.md §2 (walk-these-ways 1.6 rad, APRL 60 deg, 50 C motor warning).
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from go1o4.data.log_format import SAFETY_STATE_NAMES

from go1o4 import contract as C

# Safety states, as logged per step (int codes are part of the log format).
DAMPING, CALIBRATING, RUNNING, PAUSED, ESTOP = 0, 1, 2, 3, 4
STATE_NAMES = {k: SAFETY_STATE_NAMES[k] for k in (DAMPING, CALIBRATING, RUNNING, PAUSED, ESTOP)}

# Event causes (stable strings: logs and the operator runbook refer to them).
STALE_TARGET = "stale_target"
STATE_LOST = "state_lost"
CRC_FAILURES = "crc_failures"
BAD_ACTION = "bad_action"
TILT = "tilt"
OVER_TEMPERATURE = "over_temperature"
ESTOP_BUTTON = "estop_button"
BAD_STATE = "bad_state"


@dataclass
class SafetyLimits:
    policy_dt: float = C.POLICY_DT
    stale_target_periods: float = 3.0  # target older than this many policy periods -> damping
    state_timeout: float = 0.1  # s without a valid LowState -> damping
    crc_failures_max: int = 10  # CRC failures within crc_window -> damping
    crc_window: float = 1.0  # s
    max_roll_pitch: float = C.FALL_ROLL_PITCH  # rad
    motor_temp_warn: float = 50.0  # deg C: warning only
    motor_temp_max: float = 75.0  # deg C: damping
    ramp_step: float = 0.05  # rad per policy step during calibration
    deadman_timeout: float = 0.1  # s without a heartbeat from the runtime -> the dead-man takes over (deadman.py)

    def validate(self) -> None:
        """Every field inside its hard band (finite; no config can switch a limit off)."""
        for name in BANDS:
            check_hard(name, getattr(self, name))
        if self.motor_temp_warn > self.motor_temp_max:
            raise ValueError("motor_temp_warn = %r must not exceed motor_temp_max = %r"
                             % (self.motor_temp_warn, self.motor_temp_max))


@dataclass(frozen=True)
class Band:
    """Allowed values of one safety field: ``hard`` always (else refused), ``normal`` without an override."""

    hard: Tuple[float, float]
    normal: Tuple[float, float]
    unit: str = ""


#: The safety fields' bands (deploy/README.md "Safety limits"). Values outside ``normal`` but inside ``hard``
#: need ``go1o4 session --unsafe-override safety.FIELD``; outside ``hard`` they are always refused.
BANDS = {
    "policy_dt": Band((C.POLICY_DT, C.POLICY_DT), (C.POLICY_DT, C.POLICY_DT), "s"),
    "stale_target_periods": Band((1.0, 10.0), (2.0, 5.0), "policy periods"),
    "state_timeout": Band((0.01, 0.5), (0.05, 0.2), "s"),
    "crc_failures_max": Band((1, 100), (3, 20), "failures"),
    "crc_window": Band((0.1, 10.0), (0.5, 2.0), "s"),
    "max_roll_pitch": Band((0.2, 1.6), (0.5, 1.6), "rad"),
    "motor_temp_warn": Band((30.0, 80.0), (40.0, 60.0), "C"),
    "motor_temp_max": Band((40.0, 85.0), (60.0, 80.0), "C"),  # <= the Go1 motors' rating (deploy/README.md)
    "ramp_step": Band((0.001, 0.1), (0.01, 0.05), "rad per step"),
    "deadman_timeout": Band((0.02, 0.5), (0.05, 0.2), "s"),
}


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_hard(name: str, value) -> None:
    """ValueError naming the field, its value and the hard range unless ``value`` is a finite number inside it."""
    band = BANDS[name]
    lo, hi = band.hard
    if not (_is_number(value) and np.isfinite(value) and lo <= value <= hi):
        raise ValueError("%s = %r is outside its allowed range [%g, %g] %s (safety limits cannot be switched off)"
                         % (name, value, lo, hi, band.unit))


def outside_normal(limits: "SafetyLimits") -> List[Tuple[str, float, Band]]:
    """The fields inside their hard band but outside the normal one: (name, value, band)."""
    out = []
    for name, band in BANDS.items():
        v = getattr(limits, name)
        if not band.normal[0] <= v <= band.normal[1]:
            out.append((name, v, band))
    return out


@dataclass
class SafetyEvent:
    time: float
    cause: str
    detail: str

    def as_dict(self):
        return {"time": self.time, "cause": self.cause, "detail": self.detail}


def clamp_q_des(q_des, q, dq, kp: float = C.KP, kd: float = C.KD):
    """Clamp targets (sim order) to the joint limits and to what the torque limits allow.

    With tau = kp (q_des - q) - kd dq, |tau| <= tau_max gives
    q + (-tau_max + kd dq) / kp <= q_des <= q + (tau_max + kd dq) / kp.
    Returns (clamped q_des, boolean mask of entries that were changed).
    """
    q_des = np.asarray(q_des, dtype=np.float64)
    out = C.clip12(q_des, C.Q_MIN, C.Q_MAX)
    if kp > 0:
        q, dq = np.asarray(q, dtype=np.float64), np.asarray(dq, dtype=np.float64)
        lo = q + (-C.TORQUE_LIMIT + kd * dq) / kp
        hi = q + (C.TORQUE_LIMIT + kd * dq) / kp
        out = C.clip12(out, lo, hi)
    return out, ~(np.abs(out - q_des) <= 1e-12)  # NaN counts as changed


def check_action(action) -> Optional[str]:
    """None if the action can be used, else why not (shape, NaN, inf)."""
    a = np.asarray(action)
    if a.shape != (C.NUM_ACTIONS,):
        return "action has shape %s, expected (%d,)" % (a.shape, C.NUM_ACTIONS)
    if not np.all(np.isfinite(a)):
        bad = [C.JOINT_NAMES_SIM[i] for i in np.flatnonzero(~np.isfinite(a))]
        return "action is not finite at %s" % ", ".join(bad)
    return None


def check_state(quat_wxyz, q, dq) -> Optional[str]:
    """None if a received robot state is usable, else why not (NaN from the network, zero quaternion)."""
    quat = np.asarray(quat_wxyz, dtype=np.float64)
    for name, x in (("imu quaternion", quat), ("q", q), ("dq", dq)):
        if not np.isfinite(np.asarray(x, dtype=np.float64)).all():
            return "%s is not finite" % name
    if float(np.dot(quat, quat)) < 0.25:  # norm < 0.5
        return "imu quaternion has near-zero norm"
    return None


def ramp_toward(current, goal, max_step: float):
    """Move ``current`` toward ``goal`` by at most ``max_step`` per joint. Returns (new, reached)."""
    current, goal = np.asarray(current, dtype=np.float64), np.asarray(goal, dtype=np.float64)
    new = current + np.clip(goal - current, -max_step, max_step)
    return new, bool(np.all(np.abs(goal - new) < 1e-9))


@dataclass
class WatchdogInputs:
    """What the safety layer looks at, one snapshot (times in seconds on one monotonic clock)."""

    now: float
    last_target_time: Optional[float]  # when the policy last produced a target (None: no policy yet)
    last_state_time: Optional[float]  # when the last valid LowState arrived
    crc_failure_times: Tuple[float, ...] = ()
    roll: float = 0.0
    pitch: float = 0.0
    motor_temperature: Tuple[float, ...] = ()
    estop_pressed: bool = False
    policy_active: bool = False  # RUNNING: stale targets matter only then


@dataclass
class SafetyDecision:
    damp: bool
    events: List[SafetyEvent] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    @property
    def causes(self) -> List[str]:
        return [e.cause for e in self.events]


def evaluate(inp: WatchdogInputs, limits: SafetyLimits) -> SafetyDecision:
    """All watchdog rules at once. ``damp`` is True if any rule fires; each firing rule is an event."""
    ev: List[SafetyEvent] = []
    warn: List[str] = []
    t = inp.now
    if inp.estop_pressed:
        ev.append(SafetyEvent(t, ESTOP_BUTTON, "e-stop pressed on the remote"))
    if inp.last_state_time is None or t - inp.last_state_time > limits.state_timeout:
        age = float("inf") if inp.last_state_time is None else t - inp.last_state_time
        ev.append(SafetyEvent(t, STATE_LOST, "no valid robot state for %.0f ms (limit %.0f ms)"
                              % (age * 1e3, limits.state_timeout * 1e3)))
    recent = [x for x in inp.crc_failure_times if t - x <= limits.crc_window]
    if len(recent) >= limits.crc_failures_max:
        ev.append(SafetyEvent(t, CRC_FAILURES, "%d CRC failures in the last %.1f s" % (len(recent), limits.crc_window)))
    if inp.policy_active:
        stale = limits.stale_target_periods * limits.policy_dt
        if inp.last_target_time is None or t - inp.last_target_time > stale:
            age = float("inf") if inp.last_target_time is None else t - inp.last_target_time
            ev.append(SafetyEvent(t, STALE_TARGET, "policy target is %.1f ms old (limit %.1f ms)" % (age * 1e3, stale * 1e3)))
    if abs(inp.roll) > limits.max_roll_pitch or abs(inp.pitch) > limits.max_roll_pitch:
        ev.append(SafetyEvent(t, TILT, "roll %.2f / pitch %.2f rad beyond %.2f rad"
                              % (inp.roll, inp.pitch, limits.max_roll_pitch)))
    warm_from = min(limits.motor_temp_warn, limits.motor_temp_max)
    if any(x >= warm_from for x in inp.motor_temperature):  # (skips the arrays on the usual cool tick)
        temps = np.asarray(inp.motor_temperature, dtype=np.float64)
        hot = np.flatnonzero(temps >= limits.motor_temp_max)
        if len(hot):
            ev.append(SafetyEvent(t, OVER_TEMPERATURE, "motor(s) %s at %s C (limit %.0f C)" % (
                ", ".join(C.JOINT_NAMES_SIM[i] for i in hot), temps[hot].tolist(), limits.motor_temp_max)))
        warm = np.flatnonzero((temps >= limits.motor_temp_warn) & (temps < limits.motor_temp_max))
        if len(warm):
            warn.append("motor(s) %s above %.0f C" % (", ".join(C.JOINT_NAMES_SIM[i] for i in warm), limits.motor_temp_warn))
    return SafetyDecision(damp=bool(ev), events=ev, warnings=warn)


def is_fall(roll: float, pitch: float, limits: SafetyLimits) -> bool:
    """A tilt past the limit while running is a fall: the episode ends as terminal."""
    return abs(roll) > limits.max_roll_pitch or abs(pitch) > limits.max_roll_pitch
