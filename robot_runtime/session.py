"""The runtime session: the operator workflow state machine; the 50 Hz policy step (``session_policy``) and the
episodes (``session_episodes``) are mixed in from their own files.

    DAMPING --calibrate--> CALIBRATING (ramp to the default pose, <= ramp_step rad per step)
        --run--> RUNNING (policy) --pause--> PAUSED (hold the default pose) --run--> RUNNING ...
    any state --damping--> DAMPING; a safety event -> DAMPING (e-stop: ESTOP)

Policy step (RUNNING): :mod:`.session_policy`; episodes (ends, results, ``run_episode``, ``run``):
:mod:`.session_episodes`.

Python API (data collection, online PPO; the same loops, lock-step runs faster than real time)::

    session = RuntimeSession(cfg, link, policy, clock=LockstepClock(), t265=src, log=log)
    result = session.run_episode(command_schedule=(0.5, 0.0, 0.0), exploration=GaussianExploration(-1.0))
    session.close()

Python 3.8 syntax.
"""
import collections
from typing import Any, Callable, Deque, Dict, Optional, Sequence, Tuple

import numpy as np
from go1o4.robot_runtime import safety as S
from go1o4.robot_runtime.control import Driver, LinkLoop, LoopStats, WallClock
from go1o4.robot_runtime.episode_log import EpisodeLog
from go1o4.robot_runtime.link import Link
from go1o4.robot_runtime.operator import Command
from go1o4.robot_runtime.reward import StepRewardComputer
from go1o4.robot_runtime.session_config import SessionConfig
from go1o4.robot_runtime.session_episodes import EpisodeHandling
from go1o4.robot_runtime.session_policy import PolicyStep
from go1o4.robot_runtime.steps import (
    EpisodeBuffer,
    EpisodeRecorder,
    EpisodeRequest,
)

from go1o4 import contract as C

ARMED_STATES = (S.CALIBRATING, S.RUNNING, S.PAUSED)


