"""``go1o4 demo``: bring up the simulated Go1, connect Unitree's real SDK to it, and stand it up.

    go1o4 demo                       # own process, real time, rigid floor (~10 s)
    go1o4 demo --terrain mattress --mode lockstep
    go1o4 demo --in-process          # simulator in a thread of this process

Exit code 0 if the robot stood and held the default pose within tolerance, 1 if not, 2 on setup errors.
"""
import json
import sys
import time
from dataclasses import asdict

from go1o4.robot_runtime.simulated_go1.robot import SimRobot
from go1o4.robot_runtime.stand import StandConfig, run_stand

from go1o4.config import ConfigError, load_config


def add_arguments(p) -> None:
    p.add_argument("--terrain", choices=("rigid", "mattress"), default="rigid", help="simulated ground (default %(default)s)")
    p.add_argument("--mode", choices=("realtime", "lockstep"), default="realtime",
                   help="simulator clock: wall clock or as fast as it computes (default %(default)s)")
    p.add_argument("--in-process", action="store_true", help="simulator in a thread instead of its own process")
    p.add_argument("--physics-hz", type=float, default=1000.0, help="physics rate, 1000 or 2000 (default %(default)s)")
    p.add_argument("--stand-config", help="YAML StandConfig")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a StandConfig field")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    try:
        cfg = load_config(StandConfig, args.stand_config, overrides=args.set)
    except ConfigError as e:
        sys.stderr.write("go1o4 demo: %s\n" % e)
        return 2
    from go1o4.robot_runtime.sdk_link import SdkLink

    t0 = time.monotonic()
    print("demo: starting the simulated Go1 (%s, %s, %s)..." % (
        args.terrain, args.mode, "thread" if args.in_process else "own process"), flush=True)
    try:
        robot = SimRobot.launch(args.mode, "thread" if args.in_process else "subprocess", args.terrain,
                                overrides=["physics_hz=%s" % args.physics_hz])
    except (RuntimeError, OSError, ValueError) as e:
        sys.stderr.write("go1o4 demo: cannot start the simulated Go1: %s\n" % e)
        return 2
    try:
        lockstep = args.mode == "lockstep"
        block_ms = 200 if (lockstep and not args.in_process) else 0
        link = SdkLink("127.0.0.1", robot.port, local_port=0, block_ms=block_ms)
        gt0 = robot.control.ground_truth()
        print("demo: robot up on 127.0.0.1:%d after %.1f s, lying (base height %.3f m), motors in damping"
              % (robot.port, time.monotonic() - t0, gt0["base_pos"][2]), flush=True)
        res = run_stand(link, cfg, paced=not lockstep, ground_truth=robot.control.ground_truth,
                        progress=not args.quiet)
        res.robot_counters = {k: v for k, v in robot.control.counters().items() if k != "ok"}
    finally:
        robot.close()
    print(res.summary())
    print("demo: total %.1f s" % (time.monotonic() - t0))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(asdict(res), f, indent=1)
    return 0 if res.ok else 1
