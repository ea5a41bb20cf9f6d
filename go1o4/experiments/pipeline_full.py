"""Run the full pipeline (paper budgets by default) and publish its evidence.

Runs (or resumes) ``go1o4 pipeline`` with ``online_finetune/configs/full.yaml`` (or ``--config`` / ``--set``
overrides), then writes the table, learning curves and wall times to ``benchmarks/results/pipeline_full.json``,
``online_finetune/RESULTS_FULL.md`` and two PNGs beside the JSON. ``--notes FILE`` appends a hand-written
analysis section (what was run vs the paper's budgets, what the numbers show) to that Markdown file.

    python benchmarks/run_pipeline_full.py --out runs/pipeline_full              # 3 seeds, 180k + 100k steps
    python -m go1o4.experiments.pipeline_full --out runs/pipeline_mid --set online.total_steps=20000 ...
"""
import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional

from go1o4.config import load_config, to_dict
from go1o4.experiments.config import CONFIGS, REPO, PipelineConfig
from go1o4.experiments.pipeline import Pipeline
from go1o4.experiments.report import DIP_TOLERANCE, EARLY_STEPS, LABELS, markdown

ROOT = Path(REPO)


def findings(results) -> list:
    """Plain statements read off the table (no judgement beyond the numbers)."""
    t, out = results["table"], []
    ranked = sorted((m for m in results["methods"] if t.get(m, {}).get("return_all")),
                    key=lambda m: -t[m]["return_all"]["mean"])
    if ranked:
        out.append("Highest mean evaluation return: %s (%.3f); lowest: %s (%.3f)." % (
            LABELS[ranked[0]], t[ranked[0]]["return_all"]["mean"], LABELS[ranked[-1]], t[ranked[-1]]["return_all"]["mean"]))
    for m, per_seed in results["early_dip"].items():
        dropped = [s for s, d in per_seed.items() if d and d.get("dropped")]
        known = [d for d in per_seed.values() if d and d.get("dropped") is not None]
        if known:
            out.append("%s: evaluation return more than %.0f %% below its start within the first %d online steps in "
                       "%d of %d seed(s); largest early drop %.2f %% of the start." % (
                           LABELS[m], 100 * DIP_TOLERANCE, EARLY_STEPS, len(dropped), len(known),
                           max(d["drop_pct"] for d in known)))
    for m, per_seed in results.get("training_falls", {}).items():
        eps, falls = sum(n["episodes"] for n in per_seed.values()), sum(n["falls"] for n in per_seed.values())
        if eps:
            out.append("%s: %d falls in %d online training episodes (%s per seed)." % (
                LABELS[m], falls, eps, ", ".join(str(per_seed[s]["falls"]) for s in sorted(per_seed))))
    for a, b in (("uni_o4_online", "uni_o4_offline"), ("uni_o4_offline", "pretrained"), ("iql_online", "iql_offline"),
                 ("ppo_online", "pretrained")):
        if t.get(a, {}).get("return_all") and t.get(b, {}).get("return_all"):
            d = t[a]["return_all"]["mean"] - t[b]["return_all"]["mean"]
            out.append("%s vs %s: return %+.3f, tracking error %+.3f m/s, fall rate %+.2f." % (
                a, b, d, t[a]["tracking_error_all"]["mean"] - t[b]["tracking_error_all"]["mean"],
                t[a]["fall_all"]["mean"] - t[b]["fall_all"]["mean"]))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=os.path.join(CONFIGS, "full.yaml"))
    p.add_argument("--out", default=str(ROOT / "runs" / "pipeline_full"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--notes", help="Markdown file appended to the --md file (analysis, deviations from the paper)")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "pipeline_full.json"))
    p.add_argument("--md", default=str(ROOT / "online_finetune" / "RESULTS_FULL.md"))
    p.add_argument("--png-prefix", default="pipeline_", help="name prefix of the PNGs copied beside --json")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    cfg = load_config(PipelineConfig, a.config, a.overrides)
    t0 = time.time()
    results = Pipeline(cfg, a.out, progress=not a.no_progress).run()
    wall = time.time() - t0
    res_dir = os.path.dirname(a.json)
    os.makedirs(res_dir, exist_ok=True)
    for png in ("learning_curves.png", "results.png"):
        shutil.copyfile(os.path.join(a.out, png), os.path.join(res_dir, a.png_prefix + png))
    doc = {"config": to_dict(cfg), "config_file": os.path.relpath(a.config, str(ROOT)), "overrides": a.overrides,
           "out": a.out, "results": results, "wall_s_this_invocation": wall,
           "wall_s_stages_total": sum(results["timings_s"].values()),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_end": os.getloadavg()},
           "time": time.strftime("%Y-%m-%d %H:%M:%S"), "findings": findings(results)}
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
    rel = os.path.relpath(res_dir, os.path.dirname(a.md))
    md = markdown(results).replace("](learning_curves.png)", "](%s/%slearning_curves.png)" % (rel, a.png_prefix))
    md = md.replace("](results.png)", "](%s/%sresults.png)" % (rel, a.png_prefix))
    head = ["Produced by `python benchmarks/run_pipeline_full.py %s` (%s); raw numbers in `%s`."
            % (" ".join(argv if argv is not None else sys.argv[1:]), doc["time"], os.path.relpath(a.json, str(ROOT))),
            "Total stage wall time %.0f s (%.1f h) on %d shared CPU cores." % (
                doc["wall_s_stages_total"], doc["wall_s_stages_total"] / 3600, os.cpu_count()), ""]
    lines = md.split("\n")
    md = "\n".join(lines[:2] + head + lines[2:])
    md += "\n## Findings (read off the numbers above)\n\n" + "\n".join("- " + s for s in doc["findings"]) + "\n"
    if a.notes:
        with open(a.notes) as f:
            md += "\n" + f.read()
    with open(a.md, "w") as f:
        f.write(md)
    print("wrote %s and %s (%.0f s)" % (a.json, a.md, wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
