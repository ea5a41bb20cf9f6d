"""OnPolicyRunner (rsl_rl style): rollout -> RolloutStorage -> PPO.update, with TensorBoard, checkpoints, resume.

The actor is :class:`go1o4.rl.networks.GaussianActor` on the 290-float policy input; the critic is an
asymmetric :class:`go1o4.rl.networks.Critic` on the privileged observation. Both normalise their
inputs with running statistics that are updated after each PPO update (so a rollout and its update
see the same statistics). Time-limit truncations bootstrap from V(final critic obs).
"""
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from go1o4.sim_pretrain.env import EnvConfig, Go1VecEnv

from go1o4.config import to_dict
from go1o4.rl.device import check_device_spec, on_cpu, resolve_device
from go1o4.rl.networks import ACTOR_HIDDEN, Critic, GaussianActor
from go1o4.rl.normalizer import RunningMeanStd
from go1o4.rl.ppo import PPO, PPOConfig
from go1o4.rl.storage import RolloutStorage


@dataclass
class RunnerConfig:
    num_steps_per_env: int = 24
    max_iterations: int = 1500
    save_interval: int = 50
    save_every_s: float = 60.0  # also write model_last.pt when this much wall time passed since the last save
    init_std: float = 1.0
    actor_hidden: List[int] = field(default_factory=lambda: list(ACTOR_HIDDEN))
    critic_hidden: List[int] = field(default_factory=lambda: list(ACTOR_HIDDEN))
    torch_threads: int = 2  # for the PPO update; rollouts use 1 so that idle OpenMP threads do not steal the workers' cores
    normalize_obs: bool = True
    seed: int = 1
    # Behaviour-cloning start (sim_pretrain.env.trot_prior): imitate an open-loop trot before PPO
    bc_prior_steps: int = 0  # env steps of prior rollouts (0 = start PPO from scratch)
    bc_prior_params: Dict[str, float] = field(default_factory=dict)  # trot_actions keyword arguments
    bc_noise: float = 0.3  # action noise while collecting (visits states off the prior's path)
    bc_epochs: int = 20
    critic_warmup_iterations: int = 0  # PPO iterations that train the critic only
    device: str = "auto"  # auto | cpu | cuda[:N] for the networks, storage and PPO (go1o4.rl.device)

    def validate(self) -> None:
        if self.num_steps_per_env < 1 or self.max_iterations < 1 or self.save_interval < 1:
            raise ValueError("num_steps_per_env, max_iterations and save_interval must be >= 1")
        self.device = check_device_spec(self.device)
        if not self.save_every_s >= 0:
            raise ValueError("runner.save_every_s must be >= 0 (0: after every iteration)")


@dataclass
class PretrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)


def make_actor_critic(cfg: PretrainConfig, critic_obs_dim: int):
    actor = GaussianActor(hidden=cfg.runner.actor_hidden, init_std=cfg.runner.init_std)
    critic = Critic(obs_dim=critic_obs_dim, hidden=cfg.runner.critic_hidden)
    return actor, critic


