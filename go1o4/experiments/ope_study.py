"""``go1o4 ope-study``: does the OPE gate of the multi-step update make the right accept decisions? (issue 17)

    go1o4 ope-study --out runs/ope_study              # the shipped study, go1o4/experiments/ope_study.yaml

1. Training arms (the factors that change the candidate policies: value budget, the members' initial std),
   each seed one Uni-O4 run (A.4 init from the starting policy) with ``improve.snapshots`` on and the paper's
   gate (AM-Q over alive states), in ``<out>/runs/<arm>/seed_<s>`` (resumable; arms with the same value and
   dynamics configs share those stages within a seed, :func:`go1o4.experiments.common.reuse_critics`).
2. Ground truth: every distinct snapshot's return on the calibrated simulated mattress through the runtime
   (deterministic, ``truth`` speeds), cached per policy file; its noise measured from repeat episodes.
3. Every evaluator (AM-Q as the paper, AM-Q counting falls, FQE on held-out episodes, the Q-free
   pessimistic model return; each with and without a bootstrap margin) scores all snapshots of a run with the
   run's own critics, model and data, and is replayed as the gate of each member's candidate sequence (:mod:`.ope_study_metrics`).
4. ``study.json``, ``OPE_STUDY.md`` and ``ope_study.png`` in ``<out>``.
"""
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import numpy as np

from go1o4.experiments import ope_study_metrics as M
from go1o4.online_finetune.config import EvalConfig
from go1o4.robot_runtime.rollout import RolloutConfig

SCORES_VERSION = 2  # bump when the scoring changes (cached scores are then recomputed); 2: FQE heads tied
BASE_RATES = {"accept_all": True, "reject_all": False}  # no-OPE references in the table
REPO_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ope_study.yaml")


@dataclass
class OPEStudyConfig:
    dataset: str = "runs/ope_study_data/dataset.h5"
    pretrained: str = "runs/recipe_authors_sim/start/policy.onnx"  # the starting policy (ONNX + contract)
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    offline_preset: str = "paper"
    common: Dict[str, Any] = field(default_factory=dict)  # offline overrides of every arm
    arms: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # name -> offline overrides of that arm
    max_seeds: Dict[str, int] = field(default_factory=dict)  # arm -> run only its first n seeds (a short budget)
    evaluators: Dict[str, Dict[str, Any]] = field(default_factory=lambda: {
        "am_q_paper": {"method": "am_q", "falls": "alive_only"}, "am_q_falls": {"method": "am_q", "falls": "terminal"},
        "fqe": {"method": "fqe"}, "model_return": {"method": "model_return"}})
    margins: List[float] = field(default_factory=lambda: [0.0, 2.0])
    fqe_steps: int = 2000  # FQE gradient steps after the Monte-Carlo warm start (all snapshots of a run at once)
    truth: EvalConfig = field(default_factory=lambda: EvalConfig(speeds=[0.5, 1.0], episodes=1, episode_steps=500))
    noise_episodes: int = 3  # repeat episodes of the starting policy: the ground truth's noise
    robot: RolloutConfig = field(default_factory=RolloutConfig)
    device: str = "auto"
    mixed_with: List[str] = field(default_factory=list)  # other finished studies' outs: a mixed candidate set

    def validate(self) -> None:
        from go1o4.rl.device import check_device_spec
        self.device = check_device_spec(self.device)
        if not self.seeds or not self.arms or not self.evaluators:
            raise ValueError("seeds, arms and evaluators must not be empty")
        bad = [n for n, e in self.evaluators.items() if e.get("method") not in ("am_q", "fqe", "model_return")]
        if bad:
            raise ValueError("evaluators %s: method must be am_q, fqe or model_return" % bad)
        if set(self.max_seeds) - set(self.arms) or any(n < 1 for n in self.max_seeds.values()):
            raise ValueError("max_seeds names arms of this study with n >= 1, got %s" % self.max_seeds)
        if not all(isinstance(d, str) and d for d in self.mixed_with):
            raise ValueError("mixed_with lists the output folders of finished studies, got %r" % (self.mixed_with,))
        if any(m < 0 for m in self.margins) or self.fqe_steps < 0 or self.noise_episodes < 2:
            raise ValueError("margins >= 0, fqe_steps >= 0 and noise_episodes >= 2 required")


