"""Vector-env throughput (policy steps/s of the whole Go1VecEnv, both cores) vs bare MuJoCo stepping.

Both numbers come from the same robots in the same run: first ``env.step`` with small random
actions (task logic, observations, rewards, resets, IPC included; no policy inference), then
``mj_step(nstep=4)`` only on the very same MjModel/MjData objects inside the same worker processes.
Target: env >= 50 % of bare. The machine is shared, so the load average is recorded too. Writes
``benchmarks/results/bench_env.json``.

    python benchmarks/bench_env.py [--envs 128] [--workers 2] [--steps 300]
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from go1o4.sim_pretrain.env import EnvConfig, Go1VecEnv  # noqa: E402

from go1o4.config import load_config  # noqa: E402

TARGET_RATIO = 0.5


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--terrain", default="rigid")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_env.json"))
    a = p.parse_args()
    cfg = load_config(EnvConfig, overrides=["num_envs=%d" % a.envs, "num_workers=%d" % a.workers,
                                            "terrain=%s" % a.terrain])
    rng = np.random.default_rng(0)
    actions = rng.normal(size=(a.steps, a.envs, 12)) * 0.3
    with Go1VecEnv(cfg) as env:
        env.reset(seed=0)
        for t in range(20):  # warm-up
            env.step(actions[t])
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        for t in range(a.steps):
            env.step(actions[t])
        t_env = time.perf_counter() - t0
        t_bare = env.bare_step_time(a.steps)
        load1 = os.getloadavg()[0]
    env_rate, bare_rate = a.steps * a.envs / t_env, a.steps * a.envs / t_bare
    res = {"envs": a.envs, "workers": a.workers, "policy_steps": a.steps, "terrain": a.terrain,
           "env_steps_per_s": env_rate, "bare_mujoco_steps_per_s": bare_rate, "ratio": env_rate / bare_rate,
           "target_ratio": TARGET_RATIO, "meets_target": env_rate / bare_rate >= TARGET_RATIO,
           "physics_steps_per_policy_step": cfg.decimation, "load_average_before_after": [load0, load1],
           "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    print("Go1VecEnv %d robots, %d workers, %s: env %.0f policy steps/s | bare MuJoCo %.0f policy steps/s "
          "(%d physics steps each) | ratio %.2f (target >= %.2f) | load %.1f" % (
              a.envs, a.workers, a.terrain, env_rate, bare_rate, cfg.decimation, env_rate / bare_rate, TARGET_RATIO,
              load1))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("wrote %s" % a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
