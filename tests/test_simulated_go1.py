"""The simulated Go1 driven by Unitree's real SDK over real UDP on 127.0.0.1 (lock-step unless stated)."""
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from go1o4.robot_runtime import wire
from go1o4.robot_runtime.robot_state import RobotState
from go1o4.robot_runtime.sdk_link import SdkLink
from go1o4.robot_runtime.simulated_go1 import codec
from go1o4.robot_runtime.simulated_go1.config import SimRobotConfig
from go1o4.robot_runtime.simulated_go1.control import ControlClient
from go1o4.robot_runtime.simulated_go1.remote import load_remote_schedule
from go1o4.robot_runtime.simulated_go1.server import SimulatedGo1
from go1o4.robot_runtime.stand import StandConfig, run_stand
from go1o4.sim_pretrain.model.terrain import TerrainConfig

from go1o4 import contract as C
from go1o4.config import ConfigError

pytest.importorskip("unitree_legged_sdk.robot_interface")


def make_robot(udp_port, **kw):
    kw.setdefault("mode", "lockstep")
    return SimulatedGo1(SimRobotConfig(port=udp_port, control_port=0, **kw)).start()


@pytest.fixture
def robot(udp_port):
    sim = make_robot(udp_port)
    yield sim
    sim.close()


@pytest.fixture
def link(robot):
    return SdkLink("127.0.0.1", robot.port, local_port=0)


def exchange(link, n, **send):
    """n lock-step exchanges with the same command; returns the received states (None where none came)."""
    out = []
    for _ in range(n):
        if send.get("damping"):
            link.send_damping()
        else:
            link.send(**send)
        out.append(link.receive(timeout=0.5 if not out or out[-1] is not None else 0.02))
    return out


def test_link_waits_on_the_sdks_own_socket(robot, link):
    """receive(timeout) sleeps in select() on the SDK's UDP socket: it returns the reply as soon as it is there,
    and None after the timeout when nothing comes; without that socket it falls back to sleep-polling."""
    assert link._wait_sock is not None
    assert link._wait_sock.getpeername()[1] == robot.port  # the SDK's socket, not some other one
    link.send_damping()
    assert link.receive(timeout=2.0) is not None and link.empty_polls <= 1
    t0 = time.monotonic()
    assert link.receive(timeout=0.05) is None  # nothing was sent: nothing comes back
    waited = time.monotonic() - t0
    assert 0.05 <= waited < 0.5 and link.empty_polls <= 4  # slept in select, not spinning
    link._wait_sock.close()
    link._wait_sock = None  # e.g. no /proc: sleep-polling, same results
    link.send_damping()
    assert link.receive(timeout=2.0) is not None


def test_starts_lying_in_damping(robot, link):
    gt = robot.ground_truth()
    assert gt["motor_mode"] == [C.MODE_DAMPING] * 12 and gt["base_pos"][2] < 0.15
    link.send(0.0, 0.0, 0.0, 0.0, 0.0, mode=C.MODE_DAMPING)
    s = link.receive(timeout=2.0)
    assert s is not None and 0 < s.tick <= 4
    np.testing.assert_allclose(s.q, C.LYING_Q, atol=0.1)
    assert (s.motor_mode == C.MODE_DAMPING).all()
    assert s.battery_soc == 95 and (s.temperature == 25).all()
    np.testing.assert_allclose(s.projected_gravity, [0, 0, -1], atol=0.05)
    assert s.foot_forces.min() > 5  # resting on its folded legs


# the calibrated mattress carries a standing Go1 ~9 cm deep (sim_pretrain/calibration/README.md)
@pytest.mark.parametrize("terrain,min_height", [("rigid", 0.28), ("mattress", 0.18), ("mattress_soft_legacy", 0.25)])
def test_stand_up_from_damping_and_hold(udp_port, terrain, min_height):
    cfg = StandConfig(hold_s=2.0)
    with make_robot(udp_port, terrain=TerrainConfig(kind=terrain)) as sim:
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        res = run_stand(link, cfg, paced=False, ground_truth=sim.ground_truth, progress=False)
        counters = sim.counters_snapshot()
    assert res.ok, res.summary()
    assert res.max_joint_error <= cfg.tolerance and res.max_tilt <= cfg.max_tilt
    assert res.base_height >= min_height
    assert 20 <= res.ramp_steps <= 30  # 1.2 rad of calf travel at 0.05 rad per step
    assert res.link["crc_failures"] == 0 and res.link["received"] >= res.link["sent"] - 10  # 10 final damping sends
    assert counters["rejected"] == 0 and counters["rx_valid"] >= res.link["received"]


