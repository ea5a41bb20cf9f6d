"""Online fine-tuning costs: robot-session collection rate, PPO update, export + hot-swap, checkpoint, quick pipeline.

(1) Online collection through the runtime against the simulated Go1 (lock-step, mattress, real SDK over UDP
on 127.0.0.1), stochastic actions, every step logged to HDF5 and read back: robot steps per wall second,
real-time factor, wall time per scripted reset. (2) One PPO update on a 2048-step batch with the paper's
online settings (10 epochs, minibatch 128; actor 512-256-128, V 256x3). (3) ONNX export + contract/shape
check + hot-swap. (4) Atomic checkpoint write. (5) Optionally the whole ``go1o4 pipeline --quick``.
Targets: collection faster than real time (RTF >= 1) and update + export + checkpoint < 10 % of the
collection time of one batch. The machine is shared: the load average is recorded. Writes
``benchmarks/results/bench_pipeline.json``.

    python benchmarks/bench_pipeline.py [--episodes 4] [--episode-steps 500] [--policy P.onnx] [--quick-pipeline]
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from go1o4.online_finetune.config import OnlineConfig  # noqa: E402
from go1o4.online_finetune.rollouts import episode_keys, load_segment, make_segment, ppo_batch  # noqa: E402
from go1o4.online_finetune.runfiles import atomic_torch_save  # noqa: E402
from go1o4.online_finetune.trainer import fill_storage  # noqa: E402
from go1o4.robot_runtime.rollout import RobotRunner, RolloutConfig, exploration  # noqa: E402

from go1o4 import contract as C  # noqa: E402
from go1o4.rl.export import export_onnx  # noqa: E402
from go1o4.rl.networks import Critic, GaussianActor  # noqa: E402
from go1o4.rl.ppo import PPO  # noqa: E402


def collection(policy: str, episodes: int, steps: int, tmp: str) -> dict:
    logs = os.path.join(tmp, "logs")
    runner = RobotRunner(RolloutConfig(), logs, seed=0)
    t0 = time.perf_counter()
    runner.start()
    startup = time.perf_counter() - t0
    pol = runner.swap_policy(policy)
    log_std = pol.contract_log_std() if pol.contract_log_std() is not None else np.full(12, -1.0)
    walls, robot_steps = [], 0
    t0 = time.perf_counter()
    for i in range(episodes):
        t = time.perf_counter()
        res = runner.episode((0.5 + 0.25 * i, 0.0, 0.0), steps, exploration=exploration(log_std, i))
        robot_steps += res.steps
        walls.append((time.perf_counter() - t, res.steps, res.wall_time))
    total = time.perf_counter() - t0
    runner.close()
    t = time.perf_counter()
    segs = [load_segment(logs, k) for k in episode_keys(logs)]
    read = time.perf_counter() - t
    reset_overhead = float(np.mean([w - ep_wall for w, _, ep_wall in walls]))
    return {"episodes": episodes, "steps": robot_steps, "wall_s": total, "steps_per_s": robot_steps / total,
            "rtf": robot_steps * C.POLICY_DT / total, "reset_and_calibrate_wall_s_per_episode": reset_overhead,
            "robot_start_s": startup, "read_back_s_per_1k_steps": 1000 * read / max(1, sum(len(s) for s in segs)),
            "falls": int(sum(s.terminal for s in segs))}


def update_costs(tmp: str) -> dict:
    cfg = OnlineConfig()
    torch.set_num_threads(1)
    actor, critic = GaussianActor(init_std=0.8), Critic(hidden=[256, 256, 256], activation="relu")
    ppo = PPO(actor, critic, cfg.ppo)
    g = torch.Generator().manual_seed(0)
    segs = []
    for i in range(2):  # 2 x 1024 steps
        obs = torch.randn(1024, C.POLICY_INPUT_DIM, generator=g)
        with torch.no_grad():
            d = actor.distribution(obs)
            a = d.sample()
            lp = d.log_prob(a).sum(-1)
        segs.append(make_segment("e%d" % i, obs.numpy(), a.numpy(), lp.numpy(), np.random.rand(1024) * 0.1,
                                 "truncation", obs[-1].numpy()))
    batch = ppo_batch(segs)
    ppo.cfg.num_minibatches = 2048 // cfg.minibatch_size
    t = time.perf_counter()
    ppo.update(fill_storage(batch, critic, 1.0, 0.99, 0.95))
    t_update = time.perf_counter() - t
    t = time.perf_counter()
    import copy
    copy.deepcopy(ppo.state_dict())
    t_snap = time.perf_counter() - t
    path = os.path.join(tmp, "p.onnx")
    t = time.perf_counter()
    export_onnx(actor, path)
    t_export = time.perf_counter() - t
    runner = RobotRunner(RolloutConfig(), None)
    t = time.perf_counter()
    runner.swap_policy(path)
    t_swap = time.perf_counter() - t
    ck = os.path.join(tmp, "ck.pt")
    t = time.perf_counter()
    atomic_torch_save({"ppo": ppo.state_dict()}, ck)
    t_ck = time.perf_counter() - t
    return {"ppo_update_2048_steps_s": t_update, "epochs": cfg.ppo.epochs, "minibatch": cfg.minibatch_size,
            "nan_guard_snapshot_s": t_snap, "onnx_export_s": t_export, "contract_check_and_swap_s": t_swap,
            "checkpoint_write_s": t_ck, "checkpoint_mb": os.path.getsize(ck) / 1e6,
            "per_update_overhead_s": t_update + t_snap + t_export + t_swap + t_ck}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--episode-steps", type=int, default=500)
    p.add_argument("--policy", default=str(ROOT / "sim_pretrain" / "policies" / "go1_flat.onnx"))
    p.add_argument("--quick-pipeline", action="store_true", help="also time `go1o4 pipeline --quick`")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_pipeline.json"))
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_pipeline_")
    policy = a.policy
    if not os.path.exists(policy):
        policy = os.path.join(tmp, "random.onnx")
        export_onnx(GaussianActor(init_std=0.3), policy)
    load0 = os.getloadavg()
    res = {"policy": policy, "collection": collection(policy, a.episodes, a.episode_steps, tmp),
           "update": update_costs(tmp)}
    batch_wall = 2048 / res["collection"]["steps_per_s"]
    res["update"]["overhead_fraction_of_batch_collection"] = res["update"]["per_update_overhead_s"] / batch_wall
    if a.quick_pipeline:
        t = time.perf_counter()
        out = os.path.join(tmp, "quick")
        cmd = [sys.executable, "-m", "go1o4.cli", "pipeline", "--quick", "--no-progress", "--out", out]
        if os.path.exists(a.policy):
            cmd += ["--pretrained", a.policy]
        else:
            cmd += ["--pretrained", policy]
        rc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True).returncode
        res["quick_pipeline"] = {"returncode": rc, "wall_s": time.perf_counter() - t}
        timings = os.path.join(out, "timings.json")
        if os.path.exists(timings):
            with open(timings) as f:
                res["quick_pipeline"]["stages_s"] = json.load(f)
    res.update(targets={"collection_rtf_min": 1.0, "overhead_fraction_max": 0.1},
               meets={"collection_rtf": res["collection"]["rtf"] >= 1.0,
                      "overhead": res["update"]["overhead_fraction_of_batch_collection"] <= 0.1},
               load_average_before_after=[load0[0], os.getloadavg()[0]], cpu_count=os.cpu_count(),
               machine=platform.machine(), python=platform.python_version(), time=time.strftime("%Y-%m-%d %H:%M:%S"))
    c, u = res["collection"], res["update"]
    print("collection: %.0f robot steps/s (RTF %.2f), reset+calibrate %.2f s/episode, read-back %.3f s/1k steps"
          % (c["steps_per_s"], c["rtf"], c["reset_and_calibrate_wall_s_per_episode"], c["read_back_s_per_1k_steps"]))
    print("update: PPO %.2f s / 2048 steps, export %.2f s, check+swap %.3f s, checkpoint %.3f s (%.1f MB) -> "
          "%.1f %% of a batch's collection time" % (u["ppo_update_2048_steps_s"], u["onnx_export_s"],
                                                    u["contract_check_and_swap_s"], u["checkpoint_write_s"],
                                                    u["checkpoint_mb"], 100 * u["overhead_fraction_of_batch_collection"]))
    if "quick_pipeline" in res:
        print("go1o4 pipeline --quick: rc %d, %.0f s" % (res["quick_pipeline"]["returncode"], res["quick_pipeline"]["wall_s"]))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("wrote %s (load average %.1f)" % (a.out, os.getloadavg()[0]))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
