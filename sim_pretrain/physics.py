"""One simulated Go1 in MuJoCo: motor commands in, robot state out (all joint arrays in sim order).

Used by the simulated robot behind the SDK's UDP protocol and as the reference for the vector env.
The motor law tau = Kp (q_des - q) + Kd (dq_des - dq) + tau_ff, clipped to the torque limits, runs
inside MuJoCo's actuators at every physics step (see ``model/go1_mjcf.py``). With ``motor_model =
"actuator_net"`` the servo joints at the policy gains (Kp 20, Kd 0.5, no dq_des/tau_ff) get the
walk-these-ways actuator network's torque instead (:mod:`sim_pretrain.actuator_net`, history and torque
updated every 0.005 s as in training); other commands (damping, calibration ramps) keep the PD law.
"""
import math
from typing import Optional, Sequence

import mujoco
import numpy as np
from go1o4.sim_pretrain.actuator_net import HISTORY_DT, ActuatorNet
from go1o4.sim_pretrain.model.go1_mjcf import FOOT_GEOMS, FOOT_RADIUS, SENSOR_SLICES, go1_mjcf
from go1o4.sim_pretrain.model.terrain import TerrainConfig, surface_height

from go1o4 import contract

POSES = ("standing", "lying")
SETTLED_QVEL = 0.02  # rad/s and m/s: reset() stops settling below this


class PhysicsDivergedError(RuntimeError):
    pass


