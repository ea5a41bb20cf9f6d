"""Foot sink, base height and bounce of the PD-standing Go1 on rigid ground and on the latex mattress.

Stand (PD Kp 20 / Kd 0.5 at the default pose) for 3 s, then lift the robot 5 cm and drop it. Prints a
table and writes ``benchmarks/results/sink.json`` (plus ``sink_drop.png``).

    .venv/bin/python benchmarks/bench_sink.py [--timestep 0.002]
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from go1o4.sim_pretrain.model import TerrainConfig  # noqa: E402
from go1o4.sim_pretrain.physics import Go1Physics  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def stand(phys: Go1Physics, seconds: float = 3.0) -> dict:
    phys.reset(pose="standing", settle=0.0)
    phys.step(int(round(seconds / phys.timestep)))
    sink = -phys.foot_heights()
    return {"foot_sink_mm": float(1e3 * sink.mean()), "foot_sink_mm_per_foot": (1e3 * sink).round(2).tolist(),
            "base_height_m": float(phys.base_pos[2]), "foot_forces_N": phys.foot_forces.round(2).tolist()}


def drop(phys: Go1Physics, height: float = 0.05, seconds: float = 2.0) -> dict:
    """Drop from ``height`` above the settled stance; damped oscillation of the base height."""
    phys.reset(pose="standing", settle=2.0)
    z_rest = float(phys.base_pos[2])
    phys.data.qpos[2] += height
    phys.data.qvel[:] = 0.0
    n = int(round(seconds / phys.timestep))
    z, sink = np.empty(n), np.empty(n)
    for i in range(n):
        phys.step()
        z[i] = phys.data.qpos[2]
        sink[i] = -phys.foot_heights().mean()
    t = np.arange(1, n + 1) * phys.timestep
    z_final = float(z[-1])
    first_touch = int(np.argmax(sink > 0))
    dev = z[first_touch:] - z_final
    # local extrema of the deviation after the first touchdown
    ext = [i for i in range(1, len(dev) - 1) if (dev[i] - dev[i - 1]) * (dev[i + 1] - dev[i]) < 0 and abs(dev[i]) > 2e-4]
    peaks = [abs(dev[i]) for i in ext]
    log_dec = [np.log(peaks[i] / peaks[i + 2]) for i in range(len(peaks) - 2) if peaks[i + 2] > 0]
    zeta = float(np.mean([d / np.sqrt(4 * np.pi ** 2 + d ** 2) for d in log_dec[:2]])) if log_dec else float("nan")
    outside = np.nonzero(np.abs(dev) > 0.002)[0]
    settle = float(t[first_touch + outside[-1]] - t[first_touch]) if len(outside) else 0.0
    lowest = first_touch + int(np.argmin(z[first_touch:]))
    highest = lowest + int(np.argmax(z[lowest:]))
    rebound = float(max(0.0, z[highest] - z_final))
    period = float(2.0 * (t[highest] - t[lowest]))  # first trough to first crest = half a period
    return {"drop_height_m": height, "rest_height_m": z_rest, "final_height_m": z_final,
            "max_sink_mm": float(1e3 * sink.max()), "undershoot_mm": float(1e3 * (z_final - z[lowest])),
            "max_rebound_above_rest_mm": float(1e3 * rebound), "oscillation_period_s": period,
            "damping_ratio_est": zeta, "settling_time_2mm_s": settle,
            "trace_t": t[::5].round(4).tolist(), "trace_z": z[::5].round(5).tolist()}


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, r in results.items():
        if "drop" in r:
            ax.plot(r["drop"]["trace_t"], r["drop"]["trace_z"], label=name)
    ax.set_xlabel("time after release (s)")
    ax.set_ylabel("base height (m)")
    ax.set_title("Go1 PD-standing, 5 cm drop")
    ax.legend()
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timestep", type=float, default=0.002)
    ap.add_argument("--out", default=str(RESULTS / "sink.json"))
    args = ap.parse_args()
    terrains = {
        "rigid": TerrainConfig(kind="rigid"),
        "mattress": TerrainConfig(kind="mattress"),
        "mattress_soft_K600": TerrainConfig(kind="mattress", mattress_stiffness=600.0),
        "mattress_firm_K2400": TerrainConfig(kind="mattress", mattress_stiffness=2400.0),
    }
    results = {}
    for name, cfg in terrains.items():
        phys = Go1Physics(cfg, timestep=args.timestep)
        results[name] = {"terrain": {k: getattr(cfg, k) for k in ("kind", "friction", "mattress_stiffness",
                                                                    "mattress_damping", "mattress_thickness")}}
        results[name]["stand"] = stand(phys)
        results[name]["drop"] = drop(phys)
    print("%-20s %9s %8s %10s %10s %10s %10s %6s %10s" % ("terrain", "sink[mm]", "base[m]", "drop sink", "undershoot",
                                                          "rebound", "period[s]", "zeta", "settle[s]"))
    for name, r in results.items():
        s, d = r["stand"], r["drop"]
        print("%-20s %9.1f %8.3f %10.1f %10.1f %10.1f %10.3f %6.2f %10.2f" % (
            name, s["foot_sink_mm"], s["base_height_m"], d["max_sink_mm"], d["undershoot_mm"], d["max_rebound_above_rest_mm"],
            d["oscillation_period_s"], d["damping_ratio_est"], d["settling_time_2mm_s"]))
    out = Path(args.out)
    os.makedirs(str(out.parent), exist_ok=True)
    results["timestep"] = args.timestep
    out.write_text(json.dumps(results, indent=1))
    plot({k: v for k, v in results.items() if isinstance(v, dict)}, out.with_name("sink_drop.png"))
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