class RuntimeSession(PolicyStep, EpisodeHandling):
    """State machine (this file) + policy step (:mod:`.session_policy`) + episodes (:mod:`.session_episodes`).

    Thread model: :meth:`step` runs in one thread (the policy loop)."""

    def __init__(self, config: SessionConfig, link: Optional[Link] = None, policy=None, clock=None, t265=None,
                 log: Optional[EpisodeLog] = None, inputs: Sequence[Any] = (), robot=None,
                 on_message: Optional[Callable[[str], None]] = None):
        """``link``: a :class:`robot_runtime.link.Link` (default: an ``SdkLink`` to the robot in ``config.robot``);
        ``clock``: WallClock (default) or LockstepClock; ``t265``: a started T265Source; ``robot``: the
        simulated Go1's handle (episode resets)."""
        config.validate()
        self.cfg, rt = config, config.runtime
        if link is None:
            from go1o4.robot_runtime.sdk_link import SdkLink

            r = config.robot
            link = SdkLink(r.robot_ip, r.robot_port, r.local_port)
        self.clock = clock if clock is not None else WallClock(rt.spin_s)
        self.loop = LinkLoop(link, self.clock, config.safety, config.remote.estop, rt.link_miss_tolerance_s,
                             rt.lockstep_recv_timeout_s, rt.rt_priority, rt.cpu_affinity)
        self.policy, self.t265, self.log, self.robot = policy, t265, log, robot
        self.inputs = list(inputs)
        self.on_message = on_message or (lambda msg: None)
        self.reward = StepRewardComputer(config.reward.name)
        self.stats = LoopStats(C.POLICY_DT, rt.policy_miss_tolerance_s)
        self.state, self.calibrated, self.quit_requested, self.steps = S.DAMPING, False, False, 0
        self.velocity = np.zeros(3)
        self.logging_on = bool(config.logging.enabled_at_start) and log is not None
        self.messages: Deque[str] = collections.deque(maxlen=100)
        self.inference: Deque[float] = collections.deque(maxlen=1 << 16)
        self.request: Optional[EpisodeRequest] = None
        self.recorder = EpisodeRecorder(log)
        self.last_reading, self.t265_problem = None, ""
        self._q_hold: Optional[np.ndarray] = None
        self._last_q_des: Optional[np.ndarray] = None
        self._ready_since: Optional[float] = None
        self._prev_now: Optional[float] = None
        self._last_input: Optional[Tuple[Any, np.ndarray]] = None  # (policy, input) of the last policy step
        self.prewarms = 0
        self._seq, self._noted, self.max_episodes = 0, False, None
        self.driver: Optional[Driver] = None
        self._posted: Deque[Command] = collections.deque()
        self._reset_controller()

    # ------------------------------------------------------------------ operator side
    def message(self, text: str) -> None:
        self.messages.append(text)
        self.on_message(text)

    def post(self, cmd: Command) -> None:
        """Queue a command from another thread; :meth:`step` applies it (thread-safe)."""
        self._posted.append(cmd)

    def handle(self, cmd: Command) -> None:
        """Apply one operator command now (policy-loop thread: remote, keyboard, scripts)."""
        n, st = cmd.name, self.state
        if n == "cycle":
            n = {S.DAMPING: "calibrate", S.ESTOP: "calibrate", S.CALIBRATING: "run", S.RUNNING: "pause",
                 S.PAUSED: "run"}[st]
        if n == "calibrate":
            if self.loop.latest is None:
                self.message("calibrate refused: no robot state received yet (robot on? network?)")
            elif st in (S.DAMPING, S.ESTOP, S.PAUSED):
                self._enter(S.CALIBRATING, "calibrating: ramp to the default pose (%s)" % cmd.source)
            elif st == S.RUNNING:
                self.message("calibrate refused while running: pause first")
        elif n == "run":
            if st == S.PAUSED or (st == S.CALIBRATING and self.calibrated):
                self._enter(S.RUNNING, "running the policy (%s)" % cmd.source)
            elif st == S.CALIBRATING:
                self.message("run refused: calibration not finished")
            elif st in (S.DAMPING, S.ESTOP):
                self.message("run refused: calibrate first (c / R2)")
        elif n == "pause" and st == S.RUNNING:
            self._enter(S.PAUSED, "paused: holding the default pose (%s)" % cmd.source, "operator_stop")
        elif n == "damping":
            self._enter(S.DAMPING, "damping (%s)" % cmd.source, "operator_stop")
        elif n == "toggle_logging":
            self.set_logging(not self.logging_on)
        elif n in ("velocity", "nudge"):
            v = np.asarray(cmd.value, dtype=np.float64) + (self.velocity if n == "nudge" else 0.0)
            self.velocity = self.cfg.commands.clip(v)
        elif n == "quit":
            self.quit_requested = True

    def set_logging(self, on: bool) -> None:
        if on and (self.log is None or not self.log.ok):
            self.message("logging unavailable: %s" % ("no log" if self.log is None else self.log.error))
            return
        if on != self.logging_on:
            self.logging_on = on
            self.message("logging %s" % ("on" if on else "off"))
            if self.episode is not None and self.request is None:  # the recorded unit changes: new episode
                self._end_episode("truncation", "logging_toggled", None)

    def _enter(self, state: int, text: str, reason: str = "") -> None:
        self._last_input = None  # cache warm-up only while RUNNING (a new RUNNING step sets it again)
        if self.episode is not None:
            self._end_episode("truncation", reason or "operator_stop", None)
        if state == S.DAMPING or state == S.ESTOP:
            self.loop.disarm()
            self.calibrated = False
        elif state == S.CALIBRATING:
            self._q_hold, self._ready_since, self.calibrated = None, None, False
            self.loop.arm()
        elif state == S.PAUSED:  # hold from the last target: no jump
            self._q_hold, self._ready_since = self._last_q_des, None
        elif state == S.RUNNING:
            self._reset_controller()
        self.state = state
        self.message(text)

    # ------------------------------------------------------------------ the 50 Hz step
    def step(self) -> None:
        """One policy period: safety events, operator input, then the state's action."""
        now = self.clock.now()
        for ev in self.loop.take_events():
            self._on_event(ev)
        if self.state in ARMED_STATES and not self.loop.armed:
            self._tripped(self.loop.tripped)
        st = self.loop.latest
        remote = st.remote if st is not None else None
        if self.t265 is not None and self.clock.lockstep:  # the samples the paused simulator sent up to now
            self.t265.await_fresh(now, 2 * C.POLICY_DT, self.cfg.runtime.lockstep_t265_wait_s)
        self.last_reading = None if self.t265 is None else self.t265.latest(now)
        while self._posted:
            self.handle(self._posted.popleft())
        for src in self.inputs:
            for cmd in src.poll(now, remote):
                self.handle(cmd)
        self._serve_request()
        if self.state == S.RUNNING:
            self._run_step(now, st)
        if self.state in (S.CALIBRATING, S.PAUSED):
            self._hold_step(now, st)
        if self.loop.thread_note and not self._noted:
            self._noted = True
            self.message("link loop: %s" % self.loop.thread_note)
        self.steps += 1

    def _serve_request(self) -> None:
        req = self.request
        if req is None:
            return
        if self.state == S.RUNNING:
            if self.episode is not None and not self.episode.requested:
                self._end_episode("truncation", "operator_stop", None)
            return
        if self.state in (S.DAMPING, S.ESTOP):
            if self.loop.latest is not None:
                self._enter(S.CALIBRATING, "calibrating for a requested episode")
        elif self.state == S.PAUSED or self.calibrated:
            self._enter(S.RUNNING, "running a requested episode")

    def _hold_step(self, now: float, st) -> None:
        if st is None:
            return
        if self._q_hold is None:
            self._q_hold = st.q.copy()
        self._q_hold, reached = S.ramp_toward(self._q_hold, C.DEFAULT_Q, self.cfg.safety.ramp_step)
        self._publish(self._q_hold, self.cfg.runtime.calibrate_kp, self.cfg.runtime.calibrate_kd, now)
        if reached and self._ready_since is None:
            self._ready_since = now
        if self.state == S.CALIBRATING and not self.calibrated and reached \
                and now - self._ready_since >= self.cfg.runtime.settle_s - 1e-9:
            self.calibrated = True
            self.message("calibrated: run with r / R2")

    # ------------------------------------------------------------------ safety
    def _event(self, doc: Dict[str, Any]) -> None:
        doc = dict(doc, state=S.STATE_NAMES[self.state],
                   episode=None if self.episode is None else self.episode.index,
                   step=None if self.episode is None else self.episode.steps)
        if self.log is not None:
            self.log.event(doc)

    def _on_event(self, ev: S.SafetyEvent) -> None:
        self.message("SAFETY %s: %s" % (ev.cause, ev.detail))
        self._event(ev.as_dict())

    def _tripped(self, ev: Optional[S.SafetyEvent]) -> None:
        cause = ev.cause if ev is not None else "safety"
        if self.episode is not None:
            fall = cause == S.TILT
            self._end_episode("terminal" if fall else "truncation", "fall" if fall else cause, None)
        if self.request is not None:  # a requested episode that never started
            self.request.result = EpisodeBuffer(self.episodes_done, self.clock.now(), 0).result(
                "truncation", cause, None, "")
            self.request = None
        self.state = S.ESTOP if cause == S.ESTOP_BUTTON else S.DAMPING
        self.calibrated, self._last_input = False, None
        self.message("DAMPING after %s%s: %s" % (cause, "" if ev is None else " (%s)" % ev.detail,
                                                 "calibrate again (c / R2) when it is safe"))

    # ------------------------------------------------------------------ running
    def start(self) -> "RuntimeSession":
        """Start the loops (threads on the wall clock; lock-step runs when waited on)."""
        if self.driver is None:
            rt = self.cfg.runtime
            self.driver = Driver(self.loop, self.step, self.stats, rt.rt_priority, rt.switch_interval_s,
                                 rt.policy_phase_s, self.prewarm, rt.prewarm_s, rt.gc_young_every).start()
        return self

    def close(self) -> None:
        """Damping, close an open episode (operator_stop) and the log."""
        if self.driver is not None:
            self.driver.stop()
        else:
            self.loop.stop()
        for ev in self.loop.take_events():
            self._on_event(ev)
        if self.episode is not None:
            self._end_episode("truncation", "operator_stop", None)
        self.state = S.DAMPING
        if self.log is not None:
            self.log.close()
