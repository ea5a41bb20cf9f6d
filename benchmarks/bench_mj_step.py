"""Bare ``mujoco.mj_step`` rate of the Go1 model on each terrain (steps/s, one core).

The robot stands under PD at the default pose so that foot contacts are active. Two numbers per case:
``python_loop`` (one ``mj_step`` call per step, as a Python env loop does) and ``nstep`` (one call
running 1000 steps in C). Writes ``benchmarks/results/mj_step.json``.

    .venv/bin/python benchmarks/bench_mj_step.py [--seconds 2]
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import mujoco

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from go1o4.sim_pretrain.model import TerrainConfig, go1_mjcf  # noqa: E402
from go1o4.sim_pretrain.physics import Go1Physics  # noqa: E402

from go1o4 import contract  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def rate(model: mujoco.MjModel, data: mujoco.MjData, seconds: float, batched: bool) -> float:
    """Steps per CPU second of this process (robust to other jobs sharing the cores)."""
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        if batched:
            mujoco.mj_step(model, data, nstep=1000)
            n += 1000
        else:
            for _ in range(1000):
                mujoco.mj_step(model, data)
            n += 1000
    return n / (time.process_time() - t0)


def bench_case(kind: str, dt: float, noslip: int, seconds: float) -> dict:
    phys = Go1Physics(TerrainConfig(kind=kind), timestep=dt, noslip_iterations=noslip)
    xy = TerrainConfig(kind=kind).mattress_center if kind == "patch" else (0.0, 0.0)
    phys.reset(pose="standing", xy=xy)
    m, d = phys.model, phys.data
    assert go1_mjcf(TerrainConfig(kind=kind), dt, noslip_iterations=noslip)  # the model under test is go1_mjcf's
    out = {"kind": kind, "timestep": dt, "noslip_iterations": noslip, "ncon_standing": int(d.ncon)}
    out["python_loop_steps_per_s"] = rate(m, d, seconds, batched=False)
    out["nstep_steps_per_s"] = rate(m, d, seconds, batched=True)
    out["realtime_factor_nstep"] = out["nstep_steps_per_s"] * dt
    out["still_standing"] = bool(abs(phys.q - contract.DEFAULT_Q).max() < 0.4)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="wall time per measurement")
    ap.add_argument("--out", default=str(RESULTS / "mj_step.json"))
    args = ap.parse_args()
    cases = [("rigid", 0.005, 0), ("mattress", 0.005, 0), ("patch", 0.005, 0),
             ("rigid", 0.002, 0), ("mattress", 0.002, 0), ("mattress", 0.002, 3)]
    results = []
    print("%-9s %7s %7s %5s %14s %14s" % ("terrain", "dt", "noslip", "ncon", "loop steps/s", "nstep steps/s"))
    for kind, dt, noslip in cases:
        r = bench_case(kind, dt, noslip, args.seconds)
        results.append(r)
        print("%-9s %7.3f %7d %5d %14.0f %14.0f" % (kind, dt, noslip, r["ncon_standing"],
                                                    r["python_loop_steps_per_s"], r["nstep_steps_per_s"]))
    out = Path(args.out)
    os.makedirs(str(out.parent), exist_ok=True)
    meta = {"mujoco": mujoco.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "note": "single thread, steps per CPU-second; machine shared with other jobs"}
    out.write_text(json.dumps({"meta": meta, "cases": results}, indent=1))
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
