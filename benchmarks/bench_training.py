"""Training cost of the shipped policy: wall time and samples until the walking criterion, learning curve PNG.

Reads a ``go1o4 pretrain`` run directory (``progress.jsonl`` and the ``model_*.pt`` checkpoints),
evaluates every ``--every``-th checkpoint with ``go1o4 evaluate``'s code at vx = 0.5 and 1.0 m/s on
rigid ground, and reports the first checkpoint meeting the criterion (mean |vx error| < 0.15 m/s
and no falls). Writes ``benchmarks/results/bench_training.json`` and
``benchmarks/results/learning_curve_flat.png``.

    python benchmarks/bench_training.py --run runs/flat_v2 [--every 4] [--episodes 10]
"""
import argparse
import glob
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from go1o4.sim_pretrain.cli_evaluate import evaluate, evaluation_env_config, load_policy  # noqa: E402
from go1o4.sim_pretrain.runner import PretrainConfig, load_checkpoint  # noqa: E402

from go1o4.config import load_config  # noqa: E402

VX_ERR_MAX = 0.15
COMMANDS = [(0.5, 0.0, 0.0), (1.0, 0.0, 0.0)]


def passes(rows) -> bool:
    return all(r["vx_err"] < VX_ERR_MAX and r["falls"] == 0 for r in rows)


def plot(progress, evals, first, out_png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = np.array([p["perf/samples"] for p in progress]) / 1e6
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].plot(s, [p.get("episode/r", np.nan) for p in progress], lw=1)
    ax[0].set_xlabel("samples (M)")
    ax[0].set_ylabel("training episode return")
    ax[0].grid(alpha=0.3)
    ax[1].plot(s, [p.get("episode/vx_err", np.nan) for p in progress], lw=1, label="training (random commands)")
    if evals:
        es = np.array([e["samples"] for e in evals]) / 1e6
        for j, (vx, _, _) in enumerate(COMMANDS):
            ax[1].plot(es, [e["rows"][j]["vx_err"] for e in evals], "o-", ms=3, label="eval vx=%.1f" % vx)
    ax[1].axhline(VX_ERR_MAX, color="k", ls="--", lw=0.8, label="criterion %.2f m/s" % VX_ERR_MAX)
    if first:
        ax[1].axvline(first["samples"] / 1e6, color="g", lw=0.8, label="criterion met")
    ax[1].set_xlabel("samples (M)")
    ax[1].set_ylabel("mean |vx error| (m/s)")
    ax[1].set_ylim(0, 1.0)
    ax[1].legend(fontsize=8)
    ax[1].grid(alpha=0.3)
    fig.suptitle("go1o4 pretrain, rigid flat ground")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--every", type=int, default=4, help="evaluate every k-th checkpoint")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--stop-at-first", action="store_true", help="stop evaluating at the first passing checkpoint")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_training.json"))
    a = p.parse_args()
    progress = [json.loads(line) for line in open(os.path.join(a.run, "progress.jsonl"))]
    ckpts = sorted(glob.glob(os.path.join(a.run, "model_[0-9]*.pt")), key=lambda f: int(re.findall(r"\d+", f)[-1]))
    ckpts = ckpts[a.every - 1::a.every] or ckpts[-1:]
    cfg = load_config(PretrainConfig, os.path.join(a.run, "config.yaml"))
    env_cfg = evaluation_env_config(cfg.env, a.episodes, "rigid", False, True, a.workers, 123)
    evals, first = [], None
    for ck in ckpts:
        meta = load_checkpoint(ck)
        rows = evaluate(load_policy(ck), env_cfg, COMMANDS, a.steps)
        e = {"checkpoint": os.path.basename(ck), "iteration": int(meta["iteration"]), "samples": int(meta["samples"]),
             "wall_s": float(meta["wall"]), "rows": rows, "passes": passes(rows)}
        evals.append(e)
        print("%-16s it %5d  %6.2fM samples  %6.0f s  vx_err %.3f / %.3f  falls %d / %d  %s" % (
            e["checkpoint"], e["iteration"], e["samples"] / 1e6, e["wall_s"], rows[0]["vx_err"], rows[1]["vx_err"],
            rows[0]["falls"], rows[1]["falls"], "PASS" if e["passes"] else ""))
        if e["passes"] and first is None:
            first = e
            if a.stop_at_first:
                break
    res = {"run": a.run, "criterion": "mean |vx err| < %.2f m/s and no falls at vx 0.5 and 1.0 (rigid, %d episodes "
                                      "of %d steps)" % (VX_ERR_MAX, a.episodes, a.steps),
           "first_passing": first, "evaluations": evals, "final_iteration": progress[-1]["iteration"],
           "final_samples": progress[-1]["perf/samples"], "final_wall_s": progress[-1]["perf/wall_time"],
           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    png = os.path.join(os.path.dirname(a.out), "learning_curve_flat.png")
    plot(progress, evals, first, png)
    print("first passing: %s" % ("%s (%.2fM samples, %.0f s of training)" % (
        first["checkpoint"], first["samples"] / 1e6, first["wall_s"]) if first else "none"))
    print("wrote %s and %s" % (a.out, png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
