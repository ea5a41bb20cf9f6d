"""``go1o4 offline-evidence``: simulated-robot evidence for offline Uni-O4 (one_step vs uni_o4 vs IQL).

    go1o4 offline-evidence --out runs/offline_evidence                      # 3 seeds, medium budget
    go1o4 offline-evidence --out runs/x --set seeds=[0] --set max_seeds={one_step: 1}

1. ``one_step``, ``uni_o4`` and ``iql`` offline on the same data and Q/V/dynamics settings, several seeds,
   each in ``<out>/runs/<method>/seed_<s>`` (resumable; Uni-O4 with ``improve.snapshots``). The value and
   dynamics stages depend only on the data, the seed and their configs, never on the policy, so the first
   finished run of a seed lends them to the others (:func:`go1o4.experiments.common.reuse_critics`): the same critics each would train.
2. Evaluation on the simulated mattress through the runtime (online_finetune.evaluate) at a low and a high
   speed: every exported policy, the pretrained policy (deterministic) and the behaviour policy as it
   collected the data (pretrained mean + the collector's exploration std, stochastic).
3. AM-Q quality (paper Fig. 6a): every Uni-O4 member at every OPE check, the AM-Q score training recorded vs
   its true simulated return: pair-ordering accuracy and the accept/reject decision accuracy.
4. ``evidence.json``, ``EVIDENCE.md`` and ``ope_scatter.png`` in ``<out>``.
"""
import glob
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List

import numpy as np

from go1o4.experiments.common import reuse_critics
from go1o4.experiments.config import CONFIGS
from go1o4.offline_finetune.algorithms import ALGORITHMS, algorithm_names
from go1o4.online_finetune.config import EvalConfig
from go1o4.robot_runtime.rollout import RolloutConfig

METHODS = tuple(algorithm_names())  # offline_finetune.algorithms: uni_o4, iql, one_step
MEDIUM_PIPELINE = os.path.join(CONFIGS, "medium.yaml")  # the pipeline budget the same data were collected for


@dataclass
class EvidenceConfig:
    dataset: str = "runs/pipeline_medium/data/dataset.h5"
    methods: List[str] = field(default_factory=lambda: list(METHODS))  # trained method by method, in this order
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    max_seeds: Dict[str, int] = field(default_factory=dict)  # e.g. {one_step: 2} when the budget is short
    init: str = "pretrained"  # A.4 recipe; "data": BC from the dataset
    pretrained: str = "sim_pretrain/policies/go1_flat.onnx"
    offline_preset: str = "paper"
    offline_overrides: Dict[str, Any] = field(default_factory=lambda: medium_offline_overrides())
    iql_overrides: Dict[str, Any] = field(default_factory=lambda: {"iql.steps": 2000, "iql.eval_every": 500})
    behaviour_std_scale: float = 0.0  # 0: the collector's std_scale from done.json beside the dataset
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(episodes=2, episode_steps=1000))
    snapshot_eval: EvalConfig = field(default_factory=lambda: EvalConfig(episodes=1, episode_steps=500))
    robot: RolloutConfig = field(default_factory=RolloutConfig)
    device: str = "auto"  # offline training device (go1o4.rl.device)

    def validate(self) -> None:
        from go1o4.rl.device import check_device_spec
        self.device = check_device_spec(self.device)
        bad = sorted(set(self.methods) - set(METHODS))
        if bad or not self.methods or not self.seeds:
            raise ValueError("methods must be a non-empty subset of %s (got %s) and seeds non-empty" % (METHODS, bad))
        if self.behaviour_std_scale < 0:
            raise ValueError("behaviour_std_scale must be >= 0")


def medium_offline_overrides() -> Dict[str, Any]:
    """The offline overrides of the medium pipeline budget (``online_finetune/configs/medium.yaml``)."""
    from go1o4.config import load_yaml

    return dict(load_yaml(MEDIUM_PIPELINE)["offline_overrides"])


