"""Scriptable wireless remote: a time schedule of buttons and sticks, encoded into LowState.

YAML (times in seconds of robot time; each event holds until the next one, or for ``duration``)::

    events:
      - {t: 1.0, buttons: [R2], duration: 0.2}   # tap R2: calibrate / start
      - {t: 3.0, ly: 0.5}                         # push the left stick forward
      - {t: 8.0}                                  # release everything

Sticks lx, ly, rx, ry and the L2 axis are in [-1, 1]; buttons are names from ``wire.BUTTON_BITS``.
"""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from go1o4.robot_runtime import wire

from go1o4.config import load_config


@dataclass
class RemoteEvent:
    t: float = 0.0
    buttons: List[str] = field(default_factory=list)
    lx: float = 0.0
    ly: float = 0.0
    rx: float = 0.0
    ry: float = 0.0
    L2: float = 0.0
    duration: Optional[float] = None  # None: hold until the next event

    def validate(self) -> None:
        if not (np.isfinite(self.t) and self.t >= 0):
            raise ValueError("t must be a time >= 0 s, got %r" % (self.t,))
        unknown = [b for b in self.buttons if b not in wire.BUTTON_BITS]
        if unknown:
            raise ValueError("unknown button(s) %s (known: %s)" % (unknown, ", ".join(wire.BUTTON_BITS)))
        for name in ("lx", "ly", "rx", "ry", "L2"):
            v = getattr(self, name)
            if not (np.isfinite(v) and -1.0 <= v <= 1.0):
                raise ValueError("%s must be in [-1, 1], got %r" % (name, v))
        if self.duration is not None and not (np.isfinite(self.duration) and self.duration > 0):
            raise ValueError("duration must be > 0 s, got %r" % (self.duration,))

    def encode(self) -> np.ndarray:
        return wire.encode_remote(self.buttons, lx=self.lx, rx=self.rx, ry=self.ry, ly=self.ly, l2=self.L2)


@dataclass
class RemoteSchedule:
    events: List[RemoteEvent] = field(default_factory=list)

    def validate(self) -> None:
        times = [e.t for e in self.events]
        if any(b < a for a, b in zip(times, times[1:])):
            raise ValueError("events must be sorted by t, got times %s" % times)

    def event_at(self, t: float) -> Optional[RemoteEvent]:
        """The event in force at time ``t`` (None: nothing pressed)."""
        current = None
        for e in self.events:
            if e.t > t:
                break
            current = e
        if current is None or (current.duration is not None and t >= current.t + current.duration):
            return None
        return current

    def block_at(self, t: float) -> np.ndarray:
        """The 40 wireless-remote bytes at time ``t``."""
        e = self.event_at(t)
        return e.encode() if e is not None else NEUTRAL_BLOCK.copy()


NEUTRAL_BLOCK = wire.encode_remote()


def load_remote_schedule(path: str) -> RemoteSchedule:
    """Load and validate a schedule; errors name the file and the offending event field."""
    return load_config(RemoteSchedule, path)
