"""Pipeline results: the table (mean +- std over seeds), learning curves, early-dip check, Markdown + PNGs."""
import json
import os
from typing import Any, Dict, List

import numpy as np

LABELS = {"pretrained": "starting policy (sim-pretrained), unchanged", "uni_o4_offline": "Uni-O4 offline (A.4 init)",
          "uni_o4_online": "Uni-O4 offline -> online PPO", "iql_offline": "IQL offline",
          "iql_online": "IQL offline -> IQL online", "ppo_online": "PPO online from pretrained (no offline)",
          "one_step_offline": "one-step PPO offline (A.4 init, no pi_old update)"}
ONLINE = ("uni_o4_online", "ppo_online", "iql_online")
EARLY_STEPS = 10_000
DIP_TOLERANCE = 0.01  # a drop below 1 % of the start is within the curve evaluations' noise


def _load(path: str) -> Any:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def mean_std(values: List[float]) -> Dict[str, Any]:
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    return {"mean": float(x.mean()) if len(x) else float("nan"), "std": float(x.std()) if len(x) else float("nan"),
            "n": int(len(x)), "values": [float(v) for v in values]}


def curve_of(seed_dir: str, method: str) -> List[Dict[str, Any]]:
    doc = _load(os.path.join(seed_dir, method, "metrics.json")) or _load(os.path.join(seed_dir, method, "summary.json"))
    return list((doc or {}).get("curve") or [])


def early_dip(curve: List[Dict[str, Any]], key: str = "return") -> Dict[str, Any]:
    """Start value, the worst value within the first EARLY_STEPS online steps, the drop (also in % of the
    start) and whether it fell below the start by more than DIP_TOLERANCE."""
    if not curve:
        return {}
    start = curve[0]["all"][key]
    early = [c["all"][key] for c in curve[1:] if c["steps"] <= EARLY_STEPS]
    if not early:
        return {"start": start, "min_early": None, "dropped": None}
    worst = min(early)
    pct = 100.0 * (start - worst) / abs(start) if start else float("nan")
    return {"start": start, "min_early": worst, "drop": start - worst, "drop_pct": pct,
            "dropped": bool(pct > 100.0 * DIP_TOLERANCE)}


def training_falls(run_dir: str) -> Dict[str, int]:
    """Episodes, falls and robot steps of an online run's training episodes (stochastic policy), from their logs."""
    from go1o4.data.log_format import LogReadError
    from go1o4.data.reader import load_episode, read_status
    from go1o4.online_finetune.rollouts import episode_keys

    root = os.path.join(run_dir, "logs")
    n: Dict[str, Any] = {"episodes": 0, "falls": 0, "steps": 0, "cut_by_crash": 0, "cumulative": []}
    for key in episode_keys(root):
        doc = read_status(os.path.join(root, key))[0] or {}
        n["episodes"] += 1
        n["falls"] += int(doc.get("reason") == "fall")
        if doc.get("status") == "complete":
            n["steps"] += int(doc.get("steps") or 0)
        else:  # the process died mid-episode: its status still says "open"; the steps are in the log
            n["cut_by_crash"] += 1
            try:
                n["steps"] += load_episode(os.path.join(root, key)).num_steps
            except (LogReadError, ValueError):
                pass
        n["cumulative"].append([n["steps"], n["falls"]])  # (robot steps so far, falls so far) after each episode
    return n