# ---------------------------------------------------------------------- 1. training arms
def train_arm(cfg: OPEStudyConfig, out: str, arm: str, seed: int, dataset, pretrained: str, preset: str, progress: bool):
    from go1o4.config import load_config
    from go1o4.experiments.common import reuse_critics
    from go1o4.offline_finetune.config import OfflineConfig
    from go1o4.offline_finetune.train import OfflineRun

    over = ["algo=uni_o4", "seed=%d" % seed, "init=pretrained", "pretrained=%s" % pretrained,
            "device=%s" % cfg.device, "improve.snapshots=true", "ope.method=am_q", "ope.falls=alive_only",
            "ope.margin=0"]
    over += ["%s=%s" % kv for kv in dict(cfg.common, **cfg.arms[arm]).items()]
    d = os.path.join(out, "runs", arm, "seed_%d" % seed)
    run = OfflineRun(load_config(OfflineConfig, preset, over), dataset, d, progress=progress)
    for other in cfg.arms:
        if other != arm and reuse_critics(run, os.path.join(out, "runs", other, "seed_%d" % seed)):
            break
    summary = run.run()
    return run, summary


def run_policies(run_dir: str) -> Tuple[List[str], Dict[int, List[int]]]:
    """(paths, order): index 0 is member 0 at step 0 (every member starts there); order[k] = member k's
    candidates in check order, starting with 0."""
    from go1o4.experiments.evidence import snapshots

    snaps = snapshots(run_dir)
    start = [p for p in snaps if p["step"] == 0 and p["member"] == 0]
    if not start:
        raise ValueError("%s has no step-0 snapshot (improve.snapshots was off?)" % run_dir)
    paths, order = [start[0]["path"]], {}
    for p in sorted((p for p in snaps if p["step"] > 0), key=lambda p: (p["member"], p["step"])):
        order.setdefault(p["member"], [0]).append(len(paths))
        paths.append(p["path"])
    return paths, order


def training_decisions(run_dir: str, order: Dict[int, List[int]]) -> Dict[int, List[Tuple[int, int, bool]]]:
    """The decisions the run's own gate made in training (``ope/accepted`` per check), as (reference,
    candidate, accepted) along each member's candidates (same indices as :func:`run_policies`)."""
    import json

    with open(os.path.join(run_dir, "metrics.json")) as f:
        rows = [r for r in json.load(f)["improve"] if "ope/accepted" in r and r["step"] > 0]
    rows.sort(key=lambda r: r["step"])
    out = {}
    for k, cands in order.items():
        best, dec = cands[0], []
        for j, r in zip(cands[1:], rows):
            ok = bool(r["ope/accepted"][k])
            dec.append((best, j, ok))
            best = j if ok else best
        out[k] = dec
    return out


