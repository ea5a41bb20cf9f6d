"""A batch of MuJoCo Go1 robots (one MjModel copy + MjData each) stepped by one process.

The model is ``sim_pretrain.model.go1_mjcf``; this module appends the sensors the environment
needs (foot positions/velocities, joint torques, contact flags) and exposes batched state arrays.
Motor models: ``ideal_pd`` runs the PD law inside MuJoCo at every physics step (``general`` actuators,
ctrl = q_des), so a policy step is one or two ``mj_step(m, d, nstep)`` calls per robot (two when action
latency makes the previous target hold for the first substeps); ``actuator_net`` computes every physics
step's torque with :mod:`sim_pretrain.actuator_net` (actuators switched to direct torque).

Terrain friction: the terrain geoms have contact priority, so their friction is the contact's. Domain
randomisation multiplies it (rigid 1.0, mattress ``TerrainConfig.mattress_friction``); the robot's own
geoms keep theirs.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import mujoco
import numpy as np
from go1o4.sim_pretrain.actuator_net import ActuatorNet
from go1o4.sim_pretrain.model import TerrainConfig, go1_mjcf
from go1o4.sim_pretrain.model.terrain import with_kind

from go1o4 import contract as C

FOOT_RADIUS = 0.02
MAX_DELAY = 3  # policy steps of action history kept for latency


def _extra_sensors_xml() -> str:
    s = []
    for leg in C.LEGS_SIM:
        s.append('<framepos name="%s_foot_pos" objtype="site" objname="%s_foot"/>' % (leg, leg))
        s.append('<framelinvel name="%s_foot_vel" objtype="site" objname="%s_foot"/>' % (leg, leg))
    s += ['<actuatorfrc name="%s_tau" actuator="%s"/>' % (j, j) for j in C.JOINT_NAMES_SIM]
    s.append('<contact name="trunk_contact" geom1="trunk_geom" data="found"/>')
    for leg in C.LEGS_SIM:
        for part in ("hip", "thigh", "calf"):
            s.append('<contact name="%s_%s_contact" geom1="%s_%s_geom" data="found"/>' % (leg, part, leg, part))
    return "\n    ".join(s)


def build_model_xml(terrain_kind: str, sim_dt: float, ground: Optional[TerrainConfig] = None) -> str:
    """Go1 MJCF on terrain ``terrain_kind`` with ``ground``'s parameters, with the environment's sensors appended."""
    xml = go1_mjcf(with_kind(ground or TerrainConfig(), terrain_kind), timestep=sim_dt)
    if "</sensor>" not in xml:
        raise RuntimeError("sim_pretrain.model.go1_mjcf returned a model without a <sensor> block")
    return xml.replace("</sensor>", "    " + _extra_sensors_xml() + "\n  </sensor>")


def substep_delays(latency_substeps: int, decimation: int) -> List[int]:
    """For each physics substep of a policy step, how many policy steps old the applied target is.

    With a latency of L substeps, substep j of step t applies the newest target issued at or before
    substep 4t + j - L, i.e. the one from ``-floor((j - L) / decimation)`` policy steps ago.
    """
    return [min(MAX_DELAY - 1, max(0, -((j - latency_substeps) // decimation))) for j in range(decimation)]


def latency_runs(latency_substeps: int, decimation: int) -> List[Tuple[int, int]]:
    """:func:`substep_delays` as runs of (delay, number of substeps): one ``mj_step`` call per run."""
    delays = substep_delays(latency_substeps, decimation)
    runs: List[Tuple[int, int]] = []
    for dly in delays:
        if runs and runs[-1][0] == dly:
            runs[-1] = (dly, runs[-1][1] + 1)
        else:
            runs.append((dly, 1))
    return runs


class RobotBatch:
    """M Go1 robots; ``terrains[i]`` is a terrain kind ("rigid", "mattress", ...) with ``ground``'s parameters."""

    def __init__(self, terrains: Sequence[str], sim_dt: float = C.SIM_DT, decimation: int = C.DECIMATION,
                 solver_iterations: int = 0, ground: Optional[TerrainConfig] = None, motor_model: str = "ideal_pd",
                 actuator_net: str = ""):
        self.n, self.decimation = len(terrains), decimation
        self.terrains = list(terrains)
        bases: Dict[str, mujoco.MjModel] = {}
        for kind in sorted(set(terrains)):
            m = mujoco.MjModel.from_xml_string(build_model_xml(kind, sim_dt, ground))
            if solver_iterations > 0:
                m.opt.iterations = solver_iterations
            bases[kind] = m
        self.models = [copy.deepcopy(bases[k]) for k in terrains]
        self.datas = [mujoco.MjData(m) for m in self.models]
        m0 = self.models[0]
        self._check_layout(m0)
        self.trunk_id = m0.body("trunk").id
        self.base_mass = float(m0.body_mass[self.trunk_id])
        self.terrain_geoms = [np.array([g for g in range(m.ngeom) if m.geom_bodyid[g] == 0]) for m in self.models]
        self.base_friction = [m.geom_friction[g, 0].copy() for m, g in zip(self.models, self.terrain_geoms)]
        self.kp, self.kd = float(m0.actuator_gainprm[0, 0]), float(-m0.actuator_biasprm[0, 2])
        self.motor_model = motor_model
        self.net: Optional[ActuatorNet] = None
        if motor_model == "actuator_net":
            self.net = ActuatorNet(self.n, path=actuator_net)
            for m in self.models:  # direct torque: ctrl = tau, clipped by the actuators' forcerange
                m.actuator_gainprm[:, 0] = 1.0
                m.actuator_biasprm[:, :3] = 0.0
        elif motor_model != "ideal_pd":
            raise ValueError("motor_model must be ideal_pd or actuator_net, got %r" % (motor_model,))

        def sl(name, size):
            adr = int(m0.sensor(name).adr[0])
            return slice(adr, adr + size)

        self.s_quat, self.s_gyro = sl("base_quat", 4), sl("imu_gyro", 3)
        self.s_linvel_body = sl("base_linvel_body", 3)
        a = int(m0.sensor("FL_touch").adr[0])
        self.s_touch = slice(a, a + 4)
        self.s_foot_pos = [sl("%s_foot_pos" % leg, 3) for leg in C.LEGS_SIM]
        self.s_foot_vel = [sl("%s_foot_vel" % leg, 3) for leg in C.LEGS_SIM]
        a = int(m0.sensor("FL_hip_tau").adr[0])
        self.s_tau = slice(a, a + 12)
        self.s_bad = [int(m0.sensor("trunk_contact").adr[0])] + [
            int(m0.sensor("%s_hip_contact" % leg).adr[0]) for leg in C.LEGS_SIM]
        self.s_coll = [int(m0.sensor("%s_%s_contact" % (leg, p)).adr[0]) for leg in C.LEGS_SIM
                       for p in ("thigh", "calf")]
        self.qpos = np.zeros((self.n, m0.nq))
        self.qvel = np.zeros((self.n, m0.nv))
        self.sensordata = np.zeros((self.n, m0.nsensordata))
        self.targets = np.tile(C.DEFAULT_Q, (self.n, MAX_DELAY, 1))  # [:, k] = q_des issued k steps ago
        self._runs = [latency_runs(0, decimation)] * self.n

    @staticmethod
    def _check_layout(m: mujoco.MjModel) -> None:
        names = tuple(m.joint(i).name for i in range(1, m.njnt))
        if m.nq != 19 or m.nu != 12 or names != C.JOINT_NAMES_SIM:
            raise RuntimeError("Go1 model layout differs from contract.JOINT_NAMES_SIM: joints %s, nq %d, nu %d"
                               % (names, m.nq, m.nu))

    # ------------------------------------------------------------------ randomisation / reset
    def randomize(self, i: int, friction: float, added_mass: float, motor_strength: float,
                  latency_substeps: int, motor_offset=0.0) -> float:
        """Per-episode parameters of robot i; returns the contact friction (terrain friction x ``friction``)."""
        m = self.models[i]
        m.geom_friction[self.terrain_geoms[i], 0] = self.base_friction[i] * friction
        m.body_mass[self.trunk_id] = self.base_mass + added_mass
        if self.net is not None:
            self.net.strength[i] = motor_strength
            self.net.offset[i] = motor_offset
        else:
            m.actuator_gainprm[:, 0] = self.kp * motor_strength
            m.actuator_biasprm[:, 1] = -self.kp * motor_strength
            m.actuator_biasprm[:, 2] = -self.kd * motor_strength
        self._runs[i] = latency_runs(latency_substeps, self.decimation)
        return float(np.max(m.geom_friction[self.terrain_geoms[i], 0]))

    def reset(self, i: int, qpos: np.ndarray, qvel: np.ndarray) -> None:
        m, d = self.models[i], self.datas[i]
        mujoco.mj_resetData(m, d)
        d.qpos[:] = qpos
        d.qvel[:] = qvel
        self.targets[i] = qpos[7:19]
        d.ctrl[:] = qpos[7:19] if self.net is None else 0.0
        if self.net is not None:
            self.net.reset([i])
        mujoco.mj_forward(m, d)
        self._read(i)

    def push(self, i: int, dv_xy: np.ndarray) -> None:
        self.datas[i].qvel[0:2] += dv_xy

    # ------------------------------------------------------------------ stepping
    def step(self, q_des: np.ndarray) -> None:
        """Apply new joint targets (M, 12) for one policy step (``decimation`` physics steps)."""
        self.targets[:, 1:] = self.targets[:, :-1]
        self.targets[:, 0] = q_des
        if self.net is not None:
            self._step_net()
            return
        for i in range(self.n):
            m, d = self.models[i], self.datas[i]
            for delay, nstep in self._runs[i]:
                d.ctrl[:] = self.targets[i, delay]
                mujoco.mj_step(m, d, nstep)
            self._read(i)

    def _step_net(self) -> None:
        """Actuator network: every physics step, all robots' torques in one batched evaluation."""
        delays = [[dly for dly, k in runs for _ in range(k)] for runs in self._runs]
        rows = np.arange(self.n)
        for j in range(self.decimation):
            q_des = self.targets[rows, [dl[j] for dl in delays]]
            q = np.stack([d.qpos[7:19] for d in self.datas])
            dq = np.stack([d.qvel[6:18] for d in self.datas])
            tau = self.net.torque(q, dq, q_des)
            for i, (m, d) in enumerate(zip(self.models, self.datas)):
                d.ctrl[:] = tau[i]
                mujoco.mj_step(m, d)
        for i in range(self.n):
            self._read(i)

    def step_bare(self, nsteps: int, action_std: float = 0.3, seed: int = 0) -> None:
        """Physics only (the benchmark baseline): ``nsteps`` policy steps of ``mj_step(nstep=decimation)`` per
        robot with random targets like the benchmark's env run (same robots, same kind of motion)."""
        rng = np.random.default_rng(seed)
        for _ in range(nsteps):
            q_des = C.action_to_q_des(rng.normal(size=(self.n, 12)) * action_std)
            for i, (m, d) in enumerate(zip(self.models, self.datas)):
                d.ctrl[:] = q_des[i]
                mujoco.mj_step(m, d, self.decimation)

    def _read(self, i: int) -> None:
        d = self.datas[i]
        self.qpos[i] = d.qpos
        self.qvel[i] = d.qvel
        self.sensordata[i] = d.sensordata

    # ------------------------------------------------------------------ batched views
    def state(self) -> Dict[str, np.ndarray]:
        sd = self.sensordata
        return {
            "base_pos": self.qpos[:, 0:3],
            "quat": self.qpos[:, 3:7],
            "q": self.qpos[:, 7:19],
            "dq": self.qvel[:, 6:18],
            "base_lin_vel": sd[:, self.s_linvel_body],
            "base_ang_vel": sd[:, self.s_gyro],
            "foot_forces": sd[:, self.s_touch],
            "foot_pos": np.stack([sd[:, s] for s in self.s_foot_pos], axis=1),
            "foot_vel": np.stack([sd[:, s] for s in self.s_foot_vel], axis=1),
            "torques": sd[:, self.s_tau],
            "bad_contact": np.any(sd[:, self.s_bad] > 0, axis=1),
            "collisions": np.sum(sd[:, self.s_coll] > 0, axis=1),
        }
