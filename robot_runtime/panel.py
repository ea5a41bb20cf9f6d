"""The operator panel of ``go1o4 session``: a live screen that fits 80x24, or one plain line per change.

On a terminal it is a ``rich`` live panel (rich: pure Python, Python 3.8 wheels, no event loop of its
own, so the session's keyboard reader and loops stay as they are; textual would need an asyncio app):
the state in words with what to press next, loop rates and misses, safety state with the last event's
cause, commanded vs T265-measured velocity, battery, hottest motor, episode/step, logging and the last
messages. Without a terminal (systemd journal, pipes) it prints a status line only when something the
operator cares about changes (state, safety, episode, logging, T265, warnings), plus each message, never
``\\r``. The texts come from :func:`panel_rows` (pure; tested at 80 and 160 columns). Python 3.8 syntax.
"""
import collections
import os
import sys
import time
from typing import Any, Deque, Dict, List, Optional, Tuple

import numpy as np
from go1o4.robot_runtime.status import KEYS_HELP, RateMeter, snapshot

from go1o4 import contract as C

#: state -> (words, what to press next). "calibrated" is CALIBRATING with the ramp done (the old CALIBRATING*).
STATE_TEXT = {
    "damping": ("DAMPING: motors soft, the robot can lie down", "c / R2 calibrate (ramp slowly to the standing pose)"),
    "calibrating": ("CALIBRATING: ramping to the standing pose, wait", "space / d damping if anything looks wrong"),
    "calibrated": ("CALIBRATED: standing, holding the default pose", "r / R2 run the policy, space / d damping"),
    "running": ("RUNNING the policy", "w/s a/f velocity, p / R2 pause, l / L2 log, space damping"),
    "paused": ("PAUSED: holding the default pose", "r / R2 resume, c recalibrate, space / d damping"),
    "estop": ("E-STOP: damping after the stop button", "c / R2 calibrate again when it is safe"),
}
#: safety / episode-cut causes in words (robot_runtime.safety causes, t265 reasons).
CAUSE_TEXT = {
    "stale_target": "policy target too old (policy loop late)", "state_lost": "no robot state (link lost)",
    "crc_failures": "corrupted packets (CRC)", "bad_action": "policy output not finite",
    "tilt": "tilted past the limit (fall)", "over_temperature": "motor too hot",
    "estop_button": "stop button pressed", "bad_state": "robot state not finite",
    "t265_stale": "T265 silent", "t265_nan": "T265 sent NaN", "t265_low_confidence": "T265 tracking confidence low",
    "t265_bad_quaternion": "T265 orientation invalid", "t265_bad_sample": "T265 sample invalid",
    "t265_foreign": "only another robot's T265 stream (refused)",
}


def cause_text(cause: str) -> str:
    return "%s (%s)" % (CAUSE_TEXT[cause], cause) if cause in CAUSE_TEXT else cause


