"""Building the LowState the simulated Go1 sends: sim-order physics state -> SDK-order wire fields.

:class:`LowStateWriter` keeps one ``wire.LOW_STATE`` record and strided views of its fields, so
writing a state is a handful of array copies (structured-field lookups cost more than the physics).
"""
import math
import struct

import numpy as np

from go1o4 import contract as C
from robot_runtime.simulated_go1 import wire
from robot_runtime.simulated_go1.codec import crc32_fast

IMU_TEMPERATURE = 38  # deg C, what a running Go1's IMU reports
BATTERY_VOLTAGE = 25.2  # V (6S pack), for the BMS current field
_INT_LO = np.array([[-32768.0], [-32768.0], [-128.0]])  # ddq int16, tauEst int16, temperature int8
_INT_HI = np.array([[32767.0], [32767.0], [127.0]])


def quat_to_rpy(quat_wxyz) -> np.ndarray:
    """Roll, pitch, yaw (ZYX) as the Go1 IMU reports them; same formula as sim_pretrain.physics, scalar math."""
    w, x, y, z = (float(v) for v in quat_wxyz)
    return np.array([math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y)),
                     math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x)))),
                     math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))])


class LowStateWriter:
    """Writes robot states (joint arrays sim order, feet FL FR RL RR) into one LowState and encodes it.

    Fixed point as the Go1 sends it: tauEst x256, ddq rounded to int16, temperature int8 (deg C),
    foot forces int16 (N), SOC uint8 (%), BMS current int32 (mA).
    """

    def __init__(self):
        self.arr = np.zeros(1, dtype=wire.LOW_STATE)
        a = self.arr
        a["head"] = np.frombuffer(wire.HEAD, dtype=np.uint8)
        a["levelFlag"] = wire.LEVEL_LOW
        n = C.NUM_JOINTS
        ms = a["motorState"][0, :n]
        self.mode, self.q, self.dq, self.q_raw, self.dq_raw = ms["mode"], ms["q"], ms["dq"], ms["q_raw"], ms["dq_raw"]
        self.ddq, self.ddq_raw, self.tau, self.temp = ms["ddq"], ms["ddq_raw"], ms["tauEst"], ms["temperature"]
        imu = a["imu"]
        self.quat, self.gyro, self.acc, self.rpy = (imu[k][0] for k in ("quaternion", "gyroscope", "accelerometer",
                                                                         "rpy"))
        a["imu"]["temperature"] = IMU_TEMPERATURE
        self.feet, self.feet_est = a["footForce"][0], a["footForceEst"][0]
        self.tick, self.remote = a["tick"], a["wirelessRemote"][0]
        self.soc, self.current = a["bms"]["SOC"], a["bms"]["current"]
        a["bms"]["bms_status"] = 1

    def write(self, *, q, dq, ddq, tau, temperature, mode, quat_wxyz, gyro, accelerometer, rpy, foot_forces,
              tick_ms: int, soc: float, power_w: float, remote) -> None:
        order = C.SIM_TO_SDK
        floats = np.array([q, dq])[:, order]
        ints = np.rint(np.array([ddq, np.asarray(tau) * wire.TAU_EST_SCALE, temperature])[:, order])
        np.minimum(np.maximum(ints, _INT_LO, out=ints), _INT_HI, out=ints)
        self.mode[:] = np.asarray(mode)[order]
        self.q[:] = self.q_raw[:] = floats[0]
        self.dq[:] = self.dq_raw[:] = floats[1]
        self.ddq[:] = self.ddq_raw[:] = ints[0]
        self.tau[:] = ints[1]
        self.temp[:] = ints[2]
        self.quat[:], self.gyro[:], self.acc[:], self.rpy[:] = quat_wxyz, gyro, accelerometer, rpy
        feet = np.rint(np.asarray(foot_forces)[C.FEET_SIM_TO_SDK])
        self.feet[:] = self.feet_est[:] = np.minimum(np.maximum(feet, -32768.0, out=feet), 32767.0, out=feet)
        self.tick[0] = int(tick_ms) & 0xFFFFFFFF
        self.soc[0] = max(0, min(100, int(round(soc))))
        self.current[0] = int(round(1000.0 * power_w / BATTERY_VOLTAGE))
        self.remote[:] = remote

    def encode(self) -> bytes:
        """The 807-byte packet with its CRC."""
        raw = bytearray(self.arr.tobytes())
        struct.pack_into("<I", raw, len(raw) - 4, crc32_fast(raw))
        return bytes(raw)

    def record(self) -> np.ndarray:
        return self.arr[0]


def fill_low_state(**state) -> bytes:
    """One-shot: the encoded LowState for ``state`` (keywords of :meth:`LowStateWriter.write`)."""
    w = LowStateWriter()
    w.write(**state)
    return w.encode()