def test_stand_reports_failure(udp_port):
    with make_robot(udp_port) as sim:  # far too weak to carry the robot
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        res = run_stand(link, StandConfig(kp=4.0, kd=0.2, hold_s=1.5), paced=False, progress=False,
                        ground_truth=sim.ground_truth)
    assert not res.ok and "joint error" in res.reason and "base height" in res.reason
    link = SdkLink("127.0.0.1", udp_port, local_port=0)  # nobody answers any more
    res = run_stand(link, StandConfig(), paced=False, progress=False)
    assert not res.ok and "no robot state" in res.reason and "not reached" in res.summary()


def test_damping_mode_torque_is_minus_kd_dq(udp_port):
    with make_robot(udp_port, start_pose="standing") as sim:
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        states = exchange(link, 150, q_des_sim=0.0, kp=50.0, kd=9.0, mode=C.MODE_DAMPING)  # gains ignored
        gt = sim.ground_truth()
    assert all(s is not None for s in states)
    dq = np.array([s.dq for s in states])
    tau = np.array([s.tau_est for s in states])
    assert np.abs(dq).max() > 1.0  # the robot collapses: the check below is not vacuous
    np.testing.assert_allclose(tau, -C.DAMPING_KD * dq, atol=1.0 / 256 + 1e-4)
    assert gt["base_pos"][2] < 0.2  # no position term held it up
    # MuJoCo applied the same law, evaluated one physics step (1 ms) earlier: loosely equal
    np.testing.assert_allclose(gt["tau"], -C.DAMPING_KD * np.array(gt["dq"]), atol=1.0)


def test_stop_sentinels_disable_terms(udp_port):
    with make_robot(udp_port, start_pose="standing") as sim:
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        states = exchange(link, 100, q_des_sim=C.POS_STOP_F, dq_des_sim=0.0, kp=20.0, kd=1.0)
        tau, dq = np.array([s.tau_est for s in states]), np.array([s.dq for s in states])
        np.testing.assert_allclose(tau, -1.0 * dq, atol=0.01)
        assert sim.ground_truth()["base_pos"][2] < 0.2
        sim.reset("standing")
        q_des = C.DEFAULT_Q + 0.1
        states = exchange(link, 50, q_des_sim=q_des, dq_des_sim=C.VEL_STOP_F, kp=20.0, kd=3.0)
    q, dq = np.array([s.q for s in states]), np.array([s.dq for s in states])
    tau = np.array([s.tau_est for s in states])
    assert np.abs(dq).max() > 0.3
    np.testing.assert_allclose(tau, np.clip(20.0 * (q_des - q), -C.TORQUE_LIMIT, C.TORQUE_LIMIT), atol=0.01)


def test_bad_packets_rejected_counted_and_service_continues(robot, link):
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.bind(("127.0.0.1", 0))
    raw.settimeout(0.3)
    good = codec.encode(wire.new_low_cmd())
    high = bytearray(good)
    high[2] = 0x00  # HIGHLEVEL flag
    bad = {
        "crc": [codec.corrupt_crc(good)], "size": [good[:100], good + b"\0\0", b""],
        "head": [bytes(np.random.default_rng(0).integers(0, 256, 614, dtype=np.uint8)), b"\x12\x34" + good[2:]],
        "level": [bytes(high)],
    }
    for packets in bad.values():
        for p in packets:
            raw.sendto(p, ("127.0.0.1", robot.port))
    with pytest.raises(socket.timeout):
        raw.recvfrom(4096)  # nothing is answered
    states = exchange(link, 5, damping=True)
    assert all(s is not None for s in states)
    c = robot.counters_snapshot()
    for reason, packets in bad.items():
        assert c["rejected_" + reason] == len(packets), (reason, c)
    assert c["rejected"] == sum(len(p) for p in bad.values()) and c["rx_valid"] == 5
    raw.close()