def collect_results(out: str, cfg, timings: Dict[str, float]) -> Dict[str, Any]:
    seeds, speeds = list(cfg.seeds), ["%.2f" % v for v in cfg.eval.speeds]
    table, curves, dips, falls = {}, {}, {}, {}
    for m in cfg.methods:
        rows: Dict[str, List[float]] = {}
        for s in seeds:
            ev = _load(os.path.join(out, "seed_%d" % s, "eval", m + ".json"))
            if ev is None:
                continue
            for sp, name in zip((speeds[0], speeds[-1]), ("low", "high")):  # for the plots
                for k in ("return", "tracking_error", "fall", "mean_vx"):
                    rows.setdefault("%s_%s" % (k, name), []).append(ev["speeds"][sp][k])
            for sp in speeds:  # every commanded speed, for the table
                for k in ("return", "tracking_error", "fall", "mean_vx"):
                    rows.setdefault("%s@%s" % (k, sp), []).append(ev["speeds"][sp][k])
            for k in ("return", "tracking_error", "fall"):
                rows.setdefault("%s_all" % k, []).append(ev["all"][k])
        table[m] = {k: mean_std(v) for k, v in rows.items()}
        if m in ONLINE:
            curves[m] = {str(s): curve_of(os.path.join(out, "seed_%d" % s), m) for s in seeds}
            dips[m] = {str(s): early_dip(c) for s, c in curves[m].items()}
            falls[m] = {str(s): training_falls(os.path.join(out, "seed_%d" % s, m)) for s in seeds}
    judged = {}
    for m in cfg.methods:
        for s in seeds:
            doc = _load(os.path.join(out, "seed_%d" % s, m, "judgement.json")) if m.endswith("_offline") else None
            if doc:
                judged["%s seed %d" % (m, s)] = doc
    return {"methods": list(cfg.methods), "seeds": seeds, "judgement": judged, "speeds": [float(v) for v in cfg.eval.speeds],
            "eval": {"episodes": cfg.eval.episodes, "episode_steps": cfg.eval.episode_steps},
            "budgets": {"collect_steps": cfg.collect.steps, "online_steps": cfg.online.total_steps},
            "dataset": _load(os.path.join(out, "data", "done.json")), "table": table, "curves": curves,
            "early_dip": dips, "training_falls": falls, "timings_s": timings}


def _fmt(ms: Dict[str, Any], digits: int = 3) -> str:
    if not ms or not np.isfinite(ms["mean"]):
        return "-"
    return ("%.*f" % (digits, ms["mean"])) + ("" if ms["n"] < 2 else " ± %.*f" % (digits, ms["std"]))


