"""The runtime session: operator workflow state machine and the 50 Hz policy step.

    DAMPING --calibrate--> CALIBRATING (ramp to the default pose, <= ramp_step rad per step)
        --run--> RUNNING (policy) --pause--> PAUSED (hold the default pose) --run--> RUNNING ...
    any state --damping--> DAMPING; a safety event -> DAMPING (e-stop: ESTOP)

Policy step (RUNNING): RobotState -> contract.build_observation -> 5-step history -> policy ->
safety.check_action -> contract.action_to_q_des -> published target (the link loop clamps it with
safety.clamp_q_des at every send). T265 + reward (:class:`robot_runtime.reward.StepRewardComputer`)
every step; a bad T265 reading cuts the episode (truncation, its reason). Episodes: at most
``runtime.episode_steps`` steps; end ``terminal`` on a fall, else ``truncation`` with the reason.

Python API (data collection, online PPO; the same loops, lock-step runs faster than real time)::

    session = RuntimeSession(cfg, link, policy, clock=LockstepClock(), t265=src, log=log)
    result = session.run_episode(command_schedule=(0.5, 0.0, 0.0), exploration=GaussianExploration(-1.0))
    session.close()

Python 3.8 syntax.
"""
import collections
import os
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np
from go1o4.robot_runtime import safety as S
from go1o4.robot_runtime.control import Driver, LinkLoop, LoopStats, Target, WallClock
from go1o4.robot_runtime.episode_log import EpisodeLog
from go1o4.robot_runtime.operator import Command
from go1o4.robot_runtime.reward import StepRewardComputer
from go1o4.robot_runtime.session_config import SessionConfig
from go1o4.robot_runtime.steps import (
    CommandSchedule,
    EpisodeBuffer,
    EpisodeRecorder,
    EpisodeRequest,
    EpisodeResult,
    step_record,
)

from go1o4 import contract as C

ARMED_STATES = (S.CALIBRATING, S.RUNNING, S.PAUSED)


