"""The same Go1 task on Isaac Gym's tensor API (GPU), for users with an NVIDIA GPU and Isaac Gym Preview 4.

UNTESTED HERE: Isaac Gym is not on PyPI, needs Python 3.6-3.8 and an NVIDIA GPU, so it cannot run
on this project's machines (see sim_pretrain/README.md). The module is thin on purpose: commands,
rewards, termination, observations, noise and the latency schedule are the pure functions that the
MuJoCo environment uses and the tests exercise (``sim_pretrain.rewards``, ``sim_pretrain.env.*``,
``go1o4.contract``); only the simulator calls below are Isaac Gym specific. Per step the state
tensors are copied to numpy once (a few hundred floats per robot), which keeps the task definition
in one place at a small cost in speed.

Usage (Python 3.8, isaacgym installed)::

    from go1o4.sim_pretrain.isaacgym_backend import IsaacGymGo1VecEnv
    env = IsaacGymGo1VecEnv(cfg.env, asset_file="go1.urdf")  # same EnvConfig as MuJoCo
    obs, info = env.reset(); obs, rew, term, trunc, info = env.step(actions)
"""
import os
import tempfile
from typing import Dict, Optional

import numpy as np

try:  # isaacgym must be imported before torch
    from isaacgym import gymapi, gymtorch  # type: ignore
except ImportError as _e:  # pragma: no cover - exercised by the import test
    raise ImportError(
        "sim_pretrain.isaacgym_backend needs NVIDIA Isaac Gym Preview 4 (Python 3.6-3.8, NVIDIA GPU), which is not "
        "on PyPI: install it from NVIDIA's tarball (pip install -e isaacgym/python). Use the MuJoCo environment "
        "sim_pretrain.env.Go1VecEnv otherwise. (%s)" % _e)
import torch  # noqa: E402
from go1o4.sim_pretrain.env import observations as O  # noqa: E402
from go1o4.sim_pretrain.env.commands import sample_commands  # noqa: E402
from go1o4.sim_pretrain.env.config import EnvConfig  # noqa: E402
from go1o4.sim_pretrain.env.group import episode_stat_names  # noqa: E402
from go1o4.sim_pretrain.env.robots import FOOT_RADIUS, MAX_DELAY, substep_delays  # noqa: E402
from go1o4.sim_pretrain.rewards import RewardState, check_termination, compute_rewards  # noqa: E402

from go1o4 import contract as C  # noqa: E402

FOOT_BODIES = tuple("%s_calf_link" % leg for leg in C.LEGS_SIM)
BAD_CONTACT_BODIES = ("trunk",) + tuple("%s_hip_link" % leg for leg in C.LEGS_SIM)
COLLISION_BODIES = tuple("%s_%s_link" % (leg, p) for leg in C.LEGS_SIM for p in ("thigh", "calf"))


def _default_asset() -> str:
    """Write the project's Go1 MJCF (rigid floor removed by Isaac Gym's importer) to a temp file."""
    from go1o4.sim_pretrain.model import TerrainConfig, go1_mjcf

    path = os.path.join(tempfile.mkdtemp(prefix="go1o4_"), "go1.xml")
    with open(path, "w") as f:
        f.write(go1_mjcf(TerrainConfig(kind="rigid")))
    return path


