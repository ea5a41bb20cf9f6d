"""``go1o4 session``: run a policy on the Go1 (real or simulated) through the operator workflow.

    go1o4 session --policy sim_pretrain/policies/go1_flat.onnx                  # simulated Go1, own process
    go1o4 session --policy P --sim-mode lockstep --script s.yaml --episodes 3  # unattended, faster than real time
    go1o4 session --config deploy/config/go1_default.yaml --policy P --robot-ip 192.168.123.10

The robot: ``--robot-ip 192.168.123.10`` a real Go1; ``--robot-ip 127.0.0.1`` the ``go1o4 sim-robot``
running on this computer (found through its control port 8017: SDK port, terrain, T265 identity); no
``--robot-ip``: that one if it runs, else the session starts its own simulated Go1 (``--sim-robot
subprocess|thread`` forces its own). The T265 stream is the robot's own (``T265_POSE/<robot name>``,
identity checked on every sample). The session starts in damping: nothing moves
until the operator calibrates (c / R2). Exit status: 0 done, 1 the runtime failed, 2 setup error
(config, policy contract mismatch, simulator not starting).

Python API for data collection / online PPO: :func:`start_simulated_robot` (or
``simulated_go1.robot.SimRobot.launch``) + :func:`build_session`, then ``session.run_episode(...)``; or the
rollout API :mod:`go1o4.robot_runtime.rollout`. The simulator is imported only on the simulated path.
"""
import collections
import json
import os
import signal
import sys
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence

from go1o4.robot_runtime.session_config import SessionConfig, load_session_config, unsafe_fields

from go1o4.config import ConfigError, to_dict

DEFAULT_POLICY = "sim_pretrain/policies/go1_flat.onnx"
DEFAULT_SIM_CONTROL_PORT = 8017  # `go1o4 sim-robot`'s default control port
LOOPBACK = ("127.0.0.1", "localhost")


def build_session(cfg: SessionConfig, policy, robot_ip: str = "127.0.0.1", robot_port: int = 8007,
                  local_port: int = 0, lockstep: bool = False, robot: Any = None,
                  use_t265: bool = True, log: bool = True, log_backend: Optional[str] = None,
                  inputs: Sequence[Any] = (), on_message: Optional[Callable[[str], None]] = None,
                  metadata: Optional[Dict[str, Any]] = None):
    """A ready :class:`robot_runtime.session.RuntimeSession` on the real SDK (``robot``: a simulated Go1 handle,
    ``simulated_go1.robot.SimRobot``, that gives port and reset).

    ``lockstep``: the simulator's lock-step clock (only with a lock-step simulated robot). Logging goes
    to ``cfg.logging.log_dir`` (backend: a child process in real time, in-process in lock-step).
    """
    from go1o4.robot_runtime.clock import LockstepClock, WallClock
    from go1o4.robot_runtime.sdk_link import SdkLink
    from go1o4.robot_runtime.session import RuntimeSession

    messages: List[str] = []
    live: List[Any] = []  # the session once built: the log's later messages reach the operator at once

    def relay(msg: str) -> None:
        (live[0].message if live else messages.append)(msg)

    clock = LockstepClock() if lockstep else WallClock(cfg.runtime.spin_s)
    if robot is not None:
        robot_port = robot.port
        adopt_simulated_identity(cfg, robot)
    link = SdkLink(robot_ip, robot_port, local_port=local_port)
    t265, episode_log = _helpers(cfg, policy, robot_ip, lockstep, robot, use_t265, log, log_backend, clock,
                                 metadata, relay)
    session = RuntimeSession(cfg, link, policy, clock=clock, t265=t265, log=episode_log, inputs=inputs, robot=robot,
                             on_message=on_message)
    for m in messages:
        session.message(m)
    live.append(session)
    return session


