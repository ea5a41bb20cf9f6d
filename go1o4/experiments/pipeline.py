"""``go1o4 pipeline``: the online -> offline -> online recipe (paper A.4) on the simulated Go1, with baselines.

    pretrained policy (rigid ground) --collect on the mattress through the runtime--> dataset
      -> offline Uni-O4 initialised from the pretrained policy (A.4, Eq. 25)     -> uni_o4_offline
      -> online PPO from the offline policy and V                                 -> uni_o4_online
    baselines on the same data and budget: IQL offline -> IQL online (replay buffer), PPO online from the
    pretrained policy (no offline stage), the pretrained policy unchanged.
    -> evaluation on the mattress (low / high speed) -> report.md + PNGs, results.json

Every stage writes ``done.json`` in its folder when it finishes and is skipped on a re-run; the offline
and online trainers resume from their own checkpoints, so a re-run after a crash continues.
"""
import copy
import json
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np

from go1o4.config import load_config, save_config
from go1o4.data.log_format import atomic_write_json
from go1o4.experiments.common import resolve
from go1o4.experiments.config import (
    PipelineConfig,
    offline_only_algorithms,
    pipeline_algorithms,
    pipeline_methods,
    sub_overrides,
)
from go1o4.online_finetune.collector import sample_command
from go1o4.online_finetune.evaluate import evaluate
from go1o4.online_finetune.rollouts import append_ledger, episode_keys, read_ledger
from go1o4.robot_runtime.rollout import RobotRunner, exploration, load_checked_policy

DONE = "done.json"
OFFLINE_DIRS = {a: a + "_offline" for a in pipeline_algorithms() + offline_only_algorithms()}


def done_info(folder: str) -> Optional[Dict[str, Any]]:
    p = os.path.join(folder, DONE)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def policy_paths(seed_dir: str, pretrained: str) -> Dict[str, str]:
    return {m: pretrained if m == "pretrained" else os.path.join(seed_dir, m, "policy.onnx") for m in pipeline_methods()}


def _eval_current(path: str, policy_path: str) -> bool:
    """An evaluation file exists for this very policy file (a re-trained stage's policy is evaluated again)."""
    from go1o4.policy_contract import file_sha256

    if not os.path.exists(path):
        return False
    with open(path) as f:
        sha = json.load(f).get("policy_sha256")
    return sha is None or (os.path.exists(policy_path) and sha == file_sha256(policy_path))  # None: older files