# ---------------------------------------------------------------------- training
def offline_config(cfg: EvidenceConfig, method: str, seed: int, pretrained: str, preset: str):
    from go1o4.config import load_config
    from go1o4.offline_finetune.config import OfflineConfig

    over = ["algo=%s" % method, "seed=%d" % seed, "init=%s" % cfg.init, "pretrained=%s" % pretrained,
            "device=%s" % cfg.device]
    extra = dict(cfg.offline_overrides, **(cfg.iql_overrides if method == "iql" else {}))
    over += ["%s=%s" % kv for kv in extra.items()] + (["improve.snapshots=true"] if method == "uni_o4" else [])
    return load_config(OfflineConfig, preset, over)


def frozen_preset(cfg: EvidenceConfig, out: str) -> str:
    """The offline preset as it was when this evidence run started (``<out>/offline_preset.yaml``), so that
    a later edit of the shipped preset cannot make the seeds of one evidence run differ."""
    from go1o4.offline_finetune.cli import PRESETS, preset_path

    path = os.path.join(out, "offline_preset.yaml")
    if not os.path.exists(path):
        os.makedirs(out, exist_ok=True)
        shutil.copyfile(preset_path(cfg.offline_preset) if cfg.offline_preset in PRESETS else cfg.offline_preset, path)
    return path


def train_all(cfg: EvidenceConfig, out: str, pretrained: str, progress: bool, say) -> Dict[str, Dict[str, Any]]:
    from go1o4.offline_finetune.dataset import load_dataset
    from go1o4.offline_finetune.train import OfflineRun

    dataset, runs, preset = load_dataset(cfg.dataset, progress=progress), {}, frozen_preset(cfg, out)
    for method in cfg.methods:
        for seed in cfg.seeds[:cfg.max_seeds.get(method, len(cfg.seeds))]:
            d = os.path.join(out, "runs", method, "seed_%d" % seed)
            t0 = time.time()
            run = OfflineRun(offline_config(cfg, method, seed, pretrained, preset), dataset, d, progress=progress)
            for src in sorted(glob.glob(os.path.join(out, "runs", "*", "seed_%d" % seed))):
                if reuse_critics(run, src):
                    say("%s seed %d: value and dynamics from %s" % (method, seed, src))
                    break
            s = run.run()
            info = dict(dir=d, method=method, seed=seed, **held_out(run, s))
            with open(os.path.join(d, "evidence_info.json"), "w") as f:
                json.dump(info, f, indent=1)
            runs["%s_seed_%d" % (method, seed)] = info
            say("%s seed %d: member %s, OPE %s (%.0f s)" % (method, seed, s["selected_member"],
                                                            s["ope_best_scores"], time.time() - t0))
    return runs


def held_out(run, summary: Dict[str, Any]) -> Dict[str, Any]:
    """Held-out log-likelihood of the dataset actions under the selected final member, and the final
    members' disagreement (offline_finetune.bc); the BC-stage values of summary.json next to them."""
    import torch

    from go1o4.offline_finetune.bc import EnsembleBC

    with torch.no_grad():
        ev = EnsembleBC(run.actor, run.cfg.bc).evaluate(run.val["observations"], run.val["actions"])
    member = int(summary["selected_member"])
    return {"val_log_likelihood": float(ev["log_likelihood"][member]), "disagreement": float(ev["action_std"]),
            "bc_stage_val_log_likelihood": summary.get("bc_val_log_likelihood"),
            "bc_stage_disagreement": summary.get("bc_action_std"), "selected_member": member,
            "ope_best_scores": summary.get("ope_best_scores"), "stage_wall_time_s": summary.get("stage_wall_time_s")}


# ---------------------------------------------------------------------- evaluation in the simulator
class Exploring:
    """A RobotRunner whose episodes act as the collector did: Gaussian exploration around the policy mean."""

    def __init__(self, runner, log_std: np.ndarray, scale: float, seed: int):
        self.runner, self.log_std, self.scale, self.seed, self.count = runner, log_std, scale, seed, 0

    def episode(self, command, max_steps, exploration=None, **kw):
        from go1o4.robot_runtime.rollout import exploration as make

        self.count += 1
        return self.runner.episode(command, max_steps, exploration=make(self.log_std, self.seed + self.count,
                                                                         self.scale), **kw)


