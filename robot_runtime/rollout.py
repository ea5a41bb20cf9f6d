"""The runtime's rollout API: run episodes of a policy on the simulated Go1; each gives the runtime's result and log.

    with RobotRunner(RolloutConfig(terrain="mattress"), log_dir="runs/x/logs", seed=0) as robot:
        robot.swap_policy("runs/x/policies/update_00003.onnx")        # contract + shape check first
        res = robot.episode((0.8, 0, 0), 1000, exploration=GaussianExploration(log_std))

Collection, evaluation and online training all go through it. Every episode runs
:meth:`robot_runtime.session.RuntimeSession.run_episode` on the real SDK over UDP (127.0.0.1) against the
simulated Go1 in its own process (``SimRobot.launch``: lock-step by default, it dies with this process), and
is logged by the runtime as an HDF5 episode. The *scripted resetter* is the simulated robot's reset side
channel: before an episode (always, or only after a fall) the session goes to damping, the robot is stood up
again in the middle of the terrain, and the session calibrates as an operator would.
"""
import collections
import itertools
import os
from dataclasses import dataclass, field
from typing import Any, Deque, List, Optional, Sequence

import numpy as np

RESETS = ("always", "on_fall")
_CHANNELS = itertools.count()


@dataclass
class RolloutConfig:
    """The robot rollouts run on: the simulated Go1 on 127.0.0.1 (lock-step) through the real SDK (YAML ``robot:``)."""

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


class RobotRunner:
    """One simulated Go1 + one runtime session (one log session folder under ``log_dir``)."""

    def __init__(self, cfg: RolloutConfig, log_dir: Optional[str], seed: int = 0, metadata: Optional[dict] = None):
        self.cfg, self.log_dir, self.seed, self.metadata = cfg, log_dir, seed, dict(metadata or {})
        self.robot = self.session = None
        self.policy: Any = None
        self.messages: Deque[str] = collections.deque(maxlen=200)  # the session's operator messages
        self.channel = "GO1O4_T265_%d_%d" % (os.getpid(), next(_CHANNELS))
        self.resets = 0

    # ------------------------------------------------------------------ lifetime
    def start(self) -> "RobotRunner":
        if self.session is not None:
            return self
        from go1o4.robot_runtime.session_cli import build_session
        from go1o4.robot_runtime.session_config import load_session_config
        from go1o4.robot_runtime.simulated_go1.robot import SimRobot

        over = ["t265.lcm_url=%s" % self.cfg.t265_lcm_url, "t265.channel=%s" % self.channel,
                "logging.terrain=%s" % self.cfg.terrain, "reward.name=%s" % self.cfg.reward] + list(self.cfg.session_overrides)
        if self.log_dir:
            over.append("logging.log_dir=%s" % self.log_dir)
        scfg = load_session_config(self.cfg.session_config or None, over)
        self.robot = SimRobot.launch(self.cfg.mode, "subprocess", self.cfg.terrain, self.cfg.start_pose,
                                     t265_url=self.cfg.t265_lcm_url, t265_channel=self.channel,
                                     overrides=["seed=%d" % self.seed] + list(self.cfg.sim_overrides))
        self.session = build_session(scfg, self.policy, lockstep=self.cfg.mode == "lockstep", robot=self.robot,
                                     log=bool(self.log_dir), on_message=self.messages.append,
                                     metadata=dict(self.metadata, online_runner=True))
        return self

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            if self.session.t265 is not None:
                self.session.t265.stop()
            self.session.loop.link.close()
            self.session = None
        if self.robot is not None:
            self.robot.close()
            self.robot = None

    def __enter__(self) -> "RobotRunner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def log_error(self) -> str:
        return "" if self.session is None or self.session.log is None else self.session.log.error

    # ------------------------------------------------------------------ policy
    def swap_policy(self, path: str):
        """Load ``path`` (ONNX + contract YAML), check contract and shapes, then make it the running policy.

        Raises :class:`go1o4.policy_contract.ContractMismatch` / ``PolicyLoadError`` and keeps the
        previous policy if the new one does not fit.
        """
        policy = load_checked_policy(path)
        self.policy = policy
        if self.session is not None:
            self.session.policy = policy
        return policy

    # ------------------------------------------------------------------ episodes
    def episode(self, command: Sequence[float], max_steps: int, exploration=None, record: bool = True,
                meta: Optional[dict] = None, policy=None):
        """Run one episode (resetting the robot as configured); returns the runtime's EpisodeResult."""
        self.start()
        last = self.session.results[-1] if self.session.results else None
        fallen = last is not None and last.terminal
        reset = self.cfg.reset == "always" or fallen or not self.session.results
        if reset:
            self.resets += 1
        if self.log_error:
            raise RuntimeError("episode logging failed: %s" % self.log_error)
        res = self.session.run_episode(policy=policy or self.policy, command_schedule=tuple(float(c) for c in command),
                                       max_steps=int(max_steps), exploration=exploration, record=record,
                                       reset_pose="standing" if reset else None, meta=meta,
                                       timeout=self.cfg.episode_timeout_s)
        if record and self.log_error:
            raise RuntimeError("episode logging failed: %s" % self.log_error)
        return res


def load_checked_policy(path: str):
    """OnnxPolicy.load with its contract and ONNX shape checks (raises ContractMismatch / PolicyLoadError)."""
    from go1o4.robot_runtime.policy import OnnxPolicy

    return OnnxPolicy.load(path)


def exploration(log_std, seed: int, scale: float = 1.0):
    """Gaussian exploration around the policy mean with std = scale * exp(log_std) (the actor's own std)."""
    from go1o4.robot_runtime.policy import GaussianExploration

    ls = np.asarray(log_std, dtype=np.float64).reshape(-1) + (np.log(scale) if scale > 0 else -30.0)
    return GaussianExploration(ls, seed=seed)
