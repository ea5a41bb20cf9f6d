"""Offline Uni-O4 benchmarks -> benchmarks/results/offline.json.

1. Gradient steps/s of every stage at the paper's sizes, the K-member batched computation next to a
   per-member Python loop, measured in interleaved rounds in the same process (target >= 2.5x for K = 4).
2. IQL (Q/V + AWR actor, matched sizes and batch) next to d3rlpy's IQL in the same run.
3. The paper preset's structure end to end on the real logs with reduced step counts; per-stage
   throughput is extrapolated to the paper's step counts. Reports held-out BC log-likelihood, member
   disagreement with alpha = 0 vs 0.1, dynamics holdout error, OPE curve per member, accepted updates.

    .venv/bin/python -m benchmarks.bench_offline [--threads 2] [--seconds 3] [--skip-e2e] [--e2e-scale 1.0]
"""
import argparse
import copy
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path
from typing import Callable, Dict

import go1o4.offline_finetune.report  # noqa: F401
import numpy as np
import torch
from go1o4.offline_finetune.bc import EnsembleBC
from go1o4.offline_finetune.config import BCConfig, DynamicsConfig, IQLPolicyConfig, OfflineConfig
from go1o4.offline_finetune.dataset import TorchData, as_transitions, load_dataset, split_transitions
from go1o4.offline_finetune.dynamics import DynamicsTrainer, EnsembleDynamics
from go1o4.offline_finetune.iql import AWR
from go1o4.offline_finetune.ope import am_q, start_states
from go1o4.offline_finetune.train import OfflineRun
from go1o4.offline_finetune.uni_o4 import MultiStepPPO
from go1o4.offline_finetune.value import IQLValue, polyak_update, q_target

import go1o4.rl.export  # noqa: F401 - all the long run needs is imported before it starts
from go1o4.config import load_config
from go1o4.rl.losses import expectile_loss
from go1o4.rl.networks import GaussianActor

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "offline.json"
PAPER = ROOT / "offline_finetune" / "configs" / "paper.yaml"


def steps_per_s(fn: Callable[[], None], seconds: float) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def interleaved(fns: Dict[str, Callable[[], None]], rounds: int, seconds: float) -> Dict[str, float]:
    """Median steps/s of each function over ``rounds`` alternating measurements (shared-machine noise hits all)."""
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            out[k].append(steps_per_s(f, seconds))
    return {k: statistics.median(v) for k, v in out.items()}


