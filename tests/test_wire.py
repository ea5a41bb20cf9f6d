"""wire.py (and the simulator's fast codec) against Unitree's real SDK binary, both directions."""
import socket
import struct
import time

import numpy as np
import pytest
from go1o4.robot_runtime import wire
from go1o4.robot_runtime.robot_state import RobotState
from go1o4.robot_runtime.simulated_go1 import codec
from hypothesis import given, settings
from hypothesis import strategies as st

from go1o4 import contract as C

sdk = pytest.importorskip("unitree_legged_sdk.robot_interface")

#: CRC the SDK itself puts on the LowCmd that ``InitCmdData`` prepares (captured off the wire).
SDK_INIT_LOWCMD_CRC = 0x347FF0E2
#: CRC of an all-zero LowState with head FE EF and level 0xFF.
ZERO_LOWSTATE_CRC = 0x65E9B198


@pytest.fixture
def sdk_pair():
    """(SDK UDP, its LowCmd, a raw socket standing in for the robot, the SDK's address)."""
    robot = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    robot.bind(("127.0.0.1", 0))
    robot.settimeout(2.0)
    udp = sdk.UDP(0xFF, 0, "127.0.0.1", robot.getsockname()[1])
    cmd = sdk.LowCmd()
    udp.InitCmdData(cmd)
    udp.SetSend(cmd)
    udp.Send()
    first, addr = robot.recvfrom(4096)
    yield udp, cmd, robot, addr, first
    robot.close()


def _deliver(udp, robot, addr, packet):
    robot.sendto(packet, addr)
    for _ in range(200):
        r = udp.Recv()
        if r != -1:
            return r
        time.sleep(0.001)
    raise AssertionError("SDK never saw the packet")


def test_crc_golden_values(sdk_pair):
    _, _, _, _, first = sdk_pair
    assert len(first) == wire.LOWCMD_SIZE
    assert struct.unpack_from("<I", first, len(first) - 4)[0] == SDK_INIT_LOWCMD_CRC
    assert wire.crc32_words(first) == SDK_INIT_LOWCMD_CRC
    assert codec.crc32_fast(first) == SDK_INIT_LOWCMD_CRC
    zero = wire.encode(wire.new_low_state())
    assert struct.unpack_from("<I", zero, len(zero) - 4)[0] == ZERO_LOWSTATE_CRC
    assert wire.decode(first, wire.LOW_CMD)["levelFlag"] == 0xFF


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=8, max_size=900))
def test_fast_crc_equals_reference(buf):
    assert codec.crc32_fast(buf) == wire.crc32_words(buf)


def test_fast_encode_decode_equal_reference():
    rng = np.random.default_rng(0)
    rec = wire.new_low_state()
    rec["tick"], rec["motorState"]["q"][:12] = 123456, rng.normal(size=12)
    assert codec.encode(rec) == wire.encode(rec)
    cmd = wire.new_low_cmd()
    cmd["motorCmd"]["Kp"][:12] = 640
    raw = codec.encode(cmd)
    assert raw == wire.encode(cmd)
    assert codec.decode(raw, wire.LOW_CMD).tobytes() == wire.decode(raw, wire.LOW_CMD).tobytes()


def test_lowcmd_fields_set_through_sdk_decode_equal(sdk_pair):
    udp, cmd, robot, _, _ = sdk_pair
    rng = np.random.default_rng(1)
    q, dq = rng.uniform(-2, 2, 12), rng.uniform(-5, 5, 12)
    tau, kp, kd = rng.uniform(-30, 30, 12), rng.uniform(0, 100, 12), rng.uniform(0, 5, 12)
    for i in range(12):
        m = cmd.motorCmd[i]
        m.mode = C.MODE_SERVO if i % 3 else C.MODE_DAMPING
        m.q, m.dq, m.tau, m.Kp, m.Kd = q[i], dq[i], tau[i], kp[i], kd[i]
    cmd.wirelessRemote = list(wire.encode_remote(["R2", "A"], lx=0.5))
    udp.SetSend(cmd)
    udp.Send()
    raw, _ = robot.recvfrom(4096)
    rec = wire.decode_low_cmd(raw)
    f = wire.motor_cmd_fields(rec)
    assert f["mode"].tolist() == [C.MODE_SERVO if i % 3 else C.MODE_DAMPING for i in range(12)]
    np.testing.assert_array_equal(f["q"], q.astype(np.float32))
    np.testing.assert_array_equal(f["dq"], dq.astype(np.float32))
    # fixed point on the wire: tau x256, Kp x32, Kd x16 (the SDK rounds or truncates: within one step)
    np.testing.assert_allclose(f["tau"], tau, atol=1.0 / wire.TAU_CMD_SCALE)
    np.testing.assert_allclose(f["Kp"], kp, atol=1.0 / wire.KP_SCALE)
    np.testing.assert_allclose(f["Kd"], kd, atol=1.0 / wire.KD_SCALE)
    assert wire.decode_remote(rec["wirelessRemote"])["buttons"] == {"R2", "A"}


