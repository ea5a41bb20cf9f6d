"""The Go1 locomotion task for a group of robots in one process (the vector env runs one group per worker).

Step order (legged_gym ``post_physics_step``): physics -> gait clock -> rewards and termination ->
command resampling and pushes -> autoreset of finished robots -> observations.
"""
from typing import Dict, Optional, Sequence

import numpy as np
from go1o4.sim_pretrain.env import observations as O
from go1o4.sim_pretrain.env.commands import sample_commands
from go1o4.sim_pretrain.env.config import EnvConfig
from go1o4.sim_pretrain.env.robots import FOOT_RADIUS, RobotBatch
from go1o4.sim_pretrain.rewards import RewardState, check_termination, compute_rewards

from go1o4 import contract as C


def episode_stat_names(cfg: EnvConfig):
    terms = [k for k, v in cfg.rewards.scales.items() if v != 0.0]
    return ["r", "l", "vx_err", "vy_err", "yaw_err", "fell"] + ["rew/" + k for k in terms]


class Go1EnvGroup:
    def __init__(self, cfg: EnvConfig, terrains: Sequence[str], seed: int, robots: Optional[RobotBatch] = None):
        """``robots``: another physics backend with RobotBatch's interface (e.g. the MuJoCo Warp one)."""
        self.cfg, self.n = cfg, len(terrains)
        self.dt = cfg.policy_dt
        self.rng = np.random.default_rng(seed)
        self.robots = robots if robots is not None else RobotBatch(
            terrains, cfg.sim_dt, cfg.decimation, cfg.solver_iterations, cfg.ground, cfg.motor_model, cfg.actuator_net)
        n = self.n
        self.commands = np.zeros((n, 15))
        self.gait_index = np.zeros(n)
        self.episode_step = np.zeros(n, dtype=np.int64)
        self.actions = np.zeros((n, 12))
        self.last_actions = np.zeros((n, 12))
        self.last_dq = np.zeros((n, 12))
        self.air_time = np.zeros((n, 4))
        self.last_contact = np.zeros((n, 4), dtype=bool)
        self.history = np.zeros((n, C.HISTORY_LEN, C.OBS_DIM))
        self.friction = np.ones(n)
        self.added_mass = np.zeros(n)
        self.motor_strength = np.ones(n)
        self.latency = np.zeros(n)
        self.noise_scale = O.noise_scale_vector(cfg.noise)
        self.stat_names = episode_stat_names(cfg)
        self.ep_sums = np.zeros((n, len(self.stat_names)))
        self.resample_steps = max(1, int(round(cfg.commands.resample_time / self.dt)))
        dr = cfg.domain_rand
        self.push_steps = int(round(dr.push_interval / self.dt)) if dr.push_interval > 0 else 0
        self.critic_obs = np.zeros((n, O.CRITIC_OBS_DIM))
        self.fixed_commands: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ resets
    def reset(self, seed: Optional[int] = None, random_episode_step: bool = False):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        idx = np.arange(self.n)
        self._reset_idx(idx)
        if random_episode_step:
            self.episode_step[:] = self.rng.integers(0, self.cfg.episode_steps, size=self.n)
        return self._observe(idx)

    def set_fixed_commands(self, commands: Optional[np.ndarray]) -> None:
        """Evaluation: hold these (N, 15) commands instead of sampling (None to sample again)."""
        self.fixed_commands = None if commands is None else np.array(commands, dtype=np.float64).reshape(self.n, 15)
        if self.fixed_commands is not None:
            self.commands[:] = self.fixed_commands

    def _sample_commands(self, idx: np.ndarray) -> None:
        if self.fixed_commands is not None:
            self.commands[idx] = self.fixed_commands[idx]
        else:
            self.commands[idx] = sample_commands(self.rng, len(idx), self.cfg.commands)

    def _reset_idx(self, idx: np.ndarray) -> None:
        cfg, rng, k = self.cfg, self.rng, len(idx)
        dr = cfg.domain_rand
        self.friction[idx] = rng.uniform(*dr.friction, size=k)
        self.added_mass[idx] = rng.uniform(*dr.added_mass, size=k)
        self.motor_strength[idx] = rng.uniform(*dr.motor_strength, size=k)
        lat_sub = np.round(rng.uniform(*dr.latency, size=k) / cfg.sim_dt).astype(int)
        self.latency[idx] = lat_sub * cfg.sim_dt
        yaw = rng.uniform(-np.pi, np.pi, size=k)
        q0 = np.clip(C.DEFAULT_Q * rng.uniform(*cfg.init.dof_pos_scale, size=(k, 12)), C.Q_MIN, C.Q_MAX)
        offsets = (rng.uniform(*dr.motor_offset, size=(k, 12)) if dr.motor_offset[1] > dr.motor_offset[0]
                   else np.full((k, 12), dr.motor_offset[0]))
        for j, i in enumerate(idx):  # self.friction: the contact friction the robot gets (critic input)
            self.friction[i] = self.robots.randomize(i, self.friction[i], self.added_mass[i], self.motor_strength[i],
                                                     lat_sub[j], offsets[j])
            qpos = np.concatenate([[0.0, 0.0, cfg.init.base_height, np.cos(yaw[j] / 2), 0.0, 0.0,
                                    np.sin(yaw[j] / 2)], q0[j]])
            qvel = np.zeros(18)
            qvel[0:3] = rng.uniform(-cfg.init.base_lin_vel, cfg.init.base_lin_vel, size=3)
            qvel[3:6] = rng.uniform(-cfg.init.base_ang_vel, cfg.init.base_ang_vel, size=3)
            self.robots.reset(i, qpos, qvel)
        self._sample_commands(idx)
        self.gait_index[idx] = 0.0
        self.episode_step[idx] = 0
        self.actions[idx] = 0.0
        self.last_actions[idx] = 0.0
        self.last_dq[idx] = self.robots.qvel[idx, 6:18]
        self.air_time[idx] = 0.0
        self.last_contact[idx] = False
        self.ep_sums[idx] = 0.0

    # ------------------------------------------------------------------ observations
    def _observe(self, new_idx: Optional[np.ndarray] = None) -> np.ndarray:
        s = self.robots.state()
        clean = C.build_observation(s["quat"], s["q"], s["dq"], self.commands, self.actions, self.gait_index)
        noisy = O.add_noise(clean, self.noise_scale, self.rng)
        C.push_history(self.history, noisy)
        if new_idx is not None and len(new_idx):
            C.fill_history(self.history, new_idx, noisy[new_idx])
        contact = s["foot_forces"] > self.cfg.rewards.contact_force_threshold
        foot_h = s["foot_pos"][:, :, 2] - FOOT_RADIUS
        self.critic_obs = O.privileged_obs(clean, s["base_lin_vel"], s["base_ang_vel"], s["base_pos"][:, 2], contact,
                                           foot_h, self.friction, self.added_mass, self.motor_strength, self.latency)
        return self.history.reshape(self.n, -1).copy()

    # ------------------------------------------------------------------ step
    def step(self, actions: np.ndarray):
        cfg = self.cfg
        self.last_actions[:] = self.actions
        self.actions[:] = np.clip(np.asarray(actions, dtype=np.float64), -C.CLIP_ACTIONS, C.CLIP_ACTIONS)
        self.robots.step(C.action_to_q_des(self.actions))
        s = self.robots.state()
        self.episode_step += 1
        self.gait_index[:] = C.advance_gait_index(self.gait_index, self.commands, self.dt)

        contact = s["foot_forces"] > cfg.rewards.contact_force_threshold
        contact_filt = contact | self.last_contact
        first_contact = (self.air_time > 0.0) & contact_filt
        self.last_contact = contact
        self.air_time += self.dt
        gravity = C.projected_gravity(s["quat"])
        rs = RewardState(
            commands=self.commands, base_lin_vel=s["base_lin_vel"], base_ang_vel=s["base_ang_vel"],
            projected_gravity=gravity, base_height=s["base_pos"][:, 2], q=s["q"], dq=s["dq"], last_dq=self.last_dq,
            torques=s["torques"], actions=self.actions, last_actions=self.last_actions,
            foot_forces=s["foot_forces"], foot_vel=s["foot_vel"], foot_height=s["foot_pos"][:, :, 2] - FOOT_RADIUS,
            first_contact=first_contact, air_time=self.air_time.copy(), collisions=s["collisions"],
            gait_index=self.gait_index, dt=self.dt)
        reward, terms = compute_rewards(rs, cfg.rewards)
        self.air_time *= ~contact_filt
        self.last_dq[:] = s["dq"]
        terminated, truncated = check_termination(gravity, s["bad_contact"], self.episode_step, cfg.episode_steps,
                                                  cfg.fall_roll_pitch)
        self._accumulate(reward, terms, s, terminated)

        done = terminated | truncated
        info: Dict[str, object] = {}
        done_idx = np.nonzero(done)[0]
        if len(done_idx):
            saved = self.history.copy()
            info["final_obs"] = self._observe()  # observation of the state reached, for bootstrapping
            info["final_critic_obs"] = self.critic_obs.copy()
            info["_final_obs"] = done.copy()
            self.history[:] = saved
            stats = self.ep_sums.copy()
            stats[:, self.stat_names.index("fell")] = terminated
            info["episode"] = {k: stats[:, j] for j, k in enumerate(self.stat_names)}
            info["_episode"] = done.copy()

        resample = np.nonzero((self.episode_step % self.resample_steps) == 0)[0]
        if len(resample):
            self._sample_commands(resample)
        if self.push_steps:
            for i in np.nonzero((self.episode_step % self.push_steps) == 0)[0]:
                self.robots.push(i, self.rng.uniform(-1.0, 1.0, size=2) * cfg.domain_rand.push_max_vel)
        if len(done_idx):
            self._reset_idx(done_idx)
        obs = self._observe(done_idx)
        info["critic_obs"] = self.critic_obs.copy()
        return obs, reward, terminated, truncated, info

    def _accumulate(self, reward, terms, s, terminated) -> None:
        names, sums = self.stat_names, self.ep_sums
        sums[:, 0] += reward
        sums[:, 1] += 1
        err = np.abs(self.commands[:, :3] - np.stack([s["base_lin_vel"][:, 0], s["base_lin_vel"][:, 1],
                                                     s["base_ang_vel"][:, 2]], axis=1))
        sums[:, 2:5] += err
        for k, v in terms.items():
            sums[:, names.index("rew/" + k)] += v

    def episode_means(self, stats: Dict[str, np.ndarray], mask: np.ndarray) -> Dict[str, float]:
        """Per-episode means of the finished episodes (errors per step, reward terms per second)."""
        length = np.maximum(stats["l"][mask], 1)
        out = {}
        for k, v in stats.items():
            v = v[mask]
            if k in ("vx_err", "vy_err", "yaw_err"):
                v = v / length
            elif k.startswith("rew/"):
                v = v / (length * self.dt)
            out[k] = float(np.mean(v))
        return out
