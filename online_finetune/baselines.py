"""IQL online fine-tuning baseline: keep training IQL on a replay buffer that receives the online episodes.

Start from an offline IQL run (``go1o4 offline --algo iql``: Q, target Q, V with their optimisers from its
checkpoint, the AWR policy from ``policy_actor.pt``). The replay buffer holds the offline transitions and
every online transition; after each online episode (stochastic actions from the AWR policy, logged by the
runtime) ``updates_per_step`` x steps gradient steps of Q/V (Eq. 2-3) and of the AWR policy are taken on
uniform minibatches (Kostrikov et al. 2021, online fine-tuning). The other baselines need no code of
their own: PPO from the pretrained policy is :class:`online_finetune.trainer.OnlineTrainer` with
``init=pretrained`` (fresh critic), and the pretrained policy unchanged is evaluated as is.

Crash safety, as for the Uni-O4 trainer: after each episode's gradient steps the networks, optimisers, the
replay sampler's RNG and the list of consumed episode files are saved atomically (``checkpoint.pt``). On a
restart the buffer is rebuilt from the offline data and the consumed logs, and every logged episode not
consumed yet (incl. one cut by the crash) is consumed first: no robot step is lost, none is trained on twice.
"""
import json
import os
import time
from typing import Any, Dict, Optional

import numpy as np
import torch
from go1o4.offline_finetune.config import OfflineConfig
from go1o4.offline_finetune.iql import AWR
from go1o4.offline_finetune.value import IQLValue
from go1o4.online_finetune.collector import collect_logged_episode
from go1o4.online_finetune.config import IQLOnlineConfig, OnlineConfig
from go1o4.online_finetune.evaluate import evaluate
from go1o4.online_finetune.rollouts import (
    Segment,
    episode_stats,
    load_segment,
    read_ledger,
    transitions,
    unconsumed_segments,
)
from go1o4.online_finetune.runfiles import atomic_torch_save, lock_dir
from go1o4.robot_runtime.rollout import RobotRunner
from tqdm import tqdm

from go1o4.config import load_config
from go1o4.rl.device import on_cpu, resolve_device, to_floats
from go1o4.rl.export import export_onnx
from go1o4.rl.networks import GaussianActor

REPLAY_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
CHECKPOINT = "checkpoint.pt"
FORMAT = "go1o4.iql_online_checkpoint"


class ReplayBuffer:
    """Float32 transition arrays grown by doubling, uniform minibatches (seeded; the RNG state is checkpointed)."""

    def __init__(self, data: Dict[str, np.ndarray], seed: int):
        self.data = {k: np.array(data[k], dtype=np.float32) for k in REPLAY_FIELDS}
        self.size = len(self.data["rewards"])
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, tr: Dict[str, np.ndarray]) -> None:
        n = len(tr["rewards"])
        if self.size + n > len(self.data["rewards"]):
            cap = max(self.size + n, 2 * len(self.data["rewards"]))
            for k, v in self.data.items():
                grown = np.empty((cap,) + v.shape[1:], np.float32)
                grown[:self.size] = v[:self.size]
                self.data[k] = grown
        for k in REPLAY_FIELDS:
            self.data[k][self.size:self.size + n] = np.asarray(tr[k], np.float32)
        self.size += n

    def sample(self, batch_size: int) -> Dict[str, torch.Tensor]:
        idx = self.rng.integers(0, self.size, batch_size)
        return {k: torch.from_numpy(v[idx]) for k, v in self.data.items()}

    def rng_state(self) -> str:
        return json.dumps(self.rng.bit_generator.state)  # 128-bit ints: JSON keeps them exact

    def set_rng_state(self, s: str) -> None:
        self.rng.bit_generator.state = json.loads(s)