def test_link_faults(robot, link):
    exchange(link, 3, damping=True)
    robot.set_faults(corrupt_crc=1.0)
    assert all(s is None for s in exchange(link, 5, damping=True)) and link.crc_failures >= 1
    robot.set_faults(state_loss=1.0)
    assert all(s is None for s in exchange(link, 5, damping=True))
    robot.set_faults(cmd_loss=1.0)
    t0 = robot.time
    assert all(s is None for s in exchange(link, 5, damping=True))
    assert robot.time == pytest.approx(t0 + 5 * C.LINK_DT)  # the robot's clock still runs
    robot.set_faults()
    robot.silence(0.05)  # 25 link periods without any reply
    got = exchange(link, 40, damping=True)
    assert [s is None for s in got[:24]] == [True] * 24 and all(s is not None for s in got[26:])
    robot.set_faults(delay_ms=10.0)  # replies arrive 5 lock-step periods late
    got = exchange(link, 12, damping=True)
    ticks = [s.tick for s in got if s is not None]
    assert got[0] is None and ticks and round(robot.time * 1000) - ticks[-1] == 10
    robot.set_faults()
    exchange(link, 6, damping=True)  # the delayed replies still in flight arrive
    while link.receive(timeout=0.05) is not None:  # drain anything still in flight (slow machines)
        pass
    robot.set_faults(reorder=1.0)  # every other reply is held back and sent after the next one
    got = exchange(link, 4, damping=True)
    t_now = round(robot.time * 1000)
    late = link.receive(timeout=0.05)  # a held-back reply still in flight
    # reply 1 is held back until reply 2 is sent (nothing arrives in exchange 1); then both arrive, the older
    # one last. The SDK keeps the last datagram it drained, so which of the pair a receive() returns depends
    # on timing: accept either, but never anything else
    assert got[0] is None
    assert got[1] is not None and got[1].tick in (t_now - 6, t_now - 4)
    assert got[3] is not None and got[3].tick in (t_now - 2, t_now)
    if got[3].tick == t_now:  # the newer one was seen first: the held-back older one comes after it
        assert late is not None and late.tick == t_now - 2
    c = robot.counters_snapshot()
    assert c["crc_corrupted"] >= 5 and c["state_lost"] == 5 and c["cmd_lost"] == 5 and c["silenced"] >= 24
    assert c["reordered"] == 2


def test_random_silence_bursts():
    from go1o4.robot_runtime.simulated_go1.faults import FaultConfig, FaultInjector
    f = FaultInjector(FaultConfig(silence_rate=20.0, silence_ms=20.0, seed=1))
    sent = []
    for k in range(500):  # 1 s of link periods
        t = k * C.LINK_DT
        f.tick(t, C.LINK_DT)
        f.send(b"x", ("127.0.0.1", 1), t)
        sent.append(len(f.release(t)))
    assert 0.3 < np.mean(sent) < 0.9 and f.counts["silenced"] == sent.count(0)
    with pytest.raises(ValueError, match="probability"):
        FaultConfig(cmd_loss=1.5).validate()


def test_invalid_motor_commands_fall_back_to_damping(robot):
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.bind(("127.0.0.1", 0))
    raw.settimeout(2.0)
    cmd = wire.new_low_cmd()
    m = cmd["motorCmd"]
    m["mode"][:12], m["q"][:12], m["Kp"][:12] = C.MODE_SERVO, 0.5, 20 * 32
    m["q"][0], m["Kp"][1], m["mode"][2] = np.nan, -640, 0x07  # NaN target, negative gain, unknown mode
    raw.sendto(codec.encode(cmd), ("127.0.0.1", robot.port))
    state = RobotState.from_record(wire.decode(raw.recvfrom(4096)[0], wire.LOW_STATE))
    bad_sim = C.SDK_TO_SIM.tolist().index
    modes = state.motor_mode
    assert [modes[bad_sim(i)] for i in range(3)] == [C.MODE_DAMPING] * 3 and (modes == C.MODE_SERVO).sum() == 9
    assert robot.counters_snapshot()["invalid_motor_cmds"] == 3 and robot.counters_snapshot()["handler_errors"] == 0
    raw.close()