class Pipeline:
    def __init__(self, cfg: PipelineConfig, out_dir: str, progress: bool = True, say=print):
        cfg.validate()
        self.cfg, self.out, self.progress, self.say = cfg, out_dir, progress, say
        os.makedirs(out_dir, exist_ok=True)
        self.pretrained = self._start_policy(resolve(cfg.pretrained))
        self.timings_path = os.path.join(out_dir, "timings.json")
        self.timings: Dict[str, float] = {}
        if os.path.exists(self.timings_path):
            with open(self.timings_path) as f:
                self.timings = json.load(f)
        self.dataset = None

    def _start_policy(self, path: str) -> str:
        """An ONNX policy as it is; a .pt actor checkpoint imported (checked) into ``<out>/start/`` once."""
        if not path.endswith(".pt"):
            return path
        from go1o4.policy_contract import file_sha256
        from go1o4.sim_pretrain.cli_import_policy import import_policy

        d, onnx = os.path.join(self.out, "start"), os.path.join(self.out, "start", "policy.onnx")
        info = done_info(d)
        if info is None or info.get("checkpoint_sha256") != file_sha256(path):
            if not os.path.exists(path):
                raise FileNotFoundError("starting policy checkpoint %s not found" % path)
            rep = import_policy(path, d)
            atomic_write_json(os.path.join(d, DONE), {"checkpoint": path, "checkpoint_sha256": file_sha256(path),
                                                      "onnx_vs_reference": rep["onnx_vs_reference"]})
        return onnx

    def _timed(self, name: str, fn, *args):
        t0 = time.time()
        out = fn(*args)
        if os.path.exists(self.timings_path):  # another process may run other seeds into the same folder
            with open(self.timings_path) as f:
                self.timings = json.load(f)
        self.timings[name] = self.timings.get(name, 0.0) + time.time() - t0
        atomic_write_json(self.timings_path, self.timings)
        return out

    # ------------------------------------------------------------------ stages
    def collect(self) -> str:
        """Mattress data with the pretrained policy (stochastic actions) until ``collect.steps`` are logged."""
        c, d = self.cfg.collect, os.path.join(self.out, "data")
        path = os.path.join(d, "dataset.h5")
        if done_info(d):
            return path
        logs = os.path.join(d, "logs")
        os.makedirs(logs, exist_ok=True)
        policy = load_checked_policy(self.pretrained)
        log_std = policy.contract_log_std()
        log_std = np.zeros(12) if log_std is None else log_std
        steps = self._logged_steps(d, logs)
        from tqdm import tqdm
        bar = tqdm(total=c.steps, initial=min(steps, c.steps), desc="collect", disable=not self.progress, mininterval=2.0)
        with RobotRunner(self.cfg.online.robot, logs, seed=self.cfg.seeds[0], metadata={"collect": True}) as robot:
            robot.swap_policy(self.pretrained)
            while steps < c.steps:
                index = len(episode_keys(logs))
                rng = np.random.default_rng([10_000 + self.cfg.seeds[0], index])
                cmd = sample_command(c.commands, rng)
                res = robot.episode(cmd, min(c.episode_steps, max(2, c.steps - steps)),
                                    exploration=exploration(log_std, int(rng.integers(2 ** 31)), c.std_scale),
                                    meta={"collect": index, "command": cmd})
                key = os.path.relpath(res.log_path, logs)
                append_ledger(d, {"key": key, "steps": res.steps, "end": res.end, "reason": res.reason})
                steps += res.steps
                bar.update(res.steps)
        bar.close()
        ds = self._build(logs)
        ds.save(path)
        ledger = read_ledger(d)
        atomic_write_json(os.path.join(d, DONE), {
            "steps": steps, "episodes": len(ledger), "transitions": len(ds),
            "falls": sum(1 for e in ledger.values() if e.get("end") == "terminal"), "std_scale": c.std_scale,
            "reward": self.cfg.reward, "mean_reward": float(np.mean(ds.rewards))})
        return path

    def _logged_steps(self, d: str, logs: str) -> int:
        from go1o4.data.reader import load_episode
        ledger, total = read_ledger(d), 0
        for key in episode_keys(logs):
            if key in ledger:
                total += int(ledger[key]["steps"])
            else:
                try:
                    total += load_episode(os.path.join(logs, key)).num_steps
                except ValueError:
                    pass
        return total

    def _build(self, logs: str):
        from go1o4.data.dataset import BuildConfig, build_dataset
        ds = build_dataset(logs, BuildConfig(reward=self.cfg.reward), progress=False)
        ds.source = os.path.abspath(logs)
        return ds

    def given_dataset(self) -> str:
        """``dataset`` (e.g. the real logs) built once into ``<out>/data/dataset.h5`` with ``dataset_reward``."""
        from go1o4.offline_finetune.dataset import load_dataset

        d = os.path.join(self.out, "data")
        path = os.path.join(d, "dataset.h5")
        spec = self.cfg.dataset if self.cfg.dataset == "uni_o4_real" else resolve(self.cfg.dataset)
        info = done_info(d)
        if info and info.get("dataset") == spec and info.get("reward") == self.cfg.dataset_reward:
            return path
        ds = load_dataset(spec, reward=self.cfg.dataset_reward, progress=self.progress)
        os.makedirs(d, exist_ok=True)
        ds.save(path)
        atomic_write_json(os.path.join(d, DONE), {"dataset": spec, "reward": self.cfg.dataset_reward,
                                                  "transitions": len(ds), "episodes": int(ds.num_episodes),
                                                  "falls": int(np.sum(ds.terminals)),
                                                  "mean_reward": float(np.mean(ds.rewards))})
        return path

    def load_dataset(self):
        if self.dataset is None:
            from go1o4.data.dataset import TransitionDataset
            path = self._timed("collect", self.given_dataset if self.cfg.dataset else self.collect)
            self.dataset = TransitionDataset.load(path)
            self.dataset.source = path
        return self.dataset

    def offline(self, seed: int, algo: str) -> str:
        from go1o4.offline_finetune.algorithms import get_algorithm
        from go1o4.offline_finetune.cli import preset_path
        from go1o4.offline_finetune.config import OfflineConfig
        from go1o4.offline_finetune.train import OfflineRun

        d = os.path.join(self.out, "seed_%d" % seed, OFFLINE_DIRS[algo])
        if done_info(d):
            return d
        over = ["algo=%s" % algo, "seed=%d" % seed, "device=%s" % self.cfg.device]
        if get_algorithm(algo).bc_from_data:  # uni_o4, one_step (A.4): every member starts from the pretrained policy
            over += ["init=pretrained", "pretrained=%s" % self.pretrained] + sub_overrides("", self.cfg.offline_overrides)
        else:  # IQL learns its policy from the data; the BC ensemble is not used by it
            over += ["init=data", "bc.steps=0"] + sub_overrides("", self.cfg.iql_overrides)
        preset = self.cfg.offline_preset
        ocfg = load_config(OfflineConfig, preset_path(preset) if "/" not in preset else preset, over)
        run = OfflineRun(ocfg, self.load_dataset(), d, progress=self.progress)
        from go1o4.experiments.common import reuse_critics
        for other in pipeline_algorithms():  # value and dynamics depend only on data, seed and their configs
            if other != algo and reuse_critics(run, os.path.join(self.out, "seed_%d" % seed, OFFLINE_DIRS[other])):
                self.say("%s seed %d: value and dynamics of %s reused (same data, seed and configs)" % (algo, seed, other))
                break
        summary = run.run()
        atomic_write_json(os.path.join(d, DONE), {"selected_member": summary.get("selected_member"),
                                                  "ope_best_scores": summary.get("ope_best_scores")})
        return d

    def online(self, seed: int, method: str) -> str:
        from go1o4.online_finetune.trainer import OnlineTrainer

        d = os.path.join(self.out, "seed_%d" % seed, method)
        if done_info(d):
            return d
        ocfg = copy.deepcopy(self.cfg.online)
        ocfg.seed = seed
        if method == "uni_o4_online":
            ocfg.init = "offline"
            tr = OnlineTrainer(ocfg, d, offline_dir=self.offline(seed, "uni_o4"), dataset=self.load_dataset(),
                               progress=self.progress, say=self.say)
        else:
            ocfg.init = "pretrained"
            tr = OnlineTrainer(ocfg, d, pretrained=self.pretrained, dataset=self.load_dataset(),
                               progress=self.progress, say=self.say)
        s = tr.train()
        atomic_write_json(os.path.join(d, DONE), {"updates": s["updates"], "rejected": s["rejected"], "steps": s["steps"]})
        return d

    def iql_online(self, seed: int) -> str:
        from go1o4.online_finetune.baselines import IQLOnline

        d = os.path.join(self.out, "seed_%d" % seed, "iql_online")
        if done_info(d):
            return d
        iql_dir = self.offline(seed, "iql")
        ocfg = copy.deepcopy(self.cfg.online)
        ocfg.seed = seed
        s = IQLOnline(ocfg, self.cfg.iql_online, iql_dir, self.load_dataset(), d, progress=self.progress,
                      say=self.say).train()  # resumes from its checkpoint and logs after a crash
        atomic_write_json(os.path.join(d, DONE), {"steps": s["steps"], "grad_steps": s["grad_steps"]})
        return d

    def judge_seed(self, seed: int) -> None:
        """Each finished offline policy judged on the held-out episodes (experiments.offline_judgement)."""
        from go1o4.experiments.offline_judgement import judge

        for d in (os.path.join(self.out, "seed_%d" % seed, name) for name in OFFLINE_DIRS.values()):
            if done_info(d) and os.path.exists(os.path.join(d, "policy.onnx")):
                judge(d, self.pretrained, self.load_dataset(), self.cfg.judge_fqe_steps, self.progress)

    def evaluate_seed(self, seed: int) -> Dict[str, Any]:
        e = self.cfg.eval
        d = os.path.join(self.out, "seed_%d" % seed, "eval")
        os.makedirs(d, exist_ok=True)
        paths, out = policy_paths(os.path.join(self.out, "seed_%d" % seed), self.pretrained), {}
        todo = [m for m in self.cfg.methods if not _eval_current(os.path.join(d, m + ".json"), paths[m])]
        if todo:
            with RobotRunner(self.cfg.online.robot, None, seed=20_000 + seed) as robot:
                for m in todo:
                    policy = load_checked_policy(paths[m])
                    ev = evaluate(robot, policy, e.speeds, e.episodes, e.episode_steps, e.warmup_steps)
                    ev["policy"], ev["policy_sha256"] = paths[m], policy.sha256
                    atomic_write_json(os.path.join(d, m + ".json"), ev)
                    self.say("eval seed %d %-15s return %.3f tracking error %.3f falls %.2f"
                             % (seed, m, ev["all"]["return"], ev["all"]["tracking_error"], ev["all"]["fall"]))
        for m in self.cfg.methods:
            with open(os.path.join(d, m + ".json")) as f:
                out[m] = json.load(f)
        return out

    # ------------------------------------------------------------------ all of it
    def run(self) -> Dict[str, Any]:
        from go1o4.experiments.report import collect_results, write_report

        if not os.path.exists(self.pretrained):
            raise FileNotFoundError("pretrained policy %s not found (sim_pretrain ships it; or --pretrained PATH)"
                                    % self.pretrained)
        save_config(self.cfg, os.path.join(self.out, "config.yaml"))
        self.load_dataset()
        m = set(self.cfg.methods)
        for seed in self.cfg.seeds:
            tag = "seed_%d/" % seed
            if m & {"uni_o4_offline", "uni_o4_online"}:
                self._timed(tag + "uni_o4_offline", self.offline, seed, "uni_o4")
            if "uni_o4_online" in m:
                self._timed(tag + "uni_o4_online", self.online, seed, "uni_o4_online")
            if m & {"iql_offline", "iql_online"}:
                self._timed(tag + "iql_offline", self.offline, seed, "iql")
            for algo in offline_only_algorithms():
                if algo + "_offline" in m:
                    self._timed(tag + algo + "_offline", self.offline, seed, algo)
            if self.cfg.judge:
                self._timed(tag + "judge", self.judge_seed, seed)
            if "iql_online" in m:
                self._timed(tag + "iql_online", self.iql_online, seed)
            if "ppo_online" in m:
                self._timed(tag + "ppo_online", self.online, seed, "ppo_online")
            self._timed(tag + "evaluate", self.evaluate_seed, seed)
        results = collect_results(self.out, self.cfg, self.timings)
        atomic_write_json(os.path.join(self.out, "results.json"), results)
        write_report(self.out, results)
        return results


def seeds_done(out_dir: str) -> List[str]:
    return sorted(n for n in os.listdir(out_dir) if n.startswith("seed_")) if os.path.isdir(out_dir) else []
