"""RobotBatch's interface on MuJoCo Warp: all robots of one terrain kind are the worlds of one batched model.

Same MJCF (``robots.build_model_xml``: the Go1, its terrain and the environment's sensors), same
domain randomisation (per-world friction, trunk mass, motor strength as batched model fields; per-world
action latency as the target each substep applies), same reset (``mj_resetData`` + state + forward) and
the same sensor read-out as :class:`go1o4.sim_pretrain.env.robots.RobotBatch`, so
:class:`go1o4.sim_pretrain.env.group.Go1EnvGroup` runs the task (observations, rewards, commands,
pushes, terminations) unchanged on top of it. Warp runs on a CUDA GPU or, slowly, on its CPU device.

Motor model: by default the MJCF's PD actuators (ctrl = q_des, gains scaled by the motor strength), as
on the CPU backend. A ``torque_fn(q, dq, q_des, motor_strength) -> tau`` (numpy, (M, 12) each) replaces
them: the actuators become direct torque motors and ``torque_fn`` runs before every physics substep
(an actuator network or a friction model plugs in here).
"""
from typing import Callable, Dict, List, Optional, Sequence

import mujoco
import mujoco_warp as mjw
import numpy as np
import warp as wp
from go1o4.sim_pretrain.env.robots import MAX_DELAY, RobotBatch, substep_delays

from go1o4 import contract as C

TorqueFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
NCONMAX, NJMAX = 48, 256  # per world: 4 feet and a few body contacts; 3 rows each (elliptic) + limits


def warp_device(spec: Optional[str] = None) -> str:
    """``None``/``auto``: Warp's CUDA device when present, else ``cpu``; else the given Warp device."""
    wp.init()
    if spec in (None, "auto"):
        return "cuda:0" if wp.is_cuda_available() else "cpu"
    if spec.startswith("cuda") and not wp.is_cuda_available():
        raise ValueError("warp device %r requested but Warp sees no CUDA device" % spec)
    return spec


class _Kind:
    """The worlds of one terrain kind: host model, device model/data and their robot indices."""

    def __init__(self, mjm: mujoco.MjModel, idx: np.ndarray, device: str):
        self.mjm, self.idx, self.n = mjm, idx, len(idx)
        mjd = mujoco.MjData(mjm)
        mujoco.mj_forward(mjm, mjd)
        with wp.ScopedDevice(device):
            self.m = mjw.put_model(mjm)
            self.d = mjw.put_data(mjm, mjd, nworld=self.n, nconmax=NCONMAX, njmax=NJMAX)
        self.friction = np.tile(mjm.geom_friction, (self.n, 1, 1))
        self.body_mass = np.tile(mjm.body_mass, (self.n, 1))
        self.gainprm = np.tile(mjm.actuator_gainprm, (self.n, 1, 1))
        self.biasprm = np.tile(mjm.actuator_biasprm, (self.n, 1, 1))

    def upload_model(self, device: str) -> None:
        """Per-world (batched) model fields: Warp kernels index them with ``worldid % shape[0]``."""
        m = self.m
        m.geom_friction = wp.array(self.friction, dtype=wp.vec3, device=device)
        m.body_mass = wp.array(self.body_mass, dtype=float, device=device)
        m.actuator_gainprm = wp.array(self.gainprm, dtype=m.actuator_gainprm.dtype, device=device)
        m.actuator_biasprm = wp.array(self.biasprm, dtype=m.actuator_biasprm.dtype, device=device)