def plot_curves(out: str, results: Dict[str, Any]) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"uni_o4_online": "C0", "ppo_online": "C1", "iql_online": "C2"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for m, per_seed in results.get("training_falls", {}).items():
        for _s, n in sorted(per_seed.items()):
            xy = np.asarray([[0, 0]] + n.get("cumulative", []), dtype=float)
            axes[2].step(xy[:, 0], xy[:, 1], where="post", color=colors[m], alpha=0.8)
    for m, per_seed in results["curves"].items():
        for key, ax in zip(("return", "tracking_error"), axes):
            for i, (_s, curve) in enumerate(sorted(per_seed.items())):
                if not curve:
                    continue
                x = [c["steps"] for c in curve]
                y = [c["all"][key] for c in curve]
                line, = ax.plot(x, y, marker="o", ms=3, label=LABELS[m] if i == 0 else None, color=colors[m],
                                alpha=0.8)
                ax.axhline(y[0], color=line.get_color(), lw=0.6, ls=":")
    for ax, t in zip(axes, ("return (deterministic eval)", "tracking error |v - c| (m/s) (deterministic eval)",
                            "falls while training (stochastic policy), cumulative")):
        ax.axvline(EARLY_STEPS, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("online robot steps")
        ax.set_title(t)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "learning_curves.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(out: str, results: Dict[str, Any]) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in results["methods"] if results["table"].get(m)]
    keys = [("return_low", "return, low speed"), ("return_high", "return, high speed"),
            ("tracking_error_low", "tracking error (m/s), low"), ("tracking_error_high", "tracking error (m/s), high"),
            ("fall_all", "fall rate")]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 4))
    x = np.arange(len(methods))
    for ax, (k, title) in zip(axes, keys):
        mu = [results["table"][m].get(k, {}).get("mean", np.nan) for m in methods]
        sd = [results["table"][m].get(k, {}).get("std", 0.0) for m in methods]
        ax.bar(x, mu, yerr=sd, color=["C%d" % i for i in range(len(methods))], capsize=3)
        ax.set_xticks(x)
        ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=8)
        ax.set_title(title)
    fig.tight_layout()
    path = os.path.join(out, "results.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(results: Dict[str, Any]) -> str:
    sp = results["speeds"]
    lines = ["# Online -> offline -> online on the simulated Go1 (mattress)", "",
             "Seeds: %s; evaluation: %d episode(s) x %d steps per speed, deterministic policy, from standing."
             % (results["seeds"], results["eval"]["episodes"], results["eval"]["episode_steps"]),
             "Budgets: %s offline steps, %d online steps per online method."
             % ("%d collected" % results["budgets"]["collect_steps"] if not (results.get("dataset") or {}).get("dataset")
                else "the given dataset's", results["budgets"]["online_steps"]), ""]
    ds = results.get("dataset") or {}
    if ds.get("dataset"):  # a given dataset (e.g. the real logs), not collected here
        lines += ["Dataset: `%s`, %s transitions in %s episodes (%s falls), reward %s." % (
            ds["dataset"], ds.get("transitions"), ds.get("episodes"), ds.get("falls"), ds.get("reward")), ""]
    elif ds:
        lines += ["Dataset: %s steps in %s episodes (%s falls), %s transitions, exploration std scale %s, reward %s."
                  % (ds.get("steps"), ds.get("episodes"), ds.get("falls"), ds.get("transitions"),
                     ds.get("std_scale"), ds.get("reward")), ""]
    keys = ["%.2f" % v for v in sp]
    lines += ["| method | return (all) | %s | %s | fall rate |" % (
        " | ".join("speed reached @%.1f (m/s)" % v for v in sp), " | ".join("tracking err @%.1f" % v for v in sp)),
        "|---" * (3 + 2 * len(sp)) + "|"]
    for m in results["methods"]:
        t = results["table"].get(m, {})
        lines.append("| %s | %s | %s | %s | %s |" % (
            LABELS[m], _fmt(t.get("return_all")), " | ".join(_fmt(t.get("mean_vx@" + k), 2) for k in keys),
            " | ".join(_fmt(t.get("tracking_error@" + k)) for k in keys), _fmt(t.get("fall_all"), 2)))
    lines += ["", "Values: mean ± std over seeds (per seed: mean over episodes).", "",
              "## Online learning curves", "", "![learning curves](learning_curves.png)", "",
              "Early dip (first %d online steps, deterministic evaluation return; 'below start' = more than %.0f %% "
              "below, the curve evaluations' noise level):" % (EARLY_STEPS, 100 * DIP_TOLERANCE), "",
              "| method | seed | start | worst in first 10k | drop (%) | below start? |", "|---|---|---|---|---|---|"]
    for m, per_seed in results["early_dip"].items():
        for s, d in sorted(per_seed.items()):
            if d and d["min_early"] is not None:
                lines.append("| %s | %s | %.3f | %.3f | %.2f | %s |" % (m, s, d["start"], d["min_early"], d["drop_pct"],
                                                                       d["dropped"]))
    lines += ["", "Falls while training online (stochastic policy; the safety layer takes over and the scripted resetter "
              "stands the robot up):", "", "| method | seed | training episodes | falls | robot steps | episodes cut by a restart |",
              "|---|---|---|---|---|---|"]
    for m, per_seed in results.get("training_falls", {}).items():
        for s, n in sorted(per_seed.items()):
            lines.append("| %s | %s | %d | %d | %d | %d |" % (m, s, n["episodes"], n["falls"], n["steps"],
                                                               n.get("cut_by_crash", 0)))
    if results.get("judgement"):
        from go1o4.experiments.offline_judgement import markdown_rows
        lines += ["", "## Offline policies judged without a robot (held-out episodes of the offline data)", ""]
        lines += markdown_rows(results["judgement"])
    lines += ["", "![results](results.png)", "", "## Wall times (s)", "", "| stage | s |", "|---|---|"]
    for k, v in sorted(results["timings_s"].items()):
        lines.append("| %s | %.0f |" % (k, v))
    return "\n".join(lines) + "\n"


def write_report(out: str, results: Dict[str, Any]) -> str:
    plot_curves(out, results)
    plot_bars(out, results)
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write(markdown(results))
    return path
