"""Configuration of the simulated Go1 (YAML via go1o4.config; every field has a working default)."""
from dataclasses import dataclass, field
from typing import Optional

from go1o4.robot_runtime.simulated_go1.faults import FaultConfig
from go1o4.robot_runtime.simulated_go1.motor import BatteryConfig, ThermalConfig
from go1o4.robot_runtime.simulated_go1.t265 import SimT265Config
from go1o4.sim_pretrain.model.terrain import TerrainConfig

from go1o4 import contract as C

MODES = ("realtime", "lockstep")
START_POSES = ("lying", "standing")


@dataclass
class SimRobotConfig:
    mode: str = "realtime"  # "realtime": wall clock; "lockstep": each LowCmd advances one link period
    host: str = "127.0.0.1"
    port: int = 8007  # robot's SDK port (0: any free port)
    control_port: Optional[int] = None  # JSON side channel on host (None: off, 0: any free port)
    physics_hz: float = 1000.0  # 1000 or 2000 (PD inside MuJoCo at this rate)
    start_pose: str = "lying"
    damping_kd: float = C.DAMPING_KD  # motor mode 0x00: tau = -damping_kd dq
    max_lag: float = 0.05  # realtime: more lag than this (s) is skipped, not caught up (counted)
    seed: int = 0
    remote_schedule: str = ""  # YAML file of remote events (see remote.py); "" = neutral remote
    t265_enabled: bool = False
    robot_name: str = ""  # name in its T265 messages and channel ("": sim-go1-<port>, distinct per robot)
    terrain: TerrainConfig = field(default_factory=TerrainConfig)
    motor_model: str = "ideal_pd"  # ideal_pd | actuator_net (walk-these-ways Go1 network, sim_pretrain.actuator_net)
    actuator_net: str = ""  # .npz of the network ("" = shared/data/walk_these_ways_go1_actuator_net)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    battery: BatteryConfig = field(default_factory=BatteryConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    t265: SimT265Config = field(default_factory=SimT265Config)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError("mode must be one of %s, got %r" % (MODES, self.mode))
        if self.start_pose not in START_POSES:
            raise ValueError("start_pose must be one of %s, got %r" % (START_POSES, self.start_pose))
        steps = C.LINK_DT * self.physics_hz
        if not (self.physics_hz > 0 and abs(steps - round(steps)) < 1e-9 and round(steps) >= 1):
            raise ValueError("physics_hz must be a multiple of the 500 Hz link rate (1000 or 2000), got %r"
                             % self.physics_hz)
        for name in ("port",):
            if not 0 <= getattr(self, name) <= 65535:
                raise ValueError("%s must be a UDP port number, got %r" % (name, getattr(self, name)))
        if self.control_port is not None and not 0 <= self.control_port <= 65535:
            raise ValueError("control_port must be a UDP port number, got %r" % self.control_port)
        if self.motor_model not in ("ideal_pd", "actuator_net"):
            raise ValueError("motor_model must be ideal_pd or actuator_net, got %r" % (self.motor_model,))
        if not self.damping_kd >= 0 or not self.max_lag > 0:
            raise ValueError("need damping_kd >= 0 and max_lag > 0")
        for sub in (self.terrain, self.thermal, self.battery, self.faults, self.t265):
            sub.validate()

    @property
    def steps_per_link(self) -> int:
        return int(round(C.LINK_DT * self.physics_hz))
