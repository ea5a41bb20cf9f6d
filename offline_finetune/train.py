"""The offline Uni-O4 pipeline: BC ensemble -> Q/V -> dynamics -> OPE-gated improvement -> export.

Stages run in order and each can resume: a checkpoint (state_dicts and generator states only, read back
with ``weights_only=True``) is written every ``checkpoint_every`` steps and at the end of every stage.
Scalars go to TensorBoard (``<out>/tb``) and ``<out>/metrics.json``; the report is made from the latter.
"""
import copy
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from go1o4.offline_finetune.algorithms import get_algorithm
from go1o4.offline_finetune.bc import EnsembleBC
from go1o4.offline_finetune.config import OfflineConfig
from go1o4.offline_finetune.critic_check import critic_check
from go1o4.offline_finetune.dataset import TorchData, split_transitions
from go1o4.offline_finetune.dynamics import DynamicsTrainer, EnsembleDynamics
from go1o4.offline_finetune.iql import AWR
from go1o4.offline_finetune.ope import start_states
from go1o4.offline_finetune.ope_gate import OPEGate
from go1o4.offline_finetune.pretrained import behaviour_std, ensemble_from_pretrained, set_std
from go1o4.offline_finetune.uni_o4 import MultiStepPPO, acceptance
from go1o4.offline_finetune.value import IQLValue
from tqdm import tqdm

from go1o4 import config as cfgmod
from go1o4.rl.device import make_generator, on_cpu, resolve_device
from go1o4.rl.networks import GaussianActor

STAGES = ("bc", "value", "dynamics", "improve", "export")
CHECKPOINT = "checkpoint.pt"
SNAPSHOT = os.path.join("snapshots", "step_%06d_member_%d.onnx")  # improve.snapshots: policy at an OPE check


def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = list(v) if isinstance(v, tuple) else v
    return out