def _random_low_state(rng):
    rec = wire.new_low_state()
    ms = rec["motorState"]
    ms["mode"][:12] = C.MODE_SERVO
    ms["q"][:12], ms["dq"][:12] = rng.uniform(-2, 2, 12), rng.uniform(-20, 20, 12)
    ms["ddq"][:12] = rng.integers(-3000, 3000, 12)
    ms["tauEst"][:12] = wire.to_i16(rng.uniform(-35, 35, 12), wire.TAU_EST_SCALE)
    ms["temperature"][:12] = rng.integers(20, 90, 12)
    rec["imu"]["quaternion"] = [0.9, 0.1, -0.2, 0.3]
    rec["imu"]["gyroscope"], rec["imu"]["accelerometer"] = rng.normal(size=3), rng.normal(size=3) + [0, 0, 9.8]
    rec["imu"]["rpy"] = rng.normal(size=3)
    rec["footForce"] = [10, 200, -3, 31000]
    rec["tick"] = 4000000000
    rec["bms"]["SOC"] = 87
    rec["wirelessRemote"] = wire.encode_remote(["L2", "select", "up"], lx=-0.25, rx=0.5, ry=-1.0, ly=0.75, l2=1.0)
    return rec


def test_lowstate_from_wire_parsed_by_sdk_equal(sdk_pair):
    udp, _, robot, addr, _ = sdk_pair
    rec = _random_low_state(np.random.default_rng(2))
    assert _deliver(udp, robot, addr, wire.encode(rec)) >= 0
    state = sdk.LowState()
    udp.GetRecv(state)
    ms = rec["motorState"]
    for i in range(12):
        m = state.motorState[i]
        assert m.mode == C.MODE_SERVO
        assert m.q == pytest.approx(float(ms["q"][i]), abs=0) and m.dq == pytest.approx(float(ms["dq"][i]), abs=0)
        assert m.tauEst == float(ms["tauEst"][i]) / wire.TAU_EST_SCALE  # fixed point x256
        assert m.ddq == float(ms["ddq"][i])
        assert m.temperature == int(ms["temperature"][i])
    np.testing.assert_array_equal(np.array(state.imu.quaternion, dtype=np.float32), rec["imu"]["quaternion"])
    np.testing.assert_array_equal(np.array(state.imu.rpy, dtype=np.float32), rec["imu"]["rpy"])
    assert list(state.footForce) == [10, 200, -3, 31000]
    assert state.tick == 4000000000 and state.bms.SOC == 87
    assert bytes(bytearray(state.wirelessRemote)) == rec["wirelessRemote"].tobytes()
    # the runtime view: the SDK path and the wire-record path agree exactly, in sim order
    a, b = RobotState.from_sdk(state), RobotState.from_record(rec)
    for name in ("q", "dq", "ddq", "tau_est", "temperature", "quat_wxyz", "gyro", "accelerometer", "rpy",
                 "foot_forces", "motor_mode"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.remote == b.remote and a.remote["buttons"] == {"L2", "select", "up"} and a.remote["ly"] == 0.75
    np.testing.assert_array_equal(a.q, C.sdk_to_sim(ms["q"][:12]))
    np.testing.assert_array_equal(a.foot_forces, [200, 10, 31000, -3])  # FR FL RR RL -> FL FR RL RR


def test_sdk_rejects_bad_crc_and_keeps_previous_state(sdk_pair):
    udp, _, robot, addr, _ = sdk_pair
    good = wire.new_low_state()
    good["tick"] = 7
    assert _deliver(udp, robot, addr, codec.encode(good)) >= 0
    bad = wire.new_low_state()
    bad["tick"] = 8
    assert _deliver(udp, robot, addr, codec.corrupt_crc(codec.encode(bad))) == -3
    state = sdk.LowState()
    udp.GetRecv(state)
    assert state.tick == 7


@pytest.mark.parametrize("mutate,reason", [
    (lambda b: b[:-1], "size"), (lambda b: b + b"\0", "size"), (lambda b: b"\x00\x00" + b[2:], "head"),
    (lambda b: b[:2] + b"\x00" + b[3:], "level"), (lambda b: codec.corrupt_crc(b), "crc"),
])
def test_decode_rejects_with_reason(mutate, reason):
    raw = codec.encode(wire.new_low_cmd())
    for dec in (wire.decode, codec.decode):
        with pytest.raises(wire.PacketError) as e:
            dec(mutate(raw), wire.LOW_CMD)
        assert e.value.reason == reason


def test_remote_block_round_trip_and_errors():
    block = wire.encode_remote(["R1", "left"], lx=0.1, rx=0.2, ry=0.3, ly=0.4, l2=0.5)
    d = wire.decode_remote(block.tolist())
    assert d["buttons"] == {"R1", "left"}
    assert d["ly"] == pytest.approx(0.4) and d["L2"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown remote button"):
        wire.encode_remote(["Z"])
    with pytest.raises(ValueError, match="40 bytes"):
        wire.decode_remote([0] * 39)


def _reference_low_state(s: dict) -> bytes:
    """The LowState written field by field through the structured record (slow, obviously right)."""
    rec = wire.new_low_state()
    order, n = C.SIM_TO_SDK, C.NUM_JOINTS
    ms = rec["motorState"][:n]
    ms["mode"] = np.asarray(s["mode"])[order]
    ms["q"] = ms["q_raw"] = s["q"][order]
    ms["dq"] = ms["dq_raw"] = s["dq"][order]
    ms["ddq"] = ms["ddq_raw"] = np.clip(np.rint(s["ddq"][order]), -32768, 32767)
    ms["tauEst"] = np.clip(np.rint(s["tau"][order] * wire.TAU_EST_SCALE), -32768, 32767)
    ms["temperature"] = np.clip(np.rint(s["temperature"][order]), -128, 127)
    imu = rec["imu"]
    imu["quaternion"], imu["gyroscope"], imu["accelerometer"], imu["rpy"] = (
        s["quat_wxyz"], s["gyro"], s["accelerometer"], s["rpy"])
    imu["temperature"] = 38
    rec["footForce"] = rec["footForceEst"] = np.clip(np.rint(s["foot_forces"][C.FEET_SIM_TO_SDK]), -32768, 32767)
    rec["tick"] = s["tick_ms"] & 0xFFFFFFFF
    rec["bms"]["bms_status"] = 1
    rec["bms"]["SOC"] = max(0, min(100, int(round(s["soc"]))))
    rec["bms"]["current"] = int(round(1000.0 * s["power_w"] / 25.2))
    rec["wirelessRemote"] = np.frombuffer(bytes(s["remote"]), dtype=np.uint8)
    return codec.encode(rec)


def test_fast_lowstate_writer_equals_field_by_field_reference():
    """The simulator's byte-scatter writer gives exactly the packet of the structured record, clipping included."""
    from go1o4.robot_runtime.simulated_go1.lowstate import LowStateWriter
    rng = np.random.default_rng(3)
    writer = LowStateWriter()  # reused: stale bytes from the previous state must never leak
    for _ in range(100):
        s = dict(q=rng.normal(size=12), dq=rng.normal(size=12) * 10, ddq=rng.normal(size=12) * 1e5,
                 tau=rng.normal(size=12) * 200, temperature=rng.uniform(-300, 300, 12),
                 mode=rng.choice([C.MODE_DAMPING, C.MODE_SERVO], 12), quat_wxyz=rng.normal(size=4),
                 gyro=rng.normal(size=3), accelerometer=rng.normal(size=3), rpy=rng.normal(size=3),
                 foot_forces=rng.normal(size=4) * 3e4, tick_ms=int(rng.integers(0, 2 ** 40)),
                 soc=float(rng.uniform(-5, 120)), power_w=float(rng.uniform(0, 500)),
                 remote=rng.integers(0, 256, 40).astype(np.uint8).tobytes())
        writer.write(**s)
        assert writer.encode() == _reference_low_state(s)
