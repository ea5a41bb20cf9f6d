"""Go1 motor behaviour, pure numpy: command modes and sentinels, a thermal model, a battery model.

A Go1 motor in servo mode (0x0A) computes tau = Kp (q_des - q) + Kd (dq_des - dq) + tau_ff
(REFERENCE.md section 2); ``q_des = PosStopF`` removes the position term, ``dq_des = VelStopF`` the
velocity term. Mode 0x00 is damping: tau = -Kd_damp dq. The simulator turns each LowCmd into the
equivalent (q_des, dq_des, Kp, Kd, tau_ff) for MuJoCo's in-step PD.
"""
from dataclasses import dataclass
from typing import Dict

import numpy as np

from go1o4 import contract as C


@dataclass
class MotorTargets:
    """Per-joint PD terms, sim order (what ``Go1Physics.set_motor_command`` takes)."""

    q_des: np.ndarray
    dq_des: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    tau_ff: np.ndarray
    mode: np.ndarray  # int, the mode each motor is actually in (MODE_SERVO or MODE_DAMPING)


def damping_targets(damping_kd: float = C.DAMPING_KD) -> MotorTargets:
    z = np.zeros(C.NUM_JOINTS)
    return MotorTargets(z.copy(), z.copy(), z.copy(), np.full(C.NUM_JOINTS, damping_kd), z.copy(),
                        np.full(C.NUM_JOINTS, C.MODE_DAMPING, dtype=np.int64))


def targets_from_command(fields_sdk: Dict[str, np.ndarray], damping_kd: float = C.DAMPING_KD):
    """MotorTargets (sim order) from ``wire.motor_cmd_fields`` (SDK order) and a count of invalid motors.

    Servo motors honour PosStopF/VelStopF. Damping, unknown modes and motors with a non-finite
    q/dq/Kp/Kd/tau or a negative gain get damping (the safe fallback); the latter two are counted as invalid.
    """
    f = {k: C.sdk_to_sim(np.asarray(v)) for k, v in fields_sdk.items()}
    mode = f["mode"].astype(np.int64)
    finite = (f["Kp"] >= 0) & (f["Kd"] >= 0)  # negative gains (int16 on the wire) are invalid too
    for k in ("q", "dq", "tau", "Kp", "Kd"):
        finite &= np.isfinite(f[k])
    known = (mode == C.MODE_SERVO) | (mode == C.MODE_DAMPING)
    servo = (mode == C.MODE_SERVO) & finite
    pos_on = servo & (np.abs(f["q"]) < 0.5 * C.POS_STOP_F)
    vel_on = servo & (np.abs(f["dq"]) < 0.5 * C.VEL_STOP_F)
    kp = np.where(pos_on, f["Kp"], 0.0)
    kd = np.where(vel_on, f["Kd"], np.where(servo, 0.0, damping_kd))
    targets = MotorTargets(
        q_des=np.where(pos_on, f["q"], 0.0),
        dq_des=np.where(vel_on, f["dq"], 0.0),
        kp=kp,
        kd=kd,
        tau_ff=np.where(servo, f["tau"], 0.0),
        mode=np.where(servo, C.MODE_SERVO, C.MODE_DAMPING).astype(np.int64),
    )
    invalid = int(np.sum(~finite | ~known))
    return targets, invalid


@dataclass
class ThermalConfig:
    """First-order winding temperature: dT/dt = heating tau^2 - (T - ambient) / time_constant."""

    ambient: float = 25.0  # deg C
    heating: float = 0.002  # K / (N^2 m^2 s): 10 N m held -> +24 K at steady state
    time_constant: float = 120.0  # s

    def validate(self) -> None:
        if not (self.heating >= 0 and self.time_constant > 0 and np.isfinite(self.ambient)):
            raise ValueError("need heating >= 0, time_constant > 0, finite ambient")


def thermal_step(temp: np.ndarray, tau: np.ndarray, dt: float, cfg: ThermalConfig) -> np.ndarray:
    """One explicit step of the thermal model (exact for constant tau over dt)."""
    steady = cfg.ambient + cfg.heating * cfg.time_constant * np.square(tau)
    return steady + (temp - steady) * np.exp(-dt / cfg.time_constant)


@dataclass
class BatteryConfig:
    """Battery state of charge: electrical power = idle + mechanical |tau dq| + copper loss k tau^2."""

    capacity_wh: float = 130.0  # Go1 pack: 6000 mAh at 21.6 V
    initial_soc: float = 95.0  # %
    idle_power: float = 60.0  # W (computers, sensors, motor drivers)
    copper_loss: float = 0.05  # W / (N m)^2 per motor

    def validate(self) -> None:
        if not (self.capacity_wh > 0 and 0 <= self.initial_soc <= 100 and self.idle_power >= 0
                and self.copper_loss >= 0):
            raise ValueError("need capacity_wh > 0, 0 <= initial_soc <= 100, idle_power >= 0, copper_loss >= 0")


def battery_step(soc: float, tau: np.ndarray, dq: np.ndarray, dt: float, cfg: BatteryConfig) -> float:
    """State of charge (%) after ``dt`` seconds of drawing the current power."""
    power = cfg.idle_power + float(np.sum(np.abs(tau * dq)) + cfg.copper_loss * np.sum(np.square(tau)))
    return max(0.0, soc - 100.0 * power * dt / (cfg.capacity_wh * 3600.0))