def load_checkpoint(path: str) -> Dict:
    if not os.path.exists(path):
        raise FileNotFoundError("checkpoint %s not found" % path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - report which file is bad
        raise ValueError("cannot read checkpoint %s: %s" % (path, e))


def actor_from_checkpoint(path: str) -> GaussianActor:
    """The trained actor (with its observation normaliser) of a pretraining checkpoint."""
    ckpt = load_checkpoint(path)
    if "ppo" not in ckpt or "config" not in ckpt:
        raise ValueError("%s is not a go1o4 pretrain checkpoint (keys %s)" % (path, sorted(ckpt)))
    hidden = ckpt["config"]["runner"]["actor_hidden"]
    actor = GaussianActor(hidden=hidden)
    actor.load_state_dict(ckpt["ppo"]["actor"])
    return actor.eval()


class OnPolicyRunner:
    def __init__(self, cfg: PretrainConfig, out_dir: str, env: Optional[Go1VecEnv] = None):
        self.cfg, self.out_dir = cfg, out_dir
        torch.manual_seed(cfg.runner.seed)
        torch.set_num_threads(cfg.runner.torch_threads)
        self.device = resolve_device(cfg.runner.device)  # before the env starts: a bad device fails fast
        self.env = env if env is not None else Go1VecEnv(cfg.env)
        self.actor, self.critic = make_actor_critic(cfg, self.env.critic_obs_dim)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.ppo = PPO(self.actor, self.critic, cfg.ppo, total_updates=cfg.runner.max_iterations)
        self.storage = RolloutStorage(cfg.runner.num_steps_per_env, self.env.num_envs, self.env.single_observation_dim,
                                      self.env.single_action_dim, critic_obs_dim=self.env.critic_obs_dim,
                                      device=self.device)
        self.obs_rms = RunningMeanStd((self.env.single_observation_dim,))
        self.critic_rms = RunningMeanStd((self.env.critic_obs_dim,))
        self.iteration, self.samples, self.wall = 0, 0, 0.0
        self.ep_window: Dict[str, deque] = {}
        self.writer = None
        self.last_stats: Dict[str, float] = {}
        self.interrupted_checkpoint: Optional[str] = None
        self._saved_at = time.monotonic()

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str) -> None:
        """Atomic (temp file + rename): a Ctrl-C or crash while saving never leaves a torn checkpoint."""
        tmp = "%s.tmp%d" % (path, os.getpid())
        torch.save({"ppo": on_cpu(self.ppo.state_dict()), "obs_rms": self.obs_rms.state_dict(),
                    "critic_rms": self.critic_rms.state_dict(), "iteration": self.iteration,
                    "samples": self.samples, "wall": self.wall, "config": to_dict(self.cfg)}, tmp)
        os.replace(tmp, path)

    def save_last(self, with_iteration: bool = False) -> str:
        """``model_last.pt`` (and ``model_<iteration>.pt``); returns the path of the last one written."""
        path = os.path.join(self.out_dir, "model_last.pt")
        if with_iteration:
            self.save(os.path.join(self.out_dir, "model_%d.pt" % self.iteration))
        self.save(path)
        self._saved_at = time.monotonic()
        return path

    def load(self, path: str) -> None:
        ckpt = load_checkpoint(path)
        self.ppo.load_state_dict(ckpt["ppo"])
        self.obs_rms.load_state_dict(ckpt["obs_rms"])
        self.critic_rms.load_state_dict(ckpt["critic_rms"])
        self.iteration, self.samples, self.wall = int(ckpt["iteration"]), int(ckpt["samples"]), float(ckpt["wall"])

    def _update_normalizers(self) -> None:
        if not self.cfg.runner.normalize_obs:
            return
        self.obs_rms.update(self.storage.obs.reshape(-1, self.storage.obs.shape[-1]).cpu().numpy())
        self.critic_rms.update(self.storage.critic_obs.reshape(-1, self.storage.critic_obs.shape[-1]).cpu().numpy())
        self.actor.normalizer.set_stats(self.obs_rms.mean, self.obs_rms.std)
        self.critic.normalizer.set_stats(self.critic_rms.mean, self.critic_rms.std)

    # ------------------------------------------------------------------ behaviour-cloning start
    def behaviour_clone_prior(self, progress: bool = True) -> float:
        """Fit the actor mean to the open-loop trot on states visited by the (noisy) trot; returns the final MSE."""
        from go1o4.sim_pretrain.env.trot_prior import trot_actions
        from tqdm import tqdm

        from go1o4.contract import advance_gait_index

        rc, env = self.cfg.runner, self.env
        rng = np.random.default_rng(rc.seed)
        obs, info = env.reset(seed=self.cfg.env.seed + 777)
        xs, ys = [], []
        for _ in tqdm(range(rc.bc_prior_steps), desc="trot prior rollouts", disable=not progress, mininterval=5.0):
            cmds, gait = env.commands_and_gait()
            gait = advance_gait_index(gait, cmds, self.cfg.env.policy_dt)  # the clock at the end of this step
            target = trot_actions(gait, cmds, **rc.bc_prior_params)
            xs.append(obs.astype(np.float32))
            ys.append(target.astype(np.float32))
            obs, _, _, _, info = env.step(target + rng.normal(size=target.shape) * rc.bc_noise)
        x, y = torch.as_tensor(np.concatenate(xs)), torch.as_tensor(np.concatenate(ys))
        self.obs_rms.update(x.numpy())
        x, y = x.to(self.device), y.to(self.device)
        self.actor.normalizer.set_stats(self.obs_rms.mean, self.obs_rms.std)
        opt = torch.optim.Adam(self.actor.mu.parameters(), lr=1e-3)
        n, bs = x.shape[0], 512
        loss = torch.zeros((), device=self.device)
        for _ in tqdm(range(rc.bc_epochs), desc="behaviour cloning", disable=not progress, mininterval=5.0):
            for idx in torch.randperm(n, device=self.device).split(bs):
                loss = (self.actor(x[idx]) - y[idx]).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return float(loss.detach())

    # ------------------------------------------------------------------ rollout
    @torch.no_grad()
    def rollout(self, obs: np.ndarray, critic_obs: np.ndarray):
        T = self.cfg.runner.num_steps_per_env
        dev = self.device  # the env is numpy (host) memory: one copy in and one out per step
        for _ in range(T):
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=dev)
            cobs_t = torch.as_tensor(critic_obs, dtype=torch.float32, device=dev)
            actions, log_probs, values = self.ppo.act(obs_t, cobs_t)
            obs, rewards, terminated, truncated, info = self.env.step(actions.cpu().numpy())
            trunc_values = torch.zeros(self.env.num_envs, device=dev)
            if truncated.any():
                final = torch.as_tensor(info["final_critic_obs"][truncated], dtype=torch.float32, device=dev)
                trunc_values[torch.as_tensor(truncated, device=dev)] = self.critic(final)
            self.storage.add(obs_t, actions, log_probs, values, rewards, terminated, truncated, trunc_values,
                             critic_obs=cobs_t)
            critic_obs = info["critic_obs"]
            if "episode" in info:
                mask = info["_episode"]
                for k, v in info["episode"].items():
                    self.ep_window.setdefault(k, deque(maxlen=200)).extend(self._per_episode(k, v[mask],
                                                                                              info["episode"]["l"][mask]))
        last_values = self.critic(torch.as_tensor(critic_obs, dtype=torch.float32, device=dev))
        self.storage.compute_returns(last_values, self.cfg.ppo.gamma, self.cfg.ppo.lam)
        return obs, critic_obs

    def _per_episode(self, key: str, v: np.ndarray, length: np.ndarray) -> np.ndarray:
        length = np.maximum(length, 1)
        if key in ("vx_err", "vy_err", "yaw_err"):
            return v / length
        if key.startswith("rew/"):
            return v / (length * self.cfg.env.policy_dt)
        return v

    # ------------------------------------------------------------------ training loop
    def learn(self, num_iterations: Optional[int] = None, progress: bool = True) -> Dict[str, float]:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        os.makedirs(self.out_dir, exist_ok=True)
        self.writer = self.writer or SummaryWriter(self.out_dir)
        if self.iteration == 0 and self.cfg.runner.bc_prior_steps > 0:
            mse = self.behaviour_clone_prior(progress)
            self.writer.add_scalar("bc/mse", mse, 0)
            tqdm.write("behaviour cloning of the trot prior: final MSE %.4f" % mse)
        end = self.cfg.runner.max_iterations if num_iterations is None else self.iteration + num_iterations
        obs, info = self.env.reset(seed=self.cfg.env.seed + self.iteration, options={"random_episode_step": True})
        critic_obs = info["critic_obs"]
        batch = self.cfg.runner.num_steps_per_env * self.env.num_envs
        # tqdm's rate (hence ETA) counts only this session's iterations (n - initial); the first iterations carry
        # start-up costs, so the ETA uses a slow moving average
        bar = tqdm(range(self.iteration, end), initial=self.iteration, total=end, disable=not progress,
                   dynamic_ncols=True, mininterval=5.0, desc="pretrain PPO", unit="it", smoothing=0.05)
        progress_path = os.path.join(self.out_dir, "progress.jsonl")
        self._saved_at = time.monotonic()
        try:
            self._iterations(bar, end, obs, critic_obs, batch, progress_path)
        except KeyboardInterrupt:
            bar.close()
            self.interrupted_checkpoint = self.save_last()
            raise
        self.writer.flush()
        return self.last_stats

    def _iterations(self, bar, end: int, obs, critic_obs, batch: int, progress_path: str) -> None:
        for it in bar:
            t0 = time.perf_counter()
            torch.set_num_threads(1)
            obs, critic_obs = self.rollout(obs, critic_obs)
            torch.set_num_threads(self.cfg.runner.torch_threads)
            t1 = time.perf_counter()
            frozen = ({k: v.clone() for k, v in self.actor.state_dict().items()}
                      if it < self.cfg.runner.critic_warmup_iterations else None)
            stats = self.ppo.update(self.storage)
            if frozen is not None:  # critic warm-up: keep the (behaviour-cloned) actor
                self.actor.load_state_dict(frozen)
            self._update_normalizers()
            self.storage.clear()
            t2 = time.perf_counter()
            self.iteration, self.samples = it + 1, self.samples + batch
            self.wall += t2 - t0
            stats.update({"perf/fps": batch / (t2 - t0), "perf/collection_time": t1 - t0, "perf/learn_time": t2 - t1,
                          "perf/samples": self.samples, "perf/wall_time": self.wall})
            for k, q in self.ep_window.items():
                if q:
                    stats[("episode/" + k) if not k.startswith("rew/") else k] = float(np.mean(q))
            for k, v in stats.items():
                self.writer.add_scalar(k, v, self.iteration)
            self.last_stats = stats
            with open(progress_path, "a") as f:
                f.write(json.dumps({"iteration": self.iteration, **{k: float(v) for k, v in stats.items()}}) + "\n")
            bar.set_postfix_str("ret %.2f len %.0f vx_err %.3f fps %.0f" % (
                stats.get("episode/r", 0.0), stats.get("episode/l", 0.0), stats.get("episode/vx_err", 0.0),
                stats["perf/fps"]), refresh=False)
            if self.iteration % self.cfg.runner.save_interval == 0 or self.iteration == end:
                self.save_last(with_iteration=True)
            elif time.monotonic() - self._saved_at >= self.cfg.runner.save_every_s:
                self.save_last()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.env.close()
