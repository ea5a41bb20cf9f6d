"""``go1o4 calibrate``: the statistics by hand, the real logs' held-command speeds, and a tiny resumable search."""
import json
import os

import numpy as np
import pytest
from go1o4.sim_pretrain.calibration import stats as S
from go1o4.sim_pretrain.calibration.real import real_band_arrays

from go1o4 import contract as C
from go1o4.cli import main as cli_main


def test_heading_speed_and_held_mask_by_hand():
    v = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    yaw = np.array([0.0, np.pi / 2, np.pi])
    np.testing.assert_allclose(S.heading_speed(v, yaw), [1.0, 2.0, -1.0], atol=1e-12)
    cmd = np.array([0.5] * 4 + [0.9] + [0.5] * 3)
    np.testing.assert_array_equal(S.held_mask(cmd, (0.25, 0.75), hold=2),
                                  [False, False, True, True, False, False, False, True])


def test_score_is_zero_on_a_perfect_match_and_counts_speed_by_its_tolerance():
    real = {"b": {"speed": 0.3, "q_std": [0.1] * 12, "dq_std": [2.0] * 12, "roll_std": 0.05, "pitch_std": 0.05,
                  "abs_action": 1.0, "action_change": 0.6}}
    assert S.score(real, real)[0] == 0.0
    sim = {"b": dict(real["b"], speed=0.3 + S.SPEED_TOL)}
    total, parts = S.score(real, sim)
    assert parts["speed"] == pytest.approx(1.0) and total == pytest.approx(3.0 / 6.0)
    assert S.within_targets(real, sim)["b"]["speed_ok"] is True
    sim = {"b": dict(real["b"], q_std=[0.125] * 12)}  # +25 %: outside the 20 % target
    assert S.within_targets(real, sim)["b"]["q_std_ok_joints"] == 0


def test_real_logs_held_command_speeds(real_logs_dir):
    """The policy README's figures (0.27 at 0.42, 0.48 at 0.90) from the logs, T265 rotated by its yaw."""
    arr = real_band_arrays(str(real_logs_dir))
    slow, fast = arr["0.25-0.75"], arr["0.75-1.25"]
    assert abs(np.mean(slow["command"]) - 0.42) < 0.01 and abs(np.mean(fast["command"]) - 0.90) < 0.03
    assert abs(np.mean(slow["speed"]) - 0.27) < 0.02 and abs(np.mean(fast["speed"]) - 0.48) < 0.04
    assert len(slow["speed"]) > 5000 and len(fast["speed"]) > 300
    assert slow["q"].shape[1] == 12 and np.all(np.abs(np.mean(slow["q"], 0) - C.DEFAULT_Q) < 0.3)


def test_calibrate_cli_tiny_search_resumes_and_reports(tmp_path, authors_policy_ckpt):
    out = str(tmp_path / "cal")
    args = ["calibrate", "--out", out, "--policy", str(authors_policy_ckpt), "--motor", "actuator_net",
            "--stiffness", "300", "--damping", "6", "--friction", "0.8", "--episodes", "1", "--seconds", "3",
            "--no-progress"]
    assert cli_main(args) == 0
    lines = open(os.path.join(out, "candidates.jsonl")).read().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["key"] == "actuator_net|K300|B6|mu0.8|t0.15" and np.isfinite(rec["score"])
    assert set(rec["sim"]) == {"0.25-0.75", "0.75-1.25"} and rec["sim"]["0.25-0.75"]["steps"] > 40
    assert cli_main(args) == 0  # resumed: nothing new
    assert len(open(os.path.join(out, "candidates.jsonl")).read().splitlines()) == 1
    report = open(os.path.join(out, "REPORT.md")).read()
    assert "| actuator_net | 300 | 6 | 0.8 | 0.15 |" in report and "hist_0p25-0p75.png" in report
    assert os.path.exists(os.path.join(out, "hist_0p25-0p75.png"))
    bad = args[:]
    bad[bad.index("300")] = "-5"
    assert cli_main(bad) == 2