def test_knock_over_is_a_fall_and_kill_stops_replies(robot, link):
    robot.reset("standing")
    robot.knock_over()
    s = exchange(link, 1, damping=True)[0]
    assert abs(s.rpy[0]) > C.FALL_ROLL_PITCH
    robot.kill()
    time.sleep(0.2)
    assert exchange(link, 3, damping=True) == [None] * 3


def test_control_channel(robot):
    with ControlClient(robot.control_port) as c:
        assert c.ping()["mode"] == "lockstep"
        c.reset("standing")
        gt = c.ground_truth()
        assert gt["base_pos"][2] > 0.25 and len(gt["base_lin_vel_body"]) == 3
        with pytest.raises(RuntimeError, match="unknown op"):
            c.call("fly")
        with pytest.raises(RuntimeError, match="state_los"):
            c.set_faults(state_los=0.5)
        with pytest.raises(RuntimeError, match="probability"):
            c.set_faults(state_loss=2.0)
        c.sock.sendto(b"{not json", c.addr)
        assert b"not JSON" in c.sock.recvfrom(4096)[0]
        c.set_remote(["X"], ly=0.5)
        c.silence(0.01)
        assert c.counters()["resets"] == 2


def test_remote_schedule_reaches_the_runtime(udp_port, tmp_path):
    path = tmp_path / "remote.yaml"
    path.write_text("events:\n  - {t: 0.02, buttons: [R2], duration: 0.02}\n  - {t: 0.06, ly: 0.5, buttons: [L1]}\n")
    with make_robot(udp_port, remote_schedule=str(path)) as sim:
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        states = exchange(link, 40, damping=True)
    by_ms = {s.tick: s.remote for s in states}
    assert by_ms[10]["buttons"] == set() and by_ms[30]["buttons"] == {"R2"} and by_ms[50]["buttons"] == set()
    assert by_ms[70]["buttons"] == {"L1"} and by_ms[70]["ly"] == 0.5
    example = load_remote_schedule(str(Path(__file__).parents[1] / "robot_runtime/simulated_go1/remote_example.yaml"))
    assert example.event_at(2.1).buttons == ["R2"] and example.event_at(2.3) is None
    assert example.event_at(13.0).rx == -0.3
    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  - {t: 1.0, buttons: [R3]}\n")
    with pytest.raises(ConfigError, match="unknown button"):
        load_remote_schedule(str(bad))
    bad.write_text("events:\n  - {t: 1.0, lx: 3}\n")
    with pytest.raises(ConfigError, match="lx must be in"):
        load_remote_schedule(str(bad))


def test_motors_heat_and_battery_drains(udp_port):
    from go1o4.robot_runtime.simulated_go1.motor import BatteryConfig, ThermalConfig
    with make_robot(udp_port, start_pose="standing", thermal=ThermalConfig(heating=0.5, time_constant=30.0),
                    battery=BatteryConfig(capacity_wh=0.05, initial_soc=90.0)) as sim:
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        first = exchange(link, 1, q_des_sim=C.DEFAULT_Q, kp=20.0, kd=0.5)[0]
        last = exchange(link, 500, q_des_sim=C.DEFAULT_Q, kp=20.0, kd=0.5)[-1]
    assert first.battery_soc == 90 and last.battery_soc < 85
    loaded = np.abs(last.tau_est) > 3.0  # calves carry the robot, hips hardly
    assert loaded.any() and (last.temperature[loaded] > 26).all()
    assert last.temperature[~loaded].max() < last.temperature[loaded].min()


def test_realtime_mode_follows_the_wall_clock(udp_port):
    with make_robot(udp_port, mode="realtime") as sim:
        t0, w0 = sim.time, time.monotonic()
        time.sleep(0.5)
        elapsed = sim.time - t0
        wall = time.monotonic() - w0
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        link.send_damping()
        assert link.receive(timeout=0.5) is not None
    assert 0 < elapsed <= wall + 0.01  # never ahead of the wall clock (a loaded machine only makes it lag)


