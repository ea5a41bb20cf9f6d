"""Two-rate control: the 500 Hz link loop with its watchdog, and the driver of both loops.

The link loop (:class:`LinkLoop`) owns the SDK link. Every link period it takes the newest LowState,
runs the watchdog (:func:`robot_runtime.safety.evaluate`), and sends the newest policy target through
:func:`robot_runtime.safety.clamp_q_des` -- or damping if it is not armed or a rule fired (latched until
the session re-arms it). The 50 Hz policy step lives in :mod:`robot_runtime.session`; :class:`Driver`
runs both: two threads with absolute deadlines on a :class:`robot_runtime.clock.WallClock`, or one
thread on a :class:`robot_runtime.clock.LockstepClock` (each LowCmd advances the lock-step simulator
one 2 ms link period, so the same code runs faster than real time for data collection).
Python 3.8 syntax.
"""
import collections
import gc
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Deque, FrozenSet, List, Optional, Sequence, Set

import numpy as np
from go1o4.robot_runtime import safety as S
from go1o4.robot_runtime.clock import (
    LockstepClock,
    LoopStats,
    WallClock,
    inherited_priority,
    make_realtime_thread,
    percentiles_ms,
)
from go1o4.robot_runtime.robot_state import RobotState

from go1o4 import contract as C

__all__ = ["Driver", "LinkLoop", "LockstepClock", "LoopStats", "Target", "WallClock", "percentiles_ms"]
_TICK_MS = int(round(C.LINK_DT * 1000))  # the robot's tick counter advances 2 ms per link period


# ----------------------------------------------------------------------------- the link loop
@dataclass
class Target:
    """A joint target published by the policy step (sim order). Times: clock and perf_counter."""

    q_des: np.ndarray
    kp: float
    kd: float
    time: float
    seq: int
    state_wall: float  # perf_counter when the state it was computed from arrived