class WarpRobotBatch(RobotBatch):
    """M Go1 robots as MuJoCo Warp worlds (``terrains[i]`` "rigid" or "mattress")."""

    def __init__(self, terrains: Sequence[str], sim_dt: float = C.SIM_DT, decimation: int = C.DECIMATION,
                 solver_iterations: int = 0, device: Optional[str] = None, torque_fn: Optional[TorqueFn] = None,
                 ground=None):
        self.n, self.decimation, self.terrains = len(terrains), decimation, list(terrains)
        self.device, self.torque_fn = warp_device(device), torque_fn
        self.kinds: List[_Kind] = []
        probe = None
        for kind in sorted(set(terrains)):
            # a one-robot CPU batch builds the model exactly as the CPU backend does (layout checked)
            probe = RobotBatch([kind], sim_dt, decimation, solver_iterations, ground)
            self.kinds.append(_Kind(probe.models[0], np.array([i for i, t in enumerate(terrains) if t == kind]),
                                    self.device))
        m0 = probe.models[0]
        self.__dict__.update({k: v for k, v in vars(probe).items() if k.startswith("s_")})
        self.models = [m0]
        self.trunk_id, self.base_mass, self.kp, self.kd = probe.trunk_id, probe.base_mass, probe.kp, probe.kd
        # the terrain's own geoms (world body) and their friction: DR multiplies it, as on the CPU backend
        self._terrain_geoms = {id(k): np.array([g for g in range(k.mjm.ngeom) if k.mjm.geom_bodyid[g] == 0])
                              for k in self.kinds}
        self._base_friction = {id(k): k.mjm.geom_friction[self._terrain_geoms[id(k)], 0].copy() for k in self.kinds}
        self.qpos = np.zeros((self.n, m0.nq))
        self.qvel = np.zeros((self.n, m0.nv))
        self.sensordata = np.zeros((self.n, m0.nsensordata))
        self.targets = np.tile(C.DEFAULT_Q, (self.n, MAX_DELAY, 1))
        self.strength = np.ones(self.n)
        self.delays = np.zeros((self.n, decimation), dtype=np.int64)
        self._pending_reset = np.zeros(self.n, dtype=bool)
        self._dirty_state = self._dirty_model = True
        if torque_fn is not None:  # direct torque motors: ctrl = tau (gain 1, no bias)
            for k in self.kinds:
                k.gainprm[:] = 0.0
                k.gainprm[:, :, 0] = 1.0
                k.biasprm[:] = 0.0
        self._flush()

    # ------------------------------------------------------------------ randomisation / reset
    def _where(self, i: int):
        """(kind, row within the kind) of robot ``i``."""
        if not hasattr(self, "_slot"):
            self._slot = {int(r): (k, j) for k in self.kinds for j, r in enumerate(k.idx)}
        return self._slot[int(i)]

    def randomize(self, i: int, friction: float, added_mass: float, motor_strength: float,
                  latency_substeps: int, motor_offset=0.0) -> float:
        """As RobotBatch.randomize (the motor offset acts only through a ``torque_fn``'s own model); returns the
        contact friction (terrain friction x ``friction``)."""
        k, j = self._where(i)
        g = self._terrain_geoms[id(k)]
        k.friction[j, g, 0] = self._base_friction[id(k)] * friction
        k.body_mass[j, self.trunk_id] = self.base_mass + added_mass
        if self.torque_fn is None:
            k.gainprm[j, :, 0] = self.kp * motor_strength
            k.biasprm[j, :, 1] = -self.kp * motor_strength
            k.biasprm[j, :, 2] = -self.kd * motor_strength
        self.strength[i] = motor_strength
        self.delays[i] = substep_delays(latency_substeps, self.decimation)
        self._dirty_model = True
        return float(np.max(k.friction[j, g, 0]))

    def reset(self, i: int, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Queued: all resets of a step go to the device together (on the next state read or step)."""
        self.qpos[i], self.qvel[i] = qpos, qvel
        self.targets[i] = qpos[7:19]
        self._pending_reset[i] = True
        self._dirty_state = True

    def push(self, i: int, dv_xy: np.ndarray) -> None:
        self.qvel[i, 0:2] += dv_xy
        self._dirty_state = True

    def _flush(self) -> None:
        if self._dirty_model:
            for k in self.kinds:
                k.upload_model(self.device)
            self._dirty_model = False
        if not self._dirty_state:
            return
        reset = self._pending_reset.copy()
        for k in self.kinds:
            r = reset[k.idx]
            if r.any():
                mjw.reset_data(k.m, k.d, reset=wp.array(r, dtype=bool, device=self.device))
            wp.copy(k.d.qpos, wp.array(self.qpos[k.idx], dtype=float, device=self.device))
            wp.copy(k.d.qvel, wp.array(self.qvel[k.idx], dtype=float, device=self.device))
            if r.any():
                self._set_ctrl(k, self.targets[k.idx, 0])
                mjw.forward(k.m, k.d)
                sd = k.d.sensordata.numpy()
                self.sensordata[k.idx[r]] = sd[r]  # other robots keep the sensors of their last step
        self._pending_reset[:] = False
        self._dirty_state = False

    # ------------------------------------------------------------------ stepping
    def _set_ctrl(self, k: _Kind, q_des: np.ndarray) -> None:
        ctrl = q_des
        if self.torque_fn is not None:
            ctrl = self.torque_fn(self.qpos[k.idx, 7:19], self.qvel[k.idx, 6:18], q_des, self.strength[k.idx])
        wp.copy(k.d.ctrl, wp.array(np.asarray(ctrl, dtype=np.float32), dtype=float, device=self.device))

    def step(self, q_des: np.ndarray) -> None:
        """Apply new joint targets (M, 12) for one policy step (``decimation`` physics substeps)."""
        self._flush()
        self.targets[:, 1:] = self.targets[:, :-1]
        self.targets[:, 0] = q_des
        rows = np.arange(self.n)
        for j in range(self.decimation):
            target = self.targets[rows, self.delays[:, j]]  # per-robot latency
            for k in self.kinds:
                if self.torque_fn is not None and j > 0:
                    self.qpos[k.idx], self.qvel[k.idx] = k.d.qpos.numpy(), k.d.qvel.numpy()
                self._set_ctrl(k, target[k.idx])
                mjw.step(k.m, k.d)
        self._read()

    def step_bare(self, nsteps: int, action_std: float = 0.3, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._flush()
        for _ in range(nsteps):
            q_des = C.action_to_q_des(rng.normal(size=(self.n, 12)) * action_std)
            for k in self.kinds:
                self._set_ctrl(k, q_des[k.idx])
                for _ in range(self.decimation):
                    mjw.step(k.m, k.d)
        wp.synchronize_device(self.device)

    def _read(self, i: Optional[int] = None) -> None:
        for k in self.kinds:
            self.qpos[k.idx] = k.d.qpos.numpy()
            self.qvel[k.idx] = k.d.qvel.numpy()
            self.sensordata[k.idx] = k.d.sensordata.numpy()

    def state(self) -> Dict[str, np.ndarray]:
        self._flush()
        return super().state()
