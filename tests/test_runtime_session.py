"""The runtime session against the simulated Go1 through Unitree's real SDK (lock-step clock, real UDP,
real LCM T265, real ONNX Runtime, real HDF5 logs): workflow, Python API, remote, T265 cuts, fall, NaN policy."""
import json
import os
import shutil

import numpy as np
import pytest
import yaml
from go1o4.robot_runtime import safety as S
from go1o4.robot_runtime.operator import RemoteInput, ScriptInput, load_script
from go1o4.robot_runtime.policy import GaussianExploration, OnnxPolicy, gaussian_log_prob
from go1o4.robot_runtime.session_cli import start_simulated_robot
from go1o4.robot_runtime.simulated_go1.robot import SimRobot
from go1o4.robot_runtime.t265.frames import PoseSample
from runtime_helpers import (
    close_session,
    export_random_policy,
    lockstep_session,
    nan_policy,
    session_config,
    world_readable_dir,
)

from go1o4 import contract as C

pytest.importorskip("unitree_legged_sdk.robot_interface")
CHANNEL = "T265_RTS_%d" % os.getpid()


@pytest.fixture(scope="module")
def policies():
    d = world_readable_dir("go1o4_rt_pol_")
    yield {"random": OnnxPolicy.load(export_random_policy(d)), "nan": OnnxPolicy.load(nan_policy(d))}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def robot():
    cfg = session_config("/tmp", CHANNEL)
    r = start_simulated_robot(cfg, "lockstep", "subprocess")
    yield r
    r.close()


@pytest.fixture
def make(tmp_path, robot, policies):
    made = []

    def _make(*overrides, policy="random", messages=None, **kw):
        cfg = session_config(str(tmp_path / "logs"), CHANNEL, *overrides)
        s = lockstep_session(cfg, robot, policies[policy], messages, **kw)
        made.append(s)
        return s
    yield _make
    for s in made:
        close_session(s)


def events_of(session):
    path = os.path.join(session.log.session_path, "events.jsonl")
    return [json.loads(line) for line in open(path)] if os.path.exists(path) else []


def load_episodes(session):
    from go1o4.data.reader import open_dataset

    session.log.close()
    return [ref.load() for ref in open_dataset(session.log.session_path).episodes]


def record_targets(session):
    targets, orig = [], session.loop.set_target

    def rec(t):
        targets.append((session.state, t))
        orig(t)
    session.loop.set_target = rec
    return targets


def test_scripted_workflow_calibrate_run_pause_damping(make, robot, tmp_path):
    robot.reset("lying")
    script = tmp_path / "script.yaml"
    script.write_text("actions:\n  - {t: 0.1, do: calibrate}\n  - {t: 1.2, keys: 'l'}\n  - {t: 1.2, do: run}\n"
                      "  - {t: 1.2, do: velocity, vx: 0.3}\n  - {t: 2.2, keys: 'p'}\n  - {t: 2.6, keys: 'r'}\n"
                      "  - {t: 3.0, keys: ' '}\n  - {t: 3.2, keys: 'q'}\n")
    msgs = []
    s = make(messages=msgs)
    s.inputs = [ScriptInput(load_script(str(script)), s.cfg.commands.key_step)]
    targets = record_targets(s)
    s.run(duration=10.0)
    assert s.quit_requested and s.state == S.DAMPING and not s.loop.armed
    text = "\n".join(msgs)
    for m in ("calibrating", "calibrated", "running the policy", "logging on", "paused", "damping (script)"):
        assert m in text, (m, text)
    # calibration: from the measured (lying) pose to the default pose, at most 0.05 rad per 50 Hz step
    cal = np.array([t.q_des for st, t in targets if st == S.CALIBRATING])
    assert np.abs(cal[0] - C.LYING_Q).max() < 0.1
    assert np.abs(np.diff(cal, axis=0)).max() <= 0.05 + 1e-9
    np.testing.assert_allclose(cal[-1], C.DEFAULT_Q, atol=1e-9)
    assert all(t.kp == s.cfg.runtime.calibrate_kp for st, t in targets if st == S.CALIBRATING)
    # two recorded episodes: run -> pause, run -> damping (both operator stops)
    eps = load_episodes(s)
    assert [(e.end, e.reason) for e in eps] == [("truncation", "operator_stop")] * 2
    assert abs(eps[0].num_steps - 50) <= 2 and abs(eps[1].num_steps - 20) <= 2
    e = eps[0]
    np.testing.assert_allclose(e["policy_input"][:, -C.OBS_DIM:], e["obs"], atol=1e-6)
    np.testing.assert_allclose(e["command"][:, 0], 0.3, atol=1e-6)
    assert np.all(np.diff(e["tick"]) == 20) and np.all(e["safety_state"] == S.RUNNING)
    q_des = S.clamp_q_des(C.action_to_q_des(e["action"]), e["q"], e["dq"])[0]
    np.testing.assert_allclose(e["q_des"], q_des, atol=1e-4)
    assert np.all(np.isfinite(e["reward"])) and np.all(e["t265_confidence"] == 3)
    assert np.nanmax(e["extra_latency"]) < 1.0 and np.all(e["extra_inference"] > 0)
    meta = yaml.safe_load(open(os.path.join(s.log.session_path, "session.yaml")))
    assert meta["policy_hash"] == s.policy.sha256 and meta["contract"]["action"]["dim"] == 12
    assert meta["config"]["safety"]["ramp_step"] == 0.05
    assert meta["terrain"] == "rigid"  # what the simulator really uses (issue 18.1), not the config's "unknown"
    assert meta["robot"]["name"] == "sim-go1-%d" % robot.port and meta["robot"]["simulated"]
    assert meta["software_version"]
    # the screen names the files: "episode 0 ... logged as episode_00000.h5" (issue 18.2)
    assert "logged as episode_00000.h5" in text and s.results[0].log_path.endswith("episode_00000.h5"), text
    from go1o4.robot_runtime.panel import panel_snapshot, render_text
    from go1o4.robot_runtime.status import RateMeter

    screen = render_text(panel_snapshot(s, {"robot": s.cfg.robot.name, "where": "lock-step"}), RateMeter(), msgs,
                         None, 80, 24)
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) == 24 and max(map(len, lines)) <= 80, screen
    assert "DAMPING" in screen and "c / R2 calibrate" in screen and "2 finished" in screen, screen


