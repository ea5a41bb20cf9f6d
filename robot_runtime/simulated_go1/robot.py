"""A handle on a running simulated Go1: its SDK port and its control channel (reset, faults, knock over...).

    robot = SimRobot.launch(mode="lockstep", terrain="mattress", start_pose="standing")   # a child process
    robot = SimRobot.launch(how="thread")                                                 # in this process
    robot = SimRobot.attach(control_port=8017)     # the `go1o4 sim-robot` already serving here, by its control port
    ...
    robot.reset("standing"); robot.close()

These two classmethods are the only ways to get a handle; the runtime only needs ``port`` and ``reset``
(and ``info``: the robot's identity, terrain and T265 stream, from its control port).
"""
from typing import Any, Dict, Optional, Sequence

from go1o4.robot_runtime.simulated_go1.control import ControlClient


class SimRobot:
    """The simulated Go1 in a thread or a child process (or attached to), with its control channel."""

    def __init__(self, port: int, control_port: Optional[int], mode: str = "lockstep", how: str = "attached",
                 sim: Any = None, proc: Any = None):
        self.mode, self.how, self.sim, self.proc, self.port = mode, how, sim, proc, int(port)
        self.control = ControlClient(control_port) if control_port is not None else None
        self.info: Optional[Dict[str, Any]] = None  # identity, terrain, T265 stream (control ping), when asked

    @classmethod
    def attach(cls, control_port: int = 8017, timeout: float = 2.0) -> "SimRobot":
        """A handle on the ``go1o4 sim-robot`` already running on 127.0.0.1, found through its control port (its SDK
        port, mode, terrain and T265 identity come from there). RuntimeError with what to do if none answers."""
        from go1o4.robot_runtime.simulated_go1.control import wait_ready

        info = wait_ready(control_port, timeout)
        if info is None:
            raise RuntimeError("no simulated Go1 answers on 127.0.0.1 control port %d: start one in another "
                               "terminal with `go1o4 sim-robot` (or give its --sim-control-port)" % control_port)
        robot = cls(int(info["port"]), control_port, info.get("mode", "realtime"))
        robot.info = info
        return robot

    @classmethod
    def launch(cls, mode: str = "lockstep", how: str = "subprocess", terrain: str = "rigid",
               start_pose: str = "lying", t265_url: str = "", t265_channel: str = "T265_POSE",
               remote_schedule: str = "", overrides: Sequence[str] = (), timeout: float = 60.0) -> "SimRobot":
        """Start the simulated Go1 on 127.0.0.1 (any free ports): ``how`` = ``subprocess`` (a child that dies
        with this process) or ``thread``; ``overrides`` are SimRobotConfig ``key=value`` settings."""
        if how == "thread":
            from go1o4.robot_runtime.simulated_go1.config import SimRobotConfig
            from go1o4.robot_runtime.simulated_go1.server import SimulatedGo1

            from go1o4.config import load_config

            base = {"mode": mode, "port": 0, "control_port": 0, "terrain": {"kind": terrain}, "start_pose": start_pose,
                    "remote_schedule": remote_schedule, "t265_enabled": bool(t265_url),
                    "t265": {"lcm_url": t265_url, "lcm_channel": t265_channel}}
            sim = SimulatedGo1(load_config(SimRobotConfig, None, overrides, base=base)).start()
            return cls(sim.port, sim.control_port, mode, how, sim=sim)
        if how == "subprocess":
            from go1o4.robot_runtime.simulated_go1.cli import launch

            args = ["--mode", mode, "--port", "0", "--control-port", "0", "--terrain", terrain,
                    "--start-pose", start_pose]
            if t265_url:
                args += ["--t265-lcm", t265_url, "--set", "t265.lcm_channel=%s" % t265_channel]
            if remote_schedule:
                args += ["--remote", remote_schedule]
            for o in overrides:
                args += ["--set", o]
            proc, port, control_port = launch(args, timeout)
            return cls(port, control_port, mode, how, proc=proc)
        raise ValueError("how must be 'thread' or 'subprocess', got %r" % how)

    def _control(self) -> ControlClient:
        if self.control is None:
            raise RuntimeError("this simulated Go1 has no control port (start it with --control-port)")
        return self.control

    def reset(self, pose: str = "standing") -> None:
        self._control().reset(pose)

    def call(self, op: str, **args) -> Dict[str, Any]:
        """Any control operation: knock_over, faults, silence, t265_stall, remote, kill, counters..."""
        return self._control().call(op, **args)

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
        if self.sim is not None:
            self.sim.close()
        if self.proc is not None:
            from go1o4.robot_runtime.simulated_go1.cli import terminate

            terminate(self.proc)
