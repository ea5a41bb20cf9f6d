"""The session's episodes, read on their own; :class:`robot_runtime.session.RuntimeSession` mixes them in.

An episode lasts at most ``runtime.episode_steps`` steps (or a request's ``max_steps``); it ends ``terminal``
on a fall, else ``truncation`` with the reason (time limit, T265, operator stop, logging toggled, a safety
event). :meth:`run_episode` is the Python API of data collection and online training (one requested episode,
calibrating first, optionally resetting the simulated robot); :meth:`run` is the operator's workflow. Python 3.8.

Uses of the session: ``recorder`` (steps.EpisodeRecorder), ``reward``, ``cfg``, ``request``, ``velocity``,
``logging_on``, ``max_episodes``, ``robot`` (simulated resets), ``post`` / ``start`` / ``driver`` / ``state``.
"""
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from go1o4.robot_runtime import safety as S
from go1o4.robot_runtime.operator import Command
from go1o4.robot_runtime.steps import CommandSchedule, EpisodeBuffer, EpisodeRequest, EpisodeResult

from go1o4 import contract as C


class EpisodeHandling:
    """Begin / end episodes, their results, and the two ways to run them (requested, operator workflow)."""

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
        logged = ""
        if self.log is not None and self.log.error:
            logged = (", %d step(s) logged before logging stopped" % self.log.steps_on_disk() if result.log_path
                      else ", NOT logged (%s)" % self.log.error)
        elif result.log_path:
            logged = ", logged as %s" % os.path.basename(result.log_path)
        self.message("episode %d ended: %s (%s) after %d steps%s%s" % (
            result.index, end, reason, result.steps, logged,
            "; T265 vx: commanded %.2f, measured %.2f m/s on average, mean |error| %.3f m/s"
            % (tr["cmd_vx"], tr["vx"], tr["abs_vx_error"]) if tr else ""))
        if requested and self.request is not None:
            self.request.result = result
            self.request = None

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
