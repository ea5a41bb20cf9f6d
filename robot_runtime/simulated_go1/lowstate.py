"""Building the LowState the simulated Go1 sends: sim-order physics state -> SDK-order wire fields.

:class:`LowStateWriter` keeps the packet as a byte buffer and, for each wire type, the byte positions
of every field it fills. Writing a state is three gathers (values into wire order and type) and three
byte scatters into the buffer; in lock-step mode this runs 5000 times per simulated second, so it must
cost a few microseconds, not the ~30 us of assigning ~20 strided structured-array fields.
"""
import math
import struct

import numpy as np
from go1o4.robot_runtime import wire
from go1o4.robot_runtime.simulated_go1.codec import crc32_fast

from go1o4 import contract as C

IMU_TEMPERATURE = 38  # deg C, what a running Go1's IMU reports
BATTERY_VOLTAGE = 25.2  # V (6S pack), for the BMS current field
_N = C.NUM_JOINTS
_TICK_OFF = wire.LOW_STATE.fields["tick"][1]
_REMOTE_OFF = wire.LOW_STATE.fields["wirelessRemote"][1]
_BMS_OFF = wire.LOW_STATE.fields["bms"][1]
_SOC_OFF = _BMS_OFF + wire.BMS_STATE.fields["SOC"][1]
_CURRENT_OFF = _BMS_OFF + wire.BMS_STATE.fields["current"][1]


def quat_to_rpy(quat_wxyz) -> np.ndarray:
    """Roll, pitch, yaw (ZYX) as the Go1 IMU reports them; same formula as sim_pretrain.physics, scalar math."""
    w, x, y, z = quat_wxyz.tolist() if isinstance(quat_wxyz, np.ndarray) else (float(v) for v in quat_wxyz)
    return np.array([math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y)),
                     math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x)))),
                     math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))])


def _byte_index(views, base: int) -> np.ndarray:
    """Byte positions in the packet of every element of each 1-D field view (in order)."""
    out = []
    for v in views:
        off = v.__array_interface__["data"][0] - base
        size = v.dtype.itemsize
        out.append((off + np.arange(v.size)[:, None] * v.strides[0] + np.arange(size)[None, :]).ravel())
    return np.concatenate(out)


