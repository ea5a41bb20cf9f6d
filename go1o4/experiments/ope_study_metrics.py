"""Pure parts of the OPE study (:mod:`go1o4.experiments.ope_study`): every evaluator replayed as the gate of the
same candidate sequence, and how often its accept/reject decisions agree with the simulated return.

One run gives N policies (index 0: the starting policy every member shares; then each member at each OPE
check) and, per evaluator, per-start-state values ``(total, count)`` of shape (N, B) (:mod:`.ope_gate`'s
form). For member k the candidates come in check order; the replayed gate keeps a reference (the best so
far, initially the start) and accepts candidate j iff

    pooled(j) - pooled(ref) > m * std_boot(pooled(j) - pooled(ref))        (m = 0: the paper's rule)

the std over start-state resamples, paired (:func:`go1o4.offline_finetune.ope_gate.paired_bootstrap_std`).
The decision is right when it agrees with the sign of J(j) - J(ref), J the simulated return; a decision whose
true gap is within the ground truth's noise is counted apart. "Within 25 %" (paper Sec. 5.3: accuracy when a
25 % estimation error is permitted) also counts a wrong decision right when |J(j) - J(ref)| <= 0.25 |J(ref)|.
"""
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from go1o4.offline_finetune.ope import pooled_score
from go1o4.offline_finetune.ope_gate import paired_bootstrap_std

PERMITTED_ERROR = 0.25


def replay_gate(total: np.ndarray, count: np.ndarray, order: Sequence[int], margin: float = 0.0,
                bootstrap: int = 200, seed: int = 0) -> List[Tuple[int, int, bool]]:
    """(reference, candidate, accepted) for each candidate of ``order`` (order[0] is the start)."""
    score = pooled_score(total, count)
    best, out = int(order[0]), []
    for j in order[1:]:
        j = int(j)
        need = 0.0
        if margin > 0:
            need = margin * float(paired_bootstrap_std(total[j:j + 1], count[j:j + 1], total[best:best + 1],
                                                       count[best:best + 1], bootstrap, seed)[0])
        accept = bool(score[j] - score[best] > need)
        out.append((best, j, accept))
        if accept:
            best = j
    return out


def constant_gate(order: Sequence[int], accept: bool) -> List[Tuple[int, int, bool]]:
    """The base rates: a gate that accepts every candidate (no OPE: plain multi-step PPO) or none (one-step)."""
    out, best = [], int(order[0])
    for j in order[1:]:
        out.append((best, int(j), accept))
        best = int(j) if accept else best
    return out


def decision_stats(decisions: Sequence[Tuple[int, int, bool]], true_return: Sequence[float],
                   noise: float) -> Dict[str, Any]:
    """Counts and accuracies of replayed decisions against the simulated return ``true_return`` (per policy)."""
    J = np.asarray(true_return, dtype=np.float64)
    right = resolved = within = right_25 = accepted = accepted_worse = rejected_better = 0
    for ref, cand, accept in decisions:
        gap = J[cand] - J[ref]
        accepted += int(accept)
        if abs(gap) <= noise:
            within += 1
            right_25 += 1
            continue
        resolved += 1
        ok = accept == (gap > 0)
        right += int(ok)
        right_25 += int(ok or abs(gap) <= PERMITTED_ERROR * abs(J[ref]))
        accepted_worse += int(accept and gap < 0)
        rejected_better += int(not accept and gap > 0)
    n = len(decisions)
    return {"decisions": n, "resolved": resolved, "within_noise": within, "correct": right,
            "accuracy": right / resolved if resolved else float("nan"),
            "accuracy_within_25pct": right_25 / n if n else float("nan"),
            "accepted": accepted, "accepted_worse": accepted_worse, "rejected_better": rejected_better}


def merge_stats(parts: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Sum the counts of several :func:`decision_stats` results and recompute the accuracies."""
    keys = ("decisions", "resolved", "within_noise", "correct", "accepted", "accepted_worse", "rejected_better")
    tot = {k: int(sum(p[k] for p in parts)) for k in keys}
    right_25 = sum(p["accuracy_within_25pct"] * p["decisions"] for p in parts if p["decisions"])
    tot["accuracy"] = tot["correct"] / tot["resolved"] if tot["resolved"] else float("nan")
    tot["accuracy_within_25pct"] = right_25 / tot["decisions"] if tot["decisions"] else float("nan")
    return tot


def final_policy(decisions: Sequence[Tuple[int, int, bool]], start: int) -> int:
    """The policy a replayed gate ends with (its last accepted candidate, else the start)."""
    best = start
    for _, cand, accept in decisions:
        if accept:
            best = cand
    return best


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); nan for fewer than 3 points."""
    from scipy.stats import spearmanr

    if len(x) < 3:
        return float("nan")
    return float(spearmanr(x, y).correlation)


def gate_row(decided: Sequence[Tuple[Sequence[Tuple[int, int, bool]], Sequence[float]]], noise: float) -> Dict[str, Any]:
    """Decision stats over (decisions, true returns) of several members, and where each replayed gate ended."""
    stats = [decision_stats(dec, J, noise) for dec, J in decided]
    starts = [dec[0][0] if dec else 0 for dec, _ in decided]  # each sequence's own start (its first reference)
    gains = np.asarray([J[final_policy(dec, s)] - J[s] for s, (dec, J) in zip(starts, decided)])
    row = merge_stats(stats)
    row.update(pairs={"accuracy": float("nan"), "pairs": 0}, spearman=float("nan"), end_gain_mean=float(gains.mean()),
               end_gain_std=float(gains.std()), end_worse=int(np.sum(gains < -noise)), members=len(gains))
    return row


def evaluator_row(runs: Sequence[Dict[str, Any]], orders: Callable[[Dict[str, Any]], Sequence[Sequence[int]]],
                  evaluator: str, margin: float, noise: float) -> Dict[str, Any]:
    """One evaluator x margin replayed as the gate of every candidate sequence ``orders(r)`` of each run record
    ``r`` (``scores[evaluator]`` = (total, count), ``true_return``, ``seed``): :func:`gate_row`, pair ordering
    within seeds and the mean per-run Spearman of the pooled score with the true return."""
    from go1o4.experiments.evidence_report import pair_ordering

    decided, rho, scores, truths, groups = [], [], [], [], []
    for r in runs:
        t, c = (np.asarray(x) for x in r["scores"][evaluator])
        decided += [(replay_gate(t, c, o, margin, seed=r["seed"]), r["true_return"]) for o in orders(r)]
        pooled = pooled_score(t, c)
        rho.append(spearman(pooled, r["true_return"]))
        scores += list(pooled)
        truths += list(r["true_return"])
        groups += [r["seed"]] * len(pooled)
    row = gate_row(decided, noise)
    row.update(pairs=pair_ordering(scores, truths, groups, noise), spearman=float(np.nanmean(rho)))
    return row
