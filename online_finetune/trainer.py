"""``go1o4 online``: PPO fine-tuning on robot sessions (paper Sec. 3.3, online stage of Uni-O4).

Loop: collect whole episodes with stochastic actions (a ~ N(mu(s), exp(log_std)^2), log-probs recorded by
the runtime, every step logged) until ``steps_per_update`` steps are pending, then one PPO update
(clipped surrogate Eq. 8/9 with clip 0.1, GAE with time-limit bootstrapping, frozen reward scale, linear
lr decay), export to ONNX, contract/shape check, hot-swap into the runtime, atomic checkpoint.

Crash safety: the checkpoint (state_dicts only, ``torch.load(weights_only=True)``) records the update
index and the episode files every update consumed; it is replaced atomically after the update. On
resume, every logged episode not consumed yet -- including a crashed one -- is re-read from the logs
and goes into the next update, so no collected step is lost and no update is applied twice. An update
that yields non-finite losses or parameters is rejected: the previous networks and optimiser states
are restored and the running policy is kept.
"""
import copy
import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from go1o4.online_finetune import models
from go1o4.online_finetune.collector import collect_logged_episode
from go1o4.online_finetune.config import OnlineConfig
from go1o4.online_finetune.evaluate import evaluate
from go1o4.online_finetune.rollouts import Segment, episode_stats, ppo_batch, unconsumed_segments
from go1o4.online_finetune.runfiles import atomic_torch_save, lock_dir
from go1o4.robot_runtime.rollout import RobotRunner
from tqdm import tqdm

from go1o4.config import save_config
from go1o4.policy_contract import ContractMismatch, file_sha256
from go1o4.rl.device import on_cpu, resolve_device
from go1o4.rl.export import export_onnx
from go1o4.rl.ppo import PPO
from go1o4.rl.storage import RolloutStorage

CHECKPOINT = "checkpoint.pt"
FORMAT = "go1o4.online_checkpoint"


class UpdateRejected(RuntimeError):
    pass


@dataclass
class TrainerState:
    """Progress of an online run; the checkpoint keeps it as a plain dict under ``state`` (same keys)."""

    update: int = 0  # accepted PPO updates: the running policy is policies/update_<update>.onnx
    attempts: int = 0  # PPO updates tried (accepted + rejected)
    rejected: int = 0  # updates with non-finite losses/parameters, rolled back
    consumed: List[str] = field(default_factory=list)  # episode keys (relative to logs/) trained on, in order
    skipped: List[str] = field(default_factory=list)  # unusable episode keys (never trained on)
    consumed_steps: int = 0  # transitions trained on
    consumed_logged: int = 0  # robot steps logged in the consumed episodes (the lr schedule's clock)
    history: List[Dict[str, Any]] = field(default_factory=list)  # one row per update attempt
    curve: List[Dict[str, Any]] = field(default_factory=list)  # learning-curve evaluations
    curve_done: List[int] = field(default_factory=list)  # curve.at_steps already evaluated
    wall_s: float = 0.0  # training wall time over all sessions
    policy: str = ""  # the running policy, relative to the run folder
    policy_sha256: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: Any) -> "TrainerState":
        """The state of a checkpoint; older ones without ``wall_s`` resume with 0. Anything else that does not
        fit raises ValueError naming the keys."""
        if not isinstance(doc, dict):
            raise ValueError("checkpoint state is %s, not a mapping" % type(doc).__name__)
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in doc and n != "wall_s"]
        unknown = sorted(set(doc) - set(names))
        if missing or unknown:
            raise ValueError("checkpoint state does not fit this version (missing %s, unknown %s)"
                             % (missing or "none", unknown or "none"))
        return cls(**{k: v for k, v in doc.items()})


