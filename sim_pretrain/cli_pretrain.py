"""``go1o4 pretrain``: PPO on the vectorised MuJoCo Go1 env (checkpoints, TensorBoard, resume).

    go1o4 pretrain --config sim_pretrain/configs/flat.yaml --out runs/flat        # -> runs/flat/<timestamp>/
    go1o4 pretrain --config sim_pretrain/configs/flat.yaml --resume runs/flat/<timestamp>   # its latest checkpoint

Ctrl-C saves ``model_last.pt`` and exits with one line; checkpoints are also written every
``runner.save_every_s`` seconds, so a stop never loses more than that.
"""
import os
import subprocess
import sys
import time

from go1o4.config import ConfigError, load_config, save_config

BACKENDS = ("mujoco", "warp", "isaacgym")


def make_env(backend: str, env_cfg, warp_device=None):
    """The vectorised env of ``backend`` (all three share Go1VecEnv's interface)."""
    if backend == "warp":
        from go1o4.sim_pretrain.env.warp_env import WarpGo1VecEnv
        return WarpGo1VecEnv(env_cfg, device=warp_device)
    if backend == "isaacgym":
        from go1o4.sim_pretrain.isaacgym_backend import IsaacGymGo1VecEnv
        return IsaacGymGo1VecEnv(env_cfg)
    from go1o4.sim_pretrain.env import Go1VecEnv
    return Go1VecEnv(env_cfg)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, help="YAML config (e.g. sim_pretrain/configs/flat.yaml)")
    p.add_argument("--out", default=None,
                   help="runs root: each new run gets its own <out>/<timestamp>[_<run-name>] folder (checkpoints, "
                        "TensorBoard, progress.jsonl)")
    p.add_argument("--run-name", default=None, help="suffix of the run folder name")
    p.add_argument("--resume", default=None,
                   help="a run folder (resumes from its latest checkpoint, in that folder) or a model_*.pt file")
    p.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs `pip install wandb`)")
    p.add_argument("--iterations", type=int, default=None, help="stop after this many more iterations")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. env.num_envs=64")
    p.add_argument("--no-progress", action="store_true", help="disable the tqdm bar")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N]: networks, storage and PPO (runner.device)")
    p.add_argument("--backend", choices=BACKENDS, default="mujoco",
                   help="physics: mujoco (CPU worker processes), warp (MuJoCo Warp, GPU or Warp's CPU device), "
                        "isaacgym (Isaac Gym Preview 4, rigid terrain only)")
    p.add_argument("--warp-device", default=None, help="Warp device for --backend warp (default: cuda:0 if present)")


def _git_state() -> str:
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "sim_pretrain", "go1o4"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return head + (" (dirty)" if dirty else "")
    except OSError:
        return "unknown"


def run(args) -> int:
    from go1o4.sim_pretrain.runner import OnPolicyRunner, PretrainConfig

    from go1o4.config import to_dict
    from go1o4.rl.device import DeviceError, resolve_device
    from go1o4.runs import RunError, resolve_run, start_wandb

    overrides = list(args.set) + (["runner.device=%s" % args.device] if args.device else [])
    try:
        cfg = load_config(PretrainConfig, args.config, overrides=overrides)
        resolve_device(cfg.runner.device)
        env = make_env(args.backend, cfg.env, args.warp_device)
        out, ckpt = resolve_run(args.out, args.resume, args.run_name)
        if args.wandb:
            start_wandb(out, to_dict(cfg))
    except (ConfigError, DeviceError, RunError, ImportError, RuntimeError, ValueError) as e:
        sys.stderr.write("go1o4 pretrain: %s\n" % e)
        return 2
    save_config(cfg, os.path.join(out, "config.yaml"))
    with open(os.path.join(out, "command.txt"), "a") as f:
        f.write("%s  git %s\n  go1o4 pretrain %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), _git_state(),
                                                       " ".join(sys.argv[2:] if len(sys.argv) > 2 else [])))
    print("run folder: %s" % out)
    runner = None
    try:
        runner = OnPolicyRunner(cfg, out, env=env)
        if ckpt:
            runner.load(ckpt)
            print("resumed from %s at iteration %d (%d samples)" % (ckpt, runner.iteration, runner.samples))
        stats = runner.learn(args.iterations, progress=not args.no_progress)
    except KeyboardInterrupt:
        saved = runner.interrupted_checkpoint if runner is not None else None
        sys.stderr.write("\ngo1o4 pretrain: interrupted at iteration %d; %s\n" % (
            runner.iteration if runner is not None else 0,
            "saved %s; resume with --resume %s" % (saved, out) if saved else "no checkpoint yet"))
        return 130
    except (FileNotFoundError, ValueError) as e:
        sys.stderr.write("go1o4 pretrain: %s\n" % e)
        return 2
    finally:
        if runner is not None:
            try:
                runner.close()
            except KeyboardInterrupt:
                pass
    print("done: iteration %d, %d samples, %.0f s; last return %.3f, vx_err %.3f" % (
        runner.iteration, runner.samples, runner.wall, stats.get("episode/r", float("nan")),
        stats.get("episode/vx_err", float("nan"))))
    return 0
