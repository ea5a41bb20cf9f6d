"""Fault tests of the runtime against the simulated Go1 through the real SDK over real UDP.

Each test states the robot command that results (damping within a stated time, or continued
control), what the log holds and what the operator is told. Lock-step unless stated: there the
clock is the simulator's, so times are exact; the simulator-killed and kill -9 tests run in real time.
"""
import gc
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from go1o4.robot_runtime import safety as S
from go1o4.robot_runtime.policy import OnnxPolicy
from go1o4.robot_runtime.session_cli import start_simulated_robot
from runtime_helpers import (
    close_session,
    export_random_policy,
    lockstep_session,
    realtime_sim,
    session_config,
    world_readable_dir,
)

from go1o4 import contract as C

pytest.importorskip("unitree_legged_sdk.robot_interface")
REPO = Path(__file__).resolve().parents[1]
CHANNEL = "T265_RTF_%d" % os.getpid()
NO_FAULTS = dict(cmd_loss=0.0, state_loss=0.0, corrupt_crc=0.0, delay_ms=0.0, jitter_ms=0.0, reorder=0.0)


@pytest.fixture(scope="module")
def policy_path():
    d = world_readable_dir("go1o4_rtf_pol_")
    yield export_random_policy(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def robot():
    r = start_simulated_robot(session_config("/tmp", CHANNEL), "lockstep", "subprocess")
    yield r
    r.close()


@pytest.fixture
def session(tmp_path, robot, policy_path):
    msgs = []
    s = lockstep_session(session_config(str(tmp_path / "logs"), CHANNEL), robot, OnnxPolicy.load(policy_path), msgs)
    s.test_messages = msgs
    yield s
    close_session(s)
    robot.call("faults", **NO_FAULTS)


def at(t_event, action, log, clock, gc_seen=None):
    """Command schedule (vx 0.3) that runs ``action`` once at ``t_event`` s into the episode; logs clock.now().
    ``gc_seen``: a list that gets gc.isenabled() at every policy step."""
    def schedule(t):
        if gc_seen is not None:
            gc_seen.append(gc.isenabled())
        if t >= t_event and not log:
            log.append(clock.now())
            action()
        return (0.3, 0.0, 0.0)
    return schedule


def episodes(session):
    from go1o4.data.reader import open_dataset

    session.log.close()
    return [ref.load() for ref in open_dataset(session.log.session_path).episodes]


def events(session):
    with open(os.path.join(session.log.session_path, "events.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("loss", [0.1, 0.3])
def test_packet_loss_control_continues(session, robot, loss):
    """Each LowCmd and each LowState lost with probability ``loss``: no damping, the episode completes."""
    robot.call("faults", cmd_loss=loss, state_loss=loss, seed=1)
    r = session.run_episode(command_schedule=(0.3, 0.0, 0.0), max_steps=150, reset_pose="standing")
    link = session.loop.link.counters()
    gt = robot.call("ground_truth")
    ep = episodes(session)[0]
    ages = ep["extra_state_age"]
    print("loss %.0f%%: %d/%d LowStates (%.0f%%), state age at policy steps max %.0f ms, base height %.3f m"
          % (loss * 100, link["received"], link["sent"], 100.0 * link["received"] / link["sent"],
             1e3 * np.max(ages), gt["base_pos"][2]))
    assert (r.end, r.reason, r.steps) == ("truncation", "time_limit", 150)
    assert session.loop.tripped is None and session.loop.armed and session.state == S.PAUSED
    assert link["received"] / link["sent"] == pytest.approx((1 - loss) ** 2, abs=0.06)
    assert np.max(ages) < session.cfg.safety.state_timeout and gt["base_pos"][2] > 0.2
    assert ep.num_steps == 150 and np.all(np.isfinite(ep["obs"]))


def test_silence_200ms_damping_within_state_timeout(session, robot):
    t_inj = []
    r = session.run_episode(command_schedule=at(0.5, lambda: robot.call("silence", seconds=0.2), t_inj,
                                                session.clock), max_steps=500, reset_pose="standing")
    loop, timeout = session.loop, session.cfg.safety.state_timeout
    delay = loop.trip_time - t_inj[0]
    assert (r.end, r.reason) == ("truncation", S.STATE_LOST) and session.state == S.DAMPING
    # the last state came with the reply before the silence; damping once it is older than state_timeout
    assert timeout < delay <= timeout + 2 * C.LINK_DT + 1e-9
    assert loop.damping_after_trip == loop.trip_time  # damping sent in the link period of detection
    assert any("SAFETY state_lost: no valid robot state for 10" in m for m in session.test_messages)
    ep = episodes(session)[0]
    assert ep.reason == S.STATE_LOST and ep.num_steps == r.steps and 25 <= r.steps <= 31
    assert events(session)[0]["cause"] == S.STATE_LOST


def test_delayed_and_reordered_replies(session, robot):
    """6-10 ms late replies, 20 % of them swapped with the next one: no older state is ever used, no damping.
    (A swapped pair read in one drain of the SDK's socket leaves only its last datagram, so how many older
    states reach the loop depends on the scheduling; the rule itself: test_runtime_units.py, older state.)"""
    robot.call("faults", delay_ms=6.0, jitter_ms=4.0, reorder=0.2, seed=2)
    session.loop.recv_timeout = 0.002  # lock-step waits for this command's reply, which now comes ticks later
    r = session.run_episode(command_schedule=(0.3, 0.0, 0.0), max_steps=100, reset_pose="standing")
    ep = episodes(session)[0]
    print("delay+reorder: %d out-of-order LowStates dropped, state age max %.0f ms"
          % (session.loop.out_of_order, 1e3 * np.max(ep["extra_state_age"])))
    assert (r.end, r.reason) == ("truncation", "time_limit") and session.loop.tripped is None
    # never an older state; the same one twice where no reply came within the 2 ms wall wait (a loaded machine)
    assert robot.call("counters")["reordered"] > 0 and np.all(np.diff(ep["tick"]) >= 0)
    assert np.max(ep["extra_state_age"]) < 0.05


def test_crc_failures_counted_then_sustained_ones_damp(session, robot):
    robot.call("faults", corrupt_crc=0.01, seed=3)
    r = session.run_episode(command_schedule=(0.3, 0.0, 0.0), max_steps=100, reset_pose="standing")
    corrupted = robot.call("counters")["crc_corrupted"]
    assert (r.end, r.reason) == ("truncation", "time_limit") and session.loop.tripped is None
    assert 0 < session.loop.link.crc_failures <= corrupted
    robot.call("faults", corrupt_crc=0.5, seed=4)
    r = session.run_episode(command_schedule=(0.3, 0.0, 0.0), max_steps=100)
    assert (r.end, r.reason) == ("truncation", S.CRC_FAILURES) and session.state == S.DAMPING
    assert session.loop.damping_after_trip == session.loop.trip_time
    ev = [e for e in events(session) if e["cause"] == S.CRC_FAILURES]
    assert ev and "CRC failures in the last 1.0 s" in ev[0]["detail"]
    assert any("SAFETY crc_failures" in m for m in session.test_messages)


def test_simulator_killed_mid_episode_realtime(tmp_path, policy_path):
    """Real time, threads, logger process: the robot vanishes -> damping, episode truncated 'state_lost'."""
    from go1o4.robot_runtime.session_cli import build_session

    ch = CHANNEL + "_rt"
    cfg = session_config(str(tmp_path / "logs"), ch)
    robot = realtime_sim(cfg, start_pose="standing")
    msgs = []
    s = build_session(cfg, OnnxPolicy.load(policy_path), robot=robot, on_message=msgs.append)
    t_kill, gc_seen = [], []
    try:
        r = s.run_episode(command_schedule=at(1.0, lambda: robot.call("kill"), t_kill, s.clock, gc_seen),
                          max_steps=500, timeout=30, reset_pose="standing")
        loop = s.loop
        assert t_kill, "episode ended before the kill: %s %s; %s" % (r.reason, r.steps, msgs)
        s.driver.run_until(lambda: s.state == S.DAMPING, timeout=1.0)  # T265 may have cut the episode first
        delay = loop.trip_time - t_kill[0]
        print("simulator killed: damping after %.1f ms (state timeout %.0f ms), first damping packet %.2f ms later"
              % (1e3 * delay, 1e3 * cfg.safety.state_timeout, 1e3 * (loop.damping_after_trip - loop.trip_time)))
        # T265 samples (200 Hz) stop with the robot too: whichever timeout a policy step sees first cuts the
        # episode (both truncations); the link watchdog's state_lost puts the robot in damping
        assert r.end == "truncation" and r.reason in (S.STATE_LOST, "t265_stale") and 50 <= r.steps <= 57
        assert s.state == S.DAMPING and loop.tripped.cause == S.STATE_LOST
        assert cfg.safety.state_timeout < delay < cfg.safety.state_timeout + 0.03
        assert loop.damping_after_trip - loop.trip_time <= C.LINK_DT + 0.003
        sends = loop.damping_sends
        time.sleep(0.1)
        assert loop.damping_sends > sends and not loop.armed  # still commanding damping
        assert any("SAFETY state_lost" in m for m in msgs)
        # cache warming in the real-time loop: the policy ran on its last input before each policy deadline
        assert s.cfg.runtime.prewarm_s > 0 and s.prewarms >= r.steps - 3
        # no automatic garbage collection while the loops ran; the policy thread collected the young generation
        assert gc_seen and not any(gc_seen) and gc.isenabled()
        assert s.driver.gc_young_runs >= r.steps // s.cfg.runtime.gc_young_every - 1 >= 1
    finally:
        close_session(s)
        robot.close()
    from go1o4.data.reader import open_dataset

    ep = open_dataset(s.log.session_path).episodes[0].load()
    assert (ep.end, ep.reason, ep.status) == ("truncation", r.reason, "complete") and ep.num_steps == r.steps


# ----------------------------------------------------------------------------- the CLI as a real process
def _as_nobody():
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)


def _cli(args, robot, timeout=120, preexec=None, **kw):
    cmd = [sys.executable, "-m", "go1o4.cli", "session", "--sim-port", str(robot.port), "--sim-control-port",
           str(robot.control.addr[1]), "--quiet", "--set", "t265.channel=%s" % CHANNEL,
           "--set", "runtime.settle_s=0.2"] + list(args)
    return subprocess.run(cmd, cwd=str(REPO), capture_output=True, text=True, timeout=timeout, preexec_fn=preexec,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"), **kw)


def _summary(path):
    """The summary the CLI writes with ``--json`` (the screen gets a readable one)."""
    with open(path) as f:
        return json.load(f)


def _script(folder, text):
    p = os.path.join(folder, "script.yaml")
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o644)
    return p


RUN_SCRIPT = "actions:\n  - {t: 0.05, do: calibrate}\n  - {t: 0.5, do: run}\n"


def _cli_in_child_as_nobody(argv, timeout=120.0):
    """``go1o4 <argv>`` in a forked child running as 'nobody' when we are root (permission bits then apply;
    a fresh interpreter cannot start as nobody here: Python lives under /root). Returns (exit code, output)."""
    import tempfile

    import go1o4.robot_runtime.session_cli  # noqa: F401
    import go1o4.robot_runtime.simulated_go1.control  # noqa: F401
    import go1o4.robot_runtime.status  # noqa: F401
    from go1o4.robot_runtime.lcm_types import t265_pose_t  # noqa: F401

    import go1o4.cli  # noqa: F401 - everything the child runs is imported before the fork

    out = tempfile.NamedTemporaryFile(prefix="go1o4_rtf_out_", dir="/tmp", delete=False)
    os.chmod(out.name, 0o666)
    pid = os.fork()
    if pid == 0:  # child
        code = 70
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)  # not pytest's capture objects
            sys.stderr = os.fdopen(2, "w", buffering=1)
            _as_nobody()
            code = go1o4.cli.main(argv)
        except BaseException as e:  # noqa: BLE001 - report anything
            os.write(2, ("child failed: %r\n" % e).encode())
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    end = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the session did not finish within %.0f s" % timeout)
        time.sleep(0.1)
    text = open(out.name).read()
    os.unlink(out.name)
    return os.WEXITSTATUS(status), text


def test_read_only_log_dir_clear_message_no_crash(robot, policy_path):
    folder = world_readable_dir("go1o4_rtf_ro_")
    ro = os.path.join(folder, "logs")
    os.mkdir(ro, 0o555)
    robot.reset("standing")
    argv = ["session", "--sim-port", str(robot.port), "--sim-control-port", str(robot.control.addr[1]), "--quiet",
            "--set", "t265.channel=%s" % CHANNEL, "--set", "runtime.settle_s=0.2", "--policy", policy_path,
            "--sim-mode", "lockstep", "--log", "--log-dir", ro, "--duration", "2",
            "--script", _script(folder, RUN_SCRIPT)]
    jdir = os.path.join(folder, "out")
    os.mkdir(jdir)
    os.chmod(jdir, 0o777)
    argv += ["--json", os.path.join(jdir, "summary.json")]
    try:
        code, out = _cli_in_child_as_nobody(argv)
        written = os.listdir(ro)
        summary = _summary(os.path.join(jdir, "summary.json"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert code == 0, out
    assert "logging is off: cannot create log session %s/" % ro in out, out
    assert "Traceback" not in out and written == []
    assert "running the policy (script)" in out and "session summary:" in out  # control went on without logging
    assert summary["log"]["error"].startswith("logging is off") and summary["episodes"]
    assert all(e["log"] == "" for e in summary["episodes"]) and summary["episodes"][-1]["steps"] > 40


def test_disk_full_stops_logging_keeps_earlier_episodes(robot, policy_path, tmp_path):
    """A 700 kB file-size limit (RLIMIT_FSIZE): episode 0 (50 steps) fits; episode 1 outgrows it mid-run.
    Logging stops with a message, control runs on to the end, episode 0 stays intact."""
    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (700000, 700000))

    robot.reset("standing")
    script = _script(str(tmp_path), RUN_SCRIPT + "  - {t: 1.5, do: pause}\n  - {t: 1.6, do: run}\n")
    r = _cli(["--policy", policy_path, "--sim-mode", "lockstep", "--log", "--log-dir", str(tmp_path / "logs"),
              "--duration", "10", "--script", script, "--json", str(tmp_path / "summary.json")], robot, preexec=limited)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "logging stopped: " in out and "episode_00001.h5" in out, out
    assert "Traceback" not in out
    summary = _summary(str(tmp_path / "summary.json"))
    last = summary["episodes"][-1]
    assert last["reason"] == "operator_stop" and last["steps"] > 400 and last["log"].endswith("episode_00001.h5")
    from go1o4.data.reader import open_dataset

    eps = [ref.load() for ref in open_dataset(str(tmp_path / "logs")).episodes]
    assert (eps[0].status, eps[0].reason, eps[0].num_steps) == ("complete", "operator_stop", 50)
    assert 0 < eps[1].num_steps < last["steps"]
    assert eps[1].status == "crashed" or eps[1].reason == "disk_full"
    assert np.all(np.isfinite(eps[1]["obs"]))


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split()[2] != "Z"


def test_kill9_runtime_mid_episode_log_recoverable(policy_path, tmp_path):
    """Real time: ``kill -9`` of the runtime; its logger child keeps what it got and marks the episode crashed."""
    logs = tmp_path / "logs"
    cfg = session_config(str(logs), CHANNEL + "_k9")
    robot = realtime_sim(cfg, start_pose="standing")
    cmd = [sys.executable, "-m", "go1o4.cli", "session", "--policy", policy_path, "--sim-port", str(robot.port),
           "--quiet", "--log", "--log-dir", str(logs), "--duration", "60", "--set", "t265.channel=%s" % CHANNEL + "_k9",
           "--set", "runtime.settle_s=0.2", "--script", _script(str(tmp_path), RUN_SCRIPT)]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(logs.glob("*/episode_00000.h5")):
            time.sleep(0.2)
        time.sleep(4.0)  # ~200 steps into the episode (the file exists from the first step)
        kids = [k for k in _children(proc.pid) if b"deadman" not in open("/proc/%d/cmdline" % k, "rb").read()]
        os.kill(proc.pid, signal.SIGKILL)  # (its dead-man takes over the robot: tests/test_deadman.py)
        proc.wait(10)
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end and any(_alive(k) for k in kids):
            time.sleep(0.1)
        assert kids and not any(_alive(k) for k in kids), "logger child left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
        from go1o4.robot_runtime.deadman import stop_previous

        stop_previous("127.0.0.1", robot.port)
        robot.close()
    from go1o4.data.reader import open_dataset

    ds = open_dataset(str(logs))
    ep = ds.episodes[0].load()
    # the logger child saw the pipe close without a goodbye: every received step kept, reason "crashed"
    assert (ep.end, ep.reason) == ("truncation", "crashed") and ep.num_steps >= 100, (ep.reason, ep.num_steps)
    dt = np.diff(ep["tick"])
    assert np.all(np.isfinite(ep["obs"])) and np.all(dt >= 0) and np.median(dt) == 20
    ev = [json.loads(line) for line in open(os.path.join(os.path.dirname(ds.episodes[0].path), "events.jsonl"))]
    assert ev[-1]["cause"] == "runtime_crashed" and str(ep.num_steps) in ev[-1]["detail"]