class Evaluator:
    """Each policy evaluated once (cached in ``<out>/eval/<name>.json``; identical ONNX files evaluated once)."""

    def __init__(self, cfg: EvidenceConfig, out: str, progress: bool):
        self.cfg, self.dir, self.progress, self.runner = cfg, os.path.join(out, "eval"), progress, None
        self.cache: Dict[str, Dict[str, Any]] = {}
        for p in glob.glob(os.path.join(self.dir, "**", "*.json"), recursive=True):
            with open(p) as f:
                doc = json.load(f)
            self.cache[doc["cache_key"]] = doc

    def __call__(self, name: str, path: str, ecfg: EvalConfig, std_scale: float = 0.0) -> Dict[str, Any]:
        from go1o4.data.log_format import atomic_write_json
        from go1o4.online_finetune.evaluate import evaluate
        from go1o4.robot_runtime.rollout import RobotRunner, load_checked_policy

        target = os.path.join(self.dir, name + ".json")
        policy = load_checked_policy(path)
        key = "%s/%d/%d/%g" % (policy.sha256, ecfg.episodes, ecfg.episode_steps, std_scale)
        if os.path.exists(target):
            with open(target) as f:
                doc = json.load(f)
            if doc.get("cache_key") == key:
                return doc  # a re-trained policy under the same name (other file hash) is evaluated again
        if key in self.cache:
            ev = dict(self.cache[key], same_as=self.cache[key]["name"])
        else:
            if self.runner is None:
                self.runner = RobotRunner(self.cfg.robot, None, seed=20_000).start()
            runner = self.runner
            if std_scale > 0:
                log_std = policy.contract_log_std()
                if log_std is None:
                    raise ValueError("%s: its contract has no policy.log_std, so the behaviour policy's exploration "
                                     "std is unknown" % path)
                runner = Exploring(self.runner, log_std, std_scale, seed=30_000)
            from tqdm import tqdm
            bar = tqdm(total=len(ecfg.speeds) * ecfg.episodes * ecfg.episode_steps, desc="eval " + name,
                       disable=not self.progress, mininterval=2.0, leave=False)
            ev = evaluate(runner, policy, ecfg.speeds, ecfg.episodes, ecfg.episode_steps, ecfg.warmup_steps, bar.update)
            bar.close()
        ev.update(name=name, policy=os.path.abspath(path), cache_key=key, stochastic_std_scale=std_scale)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        atomic_write_json(target, ev)
        self.cache.setdefault(key, ev)
        return ev

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()


def snapshots(run_dir: str) -> List[Dict[str, Any]]:
    """Uni-O4's improvement-stage snapshots of ``run_dir`` with the AM-Q score training recorded for each."""
    from go1o4.offline_finetune.train import SNAPSHOT

    with open(os.path.join(run_dir, "metrics.json")) as f:
        rows = {r["step"]: r["ope/score"] for r in json.load(f)["improve"] if "ope/score" in r}
    out = []
    for step in sorted(rows):
        for i, score in enumerate(rows[step]):
            path = os.path.join(run_dir, SNAPSHOT % (step, i))
            if os.path.exists(path):
                out.append({"step": step, "member": i, "score": float(score), "path": path})
    return out


def std_scale_of(cfg: EvidenceConfig) -> float:
    if cfg.behaviour_std_scale > 0:
        return cfg.behaviour_std_scale
    done = os.path.join(os.path.dirname(os.path.abspath(cfg.dataset)), "done.json")
    if not os.path.exists(done):
        raise ValueError("behaviour_std_scale is 0 (read from the collection) but %s does not exist: set it" % done)
    with open(done) as f:
        return float(json.load(f)["std_scale"])


# ---------------------------------------------------------------------- the whole thing
LABELS = {name: a.label for name, a in ALGORITHMS.items()}