def fill_storage(batch: Dict[str, np.ndarray], critic, reward_std: float, gamma: float, lam: float) -> RolloutStorage:
    """A (T, 1) RolloutStorage from a ppo_batch: V(s), V(s_final) at cuts, rewards / reward_std, GAE returns."""
    n, dev = len(batch["rewards"]), next(critic.parameters()).device
    st = RolloutStorage(n, 1, batch["obs"].shape[1], batch["actions"].shape[1], device=dev)
    t = {k: torch.as_tensor(v, device=dev) for k, v in batch.items()}
    with torch.no_grad():
        st.values[:, 0] = critic(t["obs"])
        st.truncation_values[:, 0] = critic(t["final_obs"]) * t["timeouts"]
    st.obs[:, 0], st.actions[:, 0], st.log_probs[:, 0] = t["obs"], t["actions"], t["log_probs"]
    st.rewards[:, 0] = t["rewards"] / reward_std
    st.terminals[:, 0], st.timeouts[:, 0] = t["terminals"], t["timeouts"]
    st.step = n
    st.compute_returns(torch.zeros(1, device=dev), gamma, lam)
    return st


class OnlineTrainer:
    """Online PPO on robot sessions with crash-safe checkpoints. See the module docstring."""

    def __init__(self, cfg: OnlineConfig, out_dir: str, offline_dir: Optional[str] = None,
                 pretrained: Optional[str] = None, dataset: Any = None, progress: bool = True,
                 say: Callable[[str], None] = print):
        cfg.validate()
        self.cfg, self.out, self.progress, self._say = cfg, out_dir, progress, say
        self.log_root = os.path.join(out_dir, "logs")
        self.policy_dir = os.path.join(out_dir, "policies")
        for d in (out_dir, self.log_root, self.policy_dir):
            os.makedirs(d, exist_ok=True)
        torch.set_num_threads(max(1, cfg.torch_threads))
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.total_updates = max(1, math.ceil(cfg.total_steps / cfg.steps_per_update))
        self._lock = lock_dir(out_dir)
        self.pending: List[Segment] = []
        self._writer = None
        self.wall_start = time.time()
        if os.path.exists(self.checkpoint_path):
            self._resume()
        else:
            self._init(offline_dir, pretrained, dataset)
        self.runner = RobotRunner(cfg.robot, self.log_root, seed=cfg.seed, metadata={"online_run": os.path.abspath(out_dir)})
        self._load_pending()

    # ------------------------------------------------------------------ setup / checkpoints
    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.out, CHECKPOINT)

    @property
    def actor(self):
        return self.ppo.actor

    @property
    def critic(self):
        return self.ppo.critic

    def say(self, msg: str) -> None:
        (tqdm.write if self.progress else self._say)(msg)

    def _init(self, offline_dir: Optional[str], pretrained: Optional[str], dataset: Any) -> None:
        cfg = self.cfg
        if dataset is None:
            raise models.InitError("online training needs the offline dataset (reward scale, critic normaliser)")
        rewards, ids = np.asarray(dataset.rewards), np.asarray(dataset.episode_ids)
        if cfg.init == "offline":
            if not offline_dir:
                raise models.InitError("init=offline needs the offline run directory")
            actor, critic, info = models.load_offline(offline_dir)
        else:
            if not pretrained:
                raise models.InitError("init=pretrained needs the pretrained policy (.onnx or .pt)")
            obs = np.asarray(dataset.observations, dtype=np.float64)
            actor, critic, info = models.load_pretrained(pretrained, cfg.critic_hidden, obs.mean(0),
                                                         np.maximum(obs.std(0), 1e-2))
        self.reward_std = models.fit_reward_scale(rewards, ids, cfg.reward_scale_gamma)
        if cfg.init == "offline":
            models.scale_critic(critic, 1.0 / self.reward_std)
        self.ppo = self._ppo(actor, critic, self.total_updates)
        self.info = dict(info, reward_std=self.reward_std, dataset_transitions=int(len(rewards)))
        self.state = TrainerState()
        self.state.policy = self._export(0)
        save_config(cfg, os.path.join(self.out, "config.yaml"))
        self.save()
        self.say("online: initialised from %s (reward std %.4g), checkpoint %s" % (info["source"], self.reward_std,
                                                                                  self.checkpoint_path))

    def _resume(self) -> None:
        try:
            ck = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint must be named
            raise models.InitError("%s: unreadable checkpoint (%s)" % (self.checkpoint_path, e))
        if not isinstance(ck, dict) or ck.get("format") != FORMAT:
            raise models.InitError("%s is not an online checkpoint (format %r)" % (self.checkpoint_path,
                                                                                  ck.get("format") if isinstance(ck, dict) else None))
        actor, critic = models.build_actor(ck["actor_arch"]), models.build_critic(ck["critic_arch"])
        self.ppo = self._ppo(actor, critic, int(ck["total_updates"]))
        self.ppo.load_state_dict(ck["ppo"])
        self.reward_std, self.info = float(ck["reward_std"]), dict(ck["info"])
        try:
            self.state = TrainerState.from_dict(ck.get("state"))
        except ValueError as e:
            raise models.InitError("%s: %s; start a new run (another --out)" % (self.checkpoint_path, e))
        path = os.path.join(self.out, self.state.policy)
        if not os.path.exists(path) or file_sha256(path) != self.state.policy_sha256:
            self.state.policy = self._export(self.state.update)  # the checkpoint's networks are the truth
        self.say("online: resumed at update %d (%d steps consumed, %d updates rejected)"
                 % (self.state.update, self.state.consumed_logged, self.state.rejected))

    def _ppo(self, actor, critic, total_updates: int) -> PPO:
        pcfg = copy.deepcopy(self.cfg.ppo)
        if pcfg.schedule == "linear":  # decayed here by online steps consumed (updates take whole episodes)
            pcfg.schedule = "fixed"
        return PPO(actor.to(self.device), critic.to(self.device), pcfg, total_updates=total_updates)

    def _set_lr(self) -> None:
        if self.cfg.ppo.schedule == "linear":
            self.ppo.lr_scale = max(0.0, 1.0 - self.state.consumed_logged / float(self.cfg.total_steps))
            self.ppo._set_lr()

    def save(self) -> None:
        self.state.wall_s = float(self.state.wall_s) + time.time() - self.wall_start
        self.wall_start = time.time()
        ck = {"format": FORMAT, "version": 1, "ppo": on_cpu(self.ppo.state_dict()), "actor_arch": models.arch_of(self.actor),
              "critic_arch": models.arch_of(self.critic), "total_updates": self.total_updates,
              "reward_std": self.reward_std, "info": self.info, "state": self.state.to_dict()}
        atomic_torch_save(ck, self.checkpoint_path)
        from go1o4.data.log_format import atomic_write_json
        atomic_write_json(os.path.join(self.out, "metrics.json"),
                          {"history": self.state.history, "curve": self.state.curve, "info": self.info})

    def _export(self, update: int) -> str:
        rel = "policies/update_%05d.onnx" % update
        export_onnx(self.actor, os.path.join(self.out, rel),
                    {"online": {"update": update, "steps": int(self.state.consumed_logged)}})
        self.state.policy_sha256 = file_sha256(os.path.join(self.out, rel))
        return rel

    # ------------------------------------------------------------------ data
    def _load_pending(self) -> None:
        """Every logged episode no update consumed yet (incl. a crashed one) goes into the next update."""
        done = set(self.state.consumed) | set(self.state.skipped)
        self.pending, skipped = unconsumed_segments(self.log_root, self.out, done, say=self.say)
        self.state.skipped += skipped
        if self.pending:
            self.say("online: %d episodes (%d steps) collected before the restart go into the next update"
                     % (len(self.pending), sum(s.logged_steps for s in self.pending)))

    @property
    def collected(self) -> int:
        return int(self.state.consumed_logged) + sum(s.logged_steps for s in self.pending)

    def collect_one(self) -> Optional[Segment]:
        """One training episode with the running policy; read back from its log like after a crash."""
        index = len(self.state.consumed) + len(self.state.skipped) + len(self.pending)
        key, _, seg = collect_logged_episode(
            self.runner, self.cfg, index, self.actor.log_std.detach().cpu().numpy(), self.out,
            meta={"online_update": self.state.update, "policy": self.state.policy},
            ledger={"update": self.state.update})
        if seg is None:
            self.state.skipped.append(key)
        else:
            self.pending.append(seg)
        return seg

    # ------------------------------------------------------------------ update
    def guarded_update(self, batch: Dict[str, np.ndarray]) -> Dict[str, Any]:
        """One PPO update; on non-finite losses/parameters restore the previous state. Returns stats + accepted."""
        snapshot = copy.deepcopy(self.ppo.state_dict())
        reason = ""
        stats: Dict[str, float] = {}
        try:
            storage = fill_storage(batch, self.critic, self.reward_std, self.cfg.ppo.gamma, self.cfg.ppo.lam)
            with torch.no_grad():
                lp = self.actor.log_prob(storage.obs[:, 0], storage.actions[:, 0])
                stats["ppo/behaviour_logp_gap"] = float((lp - storage.log_probs[:, 0]).abs().mean())
            self.ppo.cfg.num_minibatches = max(1, len(batch["rewards"]) // self.cfg.minibatch_size)
            self._set_lr()
            stats.update(self.ppo.update(storage))
            if not models.all_finite(self.actor, self.critic):
                raise UpdateRejected("non-finite parameters after the update")
            bad = [k for k, v in stats.items() if not np.isfinite(v)]
            if bad:
                raise UpdateRejected("non-finite statistics %s" % bad)
            stats["value/explained_variance"] = float(1 - (storage.returns - storage.values).var()
                                                      / (storage.returns.var() + 1e-8))
        except (FloatingPointError, UpdateRejected, ValueError) as e:  # ValueError: torch.distributions on NaN
            reason = str(e).splitlines()[0]
            self.ppo.load_state_dict(snapshot)
        return dict(stats, accepted=not reason, reason=reason)

    def update(self) -> Dict[str, Any]:
        """PPO on every pending segment, export + check + hot-swap, atomic checkpoint."""
        segs, self.pending = self.pending, []
        snapshot, sha = copy.deepcopy(self.ppo.state_dict()), self.state.policy_sha256
        out = self.guarded_update(ppo_batch(segs))
        if out["accepted"]:
            try:
                rel = self._export(self.state.update + 1)
                self.runner.swap_policy(os.path.join(self.out, rel))  # contract + shape check, then swap
                self.state.update += 1
                self.state.policy = rel
            except (ContractMismatch, ValueError, RuntimeError) as e:
                out.update(accepted=False, reason="exported policy refused: %s" % str(e).splitlines()[0])
                self.ppo.load_state_dict(snapshot)
                self.state.policy_sha256 = sha
        if not out["accepted"]:
            self.say("online: update rejected (%s); the previous policy keeps running" % out["reason"])
        self.state.attempts += 1
        self.state.rejected += int(not out["accepted"])
        self.state.consumed = self.state.consumed + [s.key for s in segs]
        self.state.consumed_steps += sum(len(s) for s in segs)
        self.state.consumed_logged += sum(s.logged_steps for s in segs)
        row = {"update": self.state.update, "attempt": self.state.attempts, "steps": self.state.consumed_logged,
               "episodes": len(segs), "batch_steps": sum(len(s) for s in segs)}
        row.update(episode_stats(segs))
        row.update(out)
        self.state.history = self.state.history + [row]
        if self.cfg.faults.stall_before_checkpoint_s > 0:
            print("online: update %d done, stalling %.1f s before the checkpoint (fault injection)"
                  % (self.state.attempts, self.cfg.faults.stall_before_checkpoint_s), flush=True)
            time.sleep(self.cfg.faults.stall_before_checkpoint_s)
        self.save()
        self._tb(row, self.state.consumed_logged)
        return row

    # ------------------------------------------------------------------ evaluation / logging
    def curve_point(self, final: bool = False) -> Optional[Dict[str, Any]]:
        """Deterministic evaluation when a learning-curve point is due (or at the end)."""
        c, steps = self.cfg.curve, int(self.state.consumed_logged)
        due = [p for p in c.at_steps if p <= steps and p not in self.state.curve_done]
        last = self.state.curve[-1]["steps"] if self.state.curve else None
        if c.episodes < 1 or not (due or (final and last != steps)):
            return None
        ev = evaluate(self.runner, self.runner.policy, self.cfg.eval.speeds, c.episodes, c.episode_steps,
                      min(self.cfg.eval.warmup_steps, c.episode_steps - 1))
        row = {"steps": steps, "update": self.state.update, "all": ev["all"], "speeds": ev["speeds"]}
        self.state.curve = self.state.curve + [row]
        self.state.curve_done = self.state.curve_done + due
        self.save()
        self._tb({"eval/%s" % k: v for k, v in ev["all"].items()}, steps)
        self.say("online: eval at %d steps: return %.3f, tracking error %.3f m/s, falls %.2f"
                 % (steps, ev["all"]["return"], ev["all"]["tracking_error"], ev["all"]["fall"]))
        return row

    def _tb(self, row: Dict[str, Any], step: int) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(os.path.join(self.out, "tb"))
        for k, v in row.items():
            if isinstance(v, (int, float, bool)) and "/" in k and np.isfinite(float(v)):
                self._writer.add_scalar(k, float(v), step)

    # ------------------------------------------------------------------ the loop
    def train(self) -> Dict[str, Any]:
        cfg = self.cfg
        try:
            self.runner.start()
            self.runner.swap_policy(os.path.join(self.out, self.state.policy))
            self.curve_point()
            bar = tqdm(total=cfg.total_steps, initial=min(self.collected, cfg.total_steps), desc="online steps",
                       unit="step", disable=not self.progress, mininterval=2.0)
            while True:
                usable = sum(len(s) for s in self.pending)
                if usable >= cfg.steps_per_update or (self.collected >= cfg.total_steps and usable >= cfg.minibatch_size):
                    row = self.update()
                    bar.set_postfix_str("update %d ret %.3f" % (row["update"], row.get("train/episode_return", 0)))
                    self.curve_point()
                    continue
                if self.collected >= cfg.total_steps:
                    break
                before = self.collected
                self.collect_one()
                bar.update(min(self.collected, cfg.total_steps) - min(before, cfg.total_steps))
            bar.close()
            self.curve_point(final=True)
        finally:
            self.runner.close()
            if self._writer is not None:
                self._writer.close()
        summary = self.finish()
        self._lock.close()  # releases the run directory
        return summary

    def finish(self) -> Dict[str, Any]:
        """policy.onnx/.yaml (latest accepted), policy_actor.pt, value_v.pt and summary.json in the out dir."""
        src = os.path.join(self.out, self.state.policy)
        for ext in (".onnx", ".yaml"):
            shutil.copyfile(os.path.splitext(src)[0] + ext, os.path.join(self.out, "policy" + ext))
        torch.save(on_cpu(self.actor.state_dict()), os.path.join(self.out, "policy_actor.pt"))
        torch.save(on_cpu(self.critic.state_dict()), os.path.join(self.out, "value_v.pt"))
        summary = {"updates": self.state.update, "attempts": self.state.attempts,
                   "rejected": self.state.rejected, "steps": self.state.consumed_logged,
                   "episodes": len(self.state.consumed), "wall_s": self.state.wall_s,
                   "policy": os.path.join(self.out, "policy.onnx"), "curve": self.state.curve, "info": self.info}
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
        return summary
