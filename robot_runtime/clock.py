"""Clocks and loop timing for the runtime's two loops (pure timing, no robot I/O).

:class:`WallClock`: ``time.perf_counter`` with absolute-deadline sleeps (sleep, then spin the last
``spin`` seconds). :class:`LockstepClock`: the lock-step simulator's time, advanced one 2 ms link
period per LowCmd, never sleeping -- the same loops then run faster than real time.
:class:`LoopStats`: wake-up times vs deadlines -> period error, lateness, work time, missed deadlines.
Python 3.8 syntax.
"""
import ctypes
import os
import time
from typing import Dict, Sequence

import numpy as np

from go1o4 import contract as C

_PR_SET_TIMERSLACK = 29


# ----------------------------------------------------------------------------- clocks
class WallClock:
    """Real time: ``now`` is ``time.perf_counter``; :meth:`sleep_until` sleeps, then spins ``spin`` s."""

    lockstep = False

    def __init__(self, spin: float = 0.0004):
        self.spin = spin

    def now(self) -> float:
        return time.perf_counter()

    def sleep_until(self, deadline: float) -> None:
        remaining = deadline - time.perf_counter()
        if remaining > self.spin:
            time.sleep(remaining - self.spin)
        while time.perf_counter() < deadline:
            pass


class LockstepClock:
    """Simulator time in a lock-step run: ``ticks`` LowCmds sent so far, times 2 ms. Never sleeps."""

    lockstep = True

    def __init__(self):
        self.ticks = 0

    def now(self) -> float:
        return self.ticks * C.LINK_DT

    def advance(self) -> None:
        self.ticks += 1

    def sleep_until(self, deadline: float) -> None:
        return None


def make_realtime_thread(priority: int, cpus: Sequence[int] = ()) -> str:
    """Best effort for the calling thread: 1 ns timer slack, SCHED_FIFO ``priority`` (0: leave), pinned to
    ``cpus`` (empty: leave). Returns a note for the operator."""
    notes = []
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        notes.append("timer slack unchanged")
    if priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(priority)))
            notes.append("SCHED_FIFO %d" % priority)
        except (OSError, AttributeError) as e:
            notes.append("SCHED_FIFO %d refused (%s): normal priority" % (priority, e))
    if cpus:
        try:
            os.sched_setaffinity(0, set(int(c) for c in cpus))
            notes.append("CPUs %s" % sorted(cpus))
        except (OSError, AttributeError, ValueError) as e:
            notes.append("CPU affinity %s refused (%s)" % (list(cpus), e))
    return ", ".join(notes)


# ----------------------------------------------------------------------------- timing statistics
class LoopStats:
    """Wake-up times of a periodic loop vs its absolute deadlines (ring buffer of ``capacity``)."""

    def __init__(self, period: float, miss_tolerance: float, capacity: int = 1 << 19):
        self.period, self.tol = period, miss_tolerance
        self.wake = np.zeros(capacity)
        self.late = np.zeros(capacity)
        self.work = np.zeros(capacity)
        self.n = 0
        self.missed = 0  # woke later than deadline + tolerance
        self.skipped = 0  # whole periods skipped after an overrun

    def record(self, wake: float, deadline: float, work: float) -> None:
        i = self.n % len(self.wake)
        self.wake[i], self.late[i], self.work[i] = wake, wake - deadline, work
        self.n += 1
        if wake - deadline > self.tol:
            self.missed += 1

    def _recent(self, a: np.ndarray) -> np.ndarray:
        n = min(self.n, len(a))
        if self.n <= len(a):
            return a[:n]
        i = self.n % len(a)
        return np.concatenate([a[i:], a[:i]])

    def summary(self) -> Dict[str, float]:
        """Period error |dt_k - T|, lateness and work time: p50/p99/max in ms, rate, missed/skipped."""
        wake = self._recent(self.wake)
        out: Dict[str, float] = {"n": float(self.n), "missed": float(self.missed), "skipped": float(self.skipped)}
        if len(wake) < 2:
            return out
        err = np.abs(np.diff(wake) - self.period)
        for name, a in (("period_err", err), ("late", self._recent(self.late)), ("work", self._recent(self.work))):
            p50, p99, mx = np.percentile(a, 50), np.percentile(a, 99), np.max(a)
            out.update({name + "_p50_ms": p50 * 1e3, name + "_p99_ms": p99 * 1e3, name + "_max_ms": mx * 1e3})
        out["rate_hz"] = (len(wake) - 1) / max(wake[-1] - wake[0], 1e-9)
        out["jitter_std_ms"] = float(np.std(np.diff(wake))) * 1e3
        return out


def percentiles_ms(x: Sequence[float]) -> Dict[str, float]:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if not len(a):
        return {"n": 0.0}
    return {"n": float(len(a)), "p50_ms": float(np.percentile(a, 50) * 1e3),
            "p99_ms": float(np.percentile(a, 99) * 1e3), "max_ms": float(a.max() * 1e3)}


class inherited_priority:
    """``with inherited_priority(p):`` threads and processes started inside inherit SCHED_FIFO ``p``
    (helper threads such as the T265 reader, the logger process); the calling thread gets its policy back."""

    def __init__(self, priority: int):
        self.priority, self._saved = int(priority), None

    def __enter__(self) -> "inherited_priority":
        if self.priority > 0:
            try:
                self._saved = (os.sched_getscheduler(0), os.sched_getparam(0))
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))
            except (OSError, AttributeError):
                self._saved = None
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            try:
                os.sched_setscheduler(0, self._saved[0], self._saved[1])
            except OSError:
                pass