def _helpers(cfg, policy, robot_ip, lockstep, robot, use_t265, log, log_backend, clock, metadata, on_message):
    """The T265 reader thread and the episode log (logger process in real time)."""
    from go1o4.robot_runtime.clock import inherited_priority
    from go1o4.robot_runtime.episode_log import EpisodeLog
    from go1o4.robot_runtime.t265.source import T265Source

    t265 = None
    if use_t265:  # its reader thread runs Python: real-time too, else it could hold the GIL while preempted
        with inherited_priority(0 if lockstep else max(1, cfg.runtime.rt_priority - 2)):
            t265 = T265Source(cfg.t265, clock=clock.now, robot=cfg.robot.name).start()
    else:
        cfg.runtime.t265_required = False
    episode_log = None
    if log:
        meta = {"policy_hash": getattr(policy, "sha256", None), "contract": getattr(policy, "contract", None),
                "config": to_dict(cfg), "terrain": cfg.logging.terrain, "operator_note": cfg.logging.operator_note,
                "robot": {"name": cfg.robot.name, "serial": cfg.robot.serial, "ip": robot_ip,
                          "simulated": robot is not None},
                "clock": "lockstep" if lockstep else "wall", "policy_path": getattr(policy, "path", None)}
        meta.update(metadata or {})
        episode_log = EpisodeLog(cfg.logging.log_dir, meta, cfg.logging.flush_every_s,
                                 log_backend or ("direct" if lockstep else "process"), on_message=on_message)
    return t265, episode_log


def adopt_simulated_identity(cfg: SessionConfig, robot) -> None:
    """A simulated robot is who it says it is: its name, T265 serial/stream and real terrain go into ``cfg``
    (the T265 source then accepts only that robot's samples; the logs record the simulator's terrain)."""
    info = getattr(robot, "info", None)
    if info is None and getattr(robot, "control", None) is not None:
        info = robot.info = robot.control.ping()
    if not info or "robot_name" not in info:
        return
    cfg.robot.name, cfg.logging.terrain = info["robot_name"], info.get("terrain", cfg.logging.terrain)
    t = info.get("t265") or {}
    cfg.t265.serial = t.get("serial", "")
    if t.get("lcm_url"):
        cfg.t265.lcm_url, cfg.t265.channel = t["lcm_url"], t["channel"]


def start_simulated_robot(cfg: SessionConfig, mode: str = "lockstep", how: str = "subprocess",
                          terrain: str = "rigid", start_pose: str = "lying", remote_schedule: str = "",
                          overrides: Sequence[str] = ()):
    """The simulated Go1 (a ``SimRobot`` handle) publishing its T265 where ``cfg.t265`` listens."""
    from go1o4.robot_runtime.simulated_go1.robot import SimRobot

    return SimRobot.launch(mode, how, terrain, start_pose, cfg.t265.lcm_url, cfg.t265.channel, remote_schedule,
                           overrides)


# ----------------------------------------------------------------------------- CLI
def add_arguments(p) -> None:
    p.add_argument("--policy", default=DEFAULT_POLICY, help="ONNX policy (its contract YAML beside it)")
    p.add_argument("--config", help="robot YAML (deploy/config/go1_default.yaml) incl. an optional runtime: section")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--robot-ip", help="the robot: a real Go1 (192.168.123.10), or 127.0.0.1 = attach to the running "
                   "`go1o4 sim-robot`; default: that one if it runs, else a simulated Go1 of this session's own")
    p.add_argument("--sim-robot", choices=("auto", "subprocess", "thread"), default="auto",
                   help="without --robot-ip: auto = attach to a running `go1o4 sim-robot`, else start one as a "
                   "subprocess; subprocess/thread = always start this session's own (default %(default)s)")
    p.add_argument("--sim-port", type=int, help="(scripts) the SDK port of a simulated Go1 already serving")
    p.add_argument("--sim-control-port", type=int, help="(scripts) the control port of the simulated Go1 to attach "
                   "to (default %d, the sim-robot default)" % DEFAULT_SIM_CONTROL_PORT)
    p.add_argument("--sim-mode", choices=("realtime", "lockstep"), default="realtime",
                   help="clock of a simulated Go1 this session starts (lockstep: faster than real time)")
    p.add_argument("--terrain", default="rigid", help="ground of a simulated Go1 this session starts: rigid, mattress, "
                   "... (an attached sim-robot keeps its own)")
    p.add_argument("--start-pose", choices=("lying", "standing"), default="lying",
                   help="pose of a simulated Go1 this session starts")
    p.add_argument("--remote", default="", help="YAML schedule for the simulated remote")
    p.add_argument("--script", help="YAML of timed operator actions (unattended sessions)")
    p.add_argument("--duration", type=float, help="stop after this many seconds of session time")
    p.add_argument("--episodes", type=int, help="stop after this many episodes")
    p.add_argument("--log-dir", help="override logging.log_dir")
    p.add_argument("--log", action="store_true", help="record episodes from the start (else: l / L2)")
    p.add_argument("--no-t265", action="store_true", help="run without the T265 (no reward, no episode cuts)")
    p.add_argument("--quiet", action="store_true", help="no status panel (messages and the summary only)")
    p.add_argument("--unsafe-override", action="append", default=[], metavar="safety.FIELD",
                   help="accept this safety field outside its normal band (never outside its hard band; "
                        "printed in red, recorded in the session metadata)")
    p.add_argument("--json", help="write a summary (timing, episodes) here")


