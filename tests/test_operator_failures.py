"""Failures the operator must see at once, in words, with what was kept (issue 14.3): a 2 MiB disk (a real
tmpfs) under a lock-step session; the simulated Go1's process killed under a real-time session. Real SDK,
real HDF5."""
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from go1o4.robot_runtime.session_cli import start_simulated_robot
from runtime_helpers import export_random_policy, session_config, world_readable_dir

pytest.importorskip("unitree_legged_sdk.robot_interface")
REPO = Path(__file__).resolve().parents[1]
CHANNEL = "T265_OPF_%d" % os.getpid()
RUN = "actions:\n  - {t: 0.05, do: calibrate}\n  - {t: 0.5, do: run}\n"


@pytest.fixture(scope="module")
def policy_path():
    return export_random_policy(world_readable_dir("go1o4_opf_"))


@pytest.fixture(scope="module")
def robot():
    r = start_simulated_robot(session_config("/tmp", CHANNEL), "lockstep", "subprocess")
    yield r
    r.close()


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB filesystem (tmpfs; needs root)."""
    path = tmp_path / "small"
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    yield str(path)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _cli(args, robot, tmp_path, **kw):
    script = tmp_path / "run.yaml"
    script.write_text(RUN)
    cmd = [sys.executable, "-m", "go1o4.cli", "session", "--sim-port", str(robot.port), "--sim-control-port",
           str(robot.control.addr[1]), "--quiet", "--set", "t265.channel=%s" % CHANNEL, "--set", "runtime.settle_s=0.2",
           "--sim-mode", "lockstep", "--script", str(script)] + list(args)
    return subprocess.run(cmd, cwd=str(REPO), capture_output=True, text=True, timeout=180, **kw)


def _operator_lines(text):
    """What the operator reads in the terminal (the final JSON summary left out)."""
    return [line for line in text.splitlines() if not line.startswith("{")]


def test_two_mib_disk_reaches_the_operator_and_no_episode_says_logged(robot, policy_path, tmp_path, small_disk):
    robot.reset("standing")
    r = _cli(["--policy", policy_path, "--log", "--log-dir", small_disk, "--duration", "3"], robot, tmp_path)
    assert r.returncode == 0, r.stderr
    said = "\n".join(_operator_lines(r.stdout + r.stderr))
    stopped = [line for line in said.splitlines() if "logging stopped: " in line]
    assert stopped and "disk full" in stopped[0] and "kept: " in stopped[0], said  # at once, in words, what was kept
    ended = [line for line in said.splitlines() if "episode 0 ended" in line]
    assert ended and ", logged" not in ended[0] and "NOT logged (logging stopped: " in ended[0], said
    assert "Traceback" not in said


def _sim_robot_child(pid):
    """The ``go1o4 sim-robot`` process a session started (a child of ``pid``), or None."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return None
    for kid in kids:
        try:
            with open("/proc/%d/cmdline" % kid, "rb") as f:
                if b"sim-robot" in f.read().split(b"\0"):
                    return kid
        except OSError:
            pass
    return None


def test_simulator_process_dying_reaches_the_operator(policy_path, tmp_path):
    """The session's own simulated Go1 is SIGKILLed while the policy runs: the operator reads that in words."""
    script = tmp_path / "run.yaml"
    script.write_text(RUN)
    channel = CHANNEL + "_simdead"
    cmd = [sys.executable, "-m", "go1o4.cli", "session", "--policy", policy_path, "--sim-robot", "subprocess",
           "--sim-mode", "realtime", "--start-pose", "standing", "--quiet", "--set", "t265.channel=%s" % channel,
           "--set", "runtime.settle_s=0.2", "--log", "--log-dir", str(tmp_path / "logs"), "--duration", "600",
           "--script", str(script)]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    said = []

    def wait_for(text):
        while not any(text in line for line in said):
            try:
                said.append(lines.get(timeout=120))
            except queue.Empty:
                raise AssertionError("no %r from the session (exit %s): %s" % (text, proc.poll(), "".join(said)))

    try:
        wait_for("running the policy")
        sim = _sim_robot_child(proc.pid)
        assert sim is not None, "no sim-robot child of the session: %s" % "".join(said)
        os.kill(sim, signal.SIGKILL)
        wait_for("the simulated Go1 process exited")
        proc.send_signal(signal.SIGTERM)  # the operator stops the session
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while not lines.empty():
        said.append(lines.get())
    text = "".join(said)
    dead = [line for line in said if "the simulated Go1 process exited" in line]
    assert len(dead) == 1, text  # said once, in words: the exit code, what the runtime does, what was kept
    assert "code -9" in dead[0] and "damping" in dead[0] and "episodes so far are kept in " in dead[0], text
    assert proc.returncode in (0, 1) and "Traceback" not in text, text
