"""Cost of the actuator-network motor model per physics step (CPU seconds of this process, one thread).

Two numbers per robot count N: the network alone (``ActuatorNet.torque`` for N x 12 joints) and a whole
policy step of the vector env's ``RobotBatch`` (4 physics steps) with ``ideal_pd`` vs ``actuator_net``,
both divided by the physics steps. Writes ``benchmarks/results/actuator_net.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_actuator_net.py [--seconds 2]
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from go1o4.sim_pretrain.actuator_net import ActuatorNet  # noqa: E402
from go1o4.sim_pretrain.env.robots import RobotBatch  # noqa: E402

from go1o4 import contract as C  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def per_call(fn, seconds: float) -> float:
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        fn()
        n += 1
    return (time.process_time() - t0) / n


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--robots", type=int, nargs="+", default=[1, 16, 64])
    args = p.parse_args()
    rows = []
    for n in args.robots:
        net = ActuatorNet(n)
        q = np.tile(C.DEFAULT_Q, (n, 1))
        t_net = per_call(lambda net=net, q=q: net.torque(q, q * 0.0, q), args.seconds)
        step = {}
        for model in ("ideal_pd", "actuator_net"):
            rb = RobotBatch(["rigid"] * n, motor_model=model)
            for i in range(n):
                rb.reset(i, np.concatenate([[0, 0, 0.34, 1, 0, 0, 0], C.DEFAULT_Q]), np.zeros(18))
            step[model] = per_call(lambda rb=rb, q=q: rb.step(q), args.seconds) / C.DECIMATION
        row = {"robots": n, "net_us_per_physics_step": 1e6 * t_net,
               "net_us_per_robot_physics_step": 1e6 * t_net / n,
               "ideal_pd_us_per_physics_step": 1e6 * step["ideal_pd"],
               "actuator_net_us_per_physics_step": 1e6 * step["actuator_net"],
               "slowdown": step["actuator_net"] / step["ideal_pd"]}
        rows.append(row)
        print("N=%3d  net %.1f us/physics step (%.2f us/robot)  robots+physics: ideal_pd %.1f us, actuator_net %.1f us "
              "(x%.2f)" % (n, row["net_us_per_physics_step"], row["net_us_per_robot_physics_step"],
                           row["ideal_pd_us_per_physics_step"], row["actuator_net_us_per_physics_step"],
                           row["slowdown"]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "actuator_net.json"
    with open(out, "w") as f:
        json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                   "load_avg_1min": os.getloadavg()[0], "rows": rows}, f, indent=1)
    print("wrote %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