def test_run_episode_api_stochastic_faster_than_real_time(make, policies):
    import time

    s = make()
    ex = GaussianExploration(np.full(12, -1.0), seed=0)
    t0 = time.perf_counter()
    r = s.run_episode(command_schedule=lambda t: (0.2 if t < 1.0 else 0.4, 0.0, 0.0), max_steps=100,
                      exploration=ex, value_fn=lambda x: float(np.sum(x[:3])), reset_pose="standing",
                      meta={"purpose": "test"})
    wall = time.perf_counter() - t0
    print("lock-step episode: %d steps (%.1f s robot time) in %.1f s wall" % (r.steps, r.steps * C.POLICY_DT, wall))
    assert (r.end, r.reason, r.steps) == ("truncation", "time_limit", 100)
    assert r.obs.shape == (100, 58) and r.policy_input.shape == (100, 290) and r.action.shape == (100, 12)
    assert r.final_policy_input.shape == (290,) and s.state == S.PAUSED
    np.testing.assert_allclose(r.command[:, 0], np.where(np.arange(100) * C.POLICY_DT < 1.0 - 1e-9, 0.2, 0.4))
    for i in (0, 50, 99):
        mean = s.policy.act(r.policy_input[i])
        assert r.log_prob[i] == pytest.approx(gaussian_log_prob(r.action[i], mean, ex.log_std), rel=1e-6)
    np.testing.assert_allclose(r.value, r.policy_input[:, :3].sum(1))
    ep = load_episodes(s)[0]
    np.testing.assert_allclose(ep["log_prob"], r.log_prob, rtol=1e-5)
    np.testing.assert_allclose(ep["action"], r.action, atol=1e-5)
    np.testing.assert_allclose(ep["reward"], r.reward, rtol=1e-5)
    assert ep.meta["purpose"] == "test" and ep.meta["stochastic"] is True


def _at(t_event, action):
    """A command schedule that performs ``action`` once, at ``t_event`` s into the episode."""
    done = []

    def schedule(t):
        if t >= t_event and not done:
            done.append(t)
            action()
        return (0.3, 0.0, 0.0)
    return schedule, done