def run_evidence(cfg: EvidenceConfig, out: str, command: str, progress: bool = True, say=print) -> Dict[str, Any]:
    from go1o4.config import to_dict
    from go1o4.data.log_format import atomic_write_json
    from go1o4.experiments import evidence_report as rep
    from go1o4.experiments.common import resolve

    pretrained = cfg.pretrained if os.path.exists(cfg.pretrained) else resolve(cfg.pretrained)
    scale, timings = std_scale_of(cfg), {}
    t0 = time.time()
    runs = train_all(cfg, out, pretrained, progress, say)
    timings["train"], t0 = time.time() - t0, time.time()
    ev = Evaluator(cfg, out, progress)
    try:
        base = {"pretrained (deterministic)": ev("pretrained", pretrained, cfg.eval),
                "behaviour (pretrained, std x%g, stochastic)" % scale: ev("behaviour", pretrained, cfg.eval, scale)}
        finals = {k: ev(k, os.path.join(info["dir"], "policy.onnx"), cfg.eval) for k, info in runs.items()}
        timings["evaluate"], t0 = time.time() - t0, time.time()
        pre_snap = ev("snapshots/pretrained", pretrained, cfg.snapshot_eval)["all"]["return"]
        points, seen = [], set()
        for k, info in runs.items():
            for p in snapshots(info["dir"]) if info["method"] == "uni_o4" else []:
                e = ev("snapshots/%s_step_%06d_member_%d" % (k, p["step"], p["member"]), p["path"], cfg.snapshot_eval)
                p.update(seed=info["seed"], true_return=e["all"]["return"], fall_rate=e["all"]["fall"],
                         returns={s: e["speeds"][s]["return"] for s in e["speeds"]},
                         duplicate=(info["seed"], e["cache_key"]) in seen)  # e.g. the members at step 0
                seen.add((info["seed"], e["cache_key"]))
                points.append(p)
        timings["evaluate_snapshots"] = time.time() - t0
    finally:
        ev.close()
    per_seed: Dict[str, List[Dict[str, float]]] = {}
    for k, info in runs.items():
        row = rep.eval_row(finals[k], cfg.eval.speeds)
        row.update(val_log_likelihood=info["val_log_likelihood"], disagreement=info["disagreement"])
        per_seed.setdefault(LABELS[info["method"]], []).append(row)
    table = rep.mean_std_table(dict({k: [rep.eval_row(v, cfg.eval.speeds)] for k, v in base.items()}, **per_seed))
    noise = rep.repeat_spread(list(finals.values()) + [base["pretrained (deterministic)"]])
    noise *= cfg.snapshot_eval.episode_steps / float(cfg.eval.episode_steps)
    result = {"command": command, "config": to_dict(cfg), "behaviour_std_scale": scale, "speeds": cfg.eval.speeds,
              "table": table, "per_seed": per_seed, "runs": runs, "ope": rep.ope_quality(points, noise) if points else {},
              "ope_points": points, "pretrained_snapshot_return": pre_snap, "timings": timings,
              "png": "ope_scatter.png"}
    if points:
        rep.plot_ope(points, pre_snap, os.path.join(out, result["png"]))
    atomic_write_json(os.path.join(out, "evidence.json"), result)
    rep.write_markdown(os.path.join(out, "EVIDENCE.md"), result)
    return result


def add_arguments(p) -> None:
    p.add_argument("--out", default="runs/offline_evidence", help="output directory (resumes what is there)")
    p.add_argument("--config", default=None, help="YAML with EvidenceConfig keys (defaults: the medium budget)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set seeds=[0,1] --set max_seeds={one_step: 1} (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] for offline training (config key device)")


def run(args) -> int:
    from go1o4.config import ConfigError, load_config
    from go1o4.offline_finetune.dataset import DatasetError
    from go1o4.offline_finetune.pretrained import PretrainedError
    from go1o4.rl.device import resolve_device

    try:
        cfg = load_config(EvidenceConfig, args.config, args.overrides + (["device=" + args.device] if args.device else []))
        resolve_device(cfg.device)
        res = run_evidence(cfg, args.out, "go1o4 " + " ".join(sys.argv[1:]), not args.no_progress)
    except (ConfigError, DatasetError, PretrainedError, ValueError, FileNotFoundError) as e:
        sys.stderr.write("go1o4 offline-evidence: %s\n" % e)
        return 2
    for name, row in res["table"].items():
        print("%-45s return %s / %s" % (name, row["return_low"]["mean"], row["return_high"]["mean"]))
    print("evidence: %s" % os.path.join(args.out, "EVIDENCE.md"))
    return 0
