"""``go1o4 data view``: one episode as a rerun recording (``.rrd``), every signal on one ``time`` timeline.

Entities (scalar series unless noted)::

    joints/<joint>/q, joints/<joint>/q_des         joint positions and targets (12 joints, sim order)
    velocity/{vx,vy,yaw_rate}/{cmd,measured}      commanded vs measured (T265, trunk frame)
    attitude/{roll,pitch}                         rad
    feet/{FL,FR,RL,RR}                            foot contact force
    reward                                        reward of the step
    safety/state                                  logged safety state code
    events                                        TextLog: safety state changes (by name) and the episode end

Open with ``rerun FILE.rrd`` (``pip install rerun-sdk``), or the web viewer at https://rerun.io/viewer.
"""
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Optional

import numpy as np
from go1o4.data.log_format import Episode
from go1o4.data.rewards import RewardInputError, compute_reward
from go1o4.data.series import episode_series, safety_events

from go1o4 import contract as C


def episode_scalars(ep: Episode, reward: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Entity path -> (T,) series of everything the viewer shows (pure)."""
    s, out = ep.steps, {}
    ser = episode_series(ep)
    for key, j in (("q", "q"), ("q_des", "q_des")):
        if key in s:
            arr = np.asarray(s[key], dtype=np.float64)
            for i, name in enumerate(C.JOINT_NAMES_SIM):
                out["joints/%s/%s" % (name, j)] = arr[:, i]
    for i, name in enumerate(("vx", "vy", "yaw_rate")):
        out["velocity/%s/cmd" % name] = ser["cmd"][:, i]
        out["velocity/%s/measured" % name] = (ser["w_body"][:, 2] if i == 2 else ser["v_body"][:, i])
    out["attitude/roll"], out["attitude/pitch"] = ser["roll_pitch"][:, 0], ser["roll_pitch"][:, 1]
    if "foot_force" in s:
        ff = np.asarray(s["foot_force"], dtype=np.float64)
        for i, leg in enumerate(C.LEGS_SIM):
            out["feet/%s" % leg] = ff[:, i]
    name = reward or ("logged" if "reward" in s else "uni_o4_world")
    try:
        out["reward"] = np.asarray(compute_reward(name, s, dt=1.0 / ep.rate_hz), dtype=np.float64)
    except (RewardInputError, ValueError):
        pass
    if "safety_state" in s:
        out["safety/state"] = np.asarray(s["safety_state"], dtype=np.float64)
    return out


def episode_events(ep: Episode) -> List[tuple]:
    """(step, text, level) of the safety state changes and the episode end."""
    ev = [(i, "safety: " + txt, "WARN" if "->" in txt else "INFO")
          for i, txt in safety_events(ep.steps.get("safety_state", []))]
    if ep.num_steps:
        ev.append((ep.num_steps - 1, "end: %s (%s)" % (ep.end, ep.reason), "ERROR" if ep.terminal else "INFO"))
    return ev


def write_rrd(ep: Episode, path: str, reward: Optional[str] = None) -> Dict[str, object]:
    """Write ``path`` (.rrd) with rerun's own SDK; returns the entity paths written."""
    try:
        import rerun as rr
    except ImportError as e:
        raise ValueError("go1o4 data view needs rerun-sdk (pip install -e '.[loaders]'): %s" % e)
    t = episode_series(ep)["t"]
    rec = rr.RecordingStream("go1o4", recording_id=ep.name or None)
    rec.save(path)
    time = rr.TimeColumn("time", duration=t)
    step = rr.TimeColumn("step", sequence=np.arange(len(t)))
    scalars = episode_scalars(ep, reward)
    for entity, v in scalars.items():
        rec.send_columns(entity, indexes=[time, step], columns=rr.Scalars.columns(scalars=v))
    events = episode_events(ep)
    for i, text, level in events:
        rec.set_time("time", duration=float(t[i]))
        rec.set_time("step", sequence=int(i))
        rec.log("events", rr.TextLog(text, level=level))
    rec.flush()
    rec.disconnect()
    return {"path": path, "entities": sorted(scalars) + ["events"], "events": len(events)}


def open_viewer(path: str) -> bool:
    """Start the rerun viewer on ``path`` if a display is there; False when only the file is written."""
    exe = shutil.which("rerun") or os.path.join(os.path.dirname(sys.executable), "rerun")
    if not os.path.exists(exe) or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    subprocess.Popen([exe, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return True
