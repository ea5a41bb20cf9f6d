"""Dataclass configs of online fine-tuning and the online -> offline -> online pipeline (go1o4.config YAML).

Online PPO defaults are the paper's / public code's online settings (REFERENCE section 1): clip 0.1,
GAE lambda 0.95, gamma 0.99, actor lr 2e-5, critic lr 2e-4, entropy 0.01, grad clip 0.5, linear lr
decay, 2048 steps per update, minibatch 128, 10 epochs.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from go1o4 import contract as C
from go1o4.rl.ppo import PPOConfig

RESETS = ("always", "on_fall")
INITS = ("offline", "pretrained")


def online_ppo() -> PPOConfig:
    return PPOConfig(clip=0.1, epochs=10, num_minibatches=16, actor_lr=2e-5, critic_lr=2e-4, schedule="linear",
                     gamma=0.99, lam=0.95, value_coef=1.0, value_clip=0.2, entropy_coef=0.01, max_grad_norm=0.5)


@dataclass
class RobotConfig:
    """The robot the sessions run on: the simulated Go1 on 127.0.0.1 (lock-step) through the real SDK."""

    terrain: str = "mattress"
    mode: str = "lockstep"  # lockstep: faster than real time; realtime: wall clock
    start_pose: str = "standing"
    reset: str = "always"  # scripted resetter: stand the robot up before every episode, or only after a fall
    session_config: str = ""  # robot YAML (deploy/config/go1_default.yaml); "" = defaults
    # Online reward the runtime computes and logs (robot_runtime.reward): the Uni-O4 reward with the physical
    # command (m/s); "uni_o4_body" compares the velocity with the obs-scaled command (2 x vx) as the paper's code.
    reward: str = "uni_o4_body_si"
    session_overrides: List[str] = field(default_factory=lambda: ["runtime.settle_s=0.2"])
    sim_overrides: List[str] = field(default_factory=list)  # SimRobotConfig --set overrides
    t265_lcm_url: str = "udpm://239.255.76.67:7667?ttl=0"
    episode_timeout_s: float = 600.0  # wall seconds before a hung episode is an error

    def validate(self) -> None:
        if self.reset not in RESETS:
            raise ValueError("robot.reset must be one of %s, got %r" % (RESETS, self.reset))
        if self.mode not in ("lockstep", "realtime"):
            raise ValueError("robot.mode must be lockstep or realtime, got %r" % self.mode)
        if self.start_pose not in ("standing", "lying"):
            raise ValueError("robot.start_pose must be standing or lying, got %r" % self.start_pose)


@dataclass
class CommandConfig:
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
class FaultConfig:
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
    robot: RobotConfig = field(default_factory=RobotConfig)
    commands: CommandConfig = field(default_factory=CommandConfig)
    curve: CurveConfig = field(default_factory=CurveConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)

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
class CollectConfig:
    """Offline data collection with the pretrained policy on the mattress (stochastic actions)."""

    steps: int = 180_000  # paper: ~180k steps of mattress data
    episode_steps: int = C.EPISODE_STEPS
    std_scale: float = 0.5  # exploration std = std_scale * exp(policy log_std)
    commands: CommandConfig = field(default_factory=CommandConfig)

    def validate(self) -> None:
        if self.steps < 2 or self.episode_steps < 2 or self.std_scale < 0:
            raise ValueError("collect needs steps >= 2, episode_steps >= 2, std_scale >= 0")


@dataclass
class IQLOnlineConfig:
    """IQL online fine-tuning baseline: the replay buffer (offline data + online episodes) keeps training Q, V, pi."""

    updates_per_step: float = 1.0  # gradient steps of Q/V and of the AWR policy per online robot step
    batch_size: int = 256

    def validate(self) -> None:
        if self.updates_per_step <= 0 or self.batch_size < 1:
            raise ValueError("iql_online.updates_per_step > 0 and batch_size >= 1 required")


@dataclass
class PipelineConfig:
    """``go1o4 pipeline``: pretrained -> mattress data -> offline Uni-O4 (A.4) -> online PPO -> evaluation."""

    pretrained: str = "sim_pretrain/policies/go1_flat.onnx"
    seeds: List[int] = field(default_factory=lambda: [0])
    reward: str = "logged"  # data.rewards name for the offline dataset; "logged" = the runtime's online reward
    collect: CollectConfig = field(default_factory=CollectConfig)
    offline_preset: str = "paper"  # offline_finetune/configs/<preset>.yaml
    offline_overrides: Dict[str, str] = field(default_factory=dict)  # key -> value, e.g. value.steps: 20000
    iql_overrides: Dict[str, str] = field(default_factory=dict)
    online: OnlineConfig = field(default_factory=OnlineConfig)
    iql_online: IQLOnlineConfig = field(default_factory=IQLOnlineConfig)
    methods: List[str] = field(default_factory=lambda: ["pretrained", "uni_o4_offline", "uni_o4_online",
                                                        "iql_offline", "iql_online", "ppo_online"])
    eval: EvalConfig = field(default_factory=EvalConfig)
    device: str = "auto"  # offline and online training (go1o4.rl.device); --device sets both

    def validate(self) -> None:
        from go1o4.rl.device import check_device_spec
        self.device = check_device_spec(self.device)
        known = ("pretrained", "uni_o4_offline", "uni_o4_online", "iql_offline", "iql_online", "ppo_online")
        bad = [m for m in self.methods if m not in known]
        if bad:
            raise ValueError("unknown method(s) %s; known: %s" % (bad, ", ".join(known)))
        if not self.seeds:
            raise ValueError("seeds must not be empty")


def sub_overrides(prefix: str, values: Optional[Dict[str, str]]) -> List[str]:
    """{"value.steps": 100} -> ["value.steps=100"] (for go1o4.config.load_config)."""
    return ["%s%s=%s" % (prefix, k, v) for k, v in (values or {}).items()]