class IsaacGymGo1VecEnv:
    """Go1VecEnv's interface and task on Isaac Gym (rigid ground only; one env per robot)."""

    def __init__(self, cfg: EnvConfig, asset_file: Optional[str] = None, device: str = "cuda:0",
                 headless: bool = True):
        if cfg.terrain != "rigid":
            raise ValueError("the Isaac Gym backend implements the rigid terrain only, got %r" % cfg.terrain)
        self.cfg, self.n, self.device = cfg, cfg.num_envs, device
        self.dt = cfg.policy_dt
        self.rng = np.random.default_rng(cfg.seed)
        self.gym = gymapi.acquire_gym()
        sp = gymapi.SimParams()
        sp.dt, sp.substeps, sp.up_axis = cfg.sim_dt, 1, gymapi.UP_AXIS_Z
        sp.gravity = gymapi.Vec3(0.0, 0.0, -9.81)
        sp.use_gpu_pipeline = device.startswith("cuda")
        sp.physx.use_gpu = sp.use_gpu_pipeline
        sp.physx.num_position_iterations, sp.physx.num_velocity_iterations = 4, 0
        self.sim = self.gym.create_sim(0, 0, gymapi.SIM_PHYSX, sp)
        plane = gymapi.PlaneParams()
        plane.normal = gymapi.Vec3(0.0, 0.0, 1.0)
        self.gym.add_ground(self.sim, plane)
        self._create_envs(asset_file or _default_asset())
        self.gym.prepare_sim(self.sim)
        g = self.gym
        self.root = gymtorch.wrap_tensor(g.acquire_actor_root_state_tensor(self.sim))  # (N, 13) pos, quat xyzw, v, w
        self.dof = gymtorch.wrap_tensor(g.acquire_dof_state_tensor(self.sim)).view(self.n, 12, 2)
        self.rb = gymtorch.wrap_tensor(g.acquire_rigid_body_state_tensor(self.sim)).view(self.n, -1, 13)
        self.cf = gymtorch.wrap_tensor(g.acquire_net_contact_force_tensor(self.sim)).view(self.n, -1, 3)
        self.tau = gymtorch.wrap_tensor(g.acquire_dof_force_tensor(self.sim)).view(self.n, 12)
        self.targets = torch.tile(torch.as_tensor(C.DEFAULT_Q, dtype=torch.float32, device=device), (self.n, MAX_DELAY, 1))
        self.commands = np.zeros((self.n, 15))
        self.gait_index = np.zeros(self.n)
        self.episode_step = np.zeros(self.n, dtype=np.int64)
        self.actions, self.last_actions, self.last_dq = np.zeros((self.n, 12)), np.zeros((self.n, 12)), np.zeros((self.n, 12))
        self.air_time, self.last_contact = np.zeros((self.n, 4)), np.zeros((self.n, 4), dtype=bool)
        self.history = np.zeros((self.n, C.HISTORY_LEN, C.OBS_DIM))
        self.latency_sub = np.zeros(self.n, dtype=np.int64)
        self.friction, self.added_mass = np.ones(self.n), np.zeros(self.n)
        self.motor_strength, self.latency = np.ones(self.n), np.zeros(self.n)
        self.noise_scale = O.noise_scale_vector(cfg.noise)
        self.stat_names = episode_stat_names(cfg)
        self.ep_sums = np.zeros((self.n, len(self.stat_names)))
        self.resample_steps = max(1, int(round(cfg.commands.resample_time / self.dt)))
        self.critic_obs_dim = O.CRITIC_OBS_DIM
        self.single_observation_dim, self.single_action_dim = C.POLICY_INPUT_DIM, C.NUM_ACTIONS

    def _create_envs(self, asset_file: str) -> None:
        g = self.gym
        opts = gymapi.AssetOptions()
        opts.default_dof_drive_mode = int(gymapi.DOF_MODE_POS)  # PD inside PhysX at every physics step
        opts.collapse_fixed_joints, opts.fix_base_link = True, False
        asset = g.load_asset(self.sim, os.path.dirname(asset_file), os.path.basename(asset_file), opts)
        names = [g.get_asset_dof_name(asset, i) for i in range(g.get_asset_dof_count(asset))]
        if tuple(names) != C.JOINT_NAMES_SIM:
            raise RuntimeError("asset %s DOF order %s differs from contract.JOINT_NAMES_SIM" % (asset_file, names))
        body_names = [g.get_asset_rigid_body_name(asset, i) for i in range(g.get_asset_rigid_body_count(asset))]
        self.foot_ids = [body_names.index(b) for b in FOOT_BODIES]
        self.bad_ids = [body_names.index(b) for b in BAD_CONTACT_BODIES]
        self.coll_ids = [body_names.index(b) for b in COLLISION_BODIES]
        self.trunk_mass = g.get_asset_rigid_body_properties(asset)[0].mass
        props = g.get_asset_dof_properties(asset)
        props["stiffness"][:], props["damping"][:] = C.KP, C.KD
        props["effort"][:] = C.TORQUE_LIMIT
        self.envs, self.actors = [], []
        spacing = gymapi.Vec3(2.0, 2.0, 0.0)
        per_row = int(np.ceil(np.sqrt(self.n)))
        for i in range(self.n):
            env = g.create_env(self.sim, -spacing, spacing, per_row)
            pose = gymapi.Transform()
            pose.p = gymapi.Vec3(0.0, 0.0, self.cfg.init.base_height)
            actor = g.create_actor(env, asset, pose, "go1", i, 0, 0)
            g.set_actor_dof_properties(env, actor, props)
            self.envs.append(env)
            self.actors.append(actor)

    # ------------------------------------------------------------------ randomisation / reset
    def _reset_idx(self, idx: np.ndarray) -> None:
        cfg, rng, k, g = self.cfg, self.rng, len(idx), self.gym
        dr = cfg.domain_rand
        self.friction[idx] = rng.uniform(*dr.friction, size=k)
        self.added_mass[idx] = rng.uniform(*dr.added_mass, size=k)
        self.motor_strength[idx] = rng.uniform(*dr.motor_strength, size=k)
        self.latency_sub[idx] = np.round(rng.uniform(*dr.latency, size=k) / cfg.sim_dt).astype(int)
        self.latency[idx] = self.latency_sub[idx] * cfg.sim_dt
        for i in idx:
            env, actor = self.envs[i], self.actors[i]
            shapes = g.get_actor_rigid_shape_properties(env, actor)
            for s in shapes:
                s.friction = float(self.friction[i])
            g.set_actor_rigid_shape_properties(env, actor, shapes)
            bodies = g.get_actor_rigid_body_properties(env, actor)
            bodies[0].mass = float(self.trunk_mass + self.added_mass[i])
            g.set_actor_rigid_body_properties(env, actor, bodies, recomputeInertia=False)
            props = g.get_actor_dof_properties(env, actor)
            props["stiffness"][:] = C.KP * self.motor_strength[i]
            props["damping"][:] = C.KD * self.motor_strength[i]
            g.set_actor_dof_properties(env, actor, props)
        yaw = rng.uniform(-np.pi, np.pi, size=k)
        q0 = np.clip(C.DEFAULT_Q * rng.uniform(*cfg.init.dof_pos_scale, size=(k, 12)), C.Q_MIN, C.Q_MAX)
        ids = torch.as_tensor(idx, device=self.device)
        root = np.zeros((k, 13))
        root[:, 2] = cfg.init.base_height
        root[:, 5], root[:, 6] = np.sin(yaw / 2), np.cos(yaw / 2)  # quat xyzw
        root[:, 7:10] = rng.uniform(-cfg.init.base_lin_vel, cfg.init.base_lin_vel, size=(k, 3))
        root[:, 10:13] = rng.uniform(-cfg.init.base_ang_vel, cfg.init.base_ang_vel, size=(k, 3))
        self.root[ids] = torch.as_tensor(root, dtype=torch.float32, device=self.device)
        self.dof[ids, :, 0] = torch.as_tensor(q0, dtype=torch.float32, device=self.device)
        self.dof[ids, :, 1] = 0.0
        self.targets[ids] = self.dof[ids, None, :, 0]
        id32 = ids.to(torch.int32)
        g.set_actor_root_state_tensor_indexed(self.sim, gymtorch.unwrap_tensor(self.root), gymtorch.unwrap_tensor(id32), k)
        g.set_dof_state_tensor_indexed(self.sim, gymtorch.unwrap_tensor(self.dof), gymtorch.unwrap_tensor(id32), k)
        self.commands[idx] = sample_commands(rng, k, cfg.commands)
        self.gait_index[idx], self.episode_step[idx] = 0.0, 0
        self.actions[idx], self.last_actions[idx], self.last_dq[idx] = 0.0, 0.0, 0.0
        self.air_time[idx], self.last_contact[idx], self.ep_sums[idx] = 0.0, False, 0.0

    def reset(self, seed: Optional[int] = None, options: Optional[Dict] = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        idx = np.arange(self.n)
        self._reset_idx(idx)
        self._refresh()
        return self._observe(idx), {"critic_obs": self.critic_obs.copy()}

    # ------------------------------------------------------------------ state
    def _refresh(self) -> Dict[str, np.ndarray]:
        g = self.gym
        for f in (g.refresh_actor_root_state_tensor, g.refresh_dof_state_tensor, g.refresh_rigid_body_state_tensor,
                  g.refresh_net_contact_force_tensor, g.refresh_dof_force_tensor):
            f(self.sim)
        root = self.root.cpu().numpy().astype(np.float64)
        quat = np.concatenate([root[:, 6:7], root[:, 3:6]], axis=1)  # xyzw -> wxyz
        rb = self.rb.cpu().numpy().astype(np.float64)
        cf = self.cf.cpu().numpy().astype(np.float64)
        feet = rb[:, self.foot_ids]
        self.s = {
            "base_pos": root[:, 0:3], "quat": quat, "q": self.dof[:, :, 0].cpu().numpy().astype(np.float64),
            "dq": self.dof[:, :, 1].cpu().numpy().astype(np.float64),
            "base_lin_vel": C.quat_rotate_inverse(quat, root[:, 7:10]),
            "base_ang_vel": C.quat_rotate_inverse(quat, root[:, 10:13]),
            "foot_forces": np.linalg.norm(cf[:, self.foot_ids], axis=2), "foot_pos": feet[:, :, 0:3],
            "foot_vel": feet[:, :, 7:10], "torques": self.tau.cpu().numpy().astype(np.float64),
            "bad_contact": np.any(np.linalg.norm(cf[:, self.bad_ids], axis=2) > 1.0, axis=1),
            "collisions": np.sum(np.linalg.norm(cf[:, self.coll_ids], axis=2) > 0.1, axis=1),
        }
        return self.s

    def _observe(self, new_idx: Optional[np.ndarray] = None) -> np.ndarray:
        s = self.s
        clean = C.build_observation(s["quat"], s["q"], s["dq"], self.commands, self.actions, self.gait_index)
        noisy = O.add_noise(clean, self.noise_scale, self.rng)
        C.push_history(self.history, noisy)
        if new_idx is not None and len(new_idx):
            C.fill_history(self.history, new_idx, noisy[new_idx])
        contact = s["foot_forces"] > self.cfg.rewards.contact_force_threshold
        self.critic_obs = O.privileged_obs(clean, s["base_lin_vel"], s["base_ang_vel"], s["base_pos"][:, 2], contact,
                                           s["foot_pos"][:, :, 2] - FOOT_RADIUS, self.friction, self.added_mass,
                                           self.motor_strength, self.latency)
        return self.history.reshape(self.n, -1).copy()

    # ------------------------------------------------------------------ step
    def step(self, actions: np.ndarray):
        cfg, g = self.cfg, self.gym
        self.last_actions[:] = self.actions
        self.actions[:] = np.clip(np.asarray(actions, dtype=np.float64), -C.CLIP_ACTIONS, C.CLIP_ACTIONS)
        self.targets[:, 1:] = self.targets[:, :-1].clone()
        self.targets[:, 0] = torch.as_tensor(C.action_to_q_des(self.actions), dtype=torch.float32, device=self.device)
        delay_of = np.array([substep_delays(int(L), cfg.decimation) for L in self.latency_sub])
        for j in range(cfg.decimation):
            tgt = self.targets[torch.arange(self.n), torch.as_tensor(delay_of[:, j], device=self.device)]
            g.set_dof_position_target_tensor(self.sim, gymtorch.unwrap_tensor(tgt.contiguous()))
            g.simulate(self.sim)
        g.fetch_results(self.sim, True)
        s = self._refresh()
        self.episode_step += 1
        self.gait_index[:] = C.advance_gait_index(self.gait_index, self.commands, self.dt)
        contact = s["foot_forces"] > cfg.rewards.contact_force_threshold
        contact_filt = contact | self.last_contact
        first_contact = (self.air_time > 0.0) & contact_filt
        self.last_contact, self.air_time = contact, self.air_time + self.dt
        gravity = C.projected_gravity(s["quat"])
        rs = RewardState(self.commands, s["base_lin_vel"], s["base_ang_vel"], gravity, s["base_pos"][:, 2], s["q"],
                         s["dq"], self.last_dq, s["torques"], self.actions, self.last_actions, s["foot_forces"],
                         s["foot_vel"], s["foot_pos"][:, :, 2] - FOOT_RADIUS, first_contact, self.air_time.copy(),
                         s["collisions"], self.gait_index, self.dt)
        reward, terms = compute_rewards(rs, cfg.rewards)
        self.air_time *= ~contact_filt
        self.last_dq[:] = s["dq"]
        terminated, truncated = check_termination(gravity, s["bad_contact"], self.episode_step, cfg.episode_steps,
                                                  cfg.fall_roll_pitch)
        self.ep_sums[:, 0] += reward
        self.ep_sums[:, 1] += 1
        for k, v in terms.items():
            self.ep_sums[:, self.stat_names.index("rew/" + k)] += v
        done = terminated | truncated
        info: Dict[str, object] = {}
        done_idx = np.nonzero(done)[0]
        if len(done_idx):
            saved = self.history.copy()
            info["final_obs"], info["final_critic_obs"] = self._observe(), self.critic_obs.copy()
            info["_final_obs"], self.history[:] = done, saved
            stats = self.ep_sums.copy()
            stats[:, self.stat_names.index("fell")] = terminated
            info["episode"], info["_episode"] = {k: stats[:, j] for j, k in enumerate(self.stat_names)}, done
            self._reset_idx(done_idx)
            self._refresh()
        resample = np.nonzero((self.episode_step % self.resample_steps) == 0)[0]
        if len(resample):
            self.commands[resample] = sample_commands(self.rng, len(resample), cfg.commands)
        obs = self._observe(done_idx)
        info["critic_obs"] = self.critic_obs.copy()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.gym.destroy_sim(self.sim)
