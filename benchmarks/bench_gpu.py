"""Training where labs train: the offline stages and Warp pretraining on a GPU -> benchmarks/results/gpu.json.

One run, in this order (each part writes its numbers into the JSON as soon as it is done):

(a) every offline stage at the paper preset's sizes (``offline_finetune/configs/paper.yaml``: BC ensemble,
    IQL Q/V at 1024-1024, dynamics ensemble, multi-step PPO, AM-Q OPE, IQL's AWR actor) for a fixed number
    of gradient steps, on the GPU and on this machine's CPU, steps/s side by side, on a dataset the size of
    the real logs (153,789 transitions); the paper preset's wall time is extrapolated from the GPU rates
    (target: under 30 minutes on one H200). Also: a policy trained on the GPU exports to ONNX with the
    same outputs as its CPU copy.
(b) ``pretrain --backend warp``: the PPO runner on the MuJoCo Warp env with 4096 robots for a fixed
    number of iterations, env steps/s (target >= 200k) next to physics-only steps/s.

    .venv/bin/python -m benchmarks.bench_gpu             # on a GPU machine (about 5-8 minutes)
    .venv/bin/python -m benchmarks.bench_gpu --smoke     # tiny sizes on the CPU: proves the script runs
"""
import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np
import torch
from go1o4.offline_finetune.bc import EnsembleBC
from go1o4.offline_finetune.config import OfflineConfig
from go1o4.offline_finetune.dataset import TorchData, as_transitions
from go1o4.offline_finetune.dynamics import DynamicsTrainer, EnsembleDynamics
from go1o4.offline_finetune.iql import AWR
from go1o4.offline_finetune.ope import am_q, start_states
from go1o4.offline_finetune.uni_o4 import MultiStepPPO
from go1o4.offline_finetune.value import IQLValue

