"""IQL online fine-tuning baseline: keep training IQL on a replay buffer that receives the online episodes.

Start from an offline IQL run (``go1o4 offline --algo iql``: Q, target Q, V with their optimisers from its
checkpoint, the AWR policy from ``policy_actor.pt``). The replay buffer holds the offline transitions and
every online transition; after each online episode (stochastic actions from the AWR policy, logged by the
runtime) ``updates_per_step`` x steps gradient steps of Q/V (Eq. 2-3) and of the AWR policy are taken on
uniform minibatches (Kostrikov et al. 2021, online fine-tuning). The other baselines need no code of
their own: PPO from the pretrained policy is :class:`online_finetune.trainer.OnlineTrainer` with
``init=pretrained`` (fresh critic), and the pretrained policy unchanged is evaluated as is.
"""
import json
import os
import time
from typing import Any, Dict

import numpy as np
import torch
from tqdm import tqdm

from go1o4.config import load_config
from go1o4.rl.export import export_onnx
from go1o4.rl.networks import GaussianActor
from offline_finetune.config import OfflineConfig
from offline_finetune.iql import AWR
from offline_finetune.value import IQLValue
from online_finetune.collector import RobotRunner, exploration, sample_command
from online_finetune.config import IQLOnlineConfig, OnlineConfig
from online_finetune.evaluate import evaluate
from online_finetune.rollouts import episode_stats, load_segment, transitions
from online_finetune.runfiles import wait_closed

REPLAY_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


class ReplayBuffer:
    """Growing float32 arrays of transitions with uniform minibatches (seeded)."""

    def __init__(self, data: Dict[str, np.ndarray], seed: int):
        self.data = {k: np.asarray(data[k], dtype=np.float32) for k in REPLAY_FIELDS}
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return int(len(self.data["rewards"]))

    def add(self, tr: Dict[str, np.ndarray]) -> None:
        self.data = {k: np.concatenate([self.data[k], np.asarray(tr[k], np.float32)]) for k in REPLAY_FIELDS}

    def sample(self, batch_size: int) -> Dict[str, torch.Tensor]:
        idx = self.rng.integers(0, len(self), batch_size)
        return {k: torch.from_numpy(v[idx]) for k, v in self.data.items()}


class IQLOnline:
    """The IQL online baseline (stage-level restart: an interrupted run starts over in a fresh folder)."""

    def __init__(self, online: OnlineConfig, cfg: IQLOnlineConfig, iql_dir: str, dataset: Any, out_dir: str,
                 progress: bool = True):
        self.online, self.cfg, self.out, self.progress = online, cfg, out_dir, progress
        os.makedirs(out_dir, exist_ok=True)
        torch.manual_seed(online.seed)
        off = load_config(OfflineConfig, os.path.join(iql_dir, "config.yaml"))
        ck = torch.load(os.path.join(iql_dir, "checkpoint.pt"), map_location="cpu", weights_only=True)
        self.value = IQLValue(off.value)
        self.value.load_state_dict(ck["modules"]["value"])
        asd = torch.load(os.path.join(iql_dir, "policy_actor.pt"), map_location="cpu", weights_only=True)
        self.actor = GaussianActor()
        self.actor.load_state_dict(asd)
        self.awr = AWR(self.actor, self.value, off.iql, off.improve.min_log_std)
        self.awr.cfg.batch_size = cfg.batch_size
        self.buffer = ReplayBuffer({k: getattr(dataset, k) for k in REPLAY_FIELDS}, online.seed)
        self.log_root = os.path.join(out_dir, "logs")
        self.runner = RobotRunner(online.robot, self.log_root, seed=online.seed, metadata={"iql_online": True})
        self.history, self.curve, self.steps, self.grad_steps = [], [], 0, 0
        self.policy_path = os.path.join(out_dir, "policies", "current.onnx")

    def _export(self) -> None:
        export_onnx(self.actor, self.policy_path, {"online": {"algo": "iql", "steps": self.steps}})
        self.runner.swap_policy(self.policy_path)

    def _curve(self, done: set, final: bool = False) -> None:
        c = self.online.curve
        due = [p for p in c.at_steps if p <= self.steps and p not in done]
        if c.episodes < 1 or not (due or (final and (not self.curve or self.curve[-1]["steps"] != self.steps))):
            return
        ev = evaluate(self.runner, self.runner.policy, self.online.eval.speeds, c.episodes, c.episode_steps,
                      min(self.online.eval.warmup_steps, c.episode_steps - 1))
        done.update(due)
        self.curve.append({"steps": self.steps, "all": ev["all"], "speeds": ev["speeds"]})

    def train(self) -> Dict[str, Any]:
        o, t0, done = self.online, time.time(), set()
        bar = tqdm(total=o.total_steps, desc="iql online steps", disable=not self.progress, mininterval=2.0)
        episode, owed = 0, 0.0
        try:
            self.runner.start()
            self._export()
            self._curve(done)
            while self.steps < o.total_steps:
                rng = np.random.default_rng([o.seed, episode])
                cmd = sample_command(o.commands, rng)
                expl = exploration(self.actor.log_std.detach().numpy(), seed=int(rng.integers(2 ** 31)))
                res = self.runner.episode(cmd, o.episode_steps, exploration=expl, meta={"iql_online": episode})
                episode += 1
                if not wait_closed(res.log_path):
                    raise RuntimeError("the runtime's logger did not close %s" % res.log_path)
                key = os.path.relpath(res.log_path, self.log_root)
                seg = load_segment(self.log_root, key, res.final_policy_input, need_log_probs=False)
                self.steps += res.steps
                bar.update(res.steps)
                if seg is None:
                    continue
                self.buffer.add(transitions([seg]))
                owed += self.cfg.updates_per_step * len(seg)
                stats: Dict[str, float] = {}
                while owed >= 1.0:
                    batch = self.buffer.sample(self.cfg.batch_size)
                    stats = self.value.update(batch)
                    stats.update(self.awr.update(batch))
                    owed -= 1.0
                    self.grad_steps += 1
                self.history.append(dict(stats, steps=self.steps, grad_steps=self.grad_steps, buffer=len(self.buffer),
                                         **episode_stats([seg])))
                self._export()
                self._curve(done)
            self._curve(done, final=True)
        finally:
            bar.close()
            self.runner.close()
        return self.finish(time.time() - t0)

    def finish(self, wall: float) -> Dict[str, Any]:
        export_onnx(self.actor, os.path.join(self.out, "policy.onnx"), {"online": {"algo": "iql", "steps": self.steps}})
        torch.save(self.actor.state_dict(), os.path.join(self.out, "policy_actor.pt"))
        summary = {"steps": self.steps, "grad_steps": self.grad_steps, "wall_s": wall, "curve": self.curve,
                   "policy": os.path.join(self.out, "policy.onnx"), "history": self.history}
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
        return summary