def test_t265_stall_then_nan_cut_the_episode(make, robot):
    s = make()
    sched, _ = _at(0.6, lambda: robot.call("t265_stall", seconds=0.5))
    r = s.run_episode(command_schedule=sched, max_steps=500, reset_pose="standing")
    assert (r.end, r.reason) == ("truncation", "t265_stale") and 33 <= r.steps <= 37
    assert s.state == S.PAUSED and s.loop.armed  # control continues, robot holds the pose

    def feed_nan():
        s.t265.latest()  # the stall keeps LCM quiet: the NaN sample is the newest one
        n3 = np.full(3, np.nan)
        s.t265.feed(PoseSample(n3, n3, n3, np.full(4, np.nan), n3, n3, 3, 3), 0, 0)
    stall, _ = _at(0.3, lambda: robot.call("t265_stall", seconds=0.5))
    nan_at, _ = _at(0.34, feed_nan)
    r = s.run_episode(command_schedule=lambda t: (stall(t), nan_at(t))[0], max_steps=500, reset_pose="standing")
    assert (r.end, r.reason) == ("truncation", "t265_nan") and 17 <= r.steps <= 18
    causes = [e["cause"] for e in events_of(s)]
    assert "t265_stale" in causes and "t265_nan" in causes
    eps = load_episodes(s)
    assert [e.reason for e in eps] == ["t265_stale", "t265_nan"] and eps[1].num_steps == r.steps
    assert np.all(np.isfinite(eps[1]["reward"]))


@pytest.mark.parametrize("wait_s, reason", [(5.0, "time_limit"), (0.001, "t265_stale")])
def test_a_lagging_t265_reader_does_not_cut_a_lockstep_episode(make, wait_s, reason):
    """The T265 reader thread stalls for 1 s of wall time mid-episode (a loaded host: with 3 online runs on 2
    cores, 30-40 % of training episodes were cut as t265_stale). The paused simulator had sent its samples, so
    the lock-step step waits for them (runtime.lockstep_t265_wait_s) and the episode runs to its time limit;
    with a wait too short to cover the stall it is cut as on a real robot whose T265 went silent."""
    import time

    s = make("runtime.lockstep_t265_wait_s=%g" % wait_s)
    feed, lag, lagged = s.t265.feed, [], []

    def slow_feed(*args, **kwargs):
        if lag and not lagged:
            lagged.append(True)
            time.sleep(1.0)
        feed(*args, **kwargs)
    s.t265.feed = slow_feed
    sched, _ = _at(0.4, lambda: lag.append(True))
    r = s.run_episode(command_schedule=sched, max_steps=100, reset_pose="standing")
    assert lagged and (r.end, r.reason) == ("truncation", reason)
    assert r.steps == 100 if reason == "time_limit" else 20 <= r.steps < 100


def test_fall_ends_the_episode_as_terminal_and_damps(make, robot):
    msgs = []
    s = make(messages=msgs)
    sched, _ = _at(0.4, lambda: robot.call("knock_over", roll=1.9))
    r = s.run_episode(command_schedule=sched, max_steps=500, reset_pose="standing")
    assert (r.end, r.reason) == ("terminal", "fall") and r.terminal and r.steps <= 22
    assert s.state == S.DAMPING and s.loop.tripped.cause == S.TILT
    assert s.loop.damping_after_trip == s.loop.trip_time  # damping in the very link period of detection
    assert any("SAFETY tilt" in m for m in msgs) and any("DAMPING after tilt" in m for m in msgs)
    ep = load_episodes(s)[0]
    assert ep.end == "terminal" and ep.reason == "fall" and ep.num_steps == r.steps
    assert [e["cause"] for e in events_of(s)] == ["tilt"]


def test_nan_policy_output_goes_to_damping(make):
    msgs = []
    s = make(policy="nan", messages=msgs)
    r = s.run_episode(command_schedule=(0.0, 0.0, 0.0), max_steps=500, reset_pose="standing")
    # FL clock input sin(2 pi (0.5 + 0.06 k)) first drops below -0.5 at step k = 2 (3 Hz trot, 50 Hz)
    assert (r.end, r.reason) == ("truncation", S.BAD_ACTION) and r.steps == 2
    assert s.state == S.DAMPING and not s.loop.armed
    assert s.loop.damping_after_trip is not None and s.loop.damping_after_trip - s.loop.trip_time <= 1e-9
    ev = [e for e in events_of(s) if e["cause"] == S.BAD_ACTION]
    assert len(ev) == 1 and "action is not finite at FL_hip" in ev[0]["detail"] and ev[0]["state"] == "running"
    assert any("SAFETY bad_action: action is not finite" in m for m in msgs)
    ep = load_episodes(s)[0]
    assert ep.num_steps == r.steps and np.all(np.isfinite(ep["action"])) and ep.reason == S.BAD_ACTION
    # cache warm-up only while RUNNING: in damping the policy is never called again (issue 14.4)
    calls = s.prewarms
    for _ in range(5):
        s.prewarm()
    assert s.prewarms == calls and s.state == S.DAMPING


