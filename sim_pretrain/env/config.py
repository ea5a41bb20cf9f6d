"""Configuration of the vectorised Go1 environment (loaded from YAML with :mod:`go1o4.config`).

Defaults follow legged_gym / walk-these-ways (shared/REFERENCE.md section 4); reward scales are
multiplied by the policy dt inside :mod:`sim_pretrain.rewards`.
"""
from dataclasses import dataclass, field
from typing import Dict, List

from go1o4.sim_pretrain.model.terrain import ENV_TERRAINS, TerrainConfig

from go1o4 import contract as C

TERRAIN_CHOICES = ENV_TERRAINS  # sim_pretrain.model.terrain: the one terrain list
MOTOR_MODELS = ("ideal_pd", "actuator_net")


def _default_reward_scales() -> Dict[str, float]:
    return {
        "tracking_lin_vel": 1.0,
        "tracking_ang_vel": 0.5,
        "lin_vel_z": -2.0,
        "ang_vel_xy": -0.05,
        "orientation": -1.0,
        "torques": -1e-4,
        "dof_acc": -2.5e-7,
        "dof_pos_limits": -10.0,
        "feet_air_time": 0.0,
        "collision": -1.0,
        "action_rate": -0.01,
        "base_height": 0.0,
        "tracking_contacts_shaped_force": 4.0,
        "tracking_contacts_shaped_vel": 4.0,
        "feet_clearance": 0.0,
        "feet_slip": -0.04,
    }


@dataclass
class CommandConfig:
    """Velocity commands, sampled uniformly per episode and resampled every ``resample_time`` s."""

    lin_vel_x: List[float] = field(default_factory=lambda: [-1.0, 1.5])
    lin_vel_y: List[float] = field(default_factory=lambda: [-0.5, 0.5])
    ang_vel_yaw: List[float] = field(default_factory=lambda: [-1.0, 1.0])
    resample_time: float = 10.0
    zero_prob: float = 0.05  # fraction of commands set to standing still
    small_to_zero: float = 0.1  # |(vx, vy)| below this is set to zero (legged_gym uses 0.2)
    gait: Dict[str, float] = field(default_factory=dict)  # overrides of contract.DEFAULT_GAIT

    def validate(self) -> None:
        for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw"):
            r = getattr(self, name)
            if len(r) != 2 or r[0] > r[1]:
                raise ValueError("%s must be [low, high] with low <= high, got %r" % (name, r))
        if self.resample_time <= 0:
            raise ValueError("resample_time must be > 0")
        if not 0.0 <= self.zero_prob <= 1.0:
            raise ValueError("zero_prob must be in [0, 1]")
        C.command_vector(0.0, 0.0, 0.0, self.gait)  # raises on unknown gait keys


@dataclass
class PretrainRewardConfig:
    scales: Dict[str, float] = field(default_factory=_default_reward_scales)
    tracking_sigma: float = 0.25
    mode: str = "clip"  # clip (legged_gym only_positive) | exp (walk-these-ways ji22 style) | sum
    sigma_neg: float = 0.02  # "exp" mode: pos * exp(neg / sigma_neg)
    base_height_target: float = 0.30
    soft_dof_pos_limit: float = 0.9
    air_time_target: float = 0.5
    gait_force_sigma: float = 100.0
    gait_vel_sigma: float = 10.0
    kappa_gait_probs: float = 0.07
    contact_force_threshold: float = 1.0  # N, foot in contact

    def validate(self) -> None:
        from go1o4.sim_pretrain.rewards import REWARD_FUNCTIONS

        unknown = sorted(set(self.scales) - set(REWARD_FUNCTIONS))
        if unknown:
            raise ValueError("unknown reward term(s) %s; known: %s" % (unknown, sorted(REWARD_FUNCTIONS)))
        if self.tracking_sigma <= 0 or self.sigma_neg <= 0:
            raise ValueError("tracking_sigma and sigma_neg must be > 0")
        if self.mode not in ("clip", "exp", "sum"):
            raise ValueError("mode must be clip, exp or sum, got %r" % (self.mode,))


