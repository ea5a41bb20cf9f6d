"""``go1o4 sim-robot``: the simulated Go1 as its own process (real-time or lock-step).

    go1o4 sim-robot --terrain mattress --mode realtime --port 8007 --control-port 8017

Publishes its simulated T265 by default (``--no-t265``: none) with its own identity ``sim-go1-<port>``.
Prints one line ``sim-robot ready port=P control_port=C mode=M terrain=T ...`` when it serves, then runs
until Ctrl-C, SIGTERM or a ``kill`` request on the control port. :func:`launch` starts it as a
child process that dies with its parent (``SimRobot.launch`` in :mod:`.robot` wraps it in a handle).
"""
import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import List, Optional, Tuple

from go1o4.robot_runtime.simulated_go1.config import MODES, SimRobotConfig
from go1o4.sim_pretrain.model.terrain import TERRAIN_KINDS

from go1o4.config import ConfigError, load_config

READY = "sim-robot ready"
DEFAULT_T265_URL = "udpm://239.255.76.67:7667?ttl=0"  # ttl=0: never leaves this computer


def add_arguments(p) -> None:
    p.add_argument("--config", help="YAML SimRobotConfig (robot_runtime/simulated_go1/config.py)")
    p.add_argument("--terrain", choices=TERRAIN_KINDS, help="ground (default rigid)")
    p.add_argument("--mode", choices=MODES, help="realtime (wall clock) or lockstep (one link period per LowCmd)")
    p.add_argument("--port", type=int, help="UDP port the SDK talks to (default 8007; 0 = any free port)")
    p.add_argument("--control-port", type=int, help="JSON control port (default 8017; -1 = off; 0 = any)")
    p.add_argument("--physics-hz", type=float, help="1000 or 2000")
    p.add_argument("--start-pose", choices=("lying", "standing"), help="pose at start and after resets (default lying)")
    p.add_argument("--remote", help="YAML schedule of remote-controller events")
    p.add_argument("--t265-lcm", help="publish the simulated T265 on this LCM URL (default %s) on channel "
                   "T265_POSE/sim-go1-<port>, identity sim-go1-<port> / SIM-T265-<port>" % DEFAULT_T265_URL)
    p.add_argument("--no-t265", action="store_true", help="no simulated T265 (the session then has no reward)")
    p.add_argument("--rt-priority", type=int, default=30, help="real-time mode: SCHED_FIFO priority of the simulator "
                   "when allowed, so that a busy computer does not starve it (0 = normal; default %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set faults.state_loss=0.05 (repeatable)")


def config_from_args(args) -> SimRobotConfig:
    over = list(args.set)
    for flag, key in (("terrain", "terrain.kind"), ("mode", "mode"), ("port", "port"), ("physics_hz", "physics_hz"),
                      ("start_pose", "start_pose"), ("remote", "remote_schedule")):
        v = getattr(args, flag)
        if v is not None:
            over.insert(0, "%s=%s" % (key, v))
    base = {"control_port": 8017}
    if args.control_port is not None:
        base["control_port"] = None if args.control_port < 0 else args.control_port
    if not args.no_t265:
        base.update(t265_enabled=True, t265={"lcm_url": args.t265_lcm or DEFAULT_T265_URL})
    return load_config(SimRobotConfig, args.config, overrides=over, base=base)


def run(args) -> int:
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        sys.stderr.write("go1o4 sim-robot: %s\n" % e)
        return 2
    from go1o4.robot_runtime.simulated_go1.server import SimulatedGo1

    try:
        robot = SimulatedGo1(cfg)
    except (OSError, ValueError, ConfigError) as e:
        sys.stderr.write("go1o4 sim-robot: %s\n" % e)
        return 2

    def _stop(signum, frame):
        robot.stop()

    signal.signal(signal.SIGTERM, _stop)
    if cfg.mode == "realtime" and args.rt_priority > 0:
        try:  # like a real Go1's motor controller, it must not wait behind other processes
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt_priority))
        except (OSError, AttributeError):
            pass
    ident = robot.identity()
    print("%s port=%d control_port=%s mode=%s terrain=%s physics_hz=%g robot=%s t265=%s"
          % (READY, robot.port, robot.control_port, cfg.mode, cfg.terrain.kind, cfg.physics_hz, ident["robot_name"],
             ("%s/%s" % (ident["t265"]["channel"], ident["robot_name"])) if ident["t265"]["lcm_url"] else "off"),
          flush=True)
    print("attach a session: go1o4 session --robot-ip 127.0.0.1%s   (Ctrl-C here stops this robot)"
          % ("" if robot.control_port == 8017 else " --sim-control-port %s" % robot.control_port), flush=True)
    try:
        robot.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        counters = robot.counters_snapshot()
        robot.close()
    print("sim-robot stopped: %s" % ", ".join("%s=%s" % kv for kv in sorted(counters.items())), flush=True)
    return 0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def launch(extra_args: List[str], timeout: float = 60.0) -> Tuple[subprocess.Popen, int, Optional[int]]:
    """Start ``go1o4 sim-robot`` as a child process that dies with this one (PR_SET_PDEATHSIG, so a killed
    trainer leaves no simulator behind); return (process, port, control_port) once it serves.
    No simulated T265 unless ``extra_args`` has ``--t265-lcm``."""
    extra_args = list(extra_args) + ([] if "--t265-lcm" in extra_args else ["--no-t265"])
    cmd = [sys.executable, "-m", "go1o4.cli", "sim-robot"] + list(extra_args)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=_die_with_parent)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("go1o4 sim-robot exited before serving (code %s): %s"
                               % (proc.wait(), "".join(seen).strip()))
        seen.append(line)
        if line.startswith(READY):
            fields = dict(kv.split("=", 1) for kv in line.split()[2:])
            ctrl = fields.get("control_port", "None")
            return proc, int(fields["port"]), None if ctrl == "None" else int(ctrl)
    proc.kill()
    raise RuntimeError("go1o4 sim-robot did not get ready within %.0f s" % timeout)


def terminate(proc: subprocess.Popen, timeout: float = 5.0) -> str:
    """Stop a launched simulator (SIGTERM, then SIGKILL); returns what it printed after 'ready'."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""
