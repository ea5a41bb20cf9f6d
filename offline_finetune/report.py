"""Short Markdown report with PNG plots of an offline run (BC curves, value/dynamics losses, OPE per member)."""
import os
from typing import Any, Dict, List

import numpy as np


def _series(rows: List[Dict[str, Any]], key: str):
    pts = [(r["step"], r[key]) for r in rows if key in r]
    if not pts:
        return None, None
    steps, vals = zip(*pts)
    return np.asarray(steps), np.asarray(vals, dtype=np.float64)


def _plot_bc(ax_list, rows) -> None:
    s, v = _series(rows, "bc/nll")
    if s is not None:
        ax_list[0].plot(s, v)
    ax_list[0].set(title="BC train NLL (mean over members)", xlabel="step")
    s, v = _series(rows, "bc/val_log_likelihood")
    if s is not None:
        for i in range(v.shape[1] if v.ndim > 1 else 1):
            ax_list[1].plot(s, v[:, i] if v.ndim > 1 else v, label="member %d" % i)
        ax_list[1].legend(fontsize=7)
    ax_list[1].set(title="held-out log-likelihood", xlabel="step")
    s, v = _series(rows, "bc/action_std")
    if s is not None:
        ax_list[2].plot(s, v)
    ax_list[2].set(title="member disagreement (std of mean action)", xlabel="step")


def _plot_ope(ax, rows) -> None:
    s, v = _series(rows, "ope/score")
    if s is None:
        return
    _, acc = _series(rows, "ope/accepted")
    v = v.reshape(len(s), -1)
    acc = acc.reshape(len(s), -1) if acc is not None else np.zeros_like(v)
    for i in range(v.shape[1]):
        line, = ax.plot(s, v[:, i], label="member %d" % i)
        m = acc[:, i] > 0
        ax.scatter(s[m], v[m, i], marker="^", color=line.get_color(), s=18)
    ax.set(title="AM-Q score per member (triangles: accepted, pi_old <- pi)", xlabel="improvement step")
    ax.legend(fontsize=7)


def write_report(out_dir: str, metrics: Dict[str, List[Dict[str, Any]]], summary: Dict[str, Any]) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    _plot_bc(axes, metrics.get("bc", []))
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "bc.png"), dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for ax, (stage, key, title) in zip(axes, [("value", "value/q_loss", "Q loss"), ("value", "value/v_loss", "V loss"),
                                             ("dynamics", "dynamics/holdout_mse", "dynamics holdout MSE (std. units)")]):
        s, v = _series(metrics.get(stage, []), key)
        if s is not None:
            ax.plot(s, v)
            ax.set_yscale("log" if np.all(v > 0) else "linear")
        ax.set(title=title, xlabel="step")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "value_dynamics.png"), dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    _plot_ope(ax, metrics.get("improve", []))
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "ope.png"), dpi=90)
    plt.close(fig)

    lines = ["# Offline Uni-O4 run", "",
             "| item | value |", "|---|---|"]
    for k in ("algo", "init", "dataset", "train_transitions", "val_transitions", "selected_member", "ope_best_scores",
              "accepted_updates", "rejected_updates", "bc_val_log_likelihood", "bc_action_std",
              "dynamics_elite_holdout_mse", "dynamics_holdout_rmse", "onnx_torch_max_abs_diff"):
        v = summary.get(k)
        if isinstance(v, float):
            v = "%.4g" % v
        elif isinstance(v, dict):
            v = ", ".join("%s %.3g" % kv for kv in v.items())
        elif isinstance(v, list):
            v = ", ".join(("%.4g" % x) if isinstance(x, float) else str(x) for x in v)
        lines.append("| %s | %s |" % (k, v))
    lines += ["", "Selection uses the AM-Q score only (no real-environment returns).", "",
              "![BC](bc.png)", "", "![value and dynamics](value_dynamics.png)", "", "![OPE](ope.png)", ""]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
