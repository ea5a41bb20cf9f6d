"""``go1o4 evaluate``: roll a policy (ONNX or pretrain checkpoint) out in MuJoCo at fixed velocity commands.

Each episode is one robot of a vector env holding the command for ``--steps`` policy steps (20 s by
default); a fall ends it. Reported per command: mean return, mean |vx error| (whole episode and
after the first 2 s), |vy|/|yaw| errors, falls. Domain randomisation and pushes are off unless
``--dr``; observation noise stays on (as on the robot) unless ``--no-noise``.
"""
import dataclasses
import json
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from go1o4.sim_pretrain.env.config import TERRAIN_CHOICES

from go1o4 import contract as C
from go1o4.config import ConfigError, load_config

PolicyFn = Callable[[np.ndarray], np.ndarray]


def load_policy(path: str) -> PolicyFn:
    """A deterministic policy function (B, 290) -> (B, 12) from an ONNX file (contract checked) or a checkpoint."""
    if not os.path.exists(path):
        raise FileNotFoundError("policy %s not found" % path)
    if path.endswith(".onnx"):
        import onnxruntime as ort

        from go1o4.policy_contract import check_contract, check_onnx_shapes, contract_path_for, load_contract

        contract = load_contract(contract_path_for(path))
        check_contract(contract, path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        check_onnx_shapes(sess, contract, path)
        name_in, name_out = contract["onnx"]["input"], contract["onnx"]["output"]
        return lambda obs: sess.run([name_out], {name_in: obs.astype(np.float32)})[0]
    import torch
    from go1o4.sim_pretrain.runner import actor_from_checkpoint

    actor = actor_from_checkpoint(path)

    def fn(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()
    return fn


def evaluation_env_config(base_cfg, episodes: int, terrain: str, dr: bool, noise: bool, workers: int, seed: int):
    """The env config of an evaluation: one robot per episode, no randomisation unless ``dr``."""
    import copy
    cfg = copy.deepcopy(base_cfg)
    cfg.num_envs, cfg.terrain, cfg.seed = episodes, terrain, seed
    cfg.num_workers = min(workers, episodes)
    cfg.noise.enabled = noise
    if not dr:
        d = cfg.domain_rand
        d.friction, d.added_mass, d.motor_strength, d.latency = [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]
        d.push_interval = 0.0
    return cfg


def evaluate(policy: PolicyFn, env_cfg, commands: Sequence[Tuple[float, float, float]], steps: int,
             steady_after: float = 2.0) -> List[Dict[str, float]]:
    """Run ``env_cfg.num_envs`` episodes per command; returns one row of statistics per command."""
    from go1o4.sim_pretrain.env import Go1VecEnv

    rows = []
    n = env_cfg.num_envs
    with Go1VecEnv(env_cfg) as env:
        for vx, vy, yaw in commands:
            env.set_fixed_commands(np.tile(C.command_vector(vx, vy, yaw, env_cfg.commands.gait), (n, 1)))
            obs, info = env.reset(seed=env_cfg.seed)
            alive = np.ones(n, dtype=bool)
            fell = np.zeros(n, dtype=bool)
            ret, length = np.zeros(n), np.zeros(n)
            err, err_steady, n_steady, vx_steady = np.zeros((n, 3)), np.zeros(n), np.zeros(n), np.zeros(n)
            t_steady = int(round(steady_after / env_cfg.policy_dt))
            for t in range(steps):
                prev_critic = info["critic_obs"]
                obs, rew, term, trunc, info = env.step(policy(obs))
                crit = np.where(term[:, None] | trunc[:, None], info.get("final_critic_obs", prev_critic),
                                info["critic_obs"])
                v = crit[:, C.OBS_DIM:C.OBS_DIM + 6]  # privileged base lin vel (3), ang vel (3)
                e = np.abs(np.stack([v[:, 0] - vx, v[:, 1] - vy, v[:, 5] - yaw], axis=1))
                ret += rew * alive
                length += alive
                err += e * alive[:, None]
                if t >= t_steady:
                    err_steady += e[:, 0] * alive
                    vx_steady += v[:, 0] * alive
                    n_steady += alive
                fell |= term & alive
                alive &= ~(term | trunc)
            length = np.maximum(length, 1)
            rows.append({"vx": vx, "vy": vy, "yaw": yaw, "episodes": n, "steps": steps, "return": float(ret.mean()),
                         "length": float(length.mean()), "vx_err": float((err[:, 0] / length).mean()),
                         "vx_err_steady": float((err_steady / np.maximum(n_steady, 1)).mean()),
                         "vx_steady": float((vx_steady / np.maximum(n_steady, 1)).mean()),
                         "vy_err": float((err[:, 1] / length).mean()), "yaw_err": float((err[:, 2] / length).mean()),
                         "falls": int(fell.sum())})
    return rows


def format_table(rows: List[Dict[str, float]], title: str = "") -> str:
    head = "%6s %6s %6s | %8s %7s %8s %10s %8s %8s %6s %8s" % ("vx", "vy", "yaw", "episodes", "return", "|vx err|",
                                                               "steady", "|vy err|", "|yaw err|", "falls", "vx real")
    lines = ([title] if title else []) + [head, "-" * len(head)]
    for r in rows:
        lines.append("%6.2f %6.2f %6.2f | %8d %7.2f %8.3f %10.3f %8.3f %8.3f %6d %8.3f" % (
            r["vx"], r["vy"], r["yaw"], r["episodes"], r["return"], r["vx_err"], r["vx_err_steady"], r["vy_err"],
            r["yaw_err"], r["falls"], r.get("vx_steady", float("nan"))))
    return "\n".join(lines)


def add_arguments(p) -> None:
    p.add_argument("policy", help="policy .onnx (with its .yaml contract) or pretrain checkpoint .pt")
    p.add_argument("--config", default=None, help="env config YAML (default: sim_pretrain/configs/flat.yaml)")
    p.add_argument("--terrain", default="rigid", choices=TERRAIN_CHOICES,
                   help="ground (default %(default)s); mattress: the calibrated one (sim_pretrain/calibration/README.md)")
    p.add_argument("--motor-model", default=None, choices=["ideal_pd", "actuator_net"],
                   help="motor model (default: the config's, ideal_pd)")
    p.add_argument("--vx", type=float, nargs="+", default=[0.5, 1.0], help="forward speed commands, m/s (one run each)")
    p.add_argument("--vy", type=float, default=0.0, help="lateral speed command, m/s")
    p.add_argument("--yaw", type=float, default=0.0, help="yaw rate command, rad/s")
    p.add_argument("--episodes", type=int, default=20, help="episodes per command (default %(default)s)")
    p.add_argument("--steps", type=int, default=C.EPISODE_STEPS, help="policy steps per episode (1000 = 20 s)")
    p.add_argument("--workers", type=int, default=2, help="simulator processes (default %(default)s)")
    p.add_argument("--seed", type=int, default=123, help="random seed (default %(default)s)")
    p.add_argument("--dr", action="store_true", help="keep the config's domain randomisation and pushes")
    p.add_argument("--no-noise", action="store_true", help="disable observation noise")
    p.add_argument("--json", default=None, help="write the results here (default runs/eval/<policy>_<terrain>.json)")


def run(args) -> int:
    from go1o4.sim_pretrain.runner import PretrainConfig

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        cfg = load_config(PretrainConfig, args.config or os.path.join(here, "configs", "flat.yaml"))
        policy = load_policy(args.policy)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        sys.stderr.write("go1o4 evaluate: %s\n" % e)
        return 2
    if args.episodes < 1 or args.steps < 1:
        sys.stderr.write("go1o4 evaluate: --episodes and --steps must be >= 1\n")
        return 2
    if args.motor_model:
        cfg.env.motor_model = args.motor_model
    env_cfg = evaluation_env_config(cfg.env, args.episodes, args.terrain, args.dr, not args.no_noise, args.workers,
                                    args.seed)
    rows = evaluate(policy, env_cfg, [(vx, args.vy, args.yaw) for vx in args.vx], args.steps)
    print(format_table(rows, "%s on %s, %s (%d x %.1f s%s)" % (
        args.policy, args.terrain, env_cfg.motor_model, args.episodes, args.steps * env_cfg.policy_dt,
        ", DR" if args.dr else "")))
    out = args.json or os.path.join("runs", "eval", "%s_%s.json" % (
        os.path.splitext(os.path.basename(args.policy))[0], args.terrain))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"policy": os.path.abspath(args.policy), "terrain": args.terrain, "dr": args.dr,
                   "motor_model": env_cfg.motor_model, "ground": dataclasses.asdict(env_cfg.ground),
                   "noise": not args.no_noise, "rows": rows}, f, indent=1)
    print("wrote %s" % out)
    return 0


def main(argv: Optional[List[str]] = None) -> int:  # pragma: no cover - convenience
    import argparse
    p = argparse.ArgumentParser()
    add_arguments(p)
    return run(p.parse_args(argv))
