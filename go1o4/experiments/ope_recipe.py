"""``go1o4 ope-recipe``: can an OPE tell the recipe's policies apart where the simulator can? (issue 17, item 2)

    go1o4 ope-recipe --run runs/recipe_authors_sim     # a finished ``go1o4 pipeline`` folder

The OPE study (``go1o4 ope-study``) replays the gate on the small steps of one offline improvement, where the
candidates differ by less than the evaluators can resolve. Here the candidates are the recipe's finished
policies (start, Uni-O4 / IQL / one-step offline, Uni-O4 / IQL / PPO online), whose simulated returns differ
by up to 15 %. Per seed, every evaluator scores every evaluated policy with that seed's Uni-O4 offline
critics, model and held-out episodes (:func:`go1o4.experiments.ope_study.evaluator_scores`), and is compared
with the pipeline's own evaluation on the simulated mattress (the truth):

* the gate's decision "accept the candidate over the start" (score gain > m * paired bootstrap std,
  :func:`go1o4.experiments.ope_study_metrics.replay_gate`), right when it agrees with the sign of the true gain;
* pair ordering of all policies of a seed, and Spearman with the true return.

Writes ``ope_recipe.json`` (each evaluator's score per policy) and ``OPE_RECIPE.md`` in the run folder (or
``--json`` / ``--md``).
"""
import json
import os
import sys
from typing import Any, Dict, List

import numpy as np

from go1o4.experiments import ope_study_metrics as M
from go1o4.experiments.common import resolve

EVALUATORS = {"am_q_paper": {"method": "am_q", "falls": "alive_only"}, "fqe": {"method": "fqe"},
              "model_return": {"method": "model_return", "pessimism": 0.0},
              "model_return_pessimistic": {"method": "model_return", "pessimism": 1.0},
              "model_return_pessimistic_h60": {"method": "model_return", "pessimism": 1.0, "horizon": 60}}
BASE_RATES = {"accept_all": True, "reject_all": False}  # no-OPE references
OFFLINE_DIR = "uni_o4_offline"  # whose critics, model and held-out split every evaluator uses


def seed_policies(seed_dir: str) -> Dict[str, Dict[str, Any]]:
    """{method: {policy, return}} of every policy the pipeline evaluated in ``seed_dir/eval``, start first."""
    ev_dir = os.path.join(seed_dir, "eval")
    names = sorted(n[:-5] for n in os.listdir(ev_dir) if n.endswith(".json")) if os.path.isdir(ev_dir) else []
    if "pretrained" not in names:
        raise ValueError("%s has no evaluation of the starting policy (eval/pretrained.json): run the pipeline first"
                         % seed_dir)
    out = {}
    for n in ["pretrained"] + [m for m in names if m != "pretrained"]:
        with open(os.path.join(ev_dir, n + ".json")) as f:
            doc = json.load(f)
        path = resolve(doc["policy"])  # the pipeline records paths as given (relative to where it ran)
        if not os.path.exists(path):
            raise ValueError("%s/%s.json evaluated %s, which no longer exists" % (ev_dir, n, doc["policy"]))
        out[n] = {"policy": path, "return": float(doc["all"]["return"]), "eval": doc}
    return out


def analyse(seeds: List[Dict[str, Any]], noise: float, margins: List[float]) -> Dict[str, Any]:
    """Per evaluator x margin: decisions (each candidate vs the start), pair ordering, Spearman (pure)."""
    from go1o4.experiments.evidence_report import pair_ordering

    table = {}
    for name, accept in BASE_RATES.items():
        stats = [M.decision_stats(M.constant_gate([0, j], accept), [p["return"] for p in s["policies"]], noise)
                 for s in seeds for j in range(1, len(s["policies"]))]
        table["%s|0" % name] = dict(M.merge_stats(stats), pairs={"accuracy": float("nan"), "pairs": 0},
                                    spearman=float("nan"), wrong=[])
    for ev in EVALUATORS:
        for m in margins:
            stats, rho, scores, truths, groups, wrong = [], [], [], [], [], []
            for s in seeds:
                t, c = (np.asarray(x) for x in s["scores"][ev])
                J = [p["return"] for p in s["policies"]]
                for j in range(1, len(J)):
                    stats.append(M.decision_stats(M.replay_gate(t, c, [0, j], m, seed=s["seed"]), J, noise))
                    if stats[-1]["correct"] < stats[-1]["resolved"]:  # this one decision, resolved and wrong
                        wrong.append("%s/%d" % (s["policies"][j]["method"], s["seed"]))
                sc = M.pooled_score(t, c)
                rho.append(M.spearman(sc, J))
                scores, truths, groups = scores + list(sc), truths + J, groups + [s["seed"]] * len(J)
            row = M.merge_stats(stats)
            row.update(pairs=pair_ordering(scores, truths, groups, noise), spearman=float(np.nanmean(rho)),
                       wrong=wrong)
            table["%s|%g" % (ev, m)] = row
    return table


