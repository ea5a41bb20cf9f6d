"""The real-T265 publisher: pose -> t265_pose_t conversion with synthetic rs2_pose objects, CLI errors.

The device loop itself needs a T265 and pyrealsense2 2.53.1 (CPython 3.8/3.10): not run here.
"""
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from go1o4.robot_runtime.lcm_types import t265_pose_t
from go1o4.robot_runtime.t265 import realsense_publisher as P
from go1o4.robot_runtime.t265.source import sample_from_message

REPO = Path(__file__).resolve().parents[1]


def vec(x, y, z):
    return SimpleNamespace(x=x, y=y, z=z)


def rs2_pose(**over):
    p = dict(translation=vec(1.0, 2.0, 3.0), velocity=vec(0.1, -0.2, -0.9), acceleration=vec(0.0, -9.8, 0.5),
             rotation=SimpleNamespace(x=0.1, y=0.2, z=0.3, w=0.9), angular_velocity=vec(0.01, 0.6, -0.02),
             angular_acceleration=vec(1.0, 2.0, 3.0), tracker_confidence=3, mapper_confidence=2)
    p.update(over)
    return SimpleNamespace(**p)


def test_pose_to_message_round_trips_through_lcm_encoding():
    msg = P.pose_to_message(rs2_pose(), frame_number=12345, utime=987654321)
    back = t265_pose_t.decode(msg.encode())
    assert back.utime == 987654321 and back.frame_number == 12345
    assert list(back.translation) == [1.0, 2.0, 3.0]
    assert list(back.velocity) == [0.1, -0.2, -0.9]
    assert list(back.acceleration) == [0.0, -9.8, 0.5]
    assert list(back.rotation) == [0.1, 0.2, 0.3, 0.9]  # x, y, z, w: as rs2_quaternion
    assert list(back.angular_velocity) == [0.01, 0.6, -0.02]
    assert list(back.angular_acceleration) == [1.0, 2.0, 3.0]
    assert back.tracker_confidence == 3 and back.mapper_confidence == 2
    s = sample_from_message(back)
    np.testing.assert_array_equal(s.rotation_xyzw, [0.1, 0.2, 0.3, 0.9])
    assert s.tracker_confidence == 3


def test_nan_fields_pass_through_for_the_runtime_to_judge():
    msg = P.pose_to_message(rs2_pose(velocity=vec(float("nan"), 0.0, 0.0)), 1, 0)
    back = t265_pose_t.decode(msg.encode())
    assert np.isnan(back.velocity[0])


def test_out_of_range_confidence_fits_int8():
    msg = P.pose_to_message(rs2_pose(tracker_confidence=300, mapper_confidence=-300), 1, 0)
    back = t265_pose_t.decode(msg.encode())
    assert back.tracker_confidence == 127 and back.mapper_confidence == -128


def test_without_pyrealsense2_the_cli_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # import fails, whatever is installed
    assert P.main(["--robot", "go1-a", "--channel", "X"]) == 2
    err = capsys.readouterr().err
    assert "pyrealsense2==2.53.1" in err and "3.8 or 3.10" in err and "libusb" in err


def test_publisher_imports_stay_minimal():
    """The publisher runs in its own Python 3.8/3.10 env: only the package inits of go1o4 (no contract, config,
    yaml, h5py, torch, mujoco) are pulled in."""
    code = ("import sys, go1o4.robot_runtime.t265.realsense_publisher as p; "
            "heavy = sorted(m for m in ('go1o4.contract', 'go1o4.config', 'go1o4.data', 'yaml', 'h5py', 'torch', 'mujoco') if m in sys.modules); "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_cli_help_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "go1o4.robot_runtime.t265.realsense_publisher", "--help"], cwd=str(REPO),
                         capture_output=True, text=True, check=True)
    assert "--lcm-url" in out.stdout and "--channel" in out.stdout and "--robot" in out.stdout