from go1o4 import contract as C
from go1o4.config import load_config
from go1o4.rl.device import make_generator, resolve_device
from go1o4.rl.networks import GaussianActor

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "offline_finetune" / "configs" / "paper.yaml"
REAL_LOG_TRANSITIONS = 153_789  # uni_o4_real (benchmarks/results/offline.json)
TARGET_OFFLINE_MIN, TARGET_ENV_STEPS_S = 30.0, 200_000


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn: Callable[[], Any], steps: int, device: torch.device, warmup: int = 3) -> float:
    """Steps/s of ``fn`` over ``steps`` calls after ``warmup`` (device synchronised around the timing)."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return steps / (time.perf_counter() - t0)


def random_transitions(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, C.POLICY_INPUT_DIM)).astype(np.float32)
    return as_transitions({"observations": obs, "actions": rng.normal(size=(n, 12)).astype(np.float32) * 0.3,
                           "rewards": rng.normal(size=n).astype(np.float32),
                           "next_observations": obs + 0.01 * rng.normal(size=obs.shape).astype(np.float32),
                           "terminals": (rng.random(n) < 0.002).astype(np.float32), "timeouts": np.zeros(n, np.float32),
                           "episode_ids": np.arange(n) // 1000}, "random (%d transitions)" % n)


def offline_rates(cfg: OfflineConfig, tr, device: torch.device, steps: int) -> Dict[str, float]:
    """Gradient steps/s of every offline stage (and OPE evaluations/s) with the preset's sizes on ``device``."""
    torch.manual_seed(0)
    data = TorchData(tr, device)
    g = make_generator(device, 0)
    mean, std = tr.obs_stats()
    actor = GaussianActor(ensemble_size=cfg.bc.ensemble_size, init_std=cfg.bc.init_std)
    actor.normalizer.set_stats(mean, std)
    actor.to(device)
    value = IQLValue(cfg.value, mean, std).to(device)
    dyn = EnsembleDynamics(cfg.dynamics).to(device)
    bc, ppo = EnsembleBC(actor, cfg.bc), MultiStepPPO(actor, value, cfg.improve, alpha=cfg.improve.alpha)
    awr = AWR(GaussianActor(init_std=cfg.bc.init_std).to(device), value, cfg.iql, cfg.improve.min_log_std)
    for t in (bc, ppo, awr, value):
        t.check_every = cfg.log_every  # as OfflineRun does off the CPU
    dt = DynamicsTrainer(dyn, data.t, tr.episode_ids, 0)
    starts = start_states(data["observations"], cfg.ope.num_starts, 0)
    out = {
        "bc": rate(lambda: bc.update(data.sample(cfg.bc.batch_size, g), g), steps, device),
        "value": rate(lambda: value.update(data.sample(cfg.value.batch_size, g)), steps, device),
        "dynamics": rate(dt.update, steps, device),
        "improve": rate(lambda: ppo.update(data.sample(cfg.improve.batch_size, g), g), steps, device),
        "iql_awr": rate(lambda: awr.update(data.sample(cfg.iql.batch_size, g)), steps, device),
        "ope_evaluations": rate(lambda: am_q(actor, dyn, value, starts, cfg.ope.horizon, 0), max(2, steps // 50),
                                device, warmup=1),
    }
    return {k: round(v, 2) for k, v in out.items()}


def extrapolate(cfg: OfflineConfig, r: Dict[str, float]) -> Dict[str, Any]:
    """Seconds per stage of the full preset from the measured rates (dynamics: its max_epochs bound)."""
    dyn_steps = cfg.dynamics.max_epochs * cfg.dynamics.epoch_steps
    evals = cfg.improve.steps // cfg.improve.ope_every + 1
    s = {"bc": cfg.bc.steps / r["bc"], "value": cfg.value.steps / r["value"], "dynamics_upper_bound":
         dyn_steps / r["dynamics"], "improve": cfg.improve.steps / r["improve"] + evals / r["ope_evaluations"]}
    total = sum(s.values())
    return {"stage_s": {k: round(v, 1) for k, v in s.items()}, "uni_o4_total_min": round(total / 60, 2),
            "iql_baseline_extra_min": round(cfg.iql.steps / r["iql_awr"] / 60, 2),
            "assumed": {"dynamics_steps": dyn_steps, "ope_evaluations": evals},
            "target_min": TARGET_OFFLINE_MIN, "meets_target": bool(total / 60 < TARGET_OFFLINE_MIN)}


def onnx_from_gpu_model(device: torch.device) -> Dict[str, Any]:
    """A policy trained a few steps on ``device`` exports to ONNX; ONNX Runtime vs the torch CPU copy."""
    import onnxruntime as ort

    from go1o4.rl.export import export_onnx

    actor = GaussianActor(ensemble_size=1).to(device)
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    x = torch.randn(256, C.POLICY_INPUT_DIM, device=device)
    for _ in range(5):
        loss = actor(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p.onnx")
        diff = export_onnx(actor, path)
        y_dev = actor(x).detach().cpu().numpy()
        y_onnx = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["action"], {"obs": x.cpu().numpy()})[0]
    return {"trained_on": str(device), "onnx_vs_torch_cpu_max_abs": diff,
            "onnx_vs_torch_on_device_max_abs": float(np.abs(y_onnx - y_dev).max())}


def warp_pretrain(robots: int, iterations: int, steps_per_env: int, torch_device: str, warp_device: str,
                  out_dir: str) -> Dict[str, Any]:
    from go1o4.sim_pretrain.cli_pretrain import make_env
    from go1o4.sim_pretrain.runner import OnPolicyRunner, PretrainConfig

    cfg = load_config(PretrainConfig, ROOT / "sim_pretrain" / "configs" / "flat.yaml",
                      ["env.num_envs=%d" % robots, "runner.num_steps_per_env=%d" % steps_per_env,
                       "runner.bc_prior_steps=0", "runner.device=%s" % torch_device])
    t0 = time.perf_counter()
    env = make_env("warp", cfg.env, warp_device)
    build_s = time.perf_counter() - t0
    bare_steps = max(2, iterations)
    env.bare_step_time(1)  # compiles the kernels
    physics_s = env.bare_step_time(bare_steps)
    runner = OnPolicyRunner(cfg, out_dir, env=env)
    try:
        runner.learn(1, progress=False)  # warm-up iteration (kernel compilation, allocator)
        rows = []
        for _ in range(iterations):
            st = runner.learn(1, progress=False)
            rows.append({k: st[k] for k in ("perf/collection_time", "perf/learn_time", "perf/fps")})
    finally:
        runner.close()
    batch = steps_per_env * robots
    coll = sum(r["perf/collection_time"] for r in rows)
    learn = sum(r["perf/learn_time"] for r in rows)
    return {"robots": robots, "iterations_timed": iterations, "steps_per_env": steps_per_env,
            "warp_device": env.device, "torch_device": torch_device, "env_build_s": round(build_s, 1),
            "physics_only_env_steps_per_s": round(bare_steps * robots / physics_s, 1),
            "env_steps_per_s_collection": round(iterations * batch / coll, 1),
            "env_steps_per_s_with_ppo_update": round(iterations * batch / (coll + learn), 1),
            "target_env_steps_per_s": TARGET_ENV_STEPS_S,
            "meets_target": bool(iterations * batch / coll >= TARGET_ENV_STEPS_S)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (checks the script end to end)")
    ap.add_argument("--steps", type=int, default=200, help="timed gradient steps per stage on the GPU")
    ap.add_argument("--cpu-steps", type=int, default=20, help="timed gradient steps per stage on the CPU")
    ap.add_argument("--robots", type=int, default=4096)
    ap.add_argument("--iterations", type=int, default=5, help="timed PPO iterations of the Warp run")
    ap.add_argument("--skip-offline", action="store_true")
    ap.add_argument("--skip-warp", action="store_true")
    ap.add_argument("--out", default=None, help="default benchmarks/results/gpu.json (gpu_smoke.json with --smoke)")
    a = ap.parse_args()
    out_path = Path(a.out or ROOT / "benchmarks" / "results" / ("gpu_smoke.json" if a.smoke else "gpu.json"))
    gpu = resolve_device("auto")
    res: Dict[str, Any] = {"smoke": a.smoke, "host": platform.node(), "cpu_count": os.cpu_count(),
                           "torch": torch.__version__, "gpu": torch.cuda.get_device_name(gpu) if gpu.type == "cuda"
                           else None, "time": time.strftime("%Y-%m-%d %H:%M:%S")}

    def write() -> None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(res, indent=2))

    if a.smoke:
        over = ["bc.ensemble_size=2", "value.q_hidden=[32,32]", "value.v_hidden=[32,32]", "dynamics.hidden=[32,32]",
                "dynamics.weight_decay=[2.5e-5,5e-5,1e-4]", "dynamics.ensemble_size=3", "dynamics.num_elites=2",
                "ope.num_starts=16", "ope.horizon=3"]
        n, steps, cpu_steps, robots, iters, spe = 2000, 4, 4, 2, 1, 4
    else:
        over, n, steps, cpu_steps, robots, iters, spe = [], REAL_LOG_TRANSITIONS, a.steps, a.cpu_steps, a.robots, \
            a.iterations, 24
    cfg = load_config(OfflineConfig, PAPER, over)
    if not a.skip_offline:
        tr = random_transitions(n)
        devices = [torch.device("cpu")] + ([gpu] if gpu.type == "cuda" else [])
        res["offline"] = {"preset": str(PAPER.relative_to(ROOT)), "overrides": over, "transitions": n,
                          "steps_per_s": {}, "timed_steps": {}}
        for dev in devices:
            k = dev.type
            torch.set_num_threads(os.cpu_count() or 1)
            t0 = time.perf_counter()
            r = offline_rates(cfg, tr, dev, cpu_steps if k == "cpu" else steps)
            res["offline"]["steps_per_s"][k] = r
            res["offline"]["timed_steps"][k] = cpu_steps if k == "cpu" else steps
            res["offline"]["paper_preset_extrapolated_" + k] = extrapolate(cfg, r)
            print("offline %s (%.0f s): %s" % (k, time.perf_counter() - t0, r))
            print("  paper preset extrapolated: %s" % res["offline"]["paper_preset_extrapolated_" + k])
            write()
        if gpu.type == "cuda":
            c, gr = res["offline"]["steps_per_s"]["cpu"], res["offline"]["steps_per_s"]["cuda"]
            res["offline"]["speedup_gpu_over_cpu"] = {s: round(gr[s] / c[s], 1) for s in c}
        res["onnx_export_from_device"] = onnx_from_gpu_model(gpu)
        print("onnx export from %s: %s" % (gpu, res["onnx_export_from_device"]))
        write()
    if not a.skip_warp:
        wdev = "cpu" if a.smoke else None
        with tempfile.TemporaryDirectory() as d:
            res["warp_pretrain"] = warp_pretrain(robots, iters, spe, "cpu" if a.smoke else "auto", wdev, d)
        print("warp pretrain: %s" % res["warp_pretrain"])
        write()
    print("wrote %s" % out_path)


if __name__ == "__main__":
    main()