def _fail(msg: str, code: int = 2) -> int:
    sys.stderr.write("go1o4 session: %s\n" % msg)
    return code


def pick_robot(args, cfg: SessionConfig, say: Callable[[str], None]):
    """(simulated robot handle or None, ip, SDK port, lockstep) for the command line's choice of robot."""
    real = args.robot_ip is not None and args.robot_ip not in LOOPBACK
    if real:
        return None, args.robot_ip, cfg.robot.robot_port, False
    if args.sim_port is not None and args.sim_control_port is None:  # a bare SDK port: no resets
        from go1o4.robot_runtime.t265.identity import sim_identity

        cfg.robot.name, cfg.t265.serial = sim_identity(args.sim_port)  # a simulated Go1's default identity
        return None, "127.0.0.1", args.sim_port, args.sim_mode == "lockstep"
    from go1o4.robot_runtime.simulated_go1.robot import SimRobot

    control = args.sim_control_port or DEFAULT_SIM_CONTROL_PORT
    robot = None
    if args.robot_ip or args.sim_port is not None or args.sim_control_port is not None:
        robot = SimRobot.attach(control)
    elif args.sim_robot == "auto":
        try:
            robot = SimRobot.attach(control, timeout=0.3)
        except RuntimeError:
            robot = None
    if robot is not None:
        say("attached to the running simulated Go1 %s on 127.0.0.1:%d (%s, %s terrain)"
            % (robot.info.get("robot_name"), robot.port, robot.mode, robot.info.get("terrain")))
    else:
        how = "subprocess" if args.sim_robot == "auto" else args.sim_robot
        say("starting the simulated Go1 (%s, %s, %s)..." % (args.terrain, args.sim_mode, how))
        robot = start_simulated_robot(cfg, args.sim_mode, how, args.terrain, args.start_pose, args.remote)
    return robot, "127.0.0.1", robot.port, robot.mode == "lockstep"


