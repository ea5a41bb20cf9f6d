"""T265Source over a real LCM bus (udpm multicast with ttl=0: never leaves this host)."""
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import lcm
import numpy as np
import pytest
from go1o4.robot_runtime.t265 import frames as F
from go1o4.robot_runtime.t265.realsense_publisher import pose_to_message
from go1o4.robot_runtime.t265.source import T265Config, T265Source

URL = "udpm://239.255.76.67:7667?ttl=0"
CONFIG = str(Path(__file__).resolve().parents[1] / "deploy" / "config" / "go1_default.yaml")


def pose(v=(0.0, 0.0, -0.8), w=(0.0, 0.4, 0.0), q=(0.0, 0.0, 0.0, 1.0), conf=3, t=(0.1, 0.2, -0.3)):
    def vec(x):
        return SimpleNamespace(x=x[0], y=x[1], z=x[2])
    return SimpleNamespace(translation=vec(t), velocity=vec(v), acceleration=vec((0.0, 0.0, 0.0)),
                           rotation=SimpleNamespace(x=q[0], y=q[1], z=q[2], w=q[3]), angular_velocity=vec(w),
                           angular_acceleration=vec((0.0, 0.0, 0.0)), tracker_confidence=conf, mapper_confidence=conf)


@pytest.fixture
def channel():
    return "T265_TEST_%s" % uuid.uuid4().hex[:12]  # other suites may share the multicast group


FRESH = 5.0  # stale_after_s where a test is not about staleness: a loaded machine never makes a sample stale


@pytest.fixture
def bus():
    return lcm.LCM(URL)


def wait_for(pred, timeout=2.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.002)
    return False


def publish(bus, channel, p, frame=1):
    bus.publish(channel, pose_to_message(p, frame, int(time.monotonic() * 1e6)).encode())