def test_sim_robot_process_and_bad_config():
    from go1o4.robot_runtime.simulated_go1.cli import launch, terminate
    proc, port, cport = launch(["--mode", "lockstep", "--port", "0", "--control-port", "0", "--terrain", "mattress"])
    try:
        link = SdkLink("127.0.0.1", port, local_port=0)
        link.send_damping()
        assert link.receive(timeout=2.0) is not None
        ControlClient(cport).kill()
        assert proc.wait(timeout=10) == 0
    finally:
        out = terminate(proc)
    assert "sim-robot stopped" in out and "rx_valid=1" in out
    r = subprocess.run([sys.executable, "-m", "go1o4.cli", "sim-robot", "--port", "0", "--set", "physics_hz=300"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "physics_hz" in r.stderr


def test_demo_lockstep_exits_zero():
    r = subprocess.run([sys.executable, "-m", "go1o4.cli", "demo", "--mode", "lockstep", "--quiet",
                        "--set", "hold_s=2.0"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stand: OK" in r.stdout and "max joint error" in r.stdout and "base height" in r.stdout


# ----------------------------------------------------------------------------- simulated T265
def _feed(cam, seconds, yaw0=0.0, v_fwd=0.0, v_up=0.0, yaw_rate=0.0, hz=1000):
    for k in range(int(round(seconds * hz))):
        t = k / hz
        yaw = yaw0 + yaw_rate * t
        pos = [v_fwd * t * np.cos(yaw0), v_fwd * t * np.sin(yaw0), 0.3 + v_up * t]
        vel = [v_fwd * np.cos(yaw0), v_fwd * np.sin(yaw0), v_up]
        cam.update(t, pos, [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)], vel, [0, 0, yaw_rate])


def _drain(cam):
    out = []
    while not cam.queue.empty():
        out.append(cam.queue.get_nowait())
    return out


def test_t265_rate_and_frame_convention():
    from go1o4.robot_runtime.simulated_go1.t265 import SimT265Config, SimulatedT265, camera_to_body_velocity
    cfg = SimT265Config(mount_pos=(0.3, 0.0, 0.05))
    cam = SimulatedT265(cfg)
    _feed(cam, 1.0, yaw0=0.7, v_fwd=0.5, v_up=0.1)  # straight ahead along a 0.7 rad heading, rising
    s = _drain(cam)
    assert len(s) == 200 and set(np.diff([x.utime for x in s])) == {5000}
    last = s[-1]
    t = last.utime * 1e-6
    np.testing.assert_allclose(last.translation, [0.0, 0.1 * t, -0.5 * t], atol=1e-9)  # X right, Y up, Z back
    np.testing.assert_allclose(last.velocity, [0.0, 0.1, -0.5], atol=1e-9)
    np.testing.assert_allclose(last.rotation, [0, 0, 0, 1], atol=1e-9)  # yaw set at start
    np.testing.assert_allclose(last.acceleration, 0.0, atol=1e-6)
    assert last.tracker_confidence == 3
    cam = SimulatedT265(cfg)
    _feed(cam, 1.0, yaw0=-2.0, yaw_rate=0.5)  # turning left on the spot
    last = _drain(cam)[-1]
    th = 0.5 * last.utime * 1e-6
    np.testing.assert_allclose(last.rotation, [0, np.sin(th / 2), 0, np.cos(th / 2)], atol=1e-9)
    np.testing.assert_allclose(last.angular_velocity, [0, 0.5, 0], atol=1e-9)
    np.testing.assert_allclose(last.translation, [-0.3 * np.sin(th), 0, 0.3 * (1 - np.cos(th))], atol=1e-9)
    v_body = camera_to_body_velocity(last.rotation, last.velocity, cfg.body_from_camera())
    np.testing.assert_allclose(v_body, [0, 0.5 * 0.3, 0], atol=1e-9)  # omega x lever arm, trunk frame


def test_t265_faults():
    from go1o4.robot_runtime.simulated_go1.t265 import SimT265Config, SimulatedT265
    cam = SimulatedT265(SimT265Config(nan_prob=1.0))
    _feed(cam, 0.05)
    assert all(np.isnan(x.translation).all() and np.isnan(x.rotation).all() for x in _drain(cam))
    cam = SimulatedT265(SimT265Config(zero_quat_prob=1.0, vel_noise=0.1, seed=3))
    _feed(cam, 0.05)
    got = _drain(cam)
    assert all((x.rotation == 0).all() for x in got) and np.std([x.velocity for x in got]) > 0.03
    cam = SimulatedT265(SimT265Config(relocalize_s=0.2))
    cam.stall(0.1, 0.1)  # no samples for 100 ms, then confidence 1 while it relocalizes
    _feed(cam, 0.5)
    conf = {int(round(x.utime * 1e-3)): x.tracker_confidence for x in _drain(cam)}
    assert len(conf) == 80 and not [ms for ms in conf if 100 <= ms < 200]
    assert conf[95] == 3 and conf[200] == 1 and conf[395] == 1 and conf[400] == 3


def test_t265_over_lcm_from_the_simulator(udp_port):
    from go1o4.robot_runtime.simulated_go1.t265 import LcmT265Publisher, T265Sample
    with make_robot(udp_port, start_pose="standing", t265_enabled=True) as sim:
        pub = LcmT265Publisher("memq://", "T265_TEST")
        received = []
        pub.lc.subscribe("T265_TEST", lambda ch, data: received.append(T265Sample.from_lcm(data)))
        sim.t265.subscribe(pub)
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        exchange(link, 100, q_des_sim=C.DEFAULT_Q)  # 0.2 s of robot time
        while pub.lc.handle_timeout(10) > 0:
            pass
        queued = _drain(sim.t265)
    assert len(queued) == len(received) == 40 and pub.published == 40
    a, b = queued[-1], received[-1]
    assert a.utime == b.utime and a.frame_number == b.frame_number == 40
    for name in ("translation", "velocity", "rotation", "angular_velocity"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert np.abs(a.translation).max() < 0.02 and a.tracker_confidence == 3  # standing still
    with pytest.raises(ValueError):
        T265Sample.from_lcm(b"\0" * 40)


def test_two_simulated_robots_have_distinct_t265_identities(udp_port):
    """Issue 18.1: each simulated Go1 publishes as itself on its own channel; a session attached to robot A
    (identity adopted from A's control port) takes A's samples only and refuses B's pose even on A's channel."""
    import uuid
    from types import SimpleNamespace

    from go1o4.robot_runtime.session_cli import adopt_simulated_identity
    from go1o4.robot_runtime.session_config import load_session_config
    from go1o4.robot_runtime.simulated_go1.t265 import LcmT265Publisher, SimT265Config
    from go1o4.robot_runtime.t265.source import T265Source

    url, base = "udpm://239.255.76.67:7667?ttl=0", "T265_TEST_%s" % uuid.uuid4().hex[:10]
    with make_robot(udp_port, start_pose="standing", t265_enabled=True, t265=SimT265Config(lcm_url=url, lcm_channel=base),
                    terrain=TerrainConfig("mattress")) as a, \
            make_robot(0, start_pose="standing", t265_enabled=True, t265=SimT265Config(lcm_url=url, lcm_channel=base)) as b:
        with ControlClient(a.control_port) as c:
            info = c.ping()
        assert info["robot_name"] == "sim-go1-%d" % a.port and info["terrain"] == "mattress"
        assert info["t265"] == {"lcm_url": url, "channel": base, "serial": "SIM-T265-%d" % a.port}
        assert b.identity()["robot_name"] != a.robot_name and b.t265_serial != a.t265_serial
        cfg = load_session_config(None, [])
        adopt_simulated_identity(cfg, SimpleNamespace(info=info))
        assert (cfg.robot.name, cfg.t265.serial, cfg.logging.terrain) == (a.robot_name, a.t265_serial, "mattress")
        with T265Source(cfg.t265, robot=cfg.robot.name) as src:
            rogue = LcmT265Publisher(url, base, b.robot_name, b.t265_serial)
            rogue.channel = src.channel  # B misconfigured onto A's channel
            b.t265.subscribe(rogue)
            la, lb = SdkLink("127.0.0.1", a.port, local_port=0), SdkLink("127.0.0.1", b.port, local_port=0)
            for _ in range(10):  # both robots step and publish (and B also on A's channel)
                exchange(la, 25, q_des_sim=C.DEFAULT_Q)
                exchange(lb, 25, q_des_sim=C.DEFAULT_Q)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and (src.samples_received < 100 or src.refused < 100):
                time.sleep(0.01)
            assert src.samples_received == a.t265.samples_emitted == 100  # all of A's, nothing else
            assert src.refused == rogue.published == 100
            assert "robot %r" % b.robot_name in src.refusal
