"""Operator commands from the Go1 remote, the keyboard and scripts, as one stream of :class:`Command`.

Commands: ``cycle`` (the remote's R2: calibrate -> run -> pause -> run ...), ``calibrate``, ``run``,
``pause``, ``damping``, ``toggle_logging``, ``velocity`` (vx, vy, yaw rate), ``nudge`` (add to the
velocity), ``quit``. The e-stop combination is *not* a command: the 500 Hz watchdog reads it
(:class:`robot_runtime.control.LinkLoop`). Keys: c calibrate, r run, p pause, space or d damping,
l logging, w/s or up/down vx, a/f vy, left/right yaw rate, x zero velocity, q quit. (``d`` is damping,
not "right": a stop key must never mean anything else.) Scripts (``--script``) are YAML::

    actions:
      - {t: 0.5, do: calibrate}        # t: session time in s (simulator time in lock-step)
      - {t: 2.0, do: run}
      - {t: 2.0, do: velocity, vx: 0.5}
      - {t: 3.0, keys: "w"}            # as if typed
      - {t: 9.0, do: quit}

Python 3.8 syntax.
"""
import os
import select
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from go1o4.robot_runtime.session_config import CommandsConfig, RemoteMapConfig, SticksConfig

from go1o4.config import load_config

ACTIONS = ("cycle", "calibrate", "run", "pause", "damping", "toggle_logging", "velocity", "nudge", "quit")


class Command(NamedTuple):
    name: str
    value: Tuple[float, ...] = ()
    source: str = ""


# ----------------------------------------------------------------------------- remote
def stick_command(remote: Dict[str, Any], sticks: SticksConfig, commands: CommandsConfig) -> np.ndarray:
    """(vx, vy, yaw rate) from the sticks: deadzone, then linear to the end of each range."""
    out = []
    for name in ("vx", "vy", "yaw_rate"):
        ax = getattr(sticks, name)
        s = float(np.clip(ax.sign * float(remote.get(ax.axis, 0.0) or 0.0), -1.0, 1.0))
        if not np.isfinite(s) or abs(s) < commands.deadzone:
            s = 0.0
        else:
            s = np.sign(s) * (abs(s) - commands.deadzone) / (1.0 - commands.deadzone)
        lo, hi = getattr(commands, name)
        out.append(s * hi if s > 0 else -s * lo)
    return np.array(out)


class RemoteInput:
    """Button combinations (edge-triggered, optionally held ``hold_s``) and sticks (when they move)."""

    def __init__(self, remote: RemoteMapConfig, commands: CommandsConfig):
        self.cfg, self.commands = remote, commands
        self._bindings = [("cycle", [frozenset(c) for c in remote.calibrate_start_pause]),
                          ("toggle_logging", [frozenset(c) for c in remote.toggle_logging])]
        self._estop = [frozenset(c) for c in remote.estop]
        self._since: Dict[str, Optional[float]] = {name: None for name, _ in self._bindings}
        self._fired: Dict[str, bool] = {name: False for name, _ in self._bindings}
        self._vel: Optional[Tuple[float, ...]] = None

    def poll(self, now: float, remote: Optional[Dict[str, Any]]) -> List[Command]:
        if not remote:
            return []
        out = []
        buttons = frozenset(remote.get("buttons", ()))
        estop = any(c <= buttons for c in self._estop)
        for name, combos in self._bindings:
            down = not estop and any(c <= buttons for c in combos)
            if not down:
                self._since[name], self._fired[name] = None, False
                continue
            if self._since[name] is None:
                self._since[name] = now
            if not self._fired[name] and now - self._since[name] >= self.cfg.hold_s - 1e-9:
                self._fired[name] = True
                out.append(Command(name, (), "remote"))
        vel = tuple(np.round(stick_command(remote, self.cfg.sticks, self.commands), 3).tolist())
        if self._vel is not None and vel != self._vel:
            out.append(Command("velocity", vel, "remote"))
        self._vel = vel
        return out


# ----------------------------------------------------------------------------- keyboard
_ARROWS = {b"\x1b[A": "up", b"\x1b[B": "down", b"\x1b[C": "right", b"\x1b[D": "left"}


