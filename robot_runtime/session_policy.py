"""The session's 50 Hz policy step (state RUNNING), read on its own; :class:`robot_runtime.session.RuntimeSession`
mixes it in.

RobotState -> contract.build_observation -> 5-step history -> policy -> safety.check_action ->
contract.action_to_q_des -> published target (the link loop clamps it with safety.clamp_q_des at every send).
T265 + reward every step; a bad T265 reading cuts the episode (truncation, its reason); a fall ends it
(terminal). The step record goes to the episode recorder. Python 3.8 syntax.

Uses of the session: ``cfg``, ``loop`` (control.LinkLoop), ``clock``, ``policy``, ``request`` / ``velocity``
(what to command), ``recorder`` / ``reward`` (episodes), and its state machine's ``_enter``, ``_on_event``,
``_tripped``, ``_event``, ``message`` and the episode handling's ``_begin_episode`` / ``_end_episode``.
"""
import time

import numpy as np
from go1o4.robot_runtime import safety as S
from go1o4.robot_runtime.control import Target
from go1o4.robot_runtime.steps import step_record

from go1o4 import contract as C


class PolicyStep:
    """The policy side of a RuntimeSession: observation history, policy, action checks, published targets."""

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
        if last is not None and self.state == S.RUNNING:  # never while the robot is in damping (issue 14.4)
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