def test_round_trip_body_velocity(bus, channel):
    yaw = np.pi / 2  # robot turned 90 deg left since start, walking forward at 0.8 m/s (world -X)
    q = (0.0, np.sin(yaw / 2), 0.0, np.cos(yaw / 2))
    with T265Source(T265Config(lcm_url=URL, channel=channel, stale_after_s=FRESH)) as src:
        r0 = src.latest()
        assert not r0.ok and r0.reason == F.T265_STALE and r0.age_s == float("inf")
        publish(bus, channel, pose(v=(-0.8, 0.0, 0.0), q=q), frame=7)
        assert wait_for(lambda: src.samples_received >= 1)
        r = src.latest()
    assert r.ok, r.reason
    np.testing.assert_allclose(r.v_body, [0.8, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r.omega_body, [0.0, 0.0, 0.4], atol=1e-12)
    np.testing.assert_allclose(r.position, [0.1, 0.2, -0.3])
    np.testing.assert_allclose(r.quat_xyzw, q)
    assert r.confidence == 3 and r.frame_number == 7 and 0.0 <= r.age_s < FRESH
    assert abs(r.sample_time - time.monotonic()) < 2.0
    cols = r.log_fields()
    np.testing.assert_allclose(cols["t265_velocity_world"], [0.0, 0.8, 0.0], atol=1e-12)  # remapped
    np.testing.assert_allclose(cols["t265_velocity_body"], [0.8, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(cols["t265_rpy"], [0.0, 0.0, yaw], atol=1e-12)


class ManualClock:
    """An injected clock: the test decides what time it is (no wall-clock bound a loaded machine can miss)."""

    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def test_stream_then_stall_goes_stale_after_stale_after_s(bus, channel):
    clock = ManualClock()
    with T265Source(T265Config(lcm_url=URL, channel=channel, stale_after_s=0.1), clock=clock) as src:
        for k in range(20):  # a 200 Hz stream on the injected clock, through real LCM
            publish(bus, channel, pose(), frame=k)
            assert wait_for(lambda n=k + 1: src.samples_received >= n)
            assert src.latest().ok
            clock.t += 0.005
        last = clock.t - 0.005  # when the last sample was received
        clock.t = last + 0.0999
        assert src.latest().ok  # 99.9 ms after the last sample: still fresh
        clock.t = last + 0.1001
        r = src.latest()
    assert not r.ok and r.reason == F.T265_STALE and abs(r.age_s - 0.1001) < 1e-9
    assert src.samples_received == 20


def test_age_judged_at_the_given_time(bus, channel):
    clock = ManualClock()
    with T265Source(T265Config(lcm_url=URL, channel=channel, stale_after_s=0.1), clock=clock) as src:
        publish(bus, channel, pose())
        assert wait_for(lambda: src.samples_received >= 1)
        t0 = clock.t
        assert src.latest(t0 + 0.05).ok
        late = src.latest(t0 + 0.15)
    assert not late.ok and late.reason == F.T265_STALE and late.age_s > 0.1
    np.testing.assert_allclose(late.v_body, [0.8, 0.0, 0.0], atol=1e-12)  # last values kept for the log


def test_await_fresh_waits_for_the_reader_then_gives_up_on_a_silent_stream(bus, channel):
    """Lock-step: the paused simulator's samples are waited for (the reader thread may lag on a loaded host);
    a silent stream is waited for once, then judged stale without waiting again until it sends."""
    clock = ManualClock()
    with T265Source(T265Config(lcm_url=URL, channel=channel, stale_after_s=0.1), clock=clock) as src:
        publish(bus, channel, pose())
        assert wait_for(lambda: src.samples_received >= 1)
        assert src.await_fresh(clock.t + 0.01, 0.04, 5.0)  # fresh already: no wait
        clock.t += 0.5  # the simulator ran on; its next sample is on the way but not read yet
        assert not src.latest().ok
        timer = threading.Timer(0.05, publish, (bus, channel, pose()))
        timer.start()
        assert src.await_fresh(clock.t, 0.04, 30.0)  # returns when the sample is read (stamped now)
        timer.join()
        assert src.latest().ok and src.samples_received == 2
        clock.t += 0.5  # nothing more is published
        assert not src.await_fresh(clock.t, 0.04, 0.05)
        waits = []
        wait = src._arrived.wait
        src._arrived.wait = lambda *a: (waits.append(a), wait(*a))[1]
        assert not src.await_fresh(clock.t + 0.02, 0.04, 30.0)  # gave up on this stream: no second wait
        assert waits == []
        src._arrived.wait = wait
        assert src.latest().reason == F.T265_STALE
        publish(bus, channel, pose())  # it sends again ...
        assert wait_for(lambda: src.samples_received >= 3)
        assert src.await_fresh(clock.t + 0.02, 0.04, 30.0)
        clock.t += 0.5  # ... and is waited for again
        timer = threading.Timer(0.05, publish, (bus, channel, pose()))
        timer.start()
        assert src.await_fresh(clock.t, 0.04, 30.0)
        timer.join()
        assert src.samples_received == 4


@pytest.mark.parametrize("kwargs, reason", [
    ({"v": (np.nan, 0.0, 0.0)}, F.T265_NAN),
    ({"q": (np.nan, np.nan, np.nan, np.nan)}, F.T265_NAN),
    ({"t": (np.nan, 0.0, 0.0)}, F.T265_NAN),
    ({"q": (0.0, 0.0, 0.0, 0.0)}, F.T265_BAD_QUATERNION),
    ({"conf": 1}, F.T265_LOW_CONFIDENCE),
    ({"conf": 0}, F.T265_LOW_CONFIDENCE),
])
def test_bad_samples(bus, channel, kwargs, reason):
    with T265Source(T265Config(lcm_url=URL, channel=channel, stale_after_s=FRESH)) as src:
        publish(bus, channel, pose(**kwargs))
        assert wait_for(lambda: src.samples_received >= 1)
        r = src.latest()
        assert not r.ok and r.reason == reason
        # a good sample afterwards recovers
        publish(bus, channel, pose(), frame=2)
        assert wait_for(lambda: src.samples_received >= 2)
        assert src.latest().ok


def test_confidence_threshold_is_configurable(bus, channel):
    with T265Source(T265Config(lcm_url=URL, channel=channel, min_confidence=3)) as src:
        publish(bus, channel, pose(conf=2))
        assert wait_for(lambda: src.samples_received >= 1)
        assert src.latest().reason == F.T265_LOW_CONFIDENCE


def test_garbage_on_the_channel_is_counted_not_fatal(bus, channel):
    with T265Source(T265Config(lcm_url=URL, channel=channel, stale_after_s=FRESH)) as src:
        bus.publish(channel, b"not a t265 pose")
        assert wait_for(lambda: src.decode_errors >= 1)
        assert "cannot decode" in src.last_error
        publish(bus, channel, pose())
        assert wait_for(lambda: src.samples_received >= 1)
        assert src.latest().ok


def test_mount_and_lever_arm_from_config(bus, channel):
    cfg = T265Config(lcm_url=URL, channel=channel, mount_rpy=[0.0, 0.0, np.pi / 2], lever_arm=[0.3, 0.0, 0.0],
                     stale_after_s=FRESH)
    with T265Source(cfg) as src:
        # camera faces the robot's left; robot spins on the spot at 1 rad/s: camera moves along its -Z
        publish(bus, channel, pose(v=(0.0, 0.0, -0.3), w=(0.0, 1.0, 0.0)))
        assert wait_for(lambda: src.samples_received >= 1)
        r = src.latest()
    assert r.ok
    np.testing.assert_allclose(r.v_body, [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r.omega_body, [0.0, 0.0, 1.0], atol=1e-12)


def test_config_errors_name_the_field():
    from go1o4.config import ConfigError, from_dict
    with pytest.raises(ConfigError, match="min_confidence"):
        from_dict(T265Config, {"min_confidence": 5})
    with pytest.raises(ConfigError, match="not a rotation"):
        from_dict(T265Config, {"mount_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, -1]]})
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(T265Config, {"stale_after": 0.1})
    with pytest.raises(RuntimeError, match="lcm_url"):
        T265Source(T265Config(lcm_url="nosuchprovider://x")).start()


def test_concurrent_readers_see_consistent_samples(bus, channel):
    """latest() from two threads while samples stream in: every reading is internally consistent."""
    stop = threading.Event()
    bad = []

    def reader(src):
        while not stop.is_set():
            r = src.latest()
            if r.ok and not np.allclose(r.v_body, [r.position[0], 0.0, 0.0], atol=1e-9):
                bad.append(r)
            time.sleep(0.0005)

    with T265Source(T265Config(lcm_url=URL, channel=channel, max_speed=10.0)) as src:
        threads = [threading.Thread(target=reader, args=(src,), daemon=True) for _ in range(2)]
        for th in threads:
            th.start()
        for k in range(200):
            s = 0.005 * k  # forward speed == translation x in this stream
            publish(bus, channel, pose(v=(0.0, 0.0, -s), t=(s, 0.0, 0.0)), frame=k)
            time.sleep(0.001)
        assert wait_for(lambda: src.samples_received >= 150)
        stop.set()
        for th in threads:
            th.join()
    assert not bad


def test_echo_command_reports_the_stream(bus, channel, capsys):
    """`go1o4 t265-echo` against a 200 Hz stream, then against silence."""
    from go1o4.cli import main
    stop = threading.Event()

    def stream():
        k = 0
        while not stop.is_set():  # the deploy config's robot go1-default, on its channel <channel>/go1-default
            bus.publish(channel + "/go1-default", pose_to_message(pose(), k, int(time.monotonic() * 1e6),
                                                                  "go1-default").encode())
            k += 1
            time.sleep(0.005)

    th = threading.Thread(target=stream, daemon=True)
    th.start()
    try:
        rc = main(["t265-echo", "--config", CONFIG, "--lcm-url", URL, "--channel", channel, "--duration", "0.65",
                   "--every", "0.3"])
    finally:
        stop.set()
        th.join()
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "listening to robot go1-default's T265 on %s channel %s/go1-default" % (URL, channel)
    assert len(lines) >= 3
    # the first period may start before the stream; the second one is full
    rate = float(lines[-1].split()[1])
    assert lines[-1].startswith("ok") and 0 < rate < 260, lines  # (a loaded machine may publish slower)
    # deploy config: lever arm 0.28 m ahead, yaw rate 0.4 rad/s -> the camera's 0.11 m/s sideways is removed
    assert "v_body [+0.80 -0.11 +0.00]" in lines[-1] and rc in (0, 1)
    rc = main(["t265-echo", "--config", CONFIG, "--lcm-url", URL, "--channel", channel + "_silent", "--duration", "0.2",
               "--every", "0.1"])
    out = capsys.readouterr().out
    assert rc == 1 and "t265_stale" in out and "no sample yet" in out
    assert main(["t265-echo", "--config", "/nonexistent.yaml"]) == 2
    assert "not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------- identity (issue 18.1)
def test_foreign_stream_on_the_same_url_and_channel_is_refused(bus):
    """Robot go1-b's camera publishes on go1-a's channel (a copied config): go1-a never uses its velocity."""
    from go1o4.robot_runtime.t265.identity import robot_channel

    base = "T265_TEST_%s" % uuid.uuid4().hex[:12]
    ch = robot_channel(base, "go1-a")
    assert ch == base + "/go1-a"
    with T265Source(T265Config(lcm_url=URL, channel=base, serial="905312110116"), robot="go1-a") as src:
        assert src.channel == ch
        for i in range(5):  # another robot, and this robot's name with another camera
            bus.publish(ch, pose_to_message(pose(v=(0.0, 0.0, -0.57)), i, int(time.monotonic() * 1e6),
                                            "go1-b", "905312110999").encode())
            bus.publish(ch, pose_to_message(pose(v=(0.0, 0.0, -0.57)), i, int(time.monotonic() * 1e6),
                                            "go1-a", "111111111111").encode())
        assert wait_for(lambda: src.refused >= 10)
        r = src.latest()
        assert not r.ok and r.reason == F.T265_FOREIGN and not np.any(np.isfinite(r.v_body))
        assert src.samples_received == 0
        assert "'go1-a'" in src.refusal and "refused" in src.refusal
        # its own camera is accepted, while the foreign stream goes on
        bus.publish(ch, pose_to_message(pose(v=(0.0, 0.0, -0.30)), 9, int(time.monotonic() * 1e6),
                                        "go1-a", "905312110116").encode())
        bus.publish(ch, pose_to_message(pose(v=(0.0, 0.0, -0.57)), 9, int(time.monotonic() * 1e6),
                                        "go1-b", "905312110999").encode())
        assert wait_for(lambda: src.samples_received >= 1 and src.refused >= 11)
        r = src.latest()
    assert r.ok, r.reason
    np.testing.assert_allclose(r.v_body, [0.30, 0.0, 0.0], atol=1e-12)  # the camera's 0.30, never the 0.57


def test_identity_problem_messages():
    from go1o4.robot_runtime.t265.identity import identity_problem, sim_identity

    assert identity_problem("go1-a", "S1", "go1-a", "") == ""
    assert identity_problem("go1-a", "S1", "go1-a", "S1") == ""
    assert "robot 'go1-b'" in identity_problem("go1-b", "S1", "go1-a", "")
    assert "camera 'S2'" in identity_problem("go1-a", "S2", "go1-a", "S1")
    assert sim_identity(8007) != sim_identity(8008)
