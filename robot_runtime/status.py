"""What the operator sees, read from a session: :func:`snapshot`, loop rates (:class:`RateMeter`) and the
one-line form (:func:`format_status`); the live panel that shows them is :mod:`robot_runtime.panel`.
Python 3.8 syntax.
"""
import time
from typing import Any, Dict, Optional

import numpy as np

KEYS_HELP = "keys: c calibrate  r run  p pause  space/d damping  l log  w/s a/f arrows velocity  x stop  q quit"


def snapshot(session) -> Dict[str, Any]:
    """What the status line shows, read from a :class:`robot_runtime.session.RuntimeSession`."""
    from go1o4.robot_runtime.safety import STATE_NAMES

    st, r, loop = session.loop.latest, session.last_reading, session.loop
    inf = list(session.inference)[-50:]
    return {
        "state": STATE_NAMES[session.state], "calibrated": session.calibrated, "lockstep": session.clock.lockstep,
        "time": session.clock.now(), "wall": time.monotonic(), "link_ticks": loop.ticks,
        "policy_steps": session.steps, "link_missed": loop.stats.missed, "policy_missed": session.stats.missed,
        "inference_ms": 1e3 * float(np.median(inf)) if inf else float("nan"),
        "command": session.velocity.copy(), "v_body": None if r is None else np.array(r.v_body),
        "t265": "off" if session.t265 is None else ("-" if r is None else (r.reason or "ok")),
        "battery": None if st is None else st.battery_soc,
        "max_temp": None if st is None else float(np.max(st.temperature)),
        "warnings": list(loop.warnings), "episode": session.episodes_done,
        "episode_step": None if session.episode is None else session.episode.steps,
        "logging": session.logging_on, "log_error": "" if session.log is None else session.log.error,
        "tripped": None if loop.tripped is None else loop.tripped.cause,
    }


def _num(x, fmt: str) -> str:
    return fmt % x if x is not None and np.isfinite(x) else "--"


def _vec(v) -> str:
    if v is None or not np.all(np.isfinite(v)):
        return "  --  ,  --  ,  --  "
    return "%+.2f,%+.2f,%+.2f" % (v[0], v[1], v[2])


class RateMeter:
    """Loop rates from counter differences between two snapshots (robot-time and wall-time based)."""

    def __init__(self):
        self._prev: Optional[Dict[str, Any]] = None
        self.link_hz = self.policy_hz = self.speedup = float("nan")

    def update(self, snap: Dict[str, Any]) -> None:
        p = self._prev
        if p is not None and snap["wall"] > p["wall"]:
            dw = snap["wall"] - p["wall"]
            self.link_hz = (snap["link_ticks"] - p["link_ticks"]) / dw
            self.policy_hz = (snap["policy_steps"] - p["policy_steps"]) / dw
            self.speedup = (snap["time"] - p["time"]) / dw
        self._prev = snap


def format_status(snap: Dict[str, Any], rates: RateMeter) -> str:
    """One line, e.g. ``RUNNING | link 500 Hz miss 0 | policy 50 Hz miss 0 inf 0.09 ms | cmd ... | ...``."""
    state = snap["state"].upper() + ("*" if snap["state"] == "calibrating" and snap["calibrated"] else "")
    if snap["tripped"] and snap["state"] in ("damping", "estop"):
        state += "(%s)" % snap["tripped"]
    ep = "ep %d" % snap["episode"] + ("" if snap["episode_step"] is None else " step %d" % snap["episode_step"])
    log = "log ON" if snap["logging"] else "log off"
    if snap["log_error"]:
        log = "log FAILED"
    parts = [
        "%-12s" % state,
        "link %s Hz miss %d" % (_num(rates.link_hz, "%3.0f"), snap["link_missed"]),
        "policy %s Hz miss %d inf %s ms" % (_num(rates.policy_hz, "%2.0f"), snap["policy_missed"],
                                            _num(snap["inference_ms"], "%.2f")),
        "cmd %s v %s (T265 %s)" % (_vec(snap["command"]), _vec(snap["v_body"]), snap["t265"]),
        "bat %s%% temp %s C" % ("--" if snap["battery"] is None else "%.0f" % snap["battery"],
                               "--" if snap["max_temp"] is None else "%.0f" % snap["max_temp"]),
        ep, log,
    ]
    if snap["lockstep"] and np.isfinite(rates.speedup):
        parts.append("x%.1f real time" % rates.speedup)
    if snap["warnings"]:
        parts.append("WARN " + "; ".join(snap["warnings"]))
    return " | ".join(parts)
