"""Runtime pieces without a robot: operator input, config, policy loading, log records, timing, status."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from go1o4.robot_runtime.clock import LockstepClock, LoopStats
from go1o4.robot_runtime.episode_log import pack_step, unpack_step
from go1o4.robot_runtime.operator import (
    Command,
    RemoteInput,
    ScriptInput,
    keys_to_commands,
    load_script,
    stick_command,
)
from go1o4.robot_runtime.policy import GaussianExploration, OnnxPolicy, PolicyLoadError, gaussian_log_prob
from go1o4.robot_runtime.session_config import load_session_config
from go1o4.robot_runtime.status import RateMeter, format_status
from runtime_helpers import export_random_policy, nan_policy, wrong_shape_policy

from go1o4 import contract as C
from go1o4.config import ConfigError
from go1o4.policy_contract import ContractMismatch

REPO = Path(__file__).resolve().parents[1]
DEPLOY_CONFIG = REPO / "deploy" / "config" / "go1_default.yaml"


@pytest.fixture(scope="module")
def cfg():
    return load_session_config(str(DEPLOY_CONFIG))


# ----------------------------------------------------------------------------- config
def test_robot_config_loads_with_runtime_defaults(cfg):
    assert cfg.remote.estop == [["L1", "R1"], ["B"]] and cfg.commands.vx == [-0.6, 1.5]
    assert cfg.safety.ramp_step <= 0.05 and cfg.runtime.episode_steps == C.EPISODE_STEPS
    assert cfg.t265.stale_after_s == 0.1


def test_bad_config_names_the_field(tmp_path):
    bad = tmp_path / "robot.yaml"
    bad.write_text("remote:\n  estop: [[L1, R9]]\n")
    with pytest.raises(ConfigError, match=r"robot.yaml.*estop.*R9"):
        load_session_config(str(bad))
    with pytest.raises(ConfigError, match="runtime.*episode_steps"):
        load_session_config(None, ["runtime.episode_steps=0"])


# ----------------------------------------------------------------------------- operator input
def test_keys_map_to_commands_and_d_is_damping():
    cmds = keys_to_commands(b"crp dlqwx\x1b[A\x1b[D\x1b[C", (0.1, 0.1, 0.2))
    assert [c.name for c in cmds] == ["calibrate", "run", "pause", "damping", "damping", "toggle_logging", "quit",
                                      "nudge", "velocity", "nudge", "nudge", "nudge"]
    assert cmds[7].value == (0.1, 0.0, 0.0) and cmds[9].value == (0.1, 0.0, 0.0)
    assert cmds[10].value == (0.0, 0.0, 0.2) and cmds[11].value == (0.0, 0.0, -0.2)
    assert keys_to_commands(b"zZ9", (0.1, 0.1, 0.2)) == []


def test_sticks_deadzone_and_ranges(cfg):
    sticks, cmds = cfg.remote.sticks, cfg.commands
    np.testing.assert_allclose(stick_command({"ly": 0.04, "lx": -0.03, "rx": 0.0}, sticks, cmds), 0.0)
    np.testing.assert_allclose(stick_command({"ly": 1.0, "lx": 1.0, "rx": 1.0}, sticks, cmds), [1.5, -0.6, -1.0])
    np.testing.assert_allclose(stick_command({"ly": -1.0, "lx": -1.0, "rx": -1.0}, sticks, cmds), [-0.6, 0.6, 1.0])
    half = stick_command({"ly": 0.525}, sticks, cmds)[0]
    assert half == pytest.approx(0.75)  # (0.525 - 0.05) / 0.95 * 1.5


def test_remote_buttons_fire_once_per_press_and_estop_masks(cfg):
    r = RemoteInput(cfg.remote, cfg.commands)
    seq = [set(), {"R2"}, {"R2"}, {"R2"}, set(), {"R2"}, {"L2"}, {"L1", "R1", "R2"}]
    names = [[c.name for c in r.poll(0.02 * i, {"buttons": b})] for i, b in enumerate(seq)]
    assert names == [[], ["cycle"], [], [], [], ["cycle"], ["toggle_logging"], []]
    cfg.remote.hold_s = 0.1
    r = RemoteInput(cfg.remote, cfg.commands)
    names = [[c.name for c in r.poll(0.02 * i, {"buttons": {"R2"}})] for i in range(8)]
    assert sum(len(n) for n in names) == 1 and names[5] == ["cycle"]
    cfg.remote.hold_s = 0.0


def test_remote_sticks_emit_velocity_when_they_move(cfg):
    r = RemoteInput(cfg.remote, cfg.commands)
    assert r.poll(0.0, {"buttons": set(), "ly": 0.0}) == []
    out = r.poll(0.02, {"buttons": set(), "ly": 1.0})
    assert out == [Command("velocity", (1.5, 0.0, 0.0), "remote")]
    assert r.poll(0.04, {"buttons": set(), "ly": 1.0}) == []


def test_script_replays_on_the_session_clock(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("actions:\n  - {t: 0.0, do: calibrate}\n  - {t: 0.5, do: velocity, vx: 0.4}\n"
                 "  - {t: 0.5, keys: 'p'}\n  - {t: 1.0, do: quit}\n")
    s = ScriptInput(load_script(str(p)), (0.1, 0.1, 0.2))
    assert [c.name for c in s.poll(10.0)] == ["calibrate"]
    assert s.poll(10.4) == []
    assert s.poll(10.5) == [Command("velocity", (0.4, 0.0, 0.0), "script"), Command("pause", (), "script")]
    assert [c.name for c in s.poll(11.0)] == ["quit"] and s.done


@pytest.mark.parametrize("text, match", [
    ("actions:\n  - {t: 1.0, do: jump}\n", "do: unknown action 'jump'"),
    ("actions:\n  - {t: 2.0, do: run}\n  - {t: 1.0, do: pause}\n", "sorted"),
    ("actions:\n  - {t: 1.0, do: run, keys: r}\n", "exactly one"),
    ("actions:\n  - {t: -1, do: run}\n", "t must be"),
])
def test_bad_script_is_a_clear_error(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        load_script(str(p))
    assert "bad.yaml" in str(e.value)


# ----------------------------------------------------------------------------- policies
@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("policies"))
    export_random_policy(d)
    nan_policy(d)
    wrong_shape_policy(d, 280, 12)
    wrong_shape_policy(d, 290, 10)
    return d


def test_onnx_policy_matches_torch(policy_dir):
    import torch

    from go1o4.rl.networks import GaussianActor

    torch.manual_seed(0)
    actor = GaussianActor(init_std=0.3).eval()
    p = OnnxPolicy.load(os.path.join(policy_dir, "random.onnx"))
    x = np.random.default_rng(1).normal(size=C.POLICY_INPUT_DIM)
    with torch.no_grad():
        ref = actor(torch.as_tensor(x, dtype=torch.float32)[None])[0].numpy()
    np.testing.assert_allclose(p.act(x), ref, atol=1e-5)
    np.testing.assert_allclose(p.contract_log_std(), np.log(0.3), atol=1e-6)
    assert len(p.sha256) == 64


@pytest.mark.parametrize("name, field", [("wrong_280_12", "input 'obs' last dim: expected 290, got 280"),
                                         ("wrong_290_10", "output 'action' last dim: expected 12, got 10")])
def test_wrong_shapes_are_refused_naming_the_field(policy_dir, name, field):
    with pytest.raises(ContractMismatch) as e:
        OnnxPolicy.load(os.path.join(policy_dir, name + ".onnx"))
    assert field in str(e.value)


def test_policy_file_problems_are_clear(policy_dir, tmp_path):
    with pytest.raises(PolicyLoadError, match="not found"):
        OnnxPolicy.load(str(tmp_path / "none.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    (tmp_path / "junk.yaml").write_text(open(os.path.join(policy_dir, "random.yaml")).read())
    with pytest.raises(PolicyLoadError, match="junk.onnx is not a loadable ONNX model"):
        OnnxPolicy.load(str(junk))
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(open(os.path.join(policy_dir, "random.onnx"), "rb").read())
    with pytest.raises(PolicyLoadError, match="lone.yaml not found"):
        OnnxPolicy.load(str(lone))


def test_session_cli_refuses_a_wrong_shape_policy(policy_dir):
    r = subprocess.run([sys.executable, "-m", "go1o4.cli", "session", "--policy",
                        os.path.join(policy_dir, "wrong_280_12.onnx"), "--sim-mode", "lockstep", "--quiet"],
                       cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "does not match the Go1 contract" in r.stderr and "expected 290, got 280" in r.stderr
    assert "Traceback" not in r.stderr and "starting the simulated" not in r.stdout


def test_gaussian_exploration_log_prob():
    import torch

    ex = GaussianExploration(np.linspace(-1.5, 0.0, 12), seed=3)
    mean = np.linspace(-1, 1, 12)
    a, lp = ex.sample(mean)
    ref = torch.distributions.Normal(torch.as_tensor(mean), torch.as_tensor(np.exp(ex.log_std))).log_prob(
        torch.as_tensor(a)).sum().item()
    assert lp == pytest.approx(ref, rel=1e-9)
    assert gaussian_log_prob(mean, mean, np.zeros(12)) == pytest.approx(-6 * math.log(2 * math.pi))
    with pytest.raises(ValueError, match="finite"):
        GaussianExploration([float("nan")])


# ----------------------------------------------------------------------------- records, timing, status
def test_step_packing_round_trip():
    step = {"time": 1.25, "tick": 7, "obs": np.arange(58.0), "t265_confidence": -1, "action": np.ones(12) * np.nan}
    layout = [(k, np.shape(v)) for k, v in step.items()]
    back = unpack_step(pack_step(step, layout), layout)
    assert back["time"] == 1.25 and back["tick"] == 7 and back["t265_confidence"] == -1
    np.testing.assert_array_equal(back["obs"], step["obs"])
    assert np.isnan(back["action"]).all()
    with pytest.raises(ValueError, match="layout expects"):
        unpack_step(pack_step(step, layout)[:-8], layout)


def test_loop_stats_counts_missed_deadlines_and_period_error():
    s = LoopStats(0.02, 0.002)
    t = 0.0
    for k in range(100):
        late = 0.005 if k == 50 else 0.0001
        s.record(t + late, t, 0.001)
        t += 0.02
    out = s.summary()
    assert s.missed == 1 and out["late_max_ms"] == pytest.approx(5.0)
    assert out["period_err_max_ms"] == pytest.approx(4.9, abs=1e-6)
    assert out["rate_hz"] == pytest.approx(50.0, rel=0.01)
    c = LockstepClock()
    for _ in range(10):
        c.advance()
    assert c.now() == pytest.approx(C.POLICY_DT)


def test_status_line_shows_what_the_operator_needs():
    snap = {"state": "damping", "calibrated": False, "lockstep": False, "time": 10.0, "wall": 100.0,
            "link_ticks": 5000, "policy_steps": 500, "link_missed": 3, "policy_missed": 0, "inference_ms": 0.08,
            "command": np.array([0.5, 0.0, 0.1]), "v_body": np.array([0.45, 0.01, 0.0]), "t265": "ok",
            "battery": 87.0, "max_temp": 52.0, "warnings": ["motor(s) FL_calf above 50 C"], "episode": 4,
            "episode_step": None, "logging": True, "log_error": "", "tripped": "state_lost"}
    rates = RateMeter()
    rates.update(dict(snap, wall=99.0, link_ticks=4500, policy_steps=450))
    rates.update(snap)
    line = format_status(snap, rates)
    for part in ("DAMPING(state_lost)", "link 500 Hz miss 3", "policy 50 Hz", "+0.50,+0.00,+0.10",
                 "+0.45,+0.01,+0.00", "T265 ok", "bat 87%", "temp 52 C", "ep 4", "log ON", "FL_calf"):
        assert part in line, (part, line)


def test_keyboard_reads_a_real_terminal_without_blocking():
    import pty
    import termios

    from go1o4.robot_runtime.operator import KeyboardInput

    master, slave = pty.openpty()
    stream = os.fdopen(slave, "r")
    before = termios.tcgetattr(slave)
    kb = KeyboardInput((0.1, 0.1, 0.2), stream=stream)
    try:
        assert kb.active and not termios.tcgetattr(slave)[3] & termios.ICANON  # cbreak: no Enter needed
        assert kb.poll(0.0) == []  # nothing typed: returns at once
        os.write(master, b"c\x1b[Aq")
        import time

        time.sleep(0.05)
        assert [c.name for c in kb.poll(0.0)] == ["calibrate", "nudge", "quit"]
    finally:
        kb.close()
        assert termios.tcgetattr(slave)[3] == before[3]  # terminal restored
        stream.close()
        os.close(master)


def test_documented_runtime_section_matches_the_defaults():
    from go1o4.robot_runtime.session_config import RuntimeConfig

    from go1o4.config import from_dict, load_yaml

    doc = load_yaml(str(REPO / "robot_runtime" / "configs" / "session.yaml"))
    assert from_dict(RuntimeConfig, doc["runtime"], "runtime") == RuntimeConfig()


def test_link_loop_watchdog_timing_with_no_robot(udp_port):
    """A real SDK link to a port where nobody answers, on the lock-step clock: armed without a target the
    loop sends damping; stale_target trips just after 3 policy periods, state_lost after 100 ms."""
    pytest.importorskip("unitree_legged_sdk.robot_interface")
    from go1o4.robot_runtime.control import LinkLoop
    from go1o4.robot_runtime.safety import STALE_TARGET, STATE_LOST, SafetyLimits
    from go1o4.robot_runtime.sdk_link import SdkLink

    link = SdkLink("127.0.0.1", udp_port, local_port=0)
    loop = LinkLoop(link, LockstepClock(), SafetyLimits(), recv_timeout=0.0005)
    loop.arm()
    for _ in range(40):
        loop.tick()
    assert loop.tripped.cause == STALE_TARGET and loop.trip_time == pytest.approx(0.062)
    assert loop.damping_after_trip == loop.trip_time and loop.target_sends == 0 and loop.damping_sends == 40
    for _ in range(20):
        loop.tick()
    causes = [e.cause for e in loop.take_events()]
    assert causes == [STALE_TARGET, STATE_LOST] and link.sent == 60 and link.received == 0
    link.close()


def test_link_loop_refuses_an_older_state_that_arrives_late(udp_port):
    """Real SDK link, LowStates sent over real UDP with ticks 100, 104, then 102 (reordered on the wire):
    the late, older one is counted out of order and never replaces the newest state; a newer one is taken."""
    pytest.importorskip("unitree_legged_sdk.robot_interface")
    import socket

    from go1o4.robot_runtime.clock import WallClock
    from go1o4.robot_runtime.control import LinkLoop
    from go1o4.robot_runtime.safety import SafetyLimits
    from go1o4.robot_runtime.sdk_link import SdkLink
    from go1o4.robot_runtime.simulated_go1.lowstate import fill_low_state

    link = SdkLink("127.0.0.1", udp_port, local_port=0)
    if link._wait_sock is None:
        pytest.skip("the SDK's socket could not be identified (its local port is unknown)")
    port = link._wait_sock.getsockname()[1]
    loop = LinkLoop(link, WallClock(), SafetyLimits())
    z12, sender = np.zeros(12), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", udp_port))  # the robot's address: where the link sends its LowCmds

    def state(tick):
        return fill_low_state(q=z12, dq=z12, ddq=z12, tau=z12,
                              temperature=z12, mode=np.full(12, 10), quat_wxyz=[1, 0, 0, 0], gyro=[0, 0, 0],
                              accelerometer=[0, 0, 9.81], rpy=[0, 0, 0], foot_forces=[0, 0, 0, 0], tick_ms=tick,
                              soc=90, power_w=0.0, remote=bytes(40))

    seen = []
    try:
        for tick in (100, 104, 102, 106):
            sender.sendto(state(tick), ("127.0.0.1", port))
            assert loop._receive(1.0) is not None or tick == 102  # one datagram in the socket: read on arrival
            seen.append((loop.latest.tick, loop.out_of_order))
    finally:
        sender.close()
        link.close()
    assert seen == [(100, 0), (104, 0), (104, 1), (106, 1)]