@dataclass
class DomainRandConfig:
    """Per-episode randomisation (walk-these-ways); ranges are [low, high]."""

    friction: List[float] = field(default_factory=lambda: [0.5, 1.25])  # x the terrain's friction (1.0 rigid)
    added_mass: List[float] = field(default_factory=lambda: [-0.5, 1.5])  # kg on the trunk
    motor_strength: List[float] = field(default_factory=lambda: [0.9, 1.1])  # scales Kp and Kd (actuator net: torque)
    motor_offset: List[float] = field(default_factory=lambda: [0.0, 0.0])  # rad added to e (actuator net only)
    latency: List[float] = field(default_factory=lambda: [0.0, 0.03])  # s, action delay
    push_interval: float = 15.0  # s; <= 0 disables pushes
    push_max_vel: float = 1.0  # m/s added to the base xy velocity

    def validate(self) -> None:
        for name in ("friction", "added_mass", "motor_strength", "latency", "motor_offset"):
            r = getattr(self, name)
            if len(r) != 2 or r[0] > r[1]:
                raise ValueError("%s must be [low, high] with low <= high, got %r" % (name, r))
        if self.friction[0] <= 0 or self.motor_strength[0] <= 0 or self.latency[0] < 0:
            raise ValueError("friction and motor_strength must be > 0 and latency >= 0")


@dataclass
class NoiseConfig:
    """Uniform observation noise (legged_gym noise scales, times ``level``); applied to the policy obs only."""

    enabled: bool = True
    level: float = 1.0
    gravity: float = 0.05
    dof_pos: float = 0.01
    dof_vel: float = 1.5  # rad/s (multiplied by the dof_vel obs scale)


@dataclass
class InitConfig:
    base_height: float = 0.34  # m above the surface
    dof_pos_scale: List[float] = field(default_factory=lambda: [0.8, 1.2])  # q0 = default * U(range)
    base_lin_vel: float = 0.3  # U(+-) m/s
    base_ang_vel: float = 0.3  # U(+-) rad/s


@dataclass
class EnvConfig:
    num_envs: int = 128
    num_workers: int = 2  # processes stepping the robots; 0 = in this process
    seed: int = 0
    terrain: str = "rigid"  # rigid | mattress | mixed (fraction ``mattress_fraction`` of robots on a mattress)
    ground: TerrainConfig = field(default_factory=TerrainConfig)  # terrain parameters (its kind is ``terrain``)
    motor_model: str = "ideal_pd"  # ideal_pd (PD inside MuJoCo) | actuator_net (walk-these-ways Go1 network)
    actuator_net: str = ""  # .npz of the actuator network ("" = shared/data/walk_these_ways_go1_actuator_net)
    mattress_fraction: float = 0.5
    episode_steps: int = C.EPISODE_STEPS
    sim_dt: float = C.SIM_DT
    decimation: int = C.DECIMATION
    solver_iterations: int = 0  # 0 = keep the model's; else override MuJoCo opt.iterations
    fall_roll_pitch: float = C.FALL_ROLL_PITCH
    commands: CommandConfig = field(default_factory=CommandConfig)
    rewards: PretrainRewardConfig = field(default_factory=PretrainRewardConfig)
    domain_rand: DomainRandConfig = field(default_factory=DomainRandConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    init: InitConfig = field(default_factory=InitConfig)

    def validate(self) -> None:
        if self.num_envs < 1:
            raise ValueError("num_envs must be >= 1")
        if self.num_workers < 0:
            raise ValueError("num_workers must be >= 0")
        if self.terrain not in TERRAIN_CHOICES:
            raise ValueError("terrain must be one of %s, got %r" % (TERRAIN_CHOICES, self.terrain))
        if self.motor_model not in MOTOR_MODELS:
            raise ValueError("motor_model must be one of %s, got %r" % (MOTOR_MODELS, self.motor_model))
        self.ground.validate()
        if self.episode_steps < 1 or self.decimation < 1 or self.sim_dt <= 0:
            raise ValueError("episode_steps, decimation must be >= 1 and sim_dt > 0")

    @property
    def policy_dt(self) -> float:
        return self.sim_dt * self.decimation