# ---------------------------------------------------------------------- 3. every evaluator on every snapshot
def evaluator_scores(run, ens, evaluators: Dict[str, Dict[str, Any]], fqe_steps: int,
                     am_q_starts=None) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{evaluator: (total, count)} of shape (N, B) for the N members of ``ens``, with the run's own Q/V and
    model (AM-Q from ``am_q_starts``, default the run's training start states) and one FQE fit on its
    held-out episodes (a head per policy, Monte-Carlo warm start) shared by every FQE evaluator."""
    import torch

    from go1o4.offline_finetune.critic_check import discounted_returns
    from go1o4.offline_finetune.fqe import FQE
    from go1o4.offline_finetune.ope import am_q_per_start, model_return_per_start, start_states

    ocfg, out, fqe_values = run.cfg, {}, None
    starts = run.ope_starts if am_q_starts is None else am_q_starts
    for name, e in evaluators.items():
        if e["method"] == "am_q":
            fall = float(e.get("fall_value", 0.0)) if e.get("falls", "terminal") == "terminal" else None
            out[name] = am_q_per_start(ens, run.dynamics, run.value, starts, ocfg.ope.horizon, ocfg.ope.seed,
                                       ocfg.dynamics.sample, fall_value=fall)
            continue
        if e["method"] == "model_return":
            v = model_return_per_start(ens, run.dynamics, starts, int(e.get("horizon", ocfg.ope.horizon)),
                                       ocfg.value.gamma, ocfg.ope.seed,
                                       ocfg.dynamics.sample, float(e.get("pessimism", ocfg.ope.pessimism)),
                                       float(e.get("fall_value", 0.0)))
            out[name] = (v, np.ones_like(v))
            continue
        if fqe_values is None:
            v = run.val_tr
            mc = discounted_returns(v.rewards, v.terminals, v.episode_ids, ocfg.value.gamma)[0]
            torch.manual_seed(ocfg.seed)
            fqe = FQE(ocfg.ope.fqe, ens.ensemble_size, ocfg.value.gamma, run.val.t, run.obs_mean, run.obs_std,
                      mc_returns=mc, seed=ocfg.ope.seed)
            fqe.mc_init(ocfg.ope.fqe.mc_init_steps)
            fqe.tie_heads()  # equal policies score equal: differences come from the policies
            fqe.fit(ens, fqe_steps)
            fqe_values = fqe.values(ens, start_states(run.val["observations"], ocfg.ope.num_starts, ocfg.ope.seed))
        out[name] = (fqe_values, np.ones_like(fqe_values))
    return out


def score_policies(run, paths: List[str], cfg: OPEStudyConfig,
                   cache: str = "") -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """:func:`evaluator_scores` of the policy files ``paths``, cached in ``cache`` (default
    ``<run>/ope_study_scores.npz``)."""
    from go1o4.config import to_dict
    from go1o4.offline_finetune.pretrained import load_pretrained_actor
    from go1o4.policy_contract import file_sha256
    from go1o4.rl.networks import GaussianActor

    cache = cache or os.path.join(run.out, "ope_study_scores.npz")
    key = repr((SCORES_VERSION, sorted(to_dict(cfg).get("evaluators").items()), cfg.fqe_steps,
                [file_sha256(p) for p in paths]))
    if os.path.exists(cache):
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return {n: (z[n + "/total"], z[n + "/count"]) for n in cfg.evaluators}
    ens = GaussianActor.stack([load_pretrained_actor(p) for p in paths]).to(run.device)
    out = evaluator_scores(run, ens, cfg.evaluators, cfg.fqe_steps)
    arrays = {"key": np.asarray(key)}
    for n, (t, c) in out.items():
        arrays[n + "/total"], arrays[n + "/count"] = np.asarray(t, np.float64), np.asarray(c, np.float64)
    np.savez(cache + ".tmp.npz", **arrays)
    os.replace(cache + ".tmp.npz", cache)
    return out


# ---------------------------------------------------------------------- the whole study
def analyse(cfg: OPEStudyConfig, runs: List[Dict[str, Any]], noise: float) -> Dict[str, Any]:
    """Per arm: the gate it trained with, the base rates, and each evaluator x margin replayed (decision
    stats, pair ordering within seeds, Spearman, where the replayed gate ends)."""

    table: Dict[str, Dict[str, Any]] = {}
    for arm in cfg.arms:
        mine = [r for r in runs if r["arm"] == arm]
        table["%s|in_training|0" % arm] = M.gate_row(
            [(dec, r["true_return"]) for r in mine for dec in training_decisions(r["dir"], r["order"]).values()], noise)
        for name, accept in BASE_RATES.items():
            table["%s|%s|0" % (arm, name)] = M.gate_row(
                [(M.constant_gate(o, accept), r["true_return"]) for r in mine for o in r["order"].values()], noise)
        for ev in cfg.evaluators:
            for m in cfg.margins:
                table["%s|%s|%g" % (arm, ev, m)] = M.evaluator_row(mine, lambda r: r["order"].values(), ev, m, noise)
    return table


def run_study(cfg: OPEStudyConfig, out: str, command: str, progress: bool = True, say=print) -> Dict[str, Any]:
    from go1o4.config import to_dict
    from go1o4.data.log_format import atomic_write_json
    from go1o4.experiments import ope_study_report as rep
    from go1o4.experiments.common import resolve
    from go1o4.experiments.evidence import Evaluator
    from go1o4.experiments.evidence_report import repeat_spread
    from go1o4.experiments.ope_study_mixed import analyse as analyse_mixed
    from go1o4.experiments.ope_study_mixed import mixed_seed
    from go1o4.offline_finetune.cli import PRESETS, preset_path
    from go1o4.offline_finetune.dataset import load_dataset

    pretrained = resolve(cfg.pretrained)
    dataset = load_dataset(resolve(cfg.dataset) if cfg.dataset != "uni_o4_real" else cfg.dataset, progress=progress)
    preset = preset_path(cfg.offline_preset) if cfg.offline_preset in PRESETS else cfg.offline_preset
    runs, mixed, timings = [], [], {"train": 0.0, "score": 0.0, "truth": 0.0, "mixed": 0.0}
    ev = Evaluator(cfg, out, progress)
    try:
        for n, seed in enumerate(cfg.seeds):
            scorer = None
            for arm in (a for a in cfg.arms if n < cfg.max_seeds.get(a, len(cfg.seeds))):
                t0 = time.time()
                run, summary = train_arm(cfg, out, arm, seed, dataset, pretrained, preset, progress)
                t1 = time.time()
                paths, order = run_policies(run.out)
                scores = score_policies(run, paths, cfg)
                t2 = time.time()
                truth = [ev("%s/seed_%d/%s" % (arm, seed, os.path.basename(p)[:-5]), p, cfg.truth)["all"]["return"]
                         for p in paths]
                timings["train"] += t1 - t0
                timings["score"] += t2 - t1
                timings["truth"] += time.time() - t2
                runs.append({"arm": arm, "seed": seed, "dir": run.out, "paths": paths,
                             "order": {str(k): v for k, v in order.items()}, "true_return": truth,
                             "scores": {n: [t.tolist(), c.tolist()] for n, (t, c) in scores.items()},
                             "critic_check": summary.get("critic_check"), "wall_s": summary.get("stage_wall_time_s"),
                             "accepted_in_training": summary.get("accepted_updates")})
                say("%s seed %d: %d policies, start %.2f, best %.2f, worst %.2f" % (
                    arm, seed, len(paths), truth[0], max(truth), min(truth)))
                scorer = run if scorer is None else scorer  # the seed's first arm scores the mixed set
            if cfg.mixed_with and scorer is not None:
                t0 = time.time()
                mixed.append(mixed_seed(cfg, out, seed, scorer, [r for r in runs if r["seed"] == seed], ev,
                                        lambda r, p, c: score_policies(r, p, cfg, c)))
                timings["mixed"] += time.time() - t0
                say("mixed seed %d: %d policies" % (seed, len(mixed[-1]["paths"])))
        reps = EvalConfig(speeds=cfg.truth.speeds, episodes=cfg.noise_episodes, episode_steps=cfg.truth.episode_steps,
                          warmup_steps=cfg.truth.warmup_steps)
        noise_ev = ev("noise/start_repeats", runs[0]["paths"][0], reps)
        noise = repeat_spread([noise_ev])
    finally:
        ev.close()
    for r in runs:
        r["order"] = {int(k): v for k, v in r["order"].items()}
    table = analyse(cfg, runs, noise)
    if mixed:
        table.update(analyse_mixed(cfg.evaluators, cfg.margins, mixed, noise))
    result = {"command": command, "config": to_dict(cfg), "noise": noise, "noise_eval": noise_ev["speeds"],
              "table": table, "runs": runs, "mixed": mixed, "timings": timings, "png": "ope_study.png"}
    rep.plot(result, os.path.join(out, result["png"]))
    atomic_write_json(os.path.join(out, "study.json"), result)
    rep.write_markdown(os.path.join(out, "OPE_STUDY.md"), result)
    return result


def add_arguments(p) -> None:
    p.add_argument("--config", default=None, help="YAML with OPEStudyConfig keys (default: the shipped study)")
    p.add_argument("--out", default="runs/ope_study", help="output directory (resumes what is there)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set seeds=[0] (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] for offline training (config key device)")


def run(args) -> int:
    from go1o4.config import ConfigError, load_config
    from go1o4.offline_finetune.dataset import DatasetError
    from go1o4.offline_finetune.pretrained import PretrainedError
    from go1o4.rl.device import resolve_device

    try:
        cfg = load_config(OPEStudyConfig, args.config or REPO_CONFIG,
                          args.overrides + (["device=" + args.device] if args.device else []))
        resolve_device(cfg.device)
        res = run_study(cfg, args.out, "go1o4 " + " ".join(sys.argv[1:]), not args.no_progress)
    except (ConfigError, DatasetError, PretrainedError, ValueError, FileNotFoundError) as e:
        sys.stderr.write("go1o4 ope-study: %s\n" % e)
        return 2
    for key, row in res["table"].items():
        print("%-40s decisions %.2f (%d resolved), within 25%% %.2f, pairs %.2f" % (
            key, row["accuracy"], row["resolved"], row["accuracy_within_25pct"], row["pairs"]["accuracy"]))
    print("study: %s" % os.path.join(args.out, "OPE_STUDY.md"))
    return 0
