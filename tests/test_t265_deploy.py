"""deploy/: the robot config validates against the code that reads it; the shell scripts are sound."""
import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from go1o4.robot_runtime.reward import ONLINE_REWARDS
from go1o4.robot_runtime.safety import SafetyLimits
from go1o4.robot_runtime.t265.source import T265Config
from go1o4.robot_runtime.wire import BUTTON_BITS

from go1o4.config import from_dict, load_yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
CONFIG = DEPLOY / "config" / "go1_default.yaml"
SCRIPTS = [DEPLOY / "launch_session.sh", DEPLOY / "launch_t265.sh"]


@pytest.fixture(scope="module")
def cfg():
    return load_yaml(str(CONFIG))


def test_sections_validate(cfg):
    t265 = from_dict(T265Config, cfg["t265"], "t265")
    np.testing.assert_allclose(t265.mount(), np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]]))  # forward, level
    assert t265.stale_after_s == 0.1 and t265.min_confidence == 2 and t265.max_speed == 1.5
    limits = from_dict(SafetyLimits, cfg["safety"], "safety")
    assert limits.ramp_step <= 0.05 and limits.max_roll_pitch == 1.6
    assert cfg["reward"]["name"] in ONLINE_REWARDS


def test_network(cfg):
    r = cfg["robot"]
    net = ipaddress.ip_network("192.168.123.0/24")
    assert ipaddress.ip_address(r["robot_ip"]) == ipaddress.ip_address("192.168.123.10")
    assert r["robot_port"] == 8007
    assert ipaddress.ip_address(r["local_ip"]) in net and r["local_ip"] != r["robot_ip"]
    assert 1024 <= r["local_port"] <= 65535


def test_remote_mapping(cfg):
    rem = cfg["remote"]
    combos = [c for key in ("calibrate_start_pause", "toggle_logging", "estop") for c in rem[key]]
    for combo in combos:
        assert combo and all(b in BUTTON_BITS for b in combo), combo
    assert rem["calibrate_start_pause"] == [["R2"]] and rem["toggle_logging"] == [["L2"]]
    assert ["L1", "R1"] in rem["estop"] and ["B"] in rem["estop"]
    assert {k: v["axis"] for k, v in rem["sticks"].items()} == {"vx": "ly", "vy": "lx", "yaw_rate": "rx"}
    for name, (lo, hi) in ((k, cfg["commands"][k]) for k in ("vx", "vy", "yaw_rate")):
        assert lo < 0 < hi, name
    assert cfg["commands"]["vx"][1] <= 1.5 + 1e-9  # T265 clip: faster commands cannot be rewarded


def test_every_button_combo_is_distinct(cfg):
    rem = cfg["remote"]
    seen = {}
    for key in ("calibrate_start_pause", "toggle_logging", "estop"):
        for combo in rem[key]:
            k = frozenset(combo)
            assert k not in seen, "%s and %s share %s" % (seen.get(k), key, combo)
            seen[k] = key


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_are_executable(script):
    assert script.stat().st_mode & 0o111, "%s is not executable" % script
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck"):
        out = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_launch_t265_refuses_a_python_without_pyrealsense2():
    """The launcher checks the interpreter first and explains (no pyrealsense2 for this Python 3.11)."""
    out = subprocess.run(["bash", str(DEPLOY / "launch_t265.sh"), "--check"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "GO1O4_T265_PYTHON": sys.executable,
                              "GO1O4_CONFIG": str(CONFIG)})
    assert out.returncode == 1
    assert "cannot import pyrealsense2" in out.stderr and "pyrealsense2==2.53.1" in out.stderr


def test_launch_session_preflight_names_the_problem(tmp_path):
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "GO1O4_CONFIG": str(CONFIG), "GO1O4_PYTHON": sys.executable,
           "GO1O4_POLICY": str(tmp_path / "missing.onnx")}
    out = subprocess.run(["bash", str(DEPLOY / "launch_session.sh"), "--check"], capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "policy" in out.stderr and "missing.onnx" in out.stderr
    policy = tmp_path / "p.onnx"
    policy.write_bytes(b"x")
    cfg = tmp_path / "robot.yaml"
    cfg.write_text(CONFIG.read_text().replace("/home/unitree/go1o4_logs", str(tmp_path / "logs" / "session")))
    env.update(GO1O4_POLICY=str(policy), GO1O4_CONFIG=str(cfg), GO1O4_SKIP_NETWORK_CHECK="1")
    out = subprocess.run(["bash", str(DEPLOY / "launch_session.sh"), "--check"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "robot 192.168.123.10" in out.stdout and not (tmp_path / "logs").exists()  # preflight creates nothing


def test_systemd_units_point_at_the_scripts():
    for unit, script in (("go1o4-session.service", "launch_session.sh"), ("go1o4-t265.service", "launch_t265.sh")):
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "ExecStart=" in text and script in text and "[Install]" in text