def flops_of(fn: Callable[[], None]) -> float:
    """Floating-point operations of one call (torch's FLOP counter: matmuls/convolutions, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def gemm_peak_gflops(seconds: float) -> Dict[str, float]:
    """Sustained fp32 matmul GFLOP/s at the paper's layer shapes (batch 512 and 2048 rows); 'peak' is the best.

    No batched formulation of a stage can run its matmuls faster than this, so peak / (the per-member loop's
    GFLOP/s) bounds the speed-up any batching can give on this machine."""
    out = {}
    for m, k, n in ((512, 1024, 1024), (2048, 1024, 1024), (512, 290, 512), (2048, 302, 1024)):
        a, b, c = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
        out["%dx%dx%d" % (m, k, n)] = steps_per_s(lambda a=a, b=b, c=c: torch.mm(a, b, out=c), seconds) * 2 * m * k * n / 1e9
    out["peak"] = max(out.values())
    return out


# ----------------------------------------------------------------------------- 1. batched vs loop
class LoopValue:
    """The same IQL update as :class:`IQLValue` with one network per Q head, looped in Python."""

    def __init__(self, cfg):
        from go1o4.rl.networks import Critic, ObsNormalizer

        self.cfg, norm = cfg, ObsNormalizer(290)
        self.qs = [Critic(290, cfg.q_hidden, act_dim=12, activation=cfg.activation, normalizer=norm)
                   for _ in range(cfg.q_heads)]
        self.qts = [copy.deepcopy(q).requires_grad_(False) for q in self.qs]
        self.v = Critic(290, cfg.v_hidden, activation=cfg.activation, normalizer=norm)
        self.q_opts = [torch.optim.Adam(q.net.parameters(), lr=cfg.lr) for q in self.qs]
        self.v_opt = torch.optim.Adam(self.v.net.parameters(), lr=cfg.lr)

    def update(self, b):
        obs, act = b["observations"], b["actions"]
        with torch.no_grad():
            q_t = torch.stack([qt(obs, act) for qt in self.qts]).min(0).values
            target = q_target(b["rewards"], b["terminals"], self.v(b["next_observations"]), self.cfg.gamma)
        v_loss = expectile_loss(q_t - self.v(obs), self.cfg.expectile)
        self.v_opt.zero_grad()
        v_loss.backward()
        self.v_opt.step()
        for q, qt, opt in zip(self.qs, self.qts, self.q_opts):
            loss = (q(obs, act) - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            polyak_update(qt, q, self.cfg.polyak)


def bench_batched_vs_loop(data: TorchData, episode_ids, cfg: OfflineConfig, rounds: int, seconds: float) -> Dict:
    g = torch.Generator().manual_seed(0)
    k = cfg.bc.ensemble_size
    peak = gemm_peak_gflops(seconds)
    res = {"gemm_gflops": peak}
    print("fp32 matmul peak %.1f GFLOP/s (%s)" % (peak["peak"], ", ".join(
        "%s %.0f" % kv for kv in peak.items() if kv[0] != "peak")))

    def pair(name, batched, loop, extra=None):
        r = interleaved({"batched": batched, "loop": loop, **(extra or {})}, rounds, seconds)
        r["speedup"] = r["batched"] / r["loop"]
        # the same work both ways (checked): matmul FLOPs per step, the rate each way reaches, and the bound
        r["gflop_per_step"] = {"batched": flops_of(batched) / 1e9, "loop": flops_of(loop) / 1e9}
        r["gflops"] = {w: r[w] * r["gflop_per_step"][w] for w in ("batched", "loop")}
        r["max_speedup_at_matmul_peak"] = peak["peak"] / r["gflops"]["loop"]
        res[name] = r
        print("%-9s batched %7.2f  loop %7.2f  steps/s  -> %.2fx %s | %.2f GFLOP/step, loop at %.0f%% of matmul peak:"
              " no batching can beat %.2fx" % (
                  name, r["batched"], r["loop"], r["speedup"],
                  " ".join("%s %.2f" % (x, r[x]) for x in (extra or {})), r["gflop_per_step"]["loop"],
                  100 * r["gflops"]["loop"] / peak["peak"], r["max_speedup_at_matmul_peak"]))

    # BC (Eq. 6): one step updates all K members
    ens = EnsembleBC(GaussianActor(ensemble_size=k), BCConfig(alpha=0.0, lr=cfg.bc.lr))
    ens_dis = EnsembleBC(GaussianActor(ensemble_size=k), BCConfig(alpha=cfg.bc.alpha, lr=cfg.bc.lr))
    singles = [EnsembleBC(GaussianActor(), BCConfig(alpha=0.0, lr=cfg.bc.lr)) for _ in range(k)]
    bs = cfg.bc.batch_size
    pair("bc", lambda: ens.update(data.sample(bs, g), g),
         lambda: [s.update(data.sample(bs, g), g) for s in singles],
         {"batched_alpha_%.2g" % cfg.bc.alpha: lambda: ens_dis.update(data.sample(bs, g), g)})

    # IQL Q/V: the Q heads batched vs one single-head critic per head, looped
    vb = IQLValue(cfg.value)
    vl = LoopValue(cfg.value)
    vbs = cfg.value.batch_size
    pair("value", lambda: vb.update(data.sample(vbs, g)), lambda: vl.update(data.sample(vbs, g)))

    # dynamics: 7 members batched vs 7 single models, each on its own minibatch
    dcfg = cfg.dynamics
    sub = {k: v[:20_000] for k, v in data.t.items()}  # throughput does not depend on the data size
    tb = DynamicsTrainer(EnsembleDynamics(dcfg), sub, episode_ids[:20_000])
    one = DynamicsConfig(**{**dcfg.__dict__, "ensemble_size": 1, "num_elites": 1})
    tl = [DynamicsTrainer(EnsembleDynamics(one), sub, episode_ids[:20_000], seed=i) for i in range(dcfg.ensemble_size)]
    pair("dynamics", tb.update, lambda: [t.update() for t in tl])

    # multi-step PPO (Eq. 8/9): K members batched vs K single policies
    icfg = cfg.improve
    pb = MultiStepPPO(GaussianActor(ensemble_size=k), vb, icfg)
    pl = [MultiStepPPO(GaussianActor(), vb, icfg) for _ in range(k)]
    ibs = icfg.batch_size
    pair("improve", lambda: pb.update(data.sample(ibs, g), g), lambda: [p.update(data.sample(ibs, g), g) for p in pl])

    # AM-Q: all members and start states in one rollout vs one rollout per member
    model = tb.model
    model.elites.copy_(torch.arange(dcfg.num_elites))
    starts = start_states(data["observations"], cfg.ope.num_starts, 0)
    actor = pb.actor
    members = [actor.member(i) for i in range(k)]
    h = cfg.ope.horizon
    pair("ope", lambda: am_q(actor, model, vb, starts, h), lambda: [am_q(m, model, vb, starts, h) for m in members])
    res["ope"]["unit"] = "evaluations of all %d members per second (%d starts x %d steps)" % (k, len(starts), h)
    return res


# ----------------------------------------------------------------------------- 2. d3rlpy
def bench_d3rlpy(data: TorchData, tr, cfg: OfflineConfig, rounds: int, seconds: float) -> Dict:
    import d3rlpy
    from d3rlpy.models.encoders import VectorEncoderFactory

    vc, bs = cfg.value, cfg.value.batch_size
    n = min(len(tr), 50_000)
    ends = np.zeros(n, dtype=np.float32)
    ends[np.flatnonzero(np.diff(tr.episode_ids[:n]) != 0)] = 1.0
    ends[-1] = 1.0
    dataset = d3rlpy.dataset.MDPDataset(tr.observations[:n], tr.actions[:n], tr.rewards[:n],
                                        terminals=np.zeros(n, np.float32), timeouts=ends)
    iql = d3rlpy.algos.IQLConfig(
        batch_size=bs, gamma=vc.gamma, tau=vc.polyak, expectile=vc.expectile, weight_temp=cfg.iql.beta,
        max_weight=cfg.iql.max_weight, n_critics=vc.q_heads, actor_learning_rate=cfg.iql.lr,
        critic_learning_rate=vc.lr,
        actor_encoder_factory=VectorEncoderFactory(hidden_units=[512, 256, 128]),
        critic_encoder_factory=VectorEncoderFactory(hidden_units=list(vc.q_hidden)),
        value_encoder_factory=VectorEncoderFactory(hidden_units=list(vc.v_hidden)),
    ).create(device="cpu:0")
    iql.build_with_dataset(dataset)
    ours_v = IQLValue(vc)
    ours_pi = AWR(GaussianActor(), ours_v, IQLPolicyConfig(beta=cfg.iql.beta, max_weight=cfg.iql.max_weight))
    g = torch.Generator().manual_seed(0)

    def ours():
        b = data.sample(bs, g)
        ours_v.update(b)
        ours_pi.update(b)

    def theirs():
        iql.update(dataset.sample_transition_batch(bs))

    r = interleaved({"go1o4": ours, "d3rlpy": theirs}, rounds, seconds)
    r["ratio_go1o4_over_d3rlpy"] = r["go1o4"] / r["d3rlpy"]
    r["d3rlpy_version"] = d3rlpy.__version__
    r["matched"] = {"q_hidden": list(vc.q_hidden), "q_heads": vc.q_heads, "v_hidden": list(vc.v_hidden),
                    "actor_hidden": [512, 256, 128], "batch_size": bs,
                    "step": "Q/V update + AWR actor update (d3rlpy IQL.update)"}
    print("iql step  go1o4 %.2f  d3rlpy %.2f steps/s -> %.2fx" % (r["go1o4"], r["d3rlpy"], r["ratio_go1o4_over_d3rlpy"]))
    return r


# ----------------------------------------------------------------------------- 3. end to end
def bench_end_to_end(ds, scale: float, out_dir: str, threads: int) -> Dict:
    shutil.rmtree(out_dir, ignore_errors=True)  # a fresh run every time (a benchmark never resumes)
    paper = load_config(OfflineConfig, str(PAPER))
    red = {"bc.steps": int(2000 * scale), "bc.eval_every": int(500 * scale), "value.steps": int(2000 * scale),
           "value.eval_every": int(500 * scale), "dynamics.max_epochs": max(2, int(8 * scale)),
           "improve.steps": int(1000 * scale), "checkpoint_every": 10 ** 9, "log_every": 100,
           "torch_threads": threads}
    overrides = ["%s=%s" % kv for kv in red.items()]
    res = {"reduced_steps": red, "paper_steps": {"bc": paper.bc.steps, "value": paper.value.steps,
                                                 "improve": paper.improve.steps,
                                                 "dynamics_max": paper.dynamics.max_epochs * paper.dynamics.epoch_steps}}
    for alpha in (0.0, paper.bc.alpha):
        cfg = load_config(OfflineConfig, str(PAPER), overrides + ["bc.alpha=%s" % alpha])
        run = OfflineRun(cfg, ds, os.path.join(out_dir, "alpha_%g" % alpha), progress=True)
        if alpha == 0.0:  # BC only: the disagreement comparison
            t = time.time()
            run.stage_bc()
            res["bc_alpha_0"] = {"seconds": time.time() - t, **_bc_eval(run)}
            continue
        t = time.time()
        summary = run.run()
        res["wall_s"] = time.time() - t
        res["stage_s"] = summary["stage_wall_time_s"]
        res["bc_alpha_%g" % alpha] = _bc_eval(run)
        res["summary"] = {k: summary[k] for k in ("selected_member", "ope_best_scores", "accepted_updates",
                                                  "rejected_updates", "dynamics_elite_holdout_mse",
                                                  "train_transitions", "val_transitions")}
        res["ope_curve"] = [{"step": r["step"], "scores": r["ope/score"], "accepted": r["ope/accepted"]}
                            for r in run.metrics["improve"] if "ope/score" in r]
        dyn = [r for r in run.metrics["dynamics"] if "dynamics/holdout_mse" in r]
        res["dynamics_steps"] = dyn[-1]["step"] if dyn else 0
        res["dynamics_holdout_mse_curve"] = [(r["step"], r["dynamics/holdout_mse"]) for r in dyn]
        st = res["stage_s"]
        rate = {"bc": red["bc.steps"] / st["bc"], "value": red["value.steps"] / st["value"],
                "dynamics": res["dynamics_steps"] / st["dynamics"], "improve": red["improve.steps"] / st["improve"]}
        res["steps_per_s_in_run"] = rate
        # early stopping decides the dynamics steps: bound them by max_epochs * epoch_steps
        paper_dyn = paper.dynamics.max_epochs * paper.dynamics.epoch_steps
        est = {"bc": paper.bc.steps / rate["bc"], "value": paper.value.steps / rate["value"],
               "dynamics_upper_bound": paper_dyn / rate["dynamics"], "improve": paper.improve.steps / rate["improve"]}
        res["extrapolated_paper_hours"] = {k: v / 3600 for k, v in est.items()}
        res["extrapolated_paper_hours"]["total"] = sum(est.values()) / 3600
    return res


def _bc_eval(run) -> Dict:
    """Held-out log-likelihood and disagreement of the BC ensemble (its last evaluation)."""
    last = [r for r in run.metrics["bc"] if "bc/val_log_likelihood" in r][-1]
    return {"step": last["step"], "val_log_likelihood": last["bc/val_log_likelihood"],
            "action_std": last["bc/action_std"], "pairwise_kl": last["bc/pairwise_kl"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2",
                   help="torch thread counts for sections 1-2, comma separated ('' keeps an earlier run's)")
    p.add_argument("--e2e-threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--skip-e2e", action="store_true", help="keep the end-to-end section of an earlier run")
    p.add_argument("--e2e-scale", type=float, default=1.0)
    p.add_argument("--out", default=str(ROOT / "runs" / "bench_offline"))
    args = p.parse_args()
    cfg = load_config(OfflineConfig, str(PAPER))
    t0 = time.time()
    ds = load_dataset("uni_o4_real", progress=False)
    train, _ = split_transitions(ds, cfg.val_fraction, cfg.seed)
    data = TorchData(train)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
                          "load_avg_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                          "note": "2 cores shared with other engineers' jobs: see load averages"}
    results["dataset"] = {"transitions": len(as_transitions(ds)), "load_s": time.time() - t0}
    for key in ("batched_vs_loop", "iql_vs_d3rlpy"):  # thread counts not measured now keep their earlier results
        results[key] = results.get(key, {})
    def write() -> None:
        results["machine"]["load_avg_end"] = os.getloadavg()
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2))

    for n in [int(x) for x in args.threads.split(",") if x]:
        torch.set_num_threads(n)
        print("--- %d thread(s)" % n)
        results["batched_vs_loop"]["threads_%d" % n] = bench_batched_vs_loop(
            data, train.episode_ids, cfg, args.rounds, args.seconds)
        results["batched_vs_loop"]["threads_%d" % n]["measured"] = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "load_avg": os.getloadavg(),
            "cpu_affinity": sorted(os.sched_getaffinity(0))}
        try:
            results["iql_vs_d3rlpy"]["threads_%d" % n] = bench_d3rlpy(data, train, cfg, args.rounds, args.seconds)
        except ImportError as e:
            results["iql_vs_d3rlpy"]["threads_%d" % n] = {"skipped": "d3rlpy not installed (pip install '.[bench]'): %s" % e}
        write()  # partial results survive an interrupted run
    if not args.skip_e2e:
        torch.set_num_threads(args.e2e_threads)
        results["end_to_end_paper_structure"] = bench_end_to_end(ds, args.e2e_scale, args.out, args.e2e_threads)
        results["end_to_end_paper_structure"]["torch_threads"] = args.e2e_threads
    write()
    print("wrote", RESULTS)


if __name__ == "__main__":
    main()
