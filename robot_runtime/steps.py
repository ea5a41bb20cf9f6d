"""Per-step log records, episode bookkeeping and per-episode results of the runtime (no file I/O here).

:func:`step_record` builds the dict one policy step appends to the episode log (field names of
:mod:`data.log_format`; timing as ``extra_*``). :class:`EpisodeRecorder` keeps the open episode and
hands steps to the log one step late, once the link loop reported when that step's command went out
(state -> command latency). :class:`EpisodeResult` is what
:meth:`robot_runtime.session.RuntimeSession.run_episode` returns to data collection and online PPO.
Python 3.8 syntax.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from go1o4 import contract as C

_NAN3 = np.full(3, np.nan)
CommandSchedule = Union[Sequence[float], Callable[[float], Sequence[float]], None]
T265_FIELDS = ("t265_position", "t265_velocity_world", "t265_velocity_body", "t265_acceleration", "t265_rpy",
               "t265_angular_velocity", "t265_angular_acceleration")
TIMING_FIELDS = ("period_error", "inference", "state_age", "link_missed", "clamped")


def step_record(now: float, st, obs: np.ndarray, policy_input: np.ndarray, action: np.ndarray, q_des: np.ndarray,
                command: np.ndarray, reading, reward: float, safety_state: int, timing: Dict[str, float],
                log_prob: Optional[float] = None, value: Optional[float] = None) -> Dict[str, Any]:
    """One step for :class:`data.writer.EpisodeWriter` (every field present at every step: the first fixes them)."""
    rec: Dict[str, Any] = {
        "time": now, "tick": st.tick, "q": st.q, "dq": st.dq, "tau_est": st.tau_est, "imu_quat": st.quat_wxyz,
        "imu_gyro": st.gyro, "imu_acc": st.accelerometer, "imu_rpy": st.rpy, "foot_force": st.foot_forces,
        "obs": obs, "policy_input": policy_input, "action": action, "q_des": q_des, "command": command,
        "reward": reward, "safety_state": safety_state,
    }
    for name in T265_FIELDS:
        rec[name] = _NAN3
    rec["t265_confidence"] = -1
    if reading is not None and reading.sample is not None:
        rec.update(reading.log_fields())
    for name in TIMING_FIELDS:
        rec["extra_" + name] = timing.get(name, np.nan)
    rec["extra_t265_age"] = np.nan if reading is None else min(reading.age_s, 1e9)
    if log_prob is not None:
        rec["log_prob"] = log_prob
    if value is not None:
        rec["value"] = value
    return rec


@dataclass
class EpisodeResult:
    """One finished episode. ``end``: ``terminal`` (fall) or ``truncation`` (bootstrap from
    ``final_policy_input`` when it is given). Arrays are (T, ...); log_prob/value NaN when not used."""

    index: int
    end: str
    reason: str
    steps: int
    log_path: str = ""
    obs: np.ndarray = field(default_factory=lambda: np.zeros((0, C.OBS_DIM)))
    policy_input: np.ndarray = field(default_factory=lambda: np.zeros((0, C.POLICY_INPUT_DIM)))
    action: np.ndarray = field(default_factory=lambda: np.zeros((0, C.NUM_ACTIONS)))
    log_prob: np.ndarray = field(default_factory=lambda: np.zeros(0))
    value: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reward: np.ndarray = field(default_factory=lambda: np.zeros(0))
    command: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    v_body: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    final_policy_input: Optional[np.ndarray] = None
    wall_time: float = 0.0
    #: means over the steps with a valid T265 reading: commanded and measured vx, |vx error| (m/s)
    tracking: Dict[str, float] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.end == "terminal"


class EpisodeBuffer:
    """Bookkeeping of the open episode; keeps the arrays only for requested (API) episodes."""

    _COLS = ("obs", "policy_input", "action", "log_prob", "value", "reward", "command", "v_body")

    def __init__(self, index: int, start_time: float, max_steps: int, keep: bool = False, wall: float = 0.0):
        self.index, self.start_time, self.max_steps = index, start_time, max_steps
        self.requested = keep
        self.steps, self.logged, self.start_wall = 0, False, wall
        self.cols: Dict[str, List[Any]] = {k: [] for k in self._COLS} if keep else {}
        self._track = np.zeros(4)  # n, sum commanded vx, sum measured vx, sum |vx error|

    def add(self, obs, policy_input, action, log_prob: float, value: float, reward: float, command, reading) -> None:
        self.steps += 1
        v = _NAN3 if reading is None else reading.v_body
        if np.isfinite(v[0]):
            cmd_vx = float(command[0])
            self._track += (1.0, cmd_vx, float(v[0]), abs(float(v[0]) - cmd_vx))
        if not self.requested:
            return
        for k, x in zip(self._COLS, (obs, policy_input, action, log_prob, value, reward, command, v)):
            self.cols[k].append(np.array(x, dtype=np.float64))

    def result(self, end: str, reason: str, final_policy_input: Optional[np.ndarray], log_path: str,
               wall_now: float = 0.0) -> EpisodeResult:
        arrays = {}
        for k in self._COLS if self.requested else ():
            if self.cols[k]:
                arrays[k] = np.stack(self.cols[k])
        fin = None if final_policy_input is None else np.array(final_policy_input, dtype=np.float64)
        n = self._track[0]
        tracking = {} if n == 0 else dict(zip(("cmd_vx", "vx", "abs_vx_error"), (self._track[1:] / n).tolist()))
        return EpisodeResult(self.index, end, reason, self.steps, log_path, final_policy_input=fin,
                             wall_time=max(0.0, wall_now - self.start_wall), tracking=tracking, **arrays)


@dataclass
class EpisodeRequest:
    """What :meth:`robot_runtime.session.RuntimeSession.run_episode` asks the policy step for."""

    command_schedule: CommandSchedule = None  # (vx, vy, yaw) or f(t since start) -> (vx, vy, yaw); None: operator
    max_steps: int = C.EPISODE_STEPS
    policy: Any = None  # None: the session's policy
    exploration: Any = None  # robot_runtime.policy.GaussianExploration: stochastic actions + log-prob
    value_fn: Optional[Callable[[np.ndarray], float]] = None
    record: bool = True
    meta: Dict[str, Any] = field(default_factory=dict)
    result: Optional[EpisodeResult] = None

    def command(self, t: float, default: np.ndarray) -> np.ndarray:
        s = self.command_schedule
        if s is None:
            return default
        return np.asarray(s(t) if callable(s) else s, dtype=np.float64).reshape(3)


class EpisodeRecorder:
    """The open episode of a session: :class:`EpisodeBuffer` + the episode log (an EpisodeLog or None)."""

    def __init__(self, log=None):
        self.log = log
        self.episode: Optional[EpisodeBuffer] = None
        self.done = 0  # episodes ended so far
        self.results: List[EpisodeResult] = []  # the last few
        self._pending: Optional[Dict[str, Any]] = None

    def begin(self, now: float, wall: float, max_steps: int, keep: bool, record: bool, meta: Dict[str, Any]) -> None:
        self.episode = EpisodeBuffer(self.done, now, max_steps, keep, wall)
        self._pending = None
        if record and self.log is not None:
            self.episode.logged = self.log.start_episode(dict(meta, index=self.done))

    def add(self, rec: Dict[str, Any], seq: int, state_wall: float, first_sends, *columns) -> None:
        """One step: ``rec`` for the log (sent at the next step), ``columns`` for EpisodeBuffer.add."""
        self.flush(first_sends)
        rec["_seq"], rec["_state_wall"] = seq, state_wall
        self._pending = rec
        self.episode.add(*columns)

    def flush(self, first_sends) -> None:
        """Log the held step; ``first_sends``: (target seq, perf_counter of its first send) pairs."""
        rec, self._pending = self._pending, None
        if rec is None or self.episode is None or not self.episode.logged:
            return
        seq = rec.pop("_seq")
        sent = next((w for q, w in list(first_sends) if q == seq), float("nan"))
        rec["extra_latency"] = sent - rec.pop("_state_wall")
        self.log.append(rec)

    def end(self, end: str, reason: str, final_pin: Optional[np.ndarray], first_sends, wall: float) -> EpisodeResult:
        ep = self.episode
        self.flush(first_sends)
        if ep.logged:
            self.log.end_episode(end, reason)
        on_disk = ep.logged and self.log.steps_on_disk() > 0  # never "logged" with 0 steps on disk
        result = ep.result(end, reason, final_pin, self.log.episode_path if on_disk else "", wall)
        self.episode = None
        self.done += 1
        self.results = (self.results + [result])[-20:]
        return result