class RuntimeSession:
    """State machine + policy step. Thread model: :meth:`step` runs in one thread (the policy loop)."""

    def __init__(self, config: SessionConfig, link=None, policy=None, clock=None, t265=None,
                 log: Optional[EpisodeLog] = None, inputs: Sequence[Any] = (), robot=None,
                 on_message: Optional[Callable[[str], None]] = None):
        """``link``: an :class:`robot_runtime.sdk_link.SdkLink` (default: the robot in ``config.robot``);
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

    def _publish(self, q_des: np.ndarray, kp: float, kd: float, now: float) -> np.ndarray:
        """Clamp (safety.clamp_q_des with the current state) and hand the target to the link loop."""
        st = self.loop.latest
        q_des, _ = S.clamp_q_des(q_des, st.q, st.dq, kp, kd)
        self._seq += 1
        self._last_q_des = q_des
        self.loop.set_target(Target(q_des, kp, kd, now, self._seq, self.loop.latest_wall))
        return q_des

    def _reset_controller(self) -> None:
        self.history = C.ObservationHistory()
        self.last_action = np.zeros(C.NUM_ACTIONS)
        self.gait_index = 0.0

    def _run_step(self, now: float, st) -> None:
        if st is None:
            return
        req = self.request
        ep = self.episode
        t_ep = 0.0 if ep is None else now - ep.start_time
        cmd3 = req.command(t_ep, self.velocity) if req is not None else self.velocity
        cmd15 = C.command_vector(cmd3[0], cmd3[1], cmd3[2], self.cfg.commands.gait)
        obs = C.build_observation(st.quat_wxyz, st.q, st.dq, cmd15, self.last_action, self.gait_index)
        pin = self.history.push(obs)
        reading = self.last_reading
        bad_t265 = reading is not None and not reading.ok and self.cfg.runtime.t265_required
        self._t265_status(reading, bad_t265)
        if self.episode is None and (req is not None or not (bad_t265 or self._enough_episodes())):
            self._begin_episode(now, req)
        ep = self.episode
        if ep is not None:
            end = None
            if S.is_fall(st.rpy[0], st.rpy[1], self.cfg.safety):
                end = ("terminal", "fall")
            elif bad_t265:
                end = ("truncation", reading.reason)
            elif ep.steps >= ep.max_steps:
                end = ("truncation", "time_limit")
            if end is not None:
                self._end_episode(end[0], end[1], pin)
                if req is not None:  # the requested episode is over: hold the pose
                    self._enter(S.PAUSED, "episode done (%s): holding the default pose" % end[1])
                    return
                if end[1] == "fall":
                    return  # the watchdog puts the robot in damping
                if not (bad_t265 or self._enough_episodes()):
                    self._begin_episode(now, req)
        policy = (req.policy if req is not None and req.policy is not None else self.policy)
        self._last_input = (policy, pin)
        t0 = time.perf_counter()
        mean = policy.act(pin)
        t_inf = time.perf_counter() - t0
        self.inference.append(t_inf)
        action, log_prob = mean, float("nan")
        if req is not None and req.exploration is not None:
            action, log_prob = req.exploration.sample(mean)
        problem = S.check_action(action)
        if problem is not None:
            ev = S.SafetyEvent(now, S.BAD_ACTION, problem)
            self.loop.trip(ev, notify=False)
            self._on_event(ev)
            self._tripped(ev)
            return
        q_des = self._publish(C.action_to_q_des(action), C.KP, C.KD, now)
        self.recorder.flush(self.loop.first_sends)  # the previous step's target went out: latency known
        reward = float("nan")
        if reading is not None and reading.ok:
            reward = self.reward.step_reading(cmd3, reading, action, st.dq, prev_action=self.last_action).reward
        if self.episode is not None:
            value = float(req.value_fn(pin)) if (req is not None and req.value_fn is not None) else float("nan")
            timing = {"period_error": now - self._prev_now - C.POLICY_DT if self._prev_now is not None else 0.0,
                      "inference": t_inf, "state_age": now - self.loop.last_state_time,
                      "link_missed": float(self.loop.stats.missed), "clamped": float(self.loop.clamped)}
            rec = step_record(now, st, obs, pin, action, q_des, cmd15, reading, reward, self.state, timing,
                              log_prob if req is not None and req.exploration is not None else None,
                              value if req is not None and req.value_fn is not None else None)
            self.recorder.add(rec, self._seq, self.loop.latest_wall, self.loop.first_sends,
                              obs, pin, action, log_prob, value, reward, cmd3, reading)
        self._prev_now = now
        self.last_action = np.clip(action, -C.CLIP_ACTIONS, C.CLIP_ACTIONS)
        self.gait_index = float(C.advance_gait_index(self.gait_index, cmd15))

    def prewarm(self) -> None:
        """Run the last step's policy on its last input, result unused: its weights are in cache at the deadline."""
        last = self._last_input
        if last is not None:
            last[0].act(last[1])
            self.prewarms += 1

    def _t265_status(self, reading, bad: bool) -> None:
        problem = reading.reason if (reading is not None and bad) else ""
        if problem != self.t265_problem:
            if problem:
                refusal = getattr(self.t265, "refusal", "") if problem == "t265_foreign" else ""
                self.message("T265 %s: episode cut (truncation); the policy keeps running, a new episode starts "
                             "when the T265 is back%s" % (problem, "; " + refusal if refusal else ""))
                self._event({"cause": problem, "detail": "T265 reading not usable", "time": self.clock.now()})
            else:
                self.message("T265 ok again")
        self.t265_problem = problem

    # ------------------------------------------------------------------ episodes
    @property
    def episode(self) -> Optional[EpisodeBuffer]:
        return self.recorder.episode

    @property
    def episodes_done(self) -> int:
        return self.recorder.done

    @property
    def results(self) -> List[EpisodeResult]:
        return self.recorder.results

    def _enough_episodes(self) -> bool:
        return self.max_episodes is not None and self.recorder.done >= self.max_episodes

    def _begin_episode(self, now: float, req: Optional[EpisodeRequest]) -> None:
        self.reward.reset()
        meta = {"start_time": now, "velocity_command": self.velocity, "requested": req is not None,
                "stochastic": bool(req is not None and req.exploration)}
        meta.update(req.meta if req is not None else {})
        self.recorder.begin(now, time.perf_counter(), req.max_steps if req is not None else self.cfg.runtime.episode_steps,
                            req is not None, req.record if req is not None else self.logging_on, meta)

    def _end_episode(self, end: str, reason: str, final_pin: Optional[np.ndarray]) -> None:
        if self.recorder.episode is None:
            return
        requested = self.recorder.episode.requested
        result = self.recorder.end(end, reason, final_pin, self.loop.first_sends, time.perf_counter())
        tr = result.tracking
        self.message("episode %d ended: %s (%s) after %d steps%s%s" % (
            result.index, end, reason, result.steps,
            ", logged as %s" % os.path.basename(result.log_path) if result.log_path else "",
            "; T265 vx: commanded %.2f, measured %.2f m/s on average, mean |error| %.3f m/s"
            % (tr["cmd_vx"], tr["vx"], tr["abs_vx_error"]) if tr else ""))
        if requested and self.request is not None:
            self.request.result = result
            self.request = None

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
        self.calibrated = False
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

    def run_episode(self, policy=None, command_schedule: CommandSchedule = None, max_steps: Optional[int] = None,
                    exploration=None, value_fn: Optional[Callable[[np.ndarray], float]] = None, record: bool = True,
                    reset_pose: Optional[str] = None, meta: Optional[Dict[str, Any]] = None,
                    timeout: Optional[float] = None) -> EpisodeResult:
        """Calibrate if needed, run one episode, hold the default pose; return what happened.

        ``command_schedule``: (vx, vy, yaw rate) or f(seconds since the episode start); ``exploration``:
        a :class:`robot_runtime.policy.GaussianExploration` (stochastic actions, log-prob recorded);
        ``value_fn(policy_input) -> V`` is recorded as ``value``; ``reset_pose`` ("standing"/"lying")
        resets a simulated robot first (needs ``robot``). ``timeout`` in wall seconds.
        """
        if reset_pose is not None:
            if self.robot is None:
                raise ValueError("reset_pose needs the simulated robot handle (robot=...)")
            self.post(Command("damping", (), "api"))
            self.start().driver.run_until(lambda: self.state == S.DAMPING and not self._posted, timeout=5.0)
            self.robot.reset(reset_pose)
            t_reset = self.clock.now()  # calibrate from a state measured after the reset
            self.driver.run_until(lambda: (self.loop.last_state_time or -1.0) > t_reset + 2 * C.LINK_DT, timeout=5.0)
        req = EpisodeRequest(command_schedule, int(max_steps or self.cfg.runtime.episode_steps), policy,
                             exploration, value_fn, record, dict(meta or {}))
        if req.policy is None and self.policy is None:
            raise ValueError("no policy: pass one to RuntimeSession or run_episode")
        self.request = req
        if not self.start().driver.run_until(lambda: req.result is not None, timeout=timeout):
            self.request = None
            raise TimeoutError("episode did not finish within %.1f s (state %s)" % (timeout, S.STATE_NAMES[self.state]))
        return req.result

    def run(self, duration: Optional[float] = None, episodes: Optional[int] = None,
            on_idle: Optional[Callable[[], None]] = None, idle_every: float = 0.2) -> None:
        """The operator workflow until quit, ``duration`` s of session time or ``episodes`` finished."""
        t0, self.max_episodes = self.clock.now(), episodes

        def done() -> bool:
            return (self.quit_requested or (duration is not None and self.clock.now() - t0 >= duration)
                    or (episodes is not None and self.episodes_done >= episodes))
        self.start().driver.run_until(done, on_idle=on_idle, idle_every=idle_every)

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