class OfflineRun:
    def __init__(self, cfg: OfflineConfig, dataset: Any, out_dir: str, progress: bool = True):
        self.cfg, self.out, self.progress = cfg, out_dir, progress
        os.makedirs(out_dir, exist_ok=True)
        torch.set_num_threads(max(1, cfg.torch_threads))
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)  # DeviceError (a ValueError) before any work
        self.train_tr, self.val_tr = split_transitions(dataset, cfg.val_fraction, cfg.seed)
        self.train, self.val = TorchData(self.train_tr, self.device), TorchData(self.val_tr, self.device)
        self.obs_mean, self.obs_std = self.train_tr.obs_stats()
        # modules are built on the CPU (same initial weights whatever the device), then moved
        self.value = IQLValue(cfg.value, self.obs_mean, self.obs_std).to(self.device)
        self.dynamics = EnsembleDynamics(cfg.dynamics).to(self.device)
        if cfg.init == "pretrained":
            self.pretrained, self.actor = ensemble_from_pretrained(cfg.pretrained, cfg.bc.ensemble_size)
            if cfg.member_std == "behavior":  # A.4: the members start with the std the data were collected with
                std = cfg.behavior_std or behaviour_std(self.pretrained, self.train["observations"],
                                                        self.train["actions"])
                set_std(self.actor, std)
        else:
            self.pretrained = None
            self.actor = GaussianActor(ensemble_size=cfg.bc.ensemble_size, init_std=cfg.bc.init_std)
            self.actor.normalizer.set_stats(self.obs_mean, self.obs_std)
        self.actor.to(self.device)
        self.completed: List[str] = []
        self.stage_seconds: Dict[str, float] = {}
        self._stage: Optional[str] = None
        self._stage_t0 = time.time()
        self._prior_wall: Dict[str, float] = {}
        self.states: Dict[str, Any] = {}
        self.metrics: Dict[str, List[Dict[str, Any]]] = {s: [] for s in STAGES}
        self._writer = None
        self.ope_starts = start_states(self.train["observations"], cfg.ope.num_starts, cfg.ope.seed)
        self._gate: Optional[OPEGate] = None
        self._check_same_config()
        self._load()
        cfgmod.save_config(cfg, os.path.join(out_dir, "config.yaml"))

    # ------------------------------------------------------------------ bookkeeping
    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(os.path.join(self.out, "tb"))
        return self._writer

    def log(self, stage: str, step: int, scalars: Dict[str, Any], record: bool = True) -> None:
        row = {"step": int(step)}
        for k, v in scalars.items():
            v = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)
            if v.ndim == 0:
                self.writer.add_scalar(k, float(v), step)
                row[k] = float(v)
            else:
                for i, x in enumerate(v.reshape(-1)):
                    self.writer.add_scalar("%s/member_%d" % (k, i), float(x), step)
                row[k] = v.tolist()
        if record:
            self.metrics[stage].append(row)

    def _trainer_states(self) -> Dict[str, Any]:
        return {"value": self.value.state_dict(), "dynamics": self.dynamics.state_dict(),
                "actor": self.actor.state_dict()}

    def _elapsed(self, stage: str) -> float:
        """Wall time spent in ``stage`` over all sessions (resumed runs add up)."""
        return self._prior_wall.get(stage, 0.0) + (time.time() - self._stage_t0 if self._stage == stage else 0.0)

    def save(self, stage: str, stage_state: Optional[Dict[str, Any]] = None) -> None:
        if stage_state is not None:
            stage_state["wall_s"] = self._elapsed(stage)
            self.states[stage] = stage_state
        ckpt = on_cpu({"completed": list(self.completed), "modules": self._trainer_states(), "stages": self.states})
        tmp = os.path.join(self.out, CHECKPOINT + ".tmp")
        torch.save(ckpt, tmp)
        os.replace(tmp, os.path.join(self.out, CHECKPOINT))
        with open(os.path.join(self.out, "metrics.json"), "w") as f:
            json.dump(self.metrics, f)

    def _check_same_config(self) -> None:
        """Resuming with another config would mix runs: refuse, naming the keys that differ."""
        path = os.path.join(self.out, "config.yaml")
        if not (os.path.exists(path) and os.path.exists(os.path.join(self.out, CHECKPOINT))):
            return
        old = _flatten(cfgmod.load_yaml(path))
        new = _flatten(cfgmod.to_dict(self.cfg))
        free = ("torch_threads", "log_every", "checkpoint_every", "improve.snapshots", "device")  # not results
        default = _flatten(cfgmod.to_dict(type(self.cfg)()))  # a key added since, at its default, changes nothing
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in free
                      and not (k not in old and k in default and new.get(k) == default[k]))
        if diff:
            raise cfgmod.ConfigError("%s holds a run with a different config (%s); use another --out or the same "
                                     "settings" % (self.out, ", ".join("%s: %r -> %r" % (k, old.get(k), new.get(k))
                                                                      for k in diff)))

    def _load(self) -> None:
        path = os.path.join(self.out, CHECKPOINT)
        if not os.path.exists(path):
            return
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            self.completed, self.states = list(ckpt["completed"]), dict(ckpt["stages"])
            m = ckpt["modules"]
            self.value.load_state_dict(m["value"])
            self.dynamics.load_state_dict(m["dynamics"])
            self.actor.load_state_dict(m["actor"])
        except Exception as e:  # noqa: BLE001 - a damaged or foreign checkpoint must be named, not traced
            raise cfgmod.ConfigError("checkpoint %s cannot be resumed (%s: %s); delete it or use another --out"
                                     % (path, type(e).__name__, str(e)[:300]))
        mpath = os.path.join(self.out, "metrics.json")
        if os.path.exists(mpath):
            with open(mpath) as f:
                self.metrics.update(json.load(f))
        for stage in STAGES:  # rows logged after the checkpoint are logged again on resume
            step = self.states.get(stage, {}).get("steps", None)
            if step is not None and stage not in self.completed:
                self.metrics[stage] = [r for r in self.metrics[stage] if r["step"] <= int(step)]

    def _generator(self, stage: str) -> torch.Generator:
        g = make_generator(self.device, self.cfg.seed * 1000 + STAGES.index(stage))
        if "gen" in self.states.get(stage, {}):
            _restore_generator(g, self.states[stage]["gen"], stage)
        return g

    def _trainer(self, trainer):
        """Finite-loss checks every ``log_every`` steps on a GPU (each is a host sync), every step on the CPU."""
        trainer.check_every = 1 if self.device.type == "cpu" else self.cfg.log_every
        return trainer

    def _loop(self, stage: str, total: int, start: int, step_fn: Callable[[int], Dict[str, float]],
              snapshot: Callable[[], Dict[str, Any]], every: Optional[Dict[int, Callable[[int], None]]] = None):
        cfg = self.cfg
        bar = tqdm(range(start, total), initial=start, total=total, desc=stage, disable=not self.progress,
                   mininterval=2.0)
        try:
            for step in bar:
                info = step_fn(step)
                n = step + 1
                if n % cfg.log_every == 0 or n == total:
                    self.log(stage, n, info)
                for period, fn in (every or {}).items():
                    if n % period == 0:
                        fn(n)
                if n % cfg.checkpoint_every == 0 and n < total:
                    self.save(stage, snapshot())
        except KeyboardInterrupt:  # Ctrl-C: keep the work done so far; the CLI prints one line
            bar.close()
            self.save(stage, snapshot())
            raise

    def _finish(self, stage: str, snapshot: Dict[str, Any]) -> None:
        self.completed.append(stage)
        self.save(stage, snapshot)

    # ------------------------------------------------------------------ stages
    def run(self) -> Dict[str, Any]:
        t0 = time.time()
        for stage in STAGES:
            if stage in self.completed:
                continue
            self._stage, self._stage_t0 = stage, time.time()
            self._prior_wall[stage] = float(self.states.get(stage, {}).get("wall_s", 0.0))
            getattr(self, "stage_" + stage)()
            self.stage_seconds[stage] = time.time() - self._stage_t0
            self._stage = None
        summary = self.summary()
        summary["wall_time_s_this_session"] = time.time() - t0
        summary["stage_wall_time_s_this_session"] = dict(self.stage_seconds)
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        from go1o4.offline_finetune.report import write_report
        write_report(self.out, self.metrics, summary)
        if self._writer is not None:
            self._writer.close()
        return summary

    def stage_bc(self) -> None:
        cfg, g = self.cfg, self._generator("bc")
        bc = self._trainer(EnsembleBC(self.actor, cfg.bc))
        if "trainer" in self.states.get("bc", {}):
            bc.load_state_dict(self.states["bc"]["trainer"])
        val_obs, val_act = self.val["observations"], self.val["actions"]

        def evaluate(n: int) -> None:
            ev = bc.evaluate(val_obs, val_act)
            self.log("bc", n, {"bc/val_log_likelihood": ev["log_likelihood"], "bc/action_std": ev["action_std"],
                               "bc/pairwise_kl": ev["pairwise_kl"]})

        # pretrained: members start from the sim policy (A.4); iql: its AWR actor is trained from scratch
        steps = cfg.bc.steps if (cfg.init == "data" and get_algorithm(cfg.algo).bc_from_data) else 0
        if bc.steps == 0:
            evaluate(0)
        last = {}

        def step_fn(step: int) -> Dict[str, float]:
            last.update(bc.update(self.train.sample(cfg.bc.batch_size, g), g))
            return last

        snap = lambda: {"trainer": bc.state_dict(), "gen": g.get_state(), "steps": bc.steps}  # noqa: E731
        self._loop("bc", steps, bc.steps, step_fn, snap, {cfg.bc.eval_every: evaluate})
        if steps and steps % cfg.bc.eval_every:
            evaluate(steps)
        self._finish("bc", snap())

    def stage_value(self) -> None:
        cfg, g = self.cfg, self._generator("value")
        val_batch = self.val.sample(min(4096, self.val.n), make_generator(self.device, cfg.seed))
        self._trainer(self.value)

        def evaluate(n: int) -> None:
            self.log("value", n, self.value.evaluate(val_batch))

        def step_fn(step: int) -> Dict[str, float]:
            return self.value.update(self.train.sample(cfg.value.batch_size, g))

        snap = lambda: {"gen": g.get_state(), "steps": self.value.steps}  # noqa: E731
        self._loop("value", cfg.value.steps, self.value.steps, step_fn, snap, {cfg.value.eval_every: evaluate})
        evaluate(cfg.value.steps)
        # convergence check: Q and V vs the Monte-Carlo discounted return on the held-out episodes
        self.log("value", cfg.value.steps, critic_check(self.value, self.val_tr, cfg.value.gamma, seed=cfg.seed))
        self._finish("value", snap())

    def stage_dynamics(self) -> None:
        cfg = self.cfg.dynamics
        trainer = DynamicsTrainer(self.dynamics, self.train.t, self.train_tr.episode_ids, self.cfg.seed)
        if "trainer" in self.states.get("dynamics", {}):
            trainer.load_state_dict(self.states["dynamics"]["trainer"])
            _restore_generator(trainer.gen, self.states["dynamics"]["gen"], "dynamics")
        total = cfg.max_epochs * cfg.epoch_steps
        bar = tqdm(total=total, initial=trainer.steps, desc="dynamics", disable=not self.progress, mininterval=2.0)
        while not trainer.done:
            for _ in range(cfg.epoch_steps):
                info = trainer.update()
            bar.update(cfg.epoch_steps)
            info.update(trainer.end_epoch())
            self.log("dynamics", trainer.steps, info)
            self.save("dynamics", {"trainer": trainer.state_dict(), "gen": trainer.gen.get_state(),
                                   "steps": trainer.steps})
        bar.close()
        final = {"dynamics/elite_holdout_mse": float(trainer.best[self.dynamics.elites].mean())}
        if trainer.x_hold.shape[0]:
            final.update(trainer.holdout_rmse_by_block())
        self.log("dynamics", trainer.steps, final)
        self._finish("dynamics", {"steps": trainer.steps, "epochs": trainer.epochs})

    @property
    def gate(self) -> OPEGate:
        """The OPE of ``ope.method`` (FQE fits on the held-out episodes unless ``ope.fqe.data`` is train)."""
        if self._gate is None:
            cfg = self.cfg
            data, tr = (self.val, self.val_tr) if cfg.ope.fqe.data == "val" else (self.train, self.train_tr)
            episodes = {"rewards": tr.rewards, "terminals": tr.terminals, "episode_ids": tr.episode_ids}
            self._gate = OPEGate(cfg.ope, cfg.value.gamma, self.dynamics, self.value, self.ope_starts,
                                 cfg.dynamics.sample, data.t if cfg.ope.method == "fqe" else None, episodes,
                                 self.obs_mean, self.obs_std)
            self._gate.load_state_dict(self.states.get("improve", {}).get("gate", {}))
        return self._gate

    def score(self, actor: GaussianActor) -> np.ndarray:
        return self.gate.score(actor)

    def snapshot(self, step: int, actor: GaussianActor, scores: np.ndarray) -> None:
        """With ``improve.snapshots``: every member as scored by OPE at ``step`` -> ONNX (score in its YAML)."""
        if not self.cfg.improve.snapshots:
            return
        from go1o4.rl.export import export_onnx

        for i in range(actor.ensemble_size):
            extra = {"offline": {"algo": self.cfg.algo, "snapshot_step": int(step), "member": i,
                                 "ope_score": float(scores[i])}}
            export_onnx(actor.member(i), os.path.join(self.out, SNAPSHOT % (step, i)), extra)

    def stage_improve(self) -> None:
        get_algorithm(self.cfg.algo).improve(self)  # offline_finetune.algorithms

    def improve_ppo(self) -> None:
        cfg, g = self.cfg, self._generator("improve")
        alpha = cfg.improve.alpha if cfg.init == "pretrained" else 0.0  # Eq. 25 only in the A.4 recipe
        ppo = self._trainer(MultiStepPPO(self.actor, self.value, cfg.improve, mode=cfg.algo, alpha=alpha))
        if "trainer" in self.states.get("improve", {}):
            ppo.load_state_dict(self.states["improve"]["trainer"])

        def evaluate(n: int) -> None:
            ev = ppo.evaluate(lambda actor: self.gate.score(actor, reference=ppo.best), self.gate.margin,
                              self.gate.reference_scores)
            self.gate.commit(ev["improved"])
            self.snapshot(n, self.actor, ev["scores"])
            self.log("improve", n, {"ope/score": ev["scores"], "ope/accepted": ev["accepted"].astype(float),
                                    "ope/margin": ev["margin"],
                                    "improve/accepts_total": float(ppo.accepts.sum()),
                                    "improve/rejects_total": float(ppo.rejects.sum())})

        if ppo.steps == 0:
            evaluate(0)

        def step_fn(step: int) -> Dict[str, float]:
            return ppo.update(self.train.sample(cfg.improve.batch_size, g), g)

        snap = lambda: {"trainer": ppo.state_dict(), "gen": g.get_state(), "steps": ppo.steps,  # noqa: E731
                        "gate": self.gate.state_dict()}
        self._loop("improve", cfg.improve.steps, ppo.steps, step_fn, snap, {cfg.improve.ope_every: evaluate})
        self.actor.load_state_dict(ppo.best.state_dict())  # the best-scoring policy of each member
        self.states["selection"] = {"member": ppo.selected(), "best_score": torch.as_tensor(ppo.best_score),
                                    "accepts": torch.as_tensor(ppo.accepts), "rejects": torch.as_tensor(ppo.rejects)}
        self._finish("improve", snap())

    def improve_iql(self) -> None:
        cfg, g = self.cfg, self._generator("improve")
        actor = GaussianActor(ensemble_size=1, init_std=cfg.bc.init_std)
        actor.normalizer.set_stats(self.obs_mean, self.obs_std)
        actor.to(self.device)
        awr = self._trainer(AWR(actor, self.value, cfg.iql, cfg.improve.min_log_std))
        st = self.states.get("improve", {})
        if "trainer" in st:
            awr.load_state_dict(st["trainer"])
        best = {"score": float(st["best_score"]) if "best_score" in st else -np.inf, "state": st.get("best_state")}

        def evaluate(n: int) -> None:
            s = self.score(actor)
            self.snapshot(n, actor, s)
            # the AWR actor starts untrained (random init): step 0 is scored for reference, never selected
            ok = n > 0 and bool(acceptance(s, [best["score"]], self.gate.margin())[0])
            if ok:
                self.gate.commit(np.array([True]))
                best.update(score=float(s[0]), state={k: v.clone() for k, v in actor.state_dict().items()})
            self.log("improve", n, {"ope/score": s, "ope/accepted": [float(ok)]})

        def step_fn(step: int) -> Dict[str, float]:
            return awr.update(self.train.sample(cfg.iql.batch_size, g))

        snap = lambda: {"trainer": awr.state_dict(), "gen": g.get_state(), "steps": awr.steps,  # noqa: E731
                        "best_score": best["score"], "best_state": best["state"], "gate": self.gate.state_dict()}
        if awr.steps == 0:
            evaluate(0)
        self._loop("improve", cfg.iql.steps, awr.steps, step_fn, snap, {cfg.iql.eval_every: evaluate})
        if cfg.iql.steps % cfg.iql.eval_every:
            evaluate(cfg.iql.steps)  # the final actor is a candidate too
        if best["state"] is None:  # no finite score beat -inf: keep the trained actor rather than the random one
            best["state"] = actor.state_dict()
        actor.load_state_dict(best["state"])
        self.actor = GaussianActor.stack([actor] * cfg.bc.ensemble_size).to(self.device)  # checkpoint layout
        self.states["selection"] = {"member": 0, "best_score": torch.tensor([best["score"]]),
                                    "accepts": torch.tensor([0]), "rejects": torch.tensor([0])}
        self._finish("improve", snap())

    def stage_export(self) -> None:
        from go1o4.rl.export import export_onnx

        sel = self.states["selection"]
        member = int(sel["member"])
        policy = copy.deepcopy(self.actor.member(member)).cpu()  # export and files from the CPU copy
        extra = {"offline": {"algo": self.cfg.algo, "init": self.cfg.init, "member": member,
                             "ope_score": float(sel["best_score"][member]), "dataset": self.train_tr.source}}
        diff = export_onnx(policy, os.path.join(self.out, "policy.onnx"), extra)
        torch.save(policy.state_dict(), os.path.join(self.out, "policy_actor.pt"))
        torch.save(on_cpu(self.value.v.state_dict()), os.path.join(self.out, "value_v.pt"))
        torch.save(on_cpu(self.value.q.state_dict()), os.path.join(self.out, "value_q.pt"))
        self.states["export"] = {"onnx_torch_max_abs_diff": diff}
        self._finish("export", self.states["export"])

    def summary(self) -> Dict[str, Any]:
        sel = self.states.get("selection", {})
        bc_rows = self.metrics["bc"]
        dyn = [r for r in self.metrics["dynamics"] if "dynamics/elite_holdout_mse" in r]
        crit = [r for r in self.metrics["value"] if "critic/q_mc_ratio" in r]
        return {
            "algo": self.cfg.algo, "init": self.cfg.init, "dataset": self.train_tr.source,
            "train_transitions": len(self.train_tr), "val_transitions": len(self.val_tr),
            "selected_member": int(sel["member"]) if sel else None,
            "ope_best_scores": [float(x) for x in sel["best_score"]] if sel else None,
            "accepted_updates": [int(x) for x in sel["accepts"]] if sel else None,
            "rejected_updates": [int(x) for x in sel["rejects"]] if sel else None,
            "bc_val_log_likelihood": bc_rows[-1].get("bc/val_log_likelihood") if bc_rows else None,
            "bc_action_std": bc_rows[-1].get("bc/action_std") if bc_rows else None,
            "dynamics_elite_holdout_mse": dyn[-1]["dynamics/elite_holdout_mse"] if dyn else None,
            "critic_check": {k.split("/")[1]: v for k, v in (crit[-1] if crit else {}).items() if k.startswith("critic/")},
            "ope_method": self.cfg.ope.method,
            "dynamics_holdout_rmse": {k.split("holdout_rmse_")[1]: v for k, v in (dyn[-1] if dyn else {}).items()
                                      if "holdout_rmse_" in k},
            "onnx_torch_max_abs_diff": self.states.get("export", {}).get("onnx_torch_max_abs_diff"),
            "stage_wall_time_s": {s: float(self.states[s]["wall_s"]) for s in STAGES
                                  if "wall_s" in self.states.get(s, {})},
            "files": {"policy": "policy.onnx", "contract": "policy.yaml", "value_v": "value_v.pt",
                      "value_q": "value_q.pt", "report": "report.md"},
        }


def _restore_generator(g: torch.Generator, state: torch.Tensor, stage: str) -> None:
    """Generator states are device-specific: a checkpoint written on another device cannot continue the
    same random stream, so say so rather than fail deep inside torch."""
    try:
        g.set_state(state)
    except (RuntimeError, TypeError) as e:
        raise cfgmod.ConfigError("checkpoint stage %r holds a random-generator state from another device (%s); "
                                 "resume on the device it was written on, or use another --out" % (stage, e))
