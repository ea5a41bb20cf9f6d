"""The operator panel (issue 18.2): rendered at a fixed width it fits (80x24, 160x40), says the state in words
with the next key, explains safety causes, and falls back to one plain line per change without a terminal."""
import io

import numpy as np
import pytest
from go1o4.robot_runtime.panel import CAUSE_TEXT, OperatorPanel, format_summary, render_text
from go1o4.robot_runtime.status import RateMeter


def snap(**kw):
    s = {"state": "running", "calibrated": True, "lockstep": False, "time": 12.0, "wall": 100.0, "link_ticks": 6000,
         "policy_steps": 600, "link_missed": 3, "policy_missed": 1, "inference_ms": 0.09,
         "command": np.array([0.5, 0.0, 0.0]), "v_body": np.array([0.48, 0.01, -0.02]), "t265": "ok",
         "battery": 93.0, "max_temp": 41.0, "hottest": "RR_calf", "warnings": [], "episode": 2, "episode_step": 412,
         "episode_index": 2, "episode_max": 1000, "logging": True, "log_error": "", "tripped": None, "event": None,
         "episode_file": "episode_00001.h5", "log_dir": "/home/unitree/go1o4_logs/20261204-101500",
         "t265_refusal": "", "info": {"robot": "go1-lab2", "where": "192.168.123.10:8007, real Go1"}}
    s.update(kw)
    return s


def rates():
    r = RateMeter()
    r.update(snap(wall=99.0, link_ticks=5500, policy_steps=550, time=11.0))
    r.update(snap())
    return r


MESSAGES = ["12:00:%02d message number %d " % (i, i) + "x" * 150 for i in range(30)]


@pytest.mark.parametrize("width,height", [(80, 24), (160, 40)])
def test_panel_fits_and_says_what_matters(width, height):
    text = render_text(snap(), rates(), MESSAGES, ("12:00:01", "tilt", "roll 1.70 rad > 1.60"), width, height)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == height, text
    assert max(len(line) for line in lines) <= width, text
    for needle in ("RUNNING the policy", "p / R2 pause", "link 500 Hz 3 missed", "policy 50 Hz 1 missed",
                   "vx +0.50", "vx +0.48", "battery 93 %", "RR_calf 41 C", "episode 2, step 412 / 1000",
                   "ON -> episode_00001.h5", "go1-lab2", "tilted past the limit (fall) (tilt)", "messages",
                   "message number 29"):
        assert needle in text, (needle, text)
    assert "message number 0 " not in text  # only the newest messages fit


@pytest.mark.parametrize("width,height", [(80, 24), (160, 40)])
@pytest.mark.parametrize("case,needles", [
    (dict(state="damping", calibrated=False, tripped="state_lost", episode_index=None, logging=False),
     ("DAMPING", "c / R2 calibrate", "TRIPPED: no robot state (link lost)", "none running (2 finished)",
      "l / L2 starts recording")),
    (dict(state="calibrating", calibrated=True), ("CALIBRATED: standing", "r / R2 run the policy")),
    (dict(state="calibrating", calibrated=False), ("CALIBRATING: ramping",)),
    (dict(state="estop", tripped="estop_button"), ("E-STOP", "stop button pressed")),
    (dict(t265="t265_foreign", v_body=np.full(3, np.nan),
          t265_refusal="T265 stream from robot 'go1-b' (camera 'X') refused"),
     ("another robot's T265 stream", "vx  --")),
    (dict(log_error="disk full"), ("FAILED: disk full",)),
])
def test_panel_states_in_words(width, height, case, needles):
    text = render_text(snap(**case), rates(), [], None, width, height)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == height and max(len(line) for line in lines) <= width, text
    for needle in needles:
        assert needle in text, (needle, text)
    assert "safety_state" not in text and "CALIBRATING*" not in text


def test_every_cause_has_words():
    from go1o4.robot_runtime import safety as S
    from go1o4.robot_runtime.t265 import frames as F

    causes = [v for k, v in vars(S).items() if k.isupper() and isinstance(v, str) and k not in ("__doc__",)]
    for cause in set(causes) | set(F.REASONS):
        if cause in S.STATE_NAMES.values():
            continue
        assert cause in CAUSE_TEXT, cause


def test_plain_fallback_one_line_per_change():
    out = io.StringIO()  # not a TTY: the journal
    p = OperatorPanel(stream=out)
    p.update(snap(state="damping", calibrated=False, episode_index=None))
    for i in range(5):  # the same state refreshed: nothing new
        p.update(snap(state="damping", calibrated=False, episode_index=None, wall=100.0 + i, link_ticks=6000 + 500 * i))
    p.message("calibrating: ramp to the default pose (remote)")
    p.update(snap(state="calibrating", calibrated=False, episode_index=None))
    p.update(snap(state="calibrating", calibrated=True, episode_index=None))
    p.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.strip().split("\n")
    assert len(lines) == 4, text
    assert "DAMPING" in lines[0] and "calibrating: ramp" in lines[1] and "CALIBRATING" in lines[2]
    assert "CALIBRATED" in lines[3]


def test_summary_is_readable():
    summary = {"episodes": [{"index": 0, "end": "truncation", "reason": "time_limit", "steps": 1000,
                             "log": "/logs/s/episode_00000.h5"},
                            {"index": 1, "end": "terminal", "reason": "fall", "steps": 88, "log": ""}],
               "link": {"n": 30000.0, "missed": 2.0, "rate_hz": 499.9, "received": 29990, "crc_failures": 0},
               "policy": {"n": 3000.0, "missed": 0.0, "rate_hz": 50.0, "inference": {"p50_ms": 0.09, "p99_ms": 0.2}},
               "log": {"path": "/logs/s", "steps": 1000, "error": ""}}
    text = format_summary(summary)
    assert "{" not in text and "2 episodes, 1 logged" in text
    assert "episode 0: 1000 steps, truncation (time_limit) -> episode_00000.h5" in text
    assert "episode 1: 88 steps, terminal (fall)" in text and "30000 ticks at 500 Hz, 2 missed;" in text


def test_last_event_comes_from_the_messages():
    out = io.StringIO()
    p = OperatorPanel(stream=out, enabled=False)  # --quiet: messages only
    p.message("SAFETY tilt: roll 1.70 rad beyond 1.60")
    p.message("running the policy (remote)")
    assert p.last_event[1:] == ("tilt", "roll 1.70 rad beyond 1.60")
    p.message("T265 t265_foreign: episode cut (truncation); the policy keeps running, a new episode starts when the "
              "T265 is back; T265 stream from robot 'go1-b' (camera 'X') refused")
    assert p.last_event[1] == "t265_foreign" and "go1-b" in p.last_event[2]
    p.update(snap(state="damping", calibrated=False))
    assert out.getvalue().count("\n") == 3 and "status:" not in out.getvalue()
    text = render_text(p._snap, p.rates, p.messages, p.last_event, 80, 24)
    assert "only another robot's T265 stream (refused) (t265_foreign)" in text, text
