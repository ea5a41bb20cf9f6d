"""The pure parts and outputs of ``go1o4 offline-evidence`` (:mod:`go1o4.experiments.evidence`): pair-ordering
and decision accuracy of AM-Q (paper Fig. 6a), the mean ± std table, the scatter PNG and EVIDENCE.md."""
import json
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

LOW_HIGH = ("low", "high")


def pair_ordering(scores: Sequence[float], returns: Sequence[float], groups: Optional[Sequence[Any]] = None,
                  noise: float = 0.0) -> Dict[str, Any]:
    """Fraction of policy pairs that the AM-Q scores order as the true returns do (paper Fig. 6a, as pairs).

    Pairs are formed only within a group (scores from different seeds come from different Q and models).
    A pair whose true returns differ by ``noise`` or less is *within noise*: left out of ``accuracy`` and
    reported apart (``within_noise_pairs``, ``within_noise_accuracy``). A tie in score counts one half.
    """
    s, r = np.asarray(scores, dtype=np.float64), np.asarray(returns, dtype=np.float64)
    g = np.zeros(len(s)) if groups is None else np.asarray(groups)
    i, j = np.triu_indices(len(s), k=1)
    keep = g[i] == g[j]
    ds, dr = s[j[keep]] - s[i[keep]], r[j[keep]] - r[i[keep]]
    agree = np.where(ds == 0, 0.5, (np.sign(ds) == np.sign(dr)).astype(np.float64))
    resolved = np.abs(dr) > noise

    def frac(m):
        return float(agree[m].mean()) if m.any() else float("nan")

    return {"accuracy": frac(resolved), "pairs": int(resolved.sum()), "within_noise_pairs": int((~resolved).sum()),
            "within_noise_accuracy": frac(~resolved), "accuracy_all_pairs": frac(np.ones_like(resolved)),
            "noise": float(noise)}


def decision_accuracy(scores: Sequence[float], returns: Sequence[float], noise: float = 0.0) -> Dict[str, Any]:
    """The paper's OPE accuracy for one member's checks in step order: does "accept" (score beats the best
    score so far, :func:`offline_finetune.uni_o4.acceptance`) agree with "the true return beats the return
    of the policy that best score belongs to"? Checks whose true returns are within ``noise`` count apart."""
    right = resolved = within = 0
    best_s, best_r = scores[0], returns[0]
    for s, r in zip(scores[1:], returns[1:]):
        accept = s > best_s
        if abs(r - best_r) <= noise:
            within += 1
        else:
            resolved += 1
            right += int(accept == (r > best_r))
        if accept:
            best_s, best_r = s, r
    return {"correct": right, "decisions": resolved, "within_noise": within}