def keys_to_commands(data: bytes, key_step: Sequence[float]) -> List[Command]:
    """Pure mapping of typed bytes (arrow escape sequences included) to commands."""
    dvx, dvy, dyaw = key_step
    simple = {"c": Command("calibrate"), "r": Command("run"), "p": Command("pause"), " ": Command("damping"),
              "d": Command("damping"), "l": Command("toggle_logging"), "q": Command("quit"),
              "w": Command("nudge", (dvx, 0.0, 0.0)), "s": Command("nudge", (-dvx, 0.0, 0.0)),
              "a": Command("nudge", (0.0, dvy, 0.0)), "f": Command("nudge", (0.0, -dvy, 0.0)),
              "x": Command("velocity", (0.0, 0.0, 0.0)),
              "up": Command("nudge", (dvx, 0.0, 0.0)), "down": Command("nudge", (-dvx, 0.0, 0.0)),
              "left": Command("nudge", (0.0, 0.0, dyaw)), "right": Command("nudge", (0.0, 0.0, -dyaw))}
    out, i = [], 0
    while i < len(data):
        key = None
        for seq, name in _ARROWS.items():
            if data[i:i + len(seq)] == seq:
                key, i = name, i + len(seq)
                break
        if key is None:
            key, i = chr(data[i]).lower(), i + 1
        if key in simple:
            out.append(simple[key]._replace(source="keyboard"))
    return out


class KeyboardInput:
    """Non-blocking keys from a terminal (cbreak mode, restored by :meth:`close`); inert without a TTY."""

    def __init__(self, key_step: Sequence[float], stream=None):
        self.key_step = key_step
        self.stream = stream if stream is not None else sys.stdin
        self.fd: Optional[int] = None
        self._saved = None
        try:
            fd = self.stream.fileno()
        except (AttributeError, ValueError, OSError):
            return
        if not os.isatty(fd):
            return
        import termios
        import tty

        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self.fd = fd

    @property
    def active(self) -> bool:
        return self.fd is not None

    def poll(self, now: float, remote=None) -> List[Command]:
        if self.fd is None:
            return []
        data = b""
        while select.select([self.fd], [], [], 0.0)[0]:
            chunk = os.read(self.fd, 64)
            if not chunk:
                break
            data += chunk
        return keys_to_commands(data, self.key_step) if data else []

    def close(self) -> None:
        if self.fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        self.fd = None


# ----------------------------------------------------------------------------- scripts
@dataclass
class ScriptAction:
    t: float = 0.0
    do: str = ""
    keys: str = ""
    vx: float = 0.0
    vy: float = 0.0
    yaw_rate: float = 0.0

    def validate(self) -> None:
        if not (np.isfinite(self.t) and self.t >= 0):
            raise ValueError("t must be a time >= 0 s, got %r" % (self.t,))
        if bool(self.do) == bool(self.keys):
            raise ValueError("give exactly one of 'do' (%s) or 'keys'" % ", ".join(ACTIONS))
        if self.do and self.do not in ACTIONS:
            raise ValueError("do: unknown action %r (known: %s)" % (self.do, ", ".join(ACTIONS)))


@dataclass
class OperatorScript:
    actions: List[ScriptAction] = field(default_factory=list)

    def validate(self) -> None:
        times = [a.t for a in self.actions]
        if any(b < a for a, b in zip(times, times[1:])):
            raise ValueError("actions must be sorted by t, got times %s" % times)


def load_script(path: str) -> OperatorScript:
    """Load and validate a script; errors name the file and the offending field (go1o4.config)."""
    return load_config(OperatorScript, path)


class ScriptInput:
    """Replays a script against the session clock (relative to the time of the first poll)."""

    def __init__(self, script: OperatorScript, key_step: Sequence[float]):
        self.actions, self.key_step = list(script.actions), key_step
        self._i, self._t0 = 0, None

    @property
    def done(self) -> bool:
        return self._i >= len(self.actions)

    def poll(self, now: float, remote=None) -> List[Command]:
        if self._t0 is None:
            self._t0 = now
        out = []
        while self._i < len(self.actions) and self.actions[self._i].t <= now - self._t0 + 1e-9:
            a = self.actions[self._i]
            self._i += 1
            if a.keys:
                out.extend(c._replace(source="script") for c in keys_to_commands(a.keys.encode(), self.key_step))
            elif a.do in ("velocity", "nudge"):
                out.append(Command(a.do, (a.vx, a.vy, a.yaw_rate), "script"))
            else:
                out.append(Command(a.do, (), "script"))
        return out