def run_recipe_ope(run_dir: str, fqe_steps: int, margins: List[float], progress: bool = False, say=print):
    from go1o4.config import load_config
    from go1o4.data.dataset import TransitionDataset
    from go1o4.experiments.evidence_report import repeat_spread
    from go1o4.experiments.ope_study import evaluator_scores
    from go1o4.offline_finetune.config import OfflineConfig
    from go1o4.offline_finetune.ope import start_states
    from go1o4.offline_finetune.pretrained import load_pretrained_actor
    from go1o4.offline_finetune.train import OfflineRun
    from go1o4.rl.networks import GaussianActor

    dirs = sorted(d for d in os.listdir(run_dir) if d.startswith("seed_") and
                  os.path.exists(os.path.join(run_dir, d, OFFLINE_DIR, "done.json")))
    if not dirs:
        raise ValueError("%s has no seed with a finished %s stage" % (run_dir, OFFLINE_DIR))
    dataset = TransitionDataset.load(os.path.join(run_dir, "data", "dataset.h5"))
    seeds, per_start, evals = [], [], []
    for d in dirs:
        pols = seed_policies(os.path.join(run_dir, d))
        off = os.path.join(run_dir, d, OFFLINE_DIR)
        run = OfflineRun(load_config(OfflineConfig, os.path.join(off, "config.yaml"), []), dataset, off,
                         progress=progress)
        ens = GaussianActor.stack([load_pretrained_actor(p["policy"]) for p in pols.values()]).to(run.device)
        starts = start_states(run.val["observations"], run.cfg.ope.num_starts, run.cfg.ope.seed)
        scores = evaluator_scores(run, ens, EVALUATORS, fqe_steps, starts)
        seed = int(d.split("_")[1])
        seeds.append({"seed": seed, "policies": [{"method": m, "policy": p["policy"], "return": p["return"]}
                                                 for m, p in pols.items()],
                      "scores": {n: M.pooled_score(t, c).tolist() for n, (t, c) in scores.items()},
                      "critic_check": run.summary().get("critic_check")})
        per_start.append(dict(seeds[-1], scores=scores))  # per start state: the margins' bootstrap needs them
        evals += [p["eval"] for p in pols.values()]
        say("seed %d: %s" % (seed, ", ".join("%s %.2f" % (m, p["return"]) for m, p in pols.items())))
    noise = repeat_spread(evals)
    return {"run": os.path.abspath(run_dir), "fqe_steps": fqe_steps, "margins": margins, "noise": noise,
            "evaluators": EVALUATORS, "seeds": seeds, "table": analyse(per_start, noise, margins)}


def write_markdown(path: str, res: Dict[str, Any], command: str) -> None:
    lines = ["# The OPE gate on the recipe's finished policies", "", "Command: `%s`" % command, "",
             "Run: `%s`; per seed the start and every evaluated policy, scored with the seed's `%s` critics, model "
             "and held-out episodes (FQE: %d steps after the Monte-Carlo warm start). Truth: the pipeline's "
             "evaluation on the simulated mattress (return over all commanded speeds); its noise (largest spread "
             "of repeat episodes of one policy at one speed): **%.3f**." % (os.path.relpath(res["run"]), OFFLINE_DIR, res["fqe_steps"],
                                                                            res["noise"]), "",
             "| evaluator | margin m | accept-decision accuracy (resolved) | within 25 % | accepted | accepted but "
             "worse | rejected but better | pair ordering (pairs) | Spearman | wrong decisions |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rank = {n: i for i, n in enumerate(list(BASE_RATES) + list(EVALUATORS))}  # JSON may have sorted the keys
    for key, r in sorted(res["table"].items(), key=lambda kv: (rank.get(kv[0].split("|")[0], 99), kv[0])):
        ev, m = key.split("|")
        row = "| %s | %s | %.2f (%d) | %.2f | %d / %d | %d | %d | %.2f (%d) | %.2f | %s |" % (
            ev, m, r["accuracy"], r["resolved"], r["accuracy_within_25pct"], r["accepted"], r["decisions"],
            r["accepted_worse"], r["rejected_better"], r["pairs"]["accuracy"], r["pairs"]["pairs"], r["spearman"],
            ", ".join(r["wrong"]) or "-")
        lines.append(row.replace("nan (0)", "-").replace("| nan |", "| - |"))  # base rates: no scores
    lines += ["", "## Scores per seed", "", "| seed | policy | true return | " +
              " | ".join(EVALUATORS) + " |", "|---|---|---|" + "---|" * len(EVALUATORS)]
    for s in res["seeds"]:
        for i, p in enumerate(s["policies"]):
            lines.append("| %d | %s | %.2f | %s |" % (s["seed"], p["method"], p["return"],
                                                       " | ".join("%.4f" % s["scores"][n][i] for n in EVALUATORS)))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="a finished go1o4 pipeline folder (seed_*/eval, seed_*/uni_o4_offline)")
    p.add_argument("--fqe-steps", type=int, default=2000, help="FQE gradient steps (all policies of a seed in one fit)")
    p.add_argument("--margins", type=float, nargs="+", default=[0.0, 2.0], help="bootstrap-std margins of the gate")
    p.add_argument("--json", default=None, help="result JSON (default <run>/ope_recipe.json)")
    p.add_argument("--md", default=None, help="report (default <run>/OPE_RECIPE.md)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")


def run(args) -> int:
    from go1o4.data.log_format import atomic_write_json
    from go1o4.offline_finetune.dataset import DatasetError

    if args.fqe_steps < 0 or any(m < 0 for m in args.margins):
        sys.stderr.write("go1o4 ope-recipe: --fqe-steps and --margins must be >= 0\n")
        return 2
    try:
        res = run_recipe_ope(args.run, args.fqe_steps, args.margins, not args.no_progress)
    except (DatasetError, ValueError, FileNotFoundError, KeyError) as e:
        sys.stderr.write("go1o4 ope-recipe: %s\n" % e)
        return 2
    js, md = args.json or os.path.join(args.run, "ope_recipe.json"), args.md or os.path.join(args.run, "OPE_RECIPE.md")
    atomic_write_json(js, res)
    write_markdown(md, res, "go1o4 " + " ".join(sys.argv[1:]))
    for key, r in res["table"].items():
        print("%-32s decisions %.2f (%d resolved), pairs %.2f, Spearman %.2f" % (
            key, r["accuracy"], r["resolved"], r["pairs"]["accuracy"], r["spearman"]))
    print("report: %s" % md)
    return 0