def mean_std_table(per_seed: Dict[str, List[Dict[str, float]]]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{method: [metrics of one seed, ...]} -> {method: {metric: {mean, std, n}}} (std over seeds, ddof 0;
    metrics missing or not finite in a seed are left out of that metric's n)."""
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for method, rows in per_seed.items():
        keys = sorted({k for row in rows for k in row})
        out[method] = {}
        for k in keys:
            x = np.asarray([row[k] for row in rows if row.get(k) is not None], dtype=np.float64)
            x = x[np.isfinite(x)]
            out[method][k] = {"mean": float(x.mean()) if len(x) else float("nan"),
                              "std": float(x.std()) if len(x) else float("nan"), "n": int(len(x))}
    return out


def eval_row(ev: Dict[str, Any], speeds: Sequence[float]) -> Dict[str, float]:
    """The table's metrics from one online_finetune.evaluate result."""
    row = {"fall_rate": ev["all"]["fall"], "return": ev["all"]["return"]}
    for name, v in zip(LOW_HIGH, speeds):
        sp = ev["speeds"]["%.2f" % v]
        row.update({"return_" + name: sp["return"], "tracking_error_" + name: sp["tracking_error"]})
    return row


def repeat_spread(evals: Sequence[Dict[str, Any]]) -> float:
    """Largest return difference between repeat episodes of one deterministic policy at one speed."""
    spread = 0.0
    for ev in evals:
        by_speed: Dict[float, List[float]] = {}
        for e in ev["episodes"]:
            by_speed.setdefault(e["speed"], []).append(e["return"])
        spread = max([spread] + [max(v) - min(v) for v in by_speed.values() if len(v) > 1])
    return spread


def ope_quality(points: List[Dict[str, Any]], noise: float) -> Dict[str, Any]:
    """Pair ordering (within seeds, distinct policies only) and decision accuracy (along each member's checks)."""
    unique = [p for p in points if not p.get("duplicate")]
    s, r, g = ([p[k] for p in unique] for k in ("score", "true_return", "seed"))
    out = {"pooled": pair_ordering(s, r, g, noise), "per_seed": {}, "decisions": {}, "policies": len(unique)}
    for seed in sorted(set(g)):
        pts = [p for p in unique if p["seed"] == seed]
        out["per_seed"][str(seed)] = pair_ordering([p["score"] for p in pts], [p["true_return"] for p in pts],
                                                   None, noise)
    tot = {"correct": 0, "decisions": 0, "within_noise": 0}
    for key in sorted({(p["seed"], p["member"]) for p in points}):
        pts = sorted((p for p in points if (p["seed"], p["member"]) == key), key=lambda p: p["step"])
        d = decision_accuracy([p["score"] for p in pts], [p["true_return"] for p in pts], noise)
        tot = {k: tot[k] + d[k] for k in tot}
    out["decisions"] = dict(tot, accuracy=tot["correct"] / tot["decisions"] if tot["decisions"] else float("nan"))
    return out


def plot_ope(points: List[Dict[str, Any]], pretrained_return: float, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted({p["seed"] for p in points})
    fig, axes = plt.subplots(1, max(1, len(seeds)), figsize=(4.2 * max(1, len(seeds)), 3.6), squeeze=False)
    for ax, seed in zip(axes[0], seeds):
        pts = [p for p in points if p["seed"] == seed]
        sc = ax.scatter([p["score"] for p in pts], [p["true_return"] for p in pts], c=[p["step"] for p in pts],
                        cmap="viridis", s=22)
        ax.axhline(pretrained_return, color="grey", ls="--", lw=0.8, label="pretrained (same episodes)")
        ax.set(title="Uni-O4 seed %d" % seed, xlabel="AM-Q score (recorded in training)",
               ylabel="true return (sim, mean over speeds)")
        ax.legend(fontsize=7)
        fig.colorbar(sc, ax=ax, label="improvement step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pm(c: Dict[str, float], fmt: str = "%.2f") -> str:
    if c["n"] == 0:
        return "-"
    return (fmt + " ± " + fmt + " (%d)") % (c["mean"], c["std"], c["n"]) if c["n"] > 1 else fmt % c["mean"]


def write_markdown(path: str, ev: Dict[str, Any]) -> None:
    cols = [("return_low", "return @%s", "%.2f"), ("return_high", "return @%s", "%.2f"),
            ("tracking_error_low", "track err @%s (m/s)", "%.3f"), ("tracking_error_high", "track err @%s (m/s)",
                                                                     "%.3f"),
            ("fall_rate", "fall rate", "%.2f"), ("val_log_likelihood", "held-out log-lik", "%.2f"),
            ("disagreement", "disagreement", "%.3f")]
    sp = ev["speeds"]
    head = [c[1] % (sp[0] if "low" in c[0] else sp[-1]) if "%s" in c[1] else c[1] for c in cols]
    lines = ["# Offline Uni-O4 on the simulated Go1 (mattress): evidence", "",
             "Command: `%s`" % ev["command"], "", "Dataset: `%s` (behaviour: pretrained policy, exploration std "
             "scale %g). Offline budget (paper preset + overrides): `%s`; IQL also `%s`."
             % (ev["config"]["dataset"], ev["behaviour_std_scale"], json.dumps(ev["config"]["offline_overrides"]),
                json.dumps(ev["config"]["iql_overrides"])),
             "Evaluation: %s episode(s) x %s steps per speed, deterministic (behaviour: stochastic), from standing; "
             "snapshots %s x %s steps. Values: mean ± std over seeds (n); baselines: one policy."
             % (ev["config"]["eval"]["episodes"], ev["config"]["eval"]["episode_steps"],
                ev["config"]["snapshot_eval"]["episodes"], ev["config"]["snapshot_eval"]["episode_steps"]), "",
             "| policy | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in ev["table"].items():
        lines.append("| %s | %s |" % (name, " | ".join(_pm(row[k], f) if k in row else "-" for k, _, f in cols)))
    q = ev["ope"]
    if q:
        pool, dec = q["pooled"], q["decisions"]
        lines += ["", "## AM-Q quality (paper Fig. 6a)", "",
                  "%d Uni-O4 snapshots (every member at every OPE check, all seeds; %d distinct policies: the members "
                  "start identical); true return = mean over both speeds of the deterministic simulated return; pairs "
                  "of distinct policies within a seed only. Evaluation noise (largest repeat-episode spread, scaled "
                  "to the snapshot episode length): %.4f." % (len(ev["ope_points"]), q["policies"], pool["noise"]), "",
                  "| seeds | pair-ordering accuracy | pairs (> noise) | pairs within noise | accuracy incl. those |",
                  "|---|---|---|---|---|"]
        for name, p in [("all (pooled)", pool)] + [("seed " + k, v) for k, v in q["per_seed"].items()]:
            lines.append("| %s | %.3f | %d | %d | %.3f |" % (name, p["accuracy"], p["pairs"], p["within_noise_pairs"],
                                                             p["accuracy_all_pairs"]))
        lines += ["", "Accept/reject decisions (score beats the member's best so far vs true return beats that "
                  "policy's): %d of %d right (%.3f); %d within noise." % (dec["correct"], dec["decisions"],
                                                                       dec["accuracy"], dec["within_noise"]),
                  "", "![AM-Q vs true return](%s)" % ev["png"]]
    lines += ["", "## Wall times (s, this session)", "", "| phase | s |", "|---|---|"]
    lines += ["| %s | %.0f |" % kv for kv in ev["timings"].items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