def test_policy_failing_when_called_is_refused_at_load(tmp_path, capsys):
    from go1o4.robot_runtime.policy import PolicyLoadError
    from runtime_helpers import failing_policy

    from go1o4.cli import main
    path = failing_policy(str(tmp_path))
    with pytest.raises(PolicyLoadError, match="fails when run on a neutral input"):
        OnnxPolicy.load(path)
    assert main(["session", "--policy", path, "--quiet", "--duration", "1"]) == 2  # before any robot is started
    err = capsys.readouterr().err
    assert "fails when run on a neutral input" in err and "Traceback" not in err


def test_remote_schedule_drives_the_workflow_and_estop(tmp_path, policies):
    remote = tmp_path / "remote.yaml"
    remote.write_text("events:\n  - {t: 0.2, buttons: [R2], duration: 0.1}\n  - {t: 1.3, buttons: [R2], duration: 0.1}\n"
                      "  - {t: 1.5, buttons: [L2], duration: 0.1}\n  - {t: 1.7, ly: 0.525}\n"
                      "  - {t: 2.5, buttons: [L1, R1], duration: 0.3}\n  - {t: 3.0, buttons: [R2], duration: 0.1}\n")
    ch = CHANNEL + "_remote"
    cfg = session_config(str(tmp_path / "logs"), ch)
    robot = start_simulated_robot(cfg, "lockstep", "subprocess", remote_schedule=str(remote))
    msgs = []
    s = lockstep_session(cfg, robot, policies["random"], msgs)
    try:
        s.inputs = [RemoteInput(cfg.remote, cfg.commands)]
        s.run(duration=2.8)
        assert s.state == S.ESTOP and s.loop.tripped.cause == S.ESTOP_BUTTON
        assert 2.5 <= s.loop.trip_time <= 2.5 + 2 * C.LINK_DT + 1e-9  # estop state received -> next link period
        assert s.loop.damping_after_trip == s.loop.trip_time
        s.run(duration=0.4)
        assert s.state == S.CALIBRATING  # R2 from e-stop calibrates again
        text = "\n".join(msgs)
        assert "calibrating: ramp to the default pose (remote)" in text and "running the policy (remote)" in text
        assert "SAFETY estop_button: e-stop pressed on the remote" in text
        ep = load_episodes(s)[0]
        assert (ep.end, ep.reason) == ("truncation", S.ESTOP_BUTTON)
        np.testing.assert_allclose(ep["command"][-10:, 0], 0.75, atol=1e-6)  # left stick 0.525 -> 0.75 m/s
    finally:
        close_session(s)
        robot.close()


def test_sim_robot_handle_reports_bad_mode():
    with pytest.raises(ValueError, match="how must be"):
        SimRobot.launch(how="docker")


def test_foreign_t265_stream_is_refused_and_never_rewarded(make, robot):
    """Issue 18.1: another robot ('go1-intruder', 1.2 m/s) publishes on this session's URL and channel the
    whole time. Its samples are refused; while the simulated robot's own T265 runs they are ignored, when it
    stalls the episode is cut as t265_foreign with the reason in words, and no logged step used its velocity."""
    import threading
    import time

    import lcm
    from go1o4.robot_runtime.t265.realsense_publisher import pose_to_message
    from test_t265_source import pose

    other = pose(v=(0.0, 0.0, -1.2), w=(0.0, 0.0, 0.0))  # T265 axes: 1.2 m/s forward
    msgs = []
    s = make("logging.enabled_at_start=true", "t265.stale_after_s=0.5", messages=msgs)  # robust to a starved LCM thread
    bus, stop = lcm.LCM(s.cfg.t265.lcm_url), threading.Event()

    def intruder():
        k = 0
        while not stop.is_set():
            bus.publish(s.t265.channel, pose_to_message(other, k, int(time.monotonic() * 1e6), "go1-intruder",
                                                        "905312110999").encode())
            k += 1
            time.sleep(0.002)
    th = threading.Thread(target=intruder, daemon=True)
    th.start()
    try:
        sched, _ = _at(0.6, lambda: robot.call("t265_stall", seconds=5.0))
        r = s.run_episode(command_schedule=sched, max_steps=500, reset_pose="standing")
    finally:
        stop.set()
        th.join()
    assert (r.end, r.reason) == ("truncation", "t265_foreign") and 50 <= r.steps <= 60, (r.reason, r.steps)
    assert s.t265.refused > 0 and "robot 'go1-intruder'" in s.t265.refusal
    text = "\n".join(msgs)
    assert "T265 t265_foreign: episode cut" in text and "refused: this session is robot 'sim-go1-" in text, text
    ep = load_episodes(s)[-1]
    assert ep.reason == "t265_foreign" and np.all(np.isfinite(ep["reward"]))
    assert np.abs(ep["t265_velocity_body"][:, 0]).max() < 0.8  # its own (command 0.3 m/s), never the other's 1.2
