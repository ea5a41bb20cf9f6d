"""One received Go1 LowState, in simulation order (the runtime's view of the robot)."""
import functools
import operator
from dataclasses import dataclass, field
from typing import Any, Dict

import numpy as np
from go1o4.robot_runtime import wire

from go1o4 import contract as C

_MOTOR_FIELDS = operator.attrgetter("q", "dq", "ddq", "tauEst", "temperature", "mode")
_SDK_TO_SIM = [int(i) for i in C.SDK_TO_SIM]


@functools.lru_cache(maxsize=256)
def _decode_remote(raw: bytes) -> Dict[str, Any]:
    return wire.decode_remote(raw)


def decode_remote(raw: bytes) -> Dict[str, Any]:
    """``wire.decode_remote`` of the 40 remote bytes, cached (the block rarely changes between packets)."""
    d = _decode_remote(raw)
    return dict(d, buttons=set(d["buttons"]))


@dataclass
class RobotState:
    """Joint arrays are sim order (FL, FR, RL, RR); feet FL FR RL RR; IMU quaternion (w, x, y, z)."""

    tick: int  # robot ms counter
    q: np.ndarray
    dq: np.ndarray
    ddq: np.ndarray
    tau_est: np.ndarray
    temperature: np.ndarray  # deg C
    motor_mode: np.ndarray
    quat_wxyz: np.ndarray
    gyro: np.ndarray
    accelerometer: np.ndarray
    rpy: np.ndarray
    foot_forces: np.ndarray  # N
    remote: Dict[str, Any] = field(default_factory=dict)  # wire.decode_remote: buttons, lx, rx, ry, ly, L2
    battery_soc: float = 0.0  # %
    crc_failures: int = 0  # SDK Recv() == -3 so far on this link
    recv_time: float = 0.0  # host monotonic time of reception

    @property
    def projected_gravity(self) -> np.ndarray:
        return C.projected_gravity(self.quat_wxyz)

    @classmethod
    def from_sdk(cls, st, crc_failures: int = 0, recv_time: float = 0.0) -> "RobotState":
        """From the SDK's ``robot_interface.LowState`` (SDK order -> sim order via go1o4.contract)."""
        ms = st.motorState  # one copy of the 20 motor structs; attrgetter: the cheapest way through pybind
        q, dq, ddq, tau, temp, mode = np.array([_MOTOR_FIELDS(ms[i]) for i in _SDK_TO_SIM], dtype=np.float64).T.copy()
        imu = st.imu
        feet = st.footForce
        return cls(
            tick=int(st.tick), q=q, dq=dq, ddq=ddq, tau_est=tau, temperature=temp, motor_mode=mode.astype(np.int64),
            quat_wxyz=np.array(imu.quaternion, dtype=np.float64), gyro=np.array(imu.gyroscope, dtype=np.float64),
            accelerometer=np.array(imu.accelerometer, dtype=np.float64), rpy=np.array(imu.rpy, dtype=np.float64),
            foot_forces=np.array([feet[i] for i in C.FEET_SDK_TO_SIM], dtype=np.float64),
            remote=decode_remote(bytes(bytearray(st.wirelessRemote))), battery_soc=float(st.bms.SOC),
            crc_failures=crc_failures, recv_time=recv_time,
        )

    @classmethod
    def from_record(cls, rec: np.ndarray, crc_failures: int = 0, recv_time: float = 0.0) -> "RobotState":
        """From a decoded ``wire.LOW_STATE`` record (logs, tests), with the SDK's fixed-point scaling."""
        ms = rec["motorState"][:C.NUM_JOINTS]
        imu = rec["imu"]
        return cls(
            tick=int(rec["tick"]),
            q=C.sdk_to_sim(ms["q"].astype(np.float64)), dq=C.sdk_to_sim(ms["dq"].astype(np.float64)),
            ddq=C.sdk_to_sim(ms["ddq"].astype(np.float64)),
            tau_est=C.sdk_to_sim(ms["tauEst"].astype(np.float64) / wire.TAU_EST_SCALE),
            temperature=C.sdk_to_sim(ms["temperature"].astype(np.float64)),
            motor_mode=C.sdk_to_sim(ms["mode"].astype(np.int64)),
            quat_wxyz=imu["quaternion"].astype(np.float64), gyro=imu["gyroscope"].astype(np.float64),
            accelerometer=imu["accelerometer"].astype(np.float64), rpy=imu["rpy"].astype(np.float64),
            foot_forces=rec["footForce"].astype(np.float64)[C.FEET_SDK_TO_SIM],
            remote=decode_remote(rec["wirelessRemote"].tobytes()), battery_soc=float(rec["bms"]["SOC"]),
            crc_failures=crc_failures, recv_time=recv_time,
        )