class IQLOnline:
    """The IQL online baseline, resumable after a crash (see the module docstring)."""

    def __init__(self, online: OnlineConfig, cfg: IQLOnlineConfig, iql_dir: str, dataset: Any, out_dir: str,
                 progress: bool = True, say=print):
        self.online, self.cfg, self.out, self.progress, self.say = online, cfg, out_dir, progress, say
        os.makedirs(out_dir, exist_ok=True)
        self._lock = lock_dir(out_dir)
        torch.manual_seed(online.seed)
        off = load_config(OfflineConfig, os.path.join(iql_dir, "config.yaml"))
        ck = torch.load(os.path.join(iql_dir, "checkpoint.pt"), map_location="cpu", weights_only=True)
        self.value = IQLValue(off.value)
        self.value.load_state_dict(ck["modules"]["value"])
        asd = torch.load(os.path.join(iql_dir, "policy_actor.pt"), map_location="cpu", weights_only=True)
        self.actor = GaussianActor()
        self.actor.load_state_dict(asd)
        self.device = resolve_device(online.device)
        self.value.to(self.device)
        self.actor.to(self.device)
        self.awr = AWR(self.actor, self.value, off.iql, off.improve.min_log_std)
        self.awr.cfg.batch_size = cfg.batch_size
        self.buffer = ReplayBuffer({k: getattr(dataset, k) for k in REPLAY_FIELDS}, online.seed)
        self.log_root = os.path.join(out_dir, "logs")
        self.policy_path = os.path.join(out_dir, "policies", "current.onnx")
        self.state: Dict[str, Any] = {"steps": 0, "grad_steps": 0, "owed": 0.0, "consumed": [], "skipped": [],
                                      "history": [], "curve": [], "curve_done": [], "wall_s": 0.0}
        self.pending, self.wall_start = [], time.time()
        if os.path.exists(self.checkpoint_path):
            self._resume()
        self._load_pending()
        sessions = len(os.listdir(self.log_root)) if os.path.isdir(self.log_root) else 0
        self.runner = RobotRunner(online.robot, self.log_root, seed=online.seed + 1000 * sessions,
                                  metadata={"iql_online": True})

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.out, CHECKPOINT)

    def save(self) -> None:
        self.state["wall_s"] = float(self.state["wall_s"]) + time.time() - self.wall_start
        self.wall_start = time.time()
        ck = {"format": FORMAT, "version": 1, "value": on_cpu(self.value.state_dict()), "awr": on_cpu(self.awr.state_dict()),
              "buffer_rng": self.buffer.rng_state(), "state": self.state}
        atomic_torch_save(ck, self.checkpoint_path)

    def _resume(self) -> None:
        try:
            ck = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
            if ck.get("format") != FORMAT:
                raise ValueError("format %r, expected %r" % (ck.get("format"), FORMAT))
            self.value.load_state_dict(ck["value"])
            self.awr.load_state_dict(ck["awr"])
        except Exception as e:  # noqa: BLE001 - a damaged or foreign checkpoint must be named, not traced
            raise ValueError("%s cannot be resumed (%s: %s); delete the folder to start over"
                             % (self.checkpoint_path, type(e).__name__, str(e)[:300]))
        self.state = dict(ck["state"])
        from go1o4.data.log_format import LogReadError

        ledger = read_ledger(self.out)
        for key in self.state["consumed"]:  # the buffer as it was: offline data + every consumed episode, in order
            try:
                seg = load_segment(self.log_root, key, (ledger.get(key) or {}).get("final_obs"), need_log_probs=False)
            except (LogReadError, ValueError) as e:
                seg = e
            if not isinstance(seg, Segment):
                raise ValueError("%s: consumed episode %s can no longer be read from %s (%s)"
                                 % (self.checkpoint_path, key, self.log_root, seg or "nothing usable"))
            self.buffer.add(transitions([seg]))
        self.buffer.set_rng_state(ck["buffer_rng"])
        self.say("iql online: resumed at %d steps (%d gradient steps)" % (self.state["steps"], self.state["grad_steps"]))

    def _load_pending(self) -> None:
        """Every logged episode not consumed yet (incl. one cut by a crash) is trained on first."""
        done = set(self.state["consumed"]) | set(self.state["skipped"])
        self.pending, skipped = unconsumed_segments(self.log_root, self.out, done, need_log_probs=False, say=self.say)
        self.state["skipped"] = self.state["skipped"] + skipped
        if self.pending:
            self.say("iql online: %d episode(s) (%d steps) logged before the restart are consumed first"
                     % (len(self.pending), sum(s.logged_steps for s in self.pending)))

    # ------------------------------------------------------------------ loop
    def _export(self) -> None:
        export_onnx(self.actor, self.policy_path, {"online": {"algo": "iql", "steps": self.state["steps"]}})
        self.runner.swap_policy(self.policy_path)

    def _curve(self, final: bool = False) -> None:
        c, st = self.online.curve, self.state
        due = [p for p in c.at_steps if p <= st["steps"] and p not in st["curve_done"]]
        if c.episodes < 1 or not (due or (final and (not st["curve"] or st["curve"][-1]["steps"] != st["steps"]))):
            return
        ev = evaluate(self.runner, self.runner.policy, self.online.eval.speeds, c.episodes, c.episode_steps,
                      min(self.online.eval.warmup_steps, c.episode_steps - 1))
        st["curve_done"] = st["curve_done"] + due
        st["curve"] = st["curve"] + [{"steps": st["steps"], "all": ev["all"], "speeds": ev["speeds"]}]

    def _collect(self) -> Optional[Segment]:
        """One training episode with the running policy; read back from its log like after a crash."""
        st = self.state
        index = len(st["consumed"]) + len(st["skipped"])
        key, steps, seg = collect_logged_episode(self.runner, self.online, index, self.actor.log_std.detach().numpy(),
                                                 self.out, meta={"iql_online": index}, need_log_probs=False)
        if seg is None:  # nothing usable (e.g. NaN from the first step): the robot time still counts
            st["skipped"], st["steps"] = st["skipped"] + [key], st["steps"] + steps
            self.save()
        return seg

    def consume(self, seg: Segment) -> None:
        """Add one episode to the buffer and take the gradient steps it pays for (the caller checkpoints)."""
        st = self.state
        self.buffer.add(transitions([seg]))
        st["owed"] += self.cfg.updates_per_step * len(seg)
        stats: Dict[str, float] = {}
        while st["owed"] >= 1.0:
            batch = {k: v.to(self.device) for k, v in self.buffer.sample(self.cfg.batch_size).items()}
            stats = dict(self.value.update(batch), **self.awr.update(batch))
            st["owed"] -= 1.0
            st["grad_steps"] += 1
        st["steps"] += seg.logged_steps
        st["consumed"] = st["consumed"] + [seg.key]
        st["history"] = st["history"] + [dict(to_floats(stats), steps=st["steps"], grad_steps=st["grad_steps"],
                                              buffer=len(self.buffer), **episode_stats([seg]))]

    def checkpoint(self) -> None:
        stall = self.online.faults.stall_before_checkpoint_s
        if stall > 0:
            print("iql online: episode %d consumed, stalling %.1f s before the checkpoint (fault injection)"
                  % (len(self.state["consumed"]), stall), flush=True)
            time.sleep(stall)
        self.save()

    def train(self) -> Dict[str, Any]:
        o = self.online
        bar = tqdm(total=o.total_steps, initial=min(self.state["steps"], o.total_steps), desc="iql online steps",
                   disable=not self.progress, mininterval=2.0)
        try:
            self.runner.start()
            for seg in self.pending:  # logged before a restart, never trained on
                self.consume(seg)
                self.checkpoint()
                bar.update(seg.logged_steps)
            self.pending = []
            self._export()
            self._curve()
            while self.state["steps"] < o.total_steps:
                seg = self._collect()
                if seg is None:
                    continue
                self.consume(seg)
                bar.update(seg.logged_steps)
                self._export()
                self._curve()
                self.checkpoint()
            self._curve(final=True)
        finally:
            bar.close()
            self.runner.close()
        self.save()
        return self.finish(self.state["wall_s"])

    def finish(self, wall: float) -> Dict[str, Any]:
        st = self.state
        export_onnx(self.actor, os.path.join(self.out, "policy.onnx"), {"online": {"algo": "iql", "steps": st["steps"]}})
        torch.save(on_cpu(self.actor.state_dict()), os.path.join(self.out, "policy_actor.pt"))
        summary = {"steps": st["steps"], "grad_steps": st["grad_steps"], "wall_s": wall, "curve": st["curve"],
                   "policy": os.path.join(self.out, "policy.onnx"), "history": st["history"]}
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
        return summary