class LowStateWriter:
    """Writes robot states (joint arrays sim order, feet FL FR RL RR) into one LowState and encodes it.

    Fixed point as the Go1 sends it: tauEst x256, ddq rounded to int16, temperature int8 (deg C),
    foot forces int16 (N), SOC uint8 (%), BMS current int32 (mA). Float fields q/dq are mirrored into
    q_raw/dq_raw, ddq into ddq_raw and footForce into footForceEst, as the robot does.
    """

    def __init__(self):
        arr = np.zeros(1, dtype=wire.LOW_STATE)
        arr["head"] = np.frombuffer(wire.HEAD, dtype=np.uint8)
        arr["levelFlag"] = wire.LEVEL_LOW
        arr["imu"]["temperature"] = IMU_TEMPERATURE
        arr["bms"]["bms_status"] = 1
        base = arr.__array_interface__["data"][0]
        ms, imu = arr["motorState"][0, :_N], arr["imu"][0]
        # float32 slots: q, q_raw, dq, dq_raw (SDK order), IMU quaternion, gyroscope, accelerometer, rpy
        self._f32_bytes = _byte_index([ms["q"], ms["q_raw"], ms["dq"], ms["dq_raw"], imu["quaternion"],
                                       imu["gyroscope"], imu["accelerometer"], imu["rpy"]], base)
        order = np.asarray(C.SIM_TO_SDK)
        o = {}
        k = 0
        for name, size in self.STATE_LAYOUT:
            o[name] = k
            k += size
        self._f32_take = np.concatenate([order + o["q"], order + o["q"], order + o["dq"], order + o["dq"],
                                         np.arange(o["quat_wxyz"], o["rpy"] + 3)])
        # int16 slots: ddq, ddq_raw, tauEst (x256), footForce, footForceEst; then int8/uint8: mode, temperature
        self._i16_bytes = _byte_index([ms["ddq"], ms["ddq_raw"], ms["tauEst"], arr["footForce"][0],
                                       arr["footForceEst"][0]], base)
        self._i8_bytes = _byte_index([ms["mode"], ms["temperature"]], base)
        feet = o["foot_forces"] + np.asarray(C.FEET_SIM_TO_SDK)
        self._int_take = np.concatenate([order + o["ddq"], order + o["ddq"], order + o["tau"], feet, feet,
                                         order + o["mode"], order + o["temperature"]])
        self._n_i16 = 3 * _N + 8
        n_i8 = 2 * _N
        self._int_scale = np.concatenate([np.ones(2 * _N), np.full(_N, wire.TAU_EST_SCALE), np.ones(8 + n_i8)])
        self._int_lo = np.concatenate([np.full(self._n_i16, -32768.0), np.zeros(_N), np.full(_N, -128.0)])
        self._int_hi = np.concatenate([np.full(self._n_i16, 32767.0), np.full(_N, 255.0), np.full(_N, 127.0)])
        self.buf = bytearray(arr.tobytes())
        self._u8 = np.frombuffer(self.buf, dtype=np.uint8)

    # the state vector write_vector() takes: sim-order pieces, concatenated in this order
    STATE_LAYOUT = (("q", _N), ("dq", _N), ("quat_wxyz", 4), ("gyro", 3), ("accelerometer", 3), ("rpy", 3),
                    ("ddq", _N), ("tau", _N), ("foot_forces", 4), ("mode", _N), ("temperature", _N))

    def write(self, *, q, dq, ddq, tau, temperature, mode, quat_wxyz, gyro, accelerometer, rpy, foot_forces,
              tick_ms: int, soc: float, power_w: float, remote) -> None:
        state = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in (
            q, dq, quat_wxyz, gyro, accelerometer, rpy, ddq, tau, foot_forces, mode, temperature)])
        self.write_vector(state, tick_ms, soc, power_w, remote)

    def write_vector(self, state: np.ndarray, tick_ms: int, soc: float, power_w: float, remote) -> None:
        """Fill the packet from one float64 vector laid out as :attr:`STATE_LAYOUT` (the simulator's fast path)."""
        u8 = self._u8
        u8[self._f32_bytes] = state[self._f32_take].astype(np.float32).view(np.uint8)
        ints = np.rint(state[self._int_take] * self._int_scale)
        np.minimum(np.maximum(ints, self._int_lo, out=ints), self._int_hi, out=ints)
        u8[self._i16_bytes] = ints[:self._n_i16].astype("<i2").view(np.uint8)
        u8[self._i8_bytes] = ints[self._n_i16:].astype(np.int16).astype(np.uint8)  # int8 two's complement / uint8
        buf = self.buf
        struct.pack_into("<I", buf, _TICK_OFF, int(tick_ms) & 0xFFFFFFFF)
        struct.pack_into("<B", buf, _SOC_OFF, max(0, min(100, int(round(soc)))))
        struct.pack_into("<i", buf, _CURRENT_OFF, int(round(1000.0 * power_w / BATTERY_VOLTAGE)))
        buf[_REMOTE_OFF:_REMOTE_OFF + 40] = remote if isinstance(remote, bytes) else bytes(remote)

    def encode(self) -> bytes:
        """The 807-byte packet with its CRC."""
        buf = self.buf
        struct.pack_into("<I", buf, len(buf) - 4, crc32_fast(buf))
        return bytes(buf)

    def record(self) -> np.ndarray:
        """The current packet as a ``wire.LOW_STATE`` record (a copy)."""
        return np.frombuffer(bytes(self.buf), dtype=wire.LOW_STATE)[0]


def fill_low_state(**state) -> bytes:
    """One-shot: the encoded LowState for ``state`` (keywords of :meth:`LowStateWriter.write`)."""
    w = LowStateWriter()
    w.write(**state)
    return w.encode()