def quat_to_rpy(quat_wxyz) -> np.ndarray:
    """Roll, pitch, yaw (ZYX Euler, as the Go1 IMU reports) from a (w, x, y, z) quaternion."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=np.float64)
    roll = np.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2.0 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return np.array([roll, pitch, yaw])


def _as12(name: str, value) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    try:
        a = np.broadcast_to(a, (contract.NUM_JOINTS,)).copy()
    except ValueError:
        raise ValueError("%s must be a scalar or %d values (sim order), got shape %s"
                         % (name, contract.NUM_JOINTS, a.shape))
    if not np.all(np.isfinite(a)):
        raise ValueError("%s has non-finite entries: %s" % (name, a.tolist()))
    return a


def lowest_point(model: mujoco.MjModel, data: mujoco.MjData, geom_ids: Sequence[int]) -> float:
    """Lowest world z over the given geoms (sphere, capsule, cylinder, box), from current kinematics."""
    low = np.inf
    for g in geom_ids:
        z, size, axis = data.geom_xpos[g][2], model.geom_size[g], data.geom_xmat[g].reshape(3, 3)[2]
        t = model.geom_type[g]
        if t == mujoco.mjtGeom.mjGEOM_SPHERE:
            low = min(low, z - size[0])
        elif t == mujoco.mjtGeom.mjGEOM_CAPSULE:
            low = min(low, z - abs(axis[2]) * size[1] - size[0])
        elif t == mujoco.mjtGeom.mjGEOM_CYLINDER:
            low = min(low, z - abs(axis[2]) * size[1] - size[0] * np.sqrt(max(0.0, 1.0 - axis[2] ** 2)))
        elif t == mujoco.mjtGeom.mjGEOM_BOX:
            low = min(low, z - float(np.abs(axis) @ size))
    return float(low)


class Go1Physics:
    """A single Go1 on a terrain. Joint arrays are in ``contract.JOINT_NAMES_SIM`` order."""

    def __init__(self, terrain: Optional[TerrainConfig] = None, timestep: float = contract.LINK_DT, seed: int = 0,
                 noslip_iterations: Optional[int] = None, motor_model: str = "ideal_pd", actuator_net: str = ""):
        """``noslip_iterations`` defaults to 3 on soft terrain (no foot creep while standing/lying), else 0."""
        self.terrain = TerrainConfig() if terrain is None else terrain
        if noslip_iterations is None:
            noslip_iterations = 3 if self.terrain.is_soft else 0
        self.model = mujoco.MjModel.from_xml_string(go1_mjcf(self.terrain, timestep,
                                                             noslip_iterations=noslip_iterations))
        self.data = mujoco.MjData(self.model)
        self.rng = np.random.default_rng(seed)
        self._foot_geoms = np.array([self.model.geom(n).id for n in FOOT_GEOMS])
        trunk = self.model.body("trunk").id
        self._robot_geoms = [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] >= trunk]
        self._sl = {k: slice(*v) for k, v in SENSOR_SLICES.items()}
        self._warnings = [self.data.warning[k] for k in (mujoco.mjtWarning.mjWARN_BADQPOS,
                                                         mujoco.mjtWarning.mjWARN_BADQVEL,
                                                         mujoco.mjtWarning.mjWARN_BADQACC)]
        self._diverged = 0
        self.net: Optional[ActuatorNet] = None
        if motor_model == "actuator_net":
            stride = HISTORY_DT / timestep
            if abs(stride - round(stride)) > 1e-9 or round(stride) < 1:
                raise ValueError("actuator_net needs a physics step dividing %g s (e.g. 0.001 or 0.005), got %g"
                                 % (HISTORY_DT, timestep))
            self.net, self._stride, self._net_tau = ActuatorNet(1, path=actuator_net), int(round(stride)), None
            self._cmd = (np.zeros(12), np.zeros(12), np.zeros(12), np.zeros(12), np.zeros(12))
            self.model.actuator_gainprm[:, 0] = 1.0  # direct torque; forcerange clips
            self.model.actuator_biasprm[:, :3] = 0.0
        elif motor_model != "ideal_pd":
            raise ValueError("motor_model must be ideal_pd or actuator_net, got %r" % (motor_model,))
        self.reset()

    # ------------------------------------------------------------------------- commands
    def set_motor_command(self, q_des, dq_des=0.0, kp=contract.KP, kd=contract.KD, tau_ff=0.0) -> None:
        """tau = Kp (q_des - q) + Kd (dq_des - dq) + tau_ff, clipped to TORQUE_LIMIT, at every physics step.

        As on the Go1's motors, q_des = PosStopF disables the position term and dq_des = VelStopF
        the velocity term.
        """
        q_des, dq_des = _as12("q_des", q_des), _as12("dq_des", dq_des)
        kp, kd, tau_ff = _as12("kp", kp), _as12("kd", kd), _as12("tau_ff", tau_ff)
        if np.any(kp < 0) or np.any(kd < 0):
            raise ValueError("kp and kd must be >= 0, got kp=%s kd=%s" % (kp.tolist(), kd.tolist()))
        pos_off = np.abs(q_des) >= 0.5 * contract.POS_STOP_F
        vel_off = np.abs(dq_des) >= 0.99 * contract.VEL_STOP_F
        kp = np.where(pos_off, 0.0, kp)
        q_des = np.where(pos_off, 0.0, q_des)
        dq_des = np.where(vel_off, 0.0, dq_des)
        kd = np.where(vel_off, 0.0, kd)
        if self.net is not None:
            self._cmd = (q_des, dq_des, kp, kd, tau_ff)
            return
        m = self.model
        m.actuator_gainprm[:, 0] = kp
        m.actuator_biasprm[:, 0] = tau_ff + kd * dq_des
        m.actuator_biasprm[:, 1] = -kp
        m.actuator_biasprm[:, 2] = -kd
        self.data.ctrl[:] = q_des

    def set_damping(self, kd: float = contract.DAMPING_KD) -> None:
        """Damping mode: tau = -kd dq (the Go1 powered with motors in damping)."""
        self.set_motor_command(np.zeros(contract.NUM_JOINTS), 0.0, 0.0, kd, 0.0)

    # ------------------------------------------------------------------------- stepping
    def step(self, n: int = 1) -> None:
        if self.net is None:
            mujoco.mj_step(self.model, self.data, nstep=int(n))
        else:
            for _ in range(int(n)):
                self.data.ctrl[:] = self._net_torque()
                mujoco.mj_step(self.model, self.data)
        count = self._instability_count()
        if count != self._diverged:
            self._diverged = count
            raise PhysicsDivergedError("MuJoCo diverged (NaN/huge qpos, qvel or qacc) near t=%.3f s and reset the "
                                       "state; call reset() before stepping on" % self.data.time)

    def _net_torque(self) -> np.ndarray:
        """Actuator network where the command is the policy's PD (Kp 20, Kd 0.5), the PD law elsewhere."""
        q_des, dq_des, kp, kd, tau_ff = self._cmd
        q, dq = self.data.qpos[7:19], self.data.qvel[6:18]
        if self._net_tau is None or int(round(self.data.time / self.model.opt.timestep)) % self._stride == 0:
            self._net_tau = self.net.torque(q[None], dq[None], q_des[None])[0]
        policy_pd = (kp == contract.KP) & (kd == contract.KD) & (dq_des == 0.0) & (tau_ff == 0.0)
        pd = kp * (q_des - q) + kd * (dq_des - dq) + tau_ff
        return contract.clip12(np.where(policy_pd, self._net_tau, pd), -contract.TORQUE_LIMIT, contract.TORQUE_LIMIT)

    def _instability_count(self) -> int:
        a, b, c = self._warnings
        return a.number + b.number + c.number

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    def reset(self, q=None, pose: str = "standing", base_height: Optional[float] = None, xy=(0.0, 0.0),
              yaw: float = 0.0, settle: Optional[float] = None, q_noise: float = 0.0) -> None:
        """Put the robot on the ground in ``pose`` (or joint angles ``q``) and let it settle.

        "standing": contract.DEFAULT_Q held by the PD (Kp 20, Kd 0.5), feet on the surface.
        "lying": contract.LYING_Q in damping mode, resting on its folded legs and belly.
        Settling runs until joints and base are still (or ``settle`` seconds, default 1 standing,
        3 lying; 0 disables); ``time`` then restarts at 0. ``q_noise`` adds uniform joint noise (rad, seeded).
        """
        if pose not in POSES:
            raise ValueError("pose must be one of %s, got %r" % (POSES, pose))
        q = (contract.DEFAULT_Q if pose == "standing" else contract.LYING_Q) if q is None else q
        q = _as12("q", q) + self.rng.uniform(-q_noise, q_noise, contract.NUM_JOINTS)
        q = np.clip(q, contract.Q_MIN, contract.Q_MAX)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        if self.net is not None:
            self.net.reset()
            self._net_tau = None
        d.qpos[0:2] = xy
        d.qpos[3:7] = [np.cos(0.5 * yaw), 0.0, 0.0, np.sin(0.5 * yaw)]
        d.qpos[7:19] = q
        if base_height is None:
            d.qpos[2] = 0.0
            mujoco.mj_kinematics(m, d)
            ground = float(surface_height(self.terrain, np.asarray(xy, dtype=np.float64)))
            base_height = ground - lowest_point(m, d, self._robot_geoms) + 0.002
        d.qpos[2] = base_height
        if pose == "standing":
            self.set_motor_command(q)
        else:
            self.set_damping()
        settle = (1.0 if pose == "standing" else 3.0) if settle is None else settle
        self._diverged = self._instability_count()
        chunk = max(1, int(round(0.1 / m.opt.timestep)))
        while d.time < settle - 1e-9:
            self.step(min(chunk, int(round((settle - d.time) / m.opt.timestep)) or 1))
            if d.time >= 0.2 and np.abs(d.qvel).max() < SETTLED_QVEL:
                break
        d.time = 0.0
        mujoco.mj_forward(m, d)

    # ------------------------------------------------------------------------- state
    @property
    def q(self) -> np.ndarray:
        return self.data.qpos[7:19].copy()

    @property
    def dq(self) -> np.ndarray:
        return self.data.qvel[6:18].copy()

    @property
    def tau(self) -> np.ndarray:
        """Applied motor torque (N m), already clipped to the torque limits."""
        return self.data.actuator_force.copy()

    @property
    def base_quat_wxyz(self) -> np.ndarray:
        quat = self.data.qpos[3:7]
        return quat / math.sqrt(quat @ quat)

    @property
    def base_pos(self) -> np.ndarray:
        return self.data.qpos[0:3].copy()

    @property
    def base_lin_vel_world(self) -> np.ndarray:
        return self.data.qvel[0:3].copy()  # free joint: linear velocity in the world frame

    @property
    def base_lin_vel_body(self) -> np.ndarray:
        return contract.quat_rotate_inverse(self.base_quat_wxyz, self.base_lin_vel_world)

    @property
    def base_ang_vel_body(self) -> np.ndarray:
        return self.data.qvel[3:6].copy()  # free joint: angular velocity in the body frame

    def sensor_slice(self, name: str) -> slice:
        """Where sensor ``name`` (imu_acc, foot_touch, ...) sits in ``data.sensordata``."""
        return self._sl[name]

    @property
    def gyro(self) -> np.ndarray:
        """IMU angular velocity (rad/s, body frame). The IMU site sits at the trunk origin, unrotated."""
        return self.base_ang_vel_body

    @property
    def accelerometer(self) -> np.ndarray:
        """IMU specific force (m/s^2, body frame): about (0, 0, +9.81) standing level. One physics step old."""
        return self.data.sensordata[self._sl["imu_acc"]].copy()

    @property
    def rpy(self) -> np.ndarray:
        return quat_to_rpy(self.base_quat_wxyz)

    @property
    def projected_gravity(self) -> np.ndarray:
        return contract.projected_gravity(self.base_quat_wxyz)

    @property
    def foot_forces(self) -> np.ndarray:
        """Normal contact force on each foot (N), FL FR RL RR (touch sensors, one physics step old)."""
        return self.data.sensordata[self._sl["foot_touch"]].copy()

    def foot_positions(self) -> np.ndarray:
        """World positions (4, 3) of the foot sphere centres, FL FR RL RR, for the current state."""
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.geom_xpos[self._foot_geoms].copy()

    def foot_heights(self) -> np.ndarray:
        """Foot sphere bottom minus the undeformed surface height under it (m); negative = sunk in."""
        p = self.foot_positions()
        return p[:, 2] - FOOT_RADIUS - surface_height(self.terrain, p[:, :2])
