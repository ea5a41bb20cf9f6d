"""Robot sessions for online learning: episodes through the runtime, the scripted resetter, policy hot-swap.

    with RobotRunner(cfg.robot, log_dir="runs/x/logs", seed=0) as robot:
        robot.swap_policy("runs/x/policies/update_00003.onnx")        # contract + shape check first
        res = robot.episode((0.8, 0, 0), 1000, exploration=GaussianExploration(log_std))

Every episode goes through :meth:`robot_runtime.session.RuntimeSession.run_episode` on the real SDK
over UDP (127.0.0.1) against the simulated Go1 in its own process (lock-step by default), and is
logged by the runtime as an HDF5 episode. The *scripted resetter* is the simulated robot's reset side
channel: before an episode (always, or only after a fall) the session goes to damping, the robot is
stood up again in the middle of the terrain, and the session calibrates as an operator would.
The simulated robot is started with PR_SET_PDEATHSIG, so a killed trainer does not leave it behind.
"""
import collections
import ctypes
import itertools
import os
import signal
import subprocess
import sys
import time
from typing import Any, Deque, List, Optional, Sequence

import numpy as np
from go1o4.online_finetune.config import RobotConfig

_CHANNELS = itertools.count()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def launch_sim_robot(args: Sequence[str], timeout: float = 60.0):
    """``go1o4 sim-robot ARGS`` as a child that dies with this process; (proc, port, control_port)."""
    from go1o4.robot_runtime.simulated_go1.cli import READY

    cmd = [sys.executable, "-m", "go1o4.cli", "sim-robot"] + list(args)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=_die_with_parent)
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulated Go1 exited before serving (code %s): %s" % (proc.wait(), "".join(seen)))
        seen.append(line)
        if line.startswith(READY):
            fields = dict(kv.split("=", 1) for kv in line.split()[2:])
            return proc, int(fields["port"]), int(fields["control_port"])
    proc.kill()
    raise RuntimeError("the simulated Go1 did not get ready within %.0f s" % timeout)


def _sim_robot(proc, port: int, control_port: int):
    """A :class:`robot_runtime.session_cli.SimRobot` handle around an already launched child."""
    from go1o4.robot_runtime.session_cli import SimRobot
    from go1o4.robot_runtime.simulated_go1.control import ControlClient

    robot = SimRobot.__new__(SimRobot)
    robot.mode, robot.how, robot.sim, robot.proc, robot.port = "lockstep", "subprocess", None, proc, port
    robot.control = ControlClient(control_port)
    return robot


class RobotRunner:
    """One simulated Go1 + one runtime session (one log session folder under ``log_dir``)."""

    def __init__(self, cfg: RobotConfig, log_dir: Optional[str], seed: int = 0, metadata: Optional[dict] = None):
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

        over = ["t265.lcm_url=%s" % self.cfg.t265_lcm_url, "t265.channel=%s" % self.channel,
                "logging.terrain=%s" % self.cfg.terrain, "reward.name=%s" % self.cfg.reward] + list(self.cfg.session_overrides)
        if self.log_dir:
            over.append("logging.log_dir=%s" % self.log_dir)
        scfg = load_session_config(self.cfg.session_config or None, over)
        args = ["--mode", self.cfg.mode, "--port", "0", "--control-port", "0", "--terrain", self.cfg.terrain,
                "--start-pose", self.cfg.start_pose, "--t265-lcm", self.cfg.t265_lcm_url,
                "--set", "t265.lcm_channel=%s" % self.channel, "--set", "seed=%d" % self.seed]
        for o in self.cfg.sim_overrides:
            args += ["--set", o]
        self.robot = _sim_robot(*launch_sim_robot(args))
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


def sample_command(cfg, rng: np.random.Generator) -> List[float]:
    """One (vx, vy, yaw rate) uniformly from the configured ranges."""
    return [float(rng.uniform(*cfg.vx)), float(rng.uniform(*cfg.vy)), float(rng.uniform(*cfg.yaw_rate))]


def collect_logged_episode(runner: RobotRunner, cfg, index: int, log_std, run_dir: str, meta: dict,
                           ledger: Optional[dict] = None, need_log_probs: bool = True):
    """Online training episode number ``index`` (its command and exploration seeded by (cfg.seed, index)), read back
    from the runtime's log exactly as after a crash; its final state goes to the run's ledger first.

    Returns (episode key relative to the runner's log folder, steps the robot took, segment or None if unusable)."""
    from go1o4.online_finetune.rollouts import append_ledger, load_segment
    from go1o4.online_finetune.runfiles import wait_closed

    rng = np.random.default_rng([cfg.seed, index])
    command = sample_command(cfg.commands, rng)
    expl = exploration(log_std, seed=int(rng.integers(2 ** 31)))
    res = runner.episode(command, cfg.episode_steps, exploration=expl, meta=dict(meta, command=command))
    if not res.log_path:
        raise RuntimeError("the runtime did not log the episode (%s)" % runner.log_error)
    if not wait_closed(res.log_path):
        raise RuntimeError("the runtime's logger did not close %s" % res.log_path)
    key = os.path.relpath(res.log_path, runner.log_dir).replace(os.sep, "/")
    final = None if res.final_policy_input is None else [float(x) for x in res.final_policy_input]
    append_ledger(run_dir, dict(ledger or {}, key=key, steps=res.steps, end=res.end, reason=res.reason,
                                command=command, final_obs=final))
    return key, int(res.steps), load_segment(runner.log_dir, key, final, need_log_probs)
