"""Dataclass configs of online fine-tuning (go1o4.config YAML); the pipeline's are in go1o4.experiments.config.

Online PPO defaults are the paper's / public code's online settings (REFERENCE section 1): clip 0.1,
GAE lambda 0.95, gamma 0.99, actor lr 2e-5, critic lr 2e-4, entropy 0.01, grad clip 0.5, linear lr
decay, 2048 steps per update, minibatch 128, 10 epochs.
"""
from dataclasses import dataclass, field
from typing import List

from go1o4.robot_runtime.rollout import RolloutConfig

from go1o4 import contract as C
from go1o4.rl.ppo import PPOConfig

INITS = ("offline", "pretrained")


def online_ppo() -> PPOConfig:
    return PPOConfig(clip=0.1, epochs=10, num_minibatches=16, actor_lr=2e-5, critic_lr=2e-4, schedule="linear",
                     gamma=0.99, lam=0.95, value_coef=1.0, value_clip=0.2, entropy_coef=0.01, max_grad_norm=0.5)


@dataclass
class EpisodeCommandConfig:
    """Velocity commands of training episodes: one (vx, vy, yaw rate) drawn uniformly per episode."""

    vx: List[float] = field(default_factory=lambda: [0.0, 1.5])
    vy: List[float] = field(default_factory=lambda: [0.0, 0.0])
    yaw_rate: List[float] = field(default_factory=lambda: [0.0, 0.0])

    def validate(self) -> None:
        for name in ("vx", "vy", "yaw_rate"):
            r = getattr(self, name)
            if len(r) != 2 or r[0] > r[1]:
                raise ValueError("commands.%s must be [low, high] with low <= high, got %r" % (name, r))


@dataclass
class EvalConfig:
    """Deterministic evaluation on the mattress at a low and a high commanded speed."""

    speeds: List[float] = field(default_factory=lambda: [0.5, 1.5])  # vx, m/s (low, high)
    episodes: int = 5  # per speed
    episode_steps: int = 1000
    warmup_steps: int = 50  # steps (1 s) left out of the tracking error while the robot accelerates

    def validate(self) -> None:
        if not self.speeds or self.episodes < 1 or self.episode_steps < 2:
            raise ValueError("eval needs speeds, episodes >= 1 and episode_steps >= 2")
        if not 0 <= self.warmup_steps < self.episode_steps:
            raise ValueError("eval.warmup_steps must be in [0, episode_steps)")


@dataclass
class CurveConfig:
    """Learning-curve evaluations during online training (deterministic policy, a few short episodes)."""

    at_steps: List[int] = field(default_factory=lambda: [0, 2500, 5000, 7500, 10000, 20000, 40000, 60000, 80000])
    episodes: int = 1  # per speed
    episode_steps: int = 500

    def validate(self) -> None:
        if self.episodes < 0 or self.episode_steps < 2:
            raise ValueError("curve.episodes >= 0 and curve.episode_steps >= 2 required")


@dataclass
class TrainerFaultConfig:
    """Fault injection for crash tests: sleep between the gradient steps and the checkpoint write."""

    stall_before_checkpoint_s: float = 0.0


@dataclass
class OnlineConfig:
    """``go1o4 online``: PPO on robot sessions, initialised from the offline result (or a pretrained policy)."""

    init: str = "offline"  # offline: policy + V from an offline run dir; pretrained: ONNX actor, fresh critic
    seed: int = 0
    total_steps: int = 100_000  # online robot steps (paper: 100k)
    steps_per_update: int = 2048  # whole episodes are collected until at least this many steps
    minibatch_size: int = 128
    episode_steps: int = C.EPISODE_STEPS
    critic_hidden: List[int] = field(default_factory=lambda: [256, 256, 256])  # init=pretrained only
    torch_threads: int = 1
    device: str = "auto"  # auto | cpu | cuda[:N] for the PPO update (go1o4.rl.device); the robot runs ONNX
    reward_scale_gamma: float = 0.99
    ppo: PPOConfig = field(default_factory=online_ppo)
    robot: RolloutConfig = field(default_factory=RolloutConfig)
    commands: EpisodeCommandConfig = field(default_factory=EpisodeCommandConfig)
    curve: CurveConfig = field(default_factory=CurveConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    faults: TrainerFaultConfig = field(default_factory=TrainerFaultConfig)

    def validate(self) -> None:
        if self.init not in INITS:
            raise ValueError("init must be one of %s, got %r" % (INITS, self.init))
        if self.total_steps < 1 or self.steps_per_update < 2 or self.episode_steps < 2:
            raise ValueError("need total_steps >= 1, steps_per_update >= 2, episode_steps >= 2")
        if not 1 <= self.minibatch_size <= self.steps_per_update:
            raise ValueError("minibatch_size must be in [1, steps_per_update], got %r" % self.minibatch_size)
        self.ppo.validate()
        from go1o4.rl.device import check_device_spec
        self.device = check_device_spec(self.device)


@dataclass
class IQLOnlineConfig:
    """IQL online fine-tuning baseline: the replay buffer (offline data + online episodes) keeps training Q, V, pi."""

    updates_per_step: float = 1.0  # gradient steps of Q/V and of the AWR policy per online robot step
    batch_size: int = 256

    def validate(self) -> None:
        if self.updates_per_step <= 0 or self.batch_size < 1:
            raise ValueError("iql_online.updates_per_step > 0 and batch_size >= 1 required")
