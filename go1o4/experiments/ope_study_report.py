"""Outputs of ``go1o4 ope-study`` (:mod:`go1o4.experiments.ope_study`): the Fig. 6a-style bar plot and OPE_STUDY.md."""
import json
from typing import Any, Dict, List

import numpy as np


def _split(key: str):
    arm, ev, m = key.split("|")
    return arm, ev, float(m)


def plot(result: Dict[str, Any], path: str) -> None:
    """Per arm: decision accuracy, accuracy within 25 % and pair ordering of each evaluator (x margin)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = result["table"]
    arms = list(dict.fromkeys(_split(k)[0] for k in table))
    fig, axes = plt.subplots(1, len(arms), figsize=(5.2 * len(arms), 4.4), squeeze=False, sharey=True)
    for ax, arm in zip(axes[0], arms):
        keys = [k for k in table if _split(k)[0] == arm]
        x = np.arange(len(keys))
        for i, (metric, label) in enumerate((("accuracy", "accept decisions"), ("accuracy_within_25pct", "within 25 %"),
                                             ("pairs", "pair ordering"))):
            vals = [table[k]["pairs"]["accuracy"] if metric == "pairs" else table[k][metric] for k in keys]
            ax.bar(x + (i - 1) * 0.27, vals, 0.27, label=label)
        ax.axhline(0.8, color="k", ls="--", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(["%s m=%g" % (_split(k)[1], _split(k)[2]) for k in keys], fontsize=7, rotation=40, ha="right")
        ax.set(title=arm, ylim=(0, 1.05))
    axes[0][0].set_ylabel("fraction right (sim return = truth)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(x, f="%.2f") -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f % x


def table_lines(result: Dict[str, Any]) -> List[str]:
    lines = ["| arm | evaluator | margin m | accept-decision accuracy (resolved) | within 25 % | pair ordering (pairs) "
             "| Spearman | accepted | accepted but worse | rejected but better | end policy vs start (mean ± std) "
             "| members ending worse |", "|---" * 12 + "|"]
    for key, r in result["table"].items():
        arm, ev, m = _split(key)
        lines.append("| %s | %s | %g | %s (%d) | %s | %s (%d) | %s | %d / %d | %d | %d | %+.2f ± %.2f | %d / %d |" % (
            arm, ev, m, _fmt(r["accuracy"]), r["resolved"], _fmt(r["accuracy_within_25pct"]),
            _fmt(r["pairs"]["accuracy"]), r["pairs"]["pairs"], _fmt(r["spearman"]), r["accepted"], r["decisions"],
            r["accepted_worse"], r["rejected_better"], r["end_gain_mean"], r["end_gain_std"], r["end_worse"],
            r["members"]))
    return lines


def run_lines(result: Dict[str, Any]) -> List[str]:
    lines = ["| arm | seed | policies | start return | best / worst snapshot | Q/MC ratio | Spearman(Q, MC) "
             "| value / dynamics / improve wall (s) |", "|---" * 8 + "|"]
    for r in result["runs"]:
        J, cc, w = r["true_return"], r.get("critic_check") or {}, r.get("wall_s") or {}
        lines.append("| %s | %d | %d | %.2f | %.2f / %.2f | %s | %s | %s / %s / %s |" % (
            r["arm"], r["seed"], len(J), J[0], max(J), min(J), _fmt(cc.get("q_mc_ratio"), "%.3f"),
            _fmt(cc.get("q_mc_spearman"), "%.2f"), _fmt(w.get("value"), "%.0f"), _fmt(w.get("dynamics"), "%.0f"),
            _fmt(w.get("improve"), "%.0f")))
    return lines


def write_markdown(path: str, result: Dict[str, Any]) -> None:
    cfg = result["config"]
    out = ["# OPE gate study: accept decisions vs the simulated return", "",
           "Command: `%s`" % result["command"], "",
           "Data: `%s`; start: `%s`; seeds %s. Offline overrides of every arm: `%s`. Arms: `%s`." % (
               cfg["dataset"], cfg["pretrained"], cfg["seeds"], json.dumps(cfg["common"]), json.dumps(cfg["arms"])),
           "Ground truth: deterministic return on the simulated mattress through the runtime, mean over %s m/s, "
           "%d-step episode each. Its noise (largest spread of %d repeat episodes of the starting policy at one "
           "speed): **%.4f**; decisions whose true gap is within it are counted apart." % (
               cfg["truth"]["speeds"], cfg["truth"]["episode_steps"], cfg["noise_episodes"], result["noise"]),
           "", "## Decisions (every evaluator replayed as the gate of the same candidates)", ""]
    out += table_lines(result)
    if result.get("mixed"):
        from go1o4.experiments.ope_study_mixed import summary_lines
        out += ["", "## Mixed candidate set (rows `mixed`, `mixed_vs_start`)", "",
                "This study's candidates and those of %s, per seed scored by this study's first arm's critics, "
                "model and held-out episodes; truth from this study's evaluation. `mixed`: each member's sequence "
                "replayed through the gate; `mixed_vs_start`: each candidate against the start alone." % (
                    ", ".join("`%s`" % d for d in cfg["mixed_with"])), ""]
        out += summary_lines(result["mixed"], result["noise"])
    out += ["", "![OPE study](%s)" % result["png"], "", "## Runs", ""] + run_lines(result)
    out += ["", "Wall time of the last invocation (s; cached stages take none): %s" % json.dumps({k: round(v) for k, v in result["timings"].items()}), ""]
    with open(path, "w") as f:
        f.write("\n".join(out))
