"""The mixed candidate set of ``go1o4 ope-study`` (issue 17, item 2): does a gate's accept decision beat the
base rates when some candidates are better than the start and some worse?

Within one study the candidates tend to move one way (50k value steps: every update better; 2k: nearly every
one worse), so "accept all" or "reject all" is right as often as any evaluator and the decision accuracy says
little. ``mixed_with: [<out of another finished study>]`` adds that study's candidates (same data and start,
e.g. ``runs/ope_study_gates``, whose 2k-step critics made the updates worse). Per seed:

1. the union of this study's and the other studies' policies of that seed (identical files once: the start);
2. ground truth for the other studies' policies from this study's evaluator (same runtime evaluation, cached
   in ``<out>/eval/mixed/``), so every return compared comes from one evaluation setup and one noise level;
3. every evaluator of the study scores the union with the critics, model and held-out episodes of this
   study's first arm (one FQE fit for all), cached in ``<out>/mixed/seed_<s>_scores.npz``;
4. the rows ``mixed|<evaluator>|<m>`` replay each gate along every member's candidate sequence (as the
   study's own rows), and ``mixed_vs_start|...`` decide each candidate against the start alone
   (the decision a one-off "is this policy better than what we had?" check makes).
"""
import json
import os
from typing import Any, Dict, List

import numpy as np

from go1o4.experiments import ope_study_metrics as M

BASE_RATES = {"accept_all": True, "reject_all": False}


def other_runs(cfg, study_dir: str, seed: int) -> List[Dict[str, Any]]:
    """The runs of seed ``seed`` in the finished study ``study_dir``; refuses a study on other data or start."""
    from go1o4.experiments.common import resolve

    path = os.path.join(study_dir, "study.json")
    if not os.path.exists(path):
        raise ValueError("mixed_with: %s has no study.json (finish that study first)" % study_dir)
    with open(path) as f:
        doc = json.load(f)
    for key in ("dataset", "pretrained"):
        if resolve(doc["config"][key]) != resolve(getattr(cfg, key)):
            raise ValueError("mixed_with: %s used %s %s, this study %s" % (study_dir, key, doc["config"][key],
                                                                          getattr(cfg, key)))
    return [r for r in doc["runs"] if r["seed"] == seed]


def mixed_seed(cfg, out: str, seed: int, run, own: List[Dict[str, Any]], ev, score) -> Dict[str, Any]:
    """Union, truth and scores of seed ``seed`` (steps 1-3). ``run``: the OfflineRun whose critics score;
    ``own``: this study's run records of the seed; ``ev``: the study's Evaluator; ``score(run, paths, cache)``."""
    from go1o4.policy_contract import file_sha256

    paths: List[str] = []
    truth: List[float] = []
    index: Dict[str, int] = {}
    sources = []

    def add(path: str, true_return, name: str = "") -> int:
        """Index of ``path`` in the union; its truth ``true_return``, else evaluated here as ``name``."""
        h = file_sha256(path)
        if h not in index:
            index[h] = len(paths)
            paths.append(path)
            truth.append(float(true_return if name == "" else ev(name, path, cfg.truth)["all"]["return"]))
        return index[h]

    for r in own:
        idx = [add(p, J) for p, J in zip(r["paths"], r["true_return"])]
        sources.append({"study": "this", "arm": r["arm"], "order": {int(k): [idx[i] for i in v]
                                                                     for k, v in r["order"].items()}})
    for study in cfg.mixed_with:
        label = os.path.basename(os.path.normpath(study))
        for r in other_runs(cfg, study, seed):
            idx = [add(p, None, "mixed/%s/%s/seed_%d/%s" % (label, r["arm"], seed, os.path.basename(p)[:-5]))
                   for p in r["paths"]]
            sources.append({"study": label, "arm": r["arm"], "order": {int(k): [idx[i] for i in v]
                                                                        for k, v in r["order"].items()}})
    cache = os.path.join(out, "mixed", "seed_%d_scores.npz" % seed)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    scores = score(run, paths, cache)
    return {"seed": seed, "scorer": run.out, "paths": paths, "true_return": truth, "sources": sources,
            "scores": {n: [np.asarray(t).tolist(), np.asarray(c).tolist()] for n, (t, c) in scores.items()}}


def analyse(evaluators, margins, seeds: List[Dict[str, Any]], noise: float) -> Dict[str, Any]:
    """Rows ``mixed|...`` (each member's sequence replayed) and ``mixed_vs_start|...`` (each candidate vs the
    start) for the base rates and every evaluator x margin (pure)."""

    def sequences(s):
        return [o for src in s["sources"] for o in src["order"].values()]

    def vs_start(s):
        return [[0, j] for j in range(1, len(s["paths"]))]

    table: Dict[str, Any] = {}
    for kind, orders in (("mixed", sequences), ("mixed_vs_start", vs_start)):
        for name, accept in BASE_RATES.items():
            table["%s|%s|0" % (kind, name)] = M.gate_row(
                [(M.constant_gate(o, accept), s["true_return"]) for s in seeds for o in orders(s)], noise)
        for e in evaluators:
            for m in margins:
                table["%s|%s|%g" % (kind, e, m)] = M.evaluator_row(seeds, orders, e, m, noise)
    return table


def summary_lines(seeds: List[Dict[str, Any]], noise: float) -> List[str]:
    """Per seed: how many candidates are truly better / worse than the start / within the noise."""
    lines = ["| seed | policies | from | better than the start | worse | within noise |", "|---" * 6 + "|"]
    for s in seeds:
        J = np.asarray(s["true_return"])
        gap = J[1:] - J[0]
        frm = ", ".join(sorted({"%s/%s" % (src["study"], src["arm"]) for src in s["sources"]}))
        lines.append("| %d | %d | %s | %d | %d | %d |" % (s["seed"], len(J), frm, int(np.sum(gap > noise)),
                                                         int(np.sum(gap < -noise)), int(np.sum(np.abs(gap) <= noise))))
    return lines