class LinkLoop:
    """500 Hz: newest state -> watchdog -> clamp -> send (or damping). Thread-safe towards the session."""

    def __init__(self, link, clock, limits: S.SafetyLimits, estop_combos: Sequence[Sequence[str]] = (),
                 miss_tolerance: float = 0.001, recv_timeout: float = 0.02, rt_priority: int = 0,
                 cpus: Sequence[int] = ()):
        self.link, self.clock, self.limits = link, clock, limits
        self.estop_combos: List[FrozenSet[str]] = [frozenset(c) for c in estop_combos]
        self.recv_timeout, self.rt_priority, self.cpus = recv_timeout, rt_priority, tuple(cpus)
        self.stats = LoopStats(C.LINK_DT, miss_tolerance)
        self._lock = threading.Lock()
        self._target: Optional[Target] = None
        self.armed, self._armed_at = False, None
        self.latest: Optional[RobotState] = None
        self.latest_wall = float("nan")
        self.last_state_time: Optional[float] = clock.now()  # grace: state_lost only after state_timeout
        self._since_state = 0  # link periods since the last accepted state
        self._crc_seen = 0
        self.crc_times: Deque[float] = collections.deque(maxlen=4 * max(1, limits.crc_failures_max))
        self.active: Set[str] = set()  # watchdog causes firing now (edge detection)
        self.bad_state = False
        self.events: Deque[S.SafetyEvent] = collections.deque()  # new events, taken by the session
        self.tripped: Optional[S.SafetyEvent] = None
        self.warnings: List[str] = []
        self.ticks = self.damping_sends = self.target_sends = self.clamped = self.out_of_order = 0
        self.trip_time: Optional[float] = None  # clock time of the last trip
        self.damping_after_trip: Optional[float] = None  # clock time damping was first sent after it
        self.sent_seq, self.first_send_wall = -1, float("nan")
        self.first_sends: Deque = collections.deque(maxlen=16)  # (target seq, perf_counter of its first send)
        self.latencies: Deque[float] = collections.deque(maxlen=1 << 17)  # state -> command, s (wall)
        self.last_tick_wall = float("nan")
        self._thread: Optional[threading.Thread] = None
        self._running = False
        self.thread_note = ""
        self.heartbeat: Optional[Callable[[], None]] = None  # the dead-man's (robot_runtime.deadman), every period

    # ------------------------------------------------------------------ session side
    def set_target(self, target: Target) -> None:
        self._target = target

    def arm(self) -> None:
        """Start sending targets (calibrate/run); clears a latched trip (a cause still firing trips it again)."""
        with self._lock:
            self.tripped = self.trip_time = self.damping_after_trip = None
            self._armed_at = self.clock.now()  # no target yet: stale only after stale_target_periods
            self.armed = True

    def disarm(self) -> None:
        with self._lock:
            self.armed = False
            self._target = None

    def trip(self, event: S.SafetyEvent, notify: bool = True) -> None:
        """Damping from the next link period on, latched until :meth:`arm` (bad action, runtime error)."""
        with self._lock:
            if self.armed:
                self._mark_trip(event)
            self.armed, self._target = False, None
        if notify:
            self.events.append(event)

    def _mark_trip(self, event: S.SafetyEvent) -> None:
        self.tripped, self.trip_time, self.damping_after_trip = event, self.clock.now(), None

    def take_events(self) -> List[S.SafetyEvent]:
        out = []
        while self.events:
            out.append(self.events.popleft())
        return out

    # ------------------------------------------------------------------ one link period
    def _receive(self, timeout: float) -> Optional[RobotState]:
        """Take the newest LowState (None: none, or refused as bad / out of order)."""
        st = self.link.receive(timeout)
        now = self.clock.now()
        crc = self.link.crc_failures
        for _ in range(crc - self._crc_seen):
            self.crc_times.append(now)
        self._crc_seen = crc
        if st is None:
            return None
        bad = S.check_state(st.quat_wxyz, st.q, st.dq)
        if bad is not None:
            if not self.bad_state:
                self.bad_state = True
                self._raise([S.SafetyEvent(now, S.BAD_STATE, bad)])
            return None
        self.bad_state = False
        if self.latest is not None and self.latest.tick - 1000 < st.tick < self.latest.tick:
            self.out_of_order += 1  # a reordered, older datagram: keep the newer state
            return None
        self.latest, self.latest_wall, self.last_state_time = st, time.perf_counter(), now
        self._since_state = 0
        return st

    def _await_reply(self, timeout: float) -> None:
        """Lock-step: wait (wall ``timeout``) for the reply to this LowCmd, known by its tick, so that a slow
        simulator never turns into a lost packet; older (delayed) replies are taken on the way."""
        self._since_state += 1
        want = None if self.latest is None else self.latest.tick + _TICK_MS * self._since_state
        end = time.perf_counter() + timeout
        while True:
            st = self._receive(max(0.0, end - time.perf_counter()))
            if st is None or want is None or st.tick >= want:
                return

    def _estop(self, st: Optional[RobotState]) -> bool:
        if st is None or not self.estop_combos:
            return False
        pressed = st.remote.get("buttons", ())
        return any(c.issubset(pressed) for c in self.estop_combos)

    def _raise(self, new: List[S.SafetyEvent]) -> None:
        """Queue new events for the session; if armed, trip to damping (latched)."""
        if not new:
            return
        with self._lock:
            if self.armed:
                self.armed, self._target = False, None
                self._mark_trip(new[0])
        self.events.extend(new)

    def watchdog(self, now: float) -> S.SafetyDecision:
        st = self.latest
        rpy = st.rpy if st is not None else (0.0, 0.0, 0.0)
        temps = tuple(st.temperature.tolist()) if st is not None else ()
        d = S.evaluate(S.WatchdogInputs(
            now=now, last_target_time=self._armed_at if self._target is None else self._target.time,
            last_state_time=self.last_state_time, crc_failure_times=tuple(self.crc_times),
            roll=float(rpy[0]), pitch=float(rpy[1]), motor_temperature=temps,
            estop_pressed=self._estop(st), policy_active=self.armed), self.limits)
        self.warnings = d.warnings
        new = [e for e in d.events if e.cause not in self.active]
        self.active = set(d.causes)
        self._raise(new)
        if d.damp and self.armed:  # re-armed while a cause still fires: trip again (no new event)
            with self._lock:
                self.armed, self._target = False, None
                self._mark_trip(d.events[0])
        return d

    def tick(self) -> None:
        """One link period. Real time: read, decide, send. Lock-step: decide, send, wait for the reply."""
        t0 = time.perf_counter()
        if not self.clock.lockstep:
            self._receive(0.0)
        self.watchdog(self.clock.now())
        target, st = self._target, self.latest
        if self.armed and target is not None and st is not None:
            q_des, mask = S.clamp_q_des(target.q_des, st.q, st.dq, target.kp, target.kd)
            self.link.send(q_des, 0.0, target.kp, target.kd, 0.0)
            self.target_sends += 1
            self.clamped += int(mask.any())
            if target.seq != self.sent_seq:
                self.sent_seq, self.first_send_wall = target.seq, time.perf_counter()
                self.first_sends.append((target.seq, self.first_send_wall))
                self.latencies.append(self.first_send_wall - target.state_wall)
        else:
            self.link.send_damping()
            self.damping_sends += 1
            if self.trip_time is not None and self.damping_after_trip is None:
                self.damping_after_trip = self.clock.now()
        if self.clock.lockstep:
            now = self.clock.now()
            self.clock.advance()
            self._await_reply(self.recv_timeout)
            self.stats.record(now, now, time.perf_counter() - t0)
        self.ticks += 1
        self.last_tick_wall = t0
        if self.heartbeat is not None:
            self.heartbeat()

    # ------------------------------------------------------------------ real-time thread
    def start(self, t0: Optional[float] = None) -> "LinkLoop":
        """Run in a thread with deadlines t0 + k * 2 ms (default t0: now)."""
        if self.clock.lockstep:
            raise RuntimeError("a lock-step link loop is driven by the session, not by a thread")
        self._t0 = self.clock.now() if t0 is None else t0
        self._running = True
        self._thread = threading.Thread(target=self._run, name="link-500Hz", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        self.thread_note = make_realtime_thread(self.rt_priority, self.cpus)
        dt, deadline = C.LINK_DT, self._t0
        while self._running:
            self.clock.sleep_until(deadline)
            wake = time.perf_counter()
            try:
                self.tick()
            except Exception as e:  # noqa: BLE001 - never leave the robot without commands silently
                self.trip(S.SafetyEvent(self.clock.now(), "link_error", "link loop error: %s" % e))
                self._safe_damping()
            self.stats.record(wake, deadline, time.perf_counter() - wake)
            deadline += dt
            behind = time.perf_counter() - deadline
            if behind > dt:  # overran whole periods: skip them rather than burst
                k = int(behind / dt)
                self.stats.skipped += k
                deadline += k * dt

    def _safe_damping(self) -> None:
        try:
            self.link.send_damping()
        except Exception:  # noqa: BLE001 - the socket itself is broken; nothing else to try
            pass

    def stop(self, damping_ticks: int = 10) -> None:
        """Stop the thread, then leave the robot in damping (a few packets, in case some are lost)."""
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.disarm()
        for _ in range(damping_ticks):
            self._safe_damping()
            if self.clock.lockstep:
                self.clock.advance()
                self.link.receive(0.002)
            else:
                time.sleep(C.LINK_DT)


# ----------------------------------------------------------------------------- driving both loops
class Driver:
    """Runs the link loop and the 50 Hz ``step``: two threads on the wall clock (absolute deadlines),
    or, with a :class:`LockstepClock`, in the caller's thread: ``step`` then 10 link ticks per period."""

    def __init__(self, link_loop: LinkLoop, step: Callable[[], None], stats: LoopStats, rt_priority: int = 0,
                 switch_interval: float = 0.0002, policy_phase: float = 0.0008,
                 prewarm: Optional[Callable[[], None]] = None, prewarm_lead: float = 0.0, gc_young_every: int = 0):
        self.loop, self.step, self.stats, self.rt_priority = link_loop, step, stats, rt_priority
        self.policy_phase = policy_phase  # policy deadlines this long after a link deadline: no overlap
        # cache warming: ``prewarm()`` runs ``prewarm_lead`` s before each policy deadline (its result unused)
        self.prewarm, self.prewarm_lead = prewarm, prewarm_lead
        self.gc_young_every, self.gc_young_runs = int(gc_young_every), 0
        self.switch_interval, self._saved_switch = switch_interval, None
        self.clock = link_loop.clock
        self.lockstep_wall: Deque[float] = collections.deque(maxlen=1 << 17)  # wall s per lock-step period
        self.error = ""
        self._thread: Optional[threading.Thread] = None
        self._running = False

    def start(self) -> "Driver":
        if self.clock.lockstep or self._thread is not None:
            return self
        # A full garbage collection holds the GIL for 100+ ms with a big heap (measured 160 ms with torch
        # loaded): collect now, then freeze what exists so that later collections stay small.
        gc.collect()
        gc.freeze()
        # a thread holding the GIL delays the other by up to the switch interval (default 5 ms)
        self._saved_switch = sys.getswitchinterval()
        sys.setswitchinterval(self.switch_interval)
        self._t0 = self.clock.now() + 0.01
        self.loop.start(self._t0)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="policy-50Hz", daemon=True)
        self._thread.start()
        return self

    def _fail(self, e: BaseException) -> None:
        self.error = "%s: %s" % (type(e).__name__, e)
        self.loop.trip(S.SafetyEvent(self.clock.now(), "runtime_error", "policy step failed: %s" % self.error))

    def _run(self) -> None:
        make_realtime_thread(max(0, self.rt_priority - 1), self.loop.cpus)
        dt, deadline, n = C.POLICY_DT, self._t0 + self.policy_phase, 0
        while self._running:
            if self.prewarm is not None and self.prewarm_lead > 0:
                self.clock.sleep_until(deadline - self.prewarm_lead)
                try:
                    self.prewarm()
                except Exception:  # noqa: BLE001 - only a cache warm-up; the step itself reports real problems
                    pass
            self.clock.sleep_until(deadline)
            wake = time.perf_counter()
            try:
                self.step()
            except Exception as e:  # noqa: BLE001 - damping first, then report
                self._fail(e)
                self._running = False
            self.stats.record(wake, deadline, time.perf_counter() - wake)
            n += 1
            if self.gc_young_every and n % self.gc_young_every == 0 and not gc.isenabled():
                gc.collect(0)  # automatic GC is off in run_until: the young generation, here, right after a step
                self.gc_young_runs += 1
            deadline += dt
            behind = time.perf_counter() - deadline
            if behind > dt:
                k = int(behind / dt)
                self.stats.skipped += k
                deadline += k * dt

    def lockstep_period(self) -> None:
        w0, now = time.perf_counter(), self.clock.now()
        try:
            self.step()
            self.stats.record(self.clock.now(), now, time.perf_counter() - w0)
            for _ in range(int(round(C.POLICY_DT / C.LINK_DT))):
                self.loop.tick()
        except Exception as e:
            self._fail(e)
            raise
        self.lockstep_wall.append(time.perf_counter() - w0)

    def run_until(self, done: Callable[[], bool], timeout: Optional[float] = None,
                  on_idle: Optional[Callable[[], None]] = None, idle_every: float = 0.2) -> bool:
        """Run (lock-step) or wait (real time) until ``done()``; False on timeout (wall s)."""
        if not self.clock.lockstep:  # a waiting thread holding the GIL must not be preempted (priority inversion)
            gc.freeze()  # objects made since (e.g. by a trainer between episodes) are not scanned in the loops
            automatic = gc.isenabled() and self.gc_young_every > 0
            if automatic:  # no collection at an arbitrary moment: the policy thread collects the young generation
                gc.disable()
            try:
                with inherited_priority(max(0, self.rt_priority - 3)):
                    return self._wait(done, timeout, on_idle, idle_every)
            finally:
                if automatic:
                    gc.enable()
        make_realtime_thread(0)  # lock-step: 1 ns timer slack for the short polls waiting for each reply
        return self._wait(done, timeout, on_idle, idle_every)

    def _wait(self, done: Callable[[], bool], timeout: Optional[float], on_idle: Optional[Callable[[], None]],
              idle_every: float) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        next_idle = time.monotonic()
        while not done():
            if self.error:
                raise RuntimeError("the policy loop stopped: %s (robot in damping)" % self.error)
            if end is not None and time.monotonic() > end:
                return False
            if self.clock.lockstep:
                self.lockstep_period()
            else:
                time.sleep(0.005)
            if on_idle is not None and time.monotonic() >= next_idle:
                next_idle += idle_every
                on_idle()
        return True

    def stop(self) -> None:
        """Stop both loops; the robot is left in damping."""
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.loop.stop()
        if self._saved_switch is not None:
            sys.setswitchinterval(self._saved_switch)
            self._saved_switch = None