def run(args) -> int:
    from go1o4.robot_runtime.operator import KeyboardInput, RemoteInput, ScriptInput, load_script
    from go1o4.robot_runtime.panel import KEYS_HELP, OperatorPanel, format_summary, panel_snapshot
    from go1o4.robot_runtime.policy import ContractMismatch, OnnxPolicy, PolicyLoadError

    overrides = list(args.set) + (["logging.log_dir=%s" % args.log_dir] if args.log_dir else [])
    overrides += ["logging.enabled_at_start=true"] if args.log else []
    try:
        cfg = load_session_config(args.config, overrides, unsafe_override=args.unsafe_override)
        unsafe = unsafe_fields(cfg, args.unsafe_override)
        script = load_script(args.script) if args.script else None
        policy = OnnxPolicy.load(args.policy)
    except (ConfigError, PolicyLoadError, ContractMismatch) as e:
        return _fail(str(e))
    printer = OperatorPanel(enabled=not args.quiet)
    for name, value in unsafe.items():  # red, before anything moves
        sys.stderr.write("\033[1;31mUNSAFE OVERRIDE: %s = %r (outside its normal band)\033[0m\n" % (name, value))
    robot = None
    try:
        robot, ip, port, lockstep = pick_robot(args, cfg, printer.message)
    except (RuntimeError, OSError, ValueError, ConfigError) as e:
        return _fail("cannot start the simulated Go1: %s" % e)
    keyboard = KeyboardInput(cfg.commands.key_step)
    inputs: List[Any] = [RemoteInput(cfg.remote, cfg.commands), keyboard]
    if script is not None:
        inputs.append(ScriptInput(script, cfg.commands.key_step))
    code, session, deadman = 0, None, None
    old_term = signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    outbox: Deque[str] = collections.deque()  # the policy thread never writes to the terminal itself
    info: Dict[str, Any] = {}
    sim_dead: List[Any] = []

    def show() -> None:
        proc = getattr(robot, "proc", None)
        if proc is not None and proc.poll() is not None and not sim_dead:
            sim_dead.append(proc.returncode)  # said once, in words (the watchdog's state_lost says damping)
            outbox.append("the simulated Go1 process exited (code %s): no robot state any more; the runtime sends "
                          "damping; episodes so far are kept%s" % (proc.returncode, (
                              " in " + session.log.session_path) if session is not None and session.log else ""))
        while outbox:
            printer.message(outbox.popleft())
        if session is not None:
            printer.update(panel_snapshot(session, info))
    try:
        session = build_session(cfg, policy, ip, port, cfg.robot.local_port if robot is None and args.robot_ip else 0,
                                lockstep, robot, use_t265=not args.no_t265, inputs=inputs, on_message=outbox.append,
                                metadata={"unsafe_override": unsafe})
        info.update(robot=cfg.robot.name, where="%s:%d, %s" % (
            ip, port, "real Go1" if robot is None and args.robot_ip else "simulated, %s terrain" % cfg.logging.terrain))
        outbox.append("policy %s (sha256 %s...), robot %s at %s:%d, %s clock; %s"
                      % (args.policy, policy.sha256[:12], cfg.robot.name, ip, port, "lock-step" if lockstep else "wall",
                         "log dir " + (session.log.session_path or "-") if session.log else "no log"))
        if session.t265 is not None:
            outbox.append("T265: robot %s's stream %s on %s%s" % (
                cfg.robot.name, session.t265.channel, cfg.t265.lcm_url,
                ", camera %s" % cfg.t265.serial if cfg.t265.serial else " (any camera: set t265.serial to pin one)"))
        if not lockstep:  # real time: a separate process damps the robot if this one dies or hangs (issue 14.2)
            deadman = _start_deadman(cfg, session, ip, port,
                                     cfg.robot.local_port if robot is None and args.robot_ip else 0)
            outbox.append("dead-man watching (PID %d): damping if this runtime stops for %.0f ms"
                          % (deadman.proc.pid, 1e3 * cfg.safety.deadman_timeout))
        if keyboard.active:
            outbox.append(KEYS_HELP)
        show()
        session.run(args.duration, args.episodes, on_idle=show, idle_every=1.0 / cfg.runtime.status_hz)
    except KeyboardInterrupt:
        outbox.append("interrupted: damping, closing the log")
    except RuntimeError as e:
        outbox.append("runtime error: %s" % e)
        code = 1
    finally:
        keyboard.close()
        if deadman is not None:  # a normal end: goodbye first (closing the log can take longer than its timeout)
            deadman.close()
        if session is not None:
            session.close()
            show()
            summary = session_summary(session)
            printer.close()
            print(format_summary(summary))
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(summary, f, indent=1, default=str)
        else:
            show()
            printer.close()
        if session is not None and session.t265 is not None:
            session.t265.stop()
        if robot is not None:
            robot.close()
        signal.signal(signal.SIGTERM, old_term)
    return code


def _start_deadman(cfg: SessionConfig, session, ip: str, port: int, local_port: int):
    """The dead-man process (robot_runtime/deadman.py), fed a heartbeat by the link loop at every period."""
    from go1o4.robot_runtime.deadman import Deadman

    folder = session.log.session_path if session.log is not None and session.log.session_path else ""
    dm = Deadman.start(ip, port, local_port, cfg.safety.deadman_timeout, cfg.remote.estop,
                       os.path.join(folder, "deadman.jsonl") if folder else "",
                       priority=cfg.runtime.rt_priority + 1 if cfg.runtime.rt_priority else 0)
    session.loop.heartbeat = dm.beat
    return dm


def session_summary(session) -> Dict[str, Any]:
    """Timing and episode summary of a finished session (also the benchmark's raw numbers)."""
    from go1o4.robot_runtime.control import percentiles_ms

    loop = session.loop
    return {
        "episodes": [{"index": r.index, "end": r.end, "reason": r.reason, "steps": r.steps, "log": r.log_path}
                     for r in session.results],
        "link": dict(loop.stats.summary(), sent_damping=loop.damping_sends, sent_target=loop.target_sends,
                     **{k: v for k, v in loop.link.counters().items()}),
        "policy": dict(session.stats.summary(), inference=percentiles_ms(session.inference),
                       state_to_command=percentiles_ms(loop.latencies)),
        "log": {"path": "" if session.log is None else session.log.session_path,
                "error": "" if session.log is None else session.log.error,
                "steps": 0 if session.log is None else session.log.steps},
        "messages": list(session.messages),
        "cwd": os.getcwd(),
    }