def panel_snapshot(session, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """:func:`robot_runtime.status.snapshot` plus what only the panel shows (hottest motor, event detail, files)."""
    snap = snapshot(session)
    st, loop, ep, log = session.loop.latest, session.loop, session.episode, session.log
    snap["hottest"] = None if st is None else C.JOINT_NAMES_SIM[int(np.argmax(st.temperature))]
    ev = loop.tripped
    snap["event"] = None if ev is None else (ev.cause, ev.detail)
    snap["episode_index"] = None if ep is None else ep.index
    snap["episode_max"] = None if ep is None else ep.max_steps
    snap["episode_file"] = os.path.basename(log.episode_path) if (ep is not None and ep.logged and log) else ""
    snap["log_dir"] = "" if log is None else (log.session_path or "")
    snap["t265_refusal"] = getattr(session.t265, "refusal", "") if session.t265 is not None else ""
    snap["info"] = dict(info or {})
    return snap


def _v(v, names=("vx", "vy", "yaw")) -> str:
    if v is None or not np.all(np.isfinite(v)):
        return "%s  --   %s  --   %s  -- " % names
    return "%s %+.2f %s %+.2f %s %+.2f" % (names[0], v[0], names[1], v[1], names[2], v[2])


def _n(x, fmt: str) -> str:
    return fmt % x if x is not None and np.isfinite(x) else "--"


def state_key(snap: Dict[str, Any]) -> str:
    s = snap["state"]
    return "calibrated" if s == "calibrating" and snap["calibrated"] else s


def panel_rows(snap: Dict[str, Any], rates: RateMeter, last_event: Optional[Tuple[str, str, str]]) -> List[Tuple[str, str]]:
    """(label, text) rows of the panel, in words. ``last_event``: (clock time, cause, detail) or None."""
    words, nxt = STATE_TEXT[state_key(snap)]
    if snap["battery"] is None and snap["state"] in ("damping", "estop"):
        words = "%s: no robot state received yet (robot on? network?)" % snap["state"].upper()
    if snap["tripped"]:
        safety = "TRIPPED: %s, robot in damping" % cause_text(snap["tripped"])
    else:
        safety = "ok, limits active"
    event = "none since the start" if last_event is None else "%s %s%s" % (
        last_event[0], cause_text(last_event[1]), ": %s" % last_event[2] if last_event[2] else "")
    loops = "link %s Hz %d missed | policy %s Hz %d missed | inference %s ms" % (
        _n(rates.link_hz, "%.0f"), snap["link_missed"], _n(rates.policy_hz, "%.0f"), snap["policy_missed"],
        _n(snap["inference_ms"], "%.2f"))
    if snap["lockstep"] and np.isfinite(rates.speedup):
        loops += " | x%.1f real time" % rates.speedup
    t265 = snap["t265"]
    t265_text = {"ok": "ok", "off": "off (--no-t265): no reward", "-": "no reading yet"}.get(t265, cause_text(t265))
    if snap.get("t265_refusal") and t265 == "t265_foreign":
        t265_text += ": " + snap["t265_refusal"]
    robot = "battery %s | hottest motor %s" % (
        "--" if snap["battery"] is None else "%.0f %%" % snap["battery"],
        "--" if snap["max_temp"] is None else "%s %.0f C" % (snap.get("hottest") or "?", snap["max_temp"]))
    if snap["warnings"]:
        robot += " | WARN " + "; ".join(snap["warnings"])
    if snap.get("episode_index") is None:
        episode = "none running (%d finished)" % snap["episode"]
    else:
        episode = "episode %d, step %d / %d (%d finished)" % (snap["episode_index"], snap["episode_step"] or 0,
                                                             snap["episode_max"] or 0, snap["episode"])
    if snap["log_error"]:
        logging = "FAILED: %s" % snap["log_error"]
    elif snap["logging"]:
        logging = "ON" + (" -> %s" % snap["episode_file"] if snap.get("episode_file") else "") + \
            (" in %s" % snap["log_dir"] if snap.get("log_dir") else "")
    else:
        logging = "off (l / L2 starts recording)" + (" | dir %s" % snap["log_dir"] if snap.get("log_dir") else "")
    return [("state", words), ("next", nxt), ("safety", safety), ("event", event), ("loops", loops),
            ("command", _v(snap["command"]) + "  (m/s, m/s, rad/s)"),
            ("T265", _v(snap["v_body"], ("vx", "vy", "vz")) + "  (m/s) " + t265_text),
            ("robot", robot), ("episode", episode), ("logging", logging)]


def panel_title(info: Dict[str, Any]) -> str:
    if not info:
        return "go1o4 session"
    return "go1o4 session | %s | %s" % (info.get("robot", "?"), info.get("where", ""))


def render_panel(snap: Dict[str, Any], rates: RateMeter, messages, last_event=None, width: int = 80,
                 height: int = 24):
    """The rich renderable: a bordered grid that fits ``width`` x ``height`` (messages fill what is left)."""
    from rich import box
    from rich.console import Group
    from rich.panel import Panel
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    rows = panel_rows(snap, rates, last_event)
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(width=7, no_wrap=True, style="bold")
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    for label, text in rows:
        style = "bold reverse" if label == "state" else ("bold red" if "TRIPPED" in text or "FAILED" in text else "")
        grid.add_row(label, Text(text, style=style))
    room = max(0, height - 2 - len(rows) - 1)
    shown = list(messages)[-room:] if room else []
    lines = [Text(m, no_wrap=True, overflow="ellipsis") for m in shown] or [Text("(no messages yet)", style="dim")]
    return Panel(Group(grid, Rule("messages", style="dim"), *lines), title=panel_title(snap.get("info", {})),
                 title_align="left", box=box.ROUNDED, width=width, height=height, padding=(0, 1))


def render_text(snap, rates, messages, last_event=None, width: int = 80, height: int = 24) -> str:
    """The panel as plain text at a fixed size (tests, and what a screenshot shows)."""
    import io

    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=width, height=height, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(render_panel(snap, rates, messages, last_event, width, height))
    return out.getvalue()


def parse_event(message: str) -> Optional[Tuple[str, str]]:
    """(cause, detail) of a session message that reports a safety event or an episode cut by the T265."""
    if message.startswith("SAFETY ") and ": " in message:
        cause, detail = message[len("SAFETY "):].split(": ", 1)
        return cause, detail
    if message.startswith("T265 t265_") and ": episode cut" in message:
        cause, rest = message[len("T265 "):].split(": ", 1)
        parts = rest.split("; ")  # "episode cut (truncation); the policy keeps running ...[; the refusal]"
        return cause, "episode cut" + ("; " + parts[2] if len(parts) > 2 else "")
    return None


def plain_line(snap: Dict[str, Any], rates: RateMeter) -> str:
    """One line for the journal: the panel's rows joined, short."""
    rows = dict(panel_rows(snap, rates, None))
    return "%s | %s | %s | T265 %s | cmd %s | %s | %s | %s" % (
        rows["state"], rows["safety"], rows["episode"], snap["t265"], _v(snap["command"]), rows["logging"],
        rows["robot"], rows["loops"])


class OperatorPanel:
    """Live panel on a TTY (rich), one line per change otherwise. ``message`` / ``update`` / ``close``.
    ``enabled=False`` (``--quiet``): no panel and no status lines, messages only."""

    def __init__(self, stream=None, enabled: bool = True, messages: int = 50, heartbeat_s: float = 60.0):
        self.stream = stream if stream is not None else sys.stdout
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.enabled, self.heartbeat_s = enabled, heartbeat_s
        self.rates = RateMeter()
        self.messages: Deque[str] = collections.deque(maxlen=messages)
        self.last_event: Optional[Tuple[str, str, str]] = None
        self._key: Optional[Tuple[Any, ...]] = None
        self._last_line = 0.0
        self._live = None
        self._snap: Optional[Dict[str, Any]] = None

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def message(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.messages.append("%s %s" % (stamp, text))
        event = parse_event(text)
        if event is not None:
            self.last_event = (stamp,) + event
        if self.tty and self.enabled:
            self._refresh()
        else:  # the journal, or --quiet: messages still print, one line each
            self._write("%s %s\n" % (stamp, text))

    def update(self, snap: Dict[str, Any]) -> None:
        self.rates.update(snap)
        if snap.get("event") is not None and (self.last_event is None or snap["event"] != self.last_event[1:]):
            self.last_event = (time.strftime("%H:%M:%S"),) + tuple(snap["event"])
        self._snap = snap
        if not self.enabled:
            return
        if self.tty:
            self._refresh()
            return
        key = (state_key(snap), snap["tripped"], snap.get("episode_index"), snap["episode"], snap["logging"],
               snap["log_error"], snap["t265"], tuple(snap["warnings"]))
        now = time.monotonic()
        if key != self._key or now - self._last_line >= self.heartbeat_s:
            self._key, self._last_line = key, now
            self._write("%s status: %s\n" % (time.strftime("%H:%M:%S"), plain_line(snap, self.rates)))

    def _refresh(self) -> None:
        if self._snap is None:
            return
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream)
            self._live = Live(console=console, auto_refresh=False, transient=False, redirect_stdout=False,
                              redirect_stderr=False)
            self._live.start()
        size = self._live.console.size
        self._live.update(render_panel(self._snap, self.rates, self.messages, self.last_event,
                                       min(size.width, 200), min(size.height, 60)), refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def format_summary(summary: Dict[str, Any]) -> str:
    """What the operator reads after quitting (the full numbers go to ``--json``)."""
    eps = summary.get("episodes", [])
    logged = [e for e in eps if e.get("log")]
    lines = ["session summary: %d episode%s, %d logged" % (len(eps), "" if len(eps) == 1 else "s", len(logged))]
    for e in eps[-10:]:
        lines.append("  episode %d: %d steps, %s (%s)%s" % (e["index"], e["steps"], e["end"], cause_text(e["reason"]),
                                                          " -> %s" % os.path.basename(e["log"]) if e.get("log") else ""))
    if len(eps) > 10:
        lines.insert(1, "  (first %d not shown)" % (len(eps) - 10))
    link, pol = summary.get("link", {}), summary.get("policy", {})
    lines.append("  link: %d ticks at %s Hz, %d missed; %d states received, %d CRC failures" % (
        link.get("n", 0), _n(link.get("rate_hz"), "%.0f"), link.get("missed", 0), link.get("received", 0),
        link.get("crc_failures", 0)))
    inf = pol.get("inference", {})
    lines.append("  policy: %d steps at %s Hz, %d missed; inference p50 %s ms, p99 %s ms" % (
        pol.get("n", 0), _n(pol.get("rate_hz"), "%.0f"), pol.get("missed", 0), _n(inf.get("p50_ms"), "%.3f"),
        _n(inf.get("p99_ms"), "%.3f")))
    log = summary.get("log", {})
    if log.get("path"):
        lines.append("  log: %s (%d steps)%s" % (log["path"], log.get("steps", 0),
                                                 "; FAILED: %s" % log["error"] if log.get("error") else ""))
    else:
        lines.append("  log: none")
    return "\n".join(lines)


__all__ = ["KEYS_HELP", "OperatorPanel", "format_summary", "panel_rows", "panel_snapshot", "render_text"]
