"""``go1o4 pretrain``: PPO on the vectorised MuJoCo Go1 env (checkpoints, TensorBoard, resume)."""
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
    p.add_argument("--out", required=True, help="run directory (checkpoints, TensorBoard, progress.jsonl)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from (model_*.pt)")
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

    from go1o4.rl.device import DeviceError, resolve_device

    overrides = list(args.set) + (["runner.device=%s" % args.device] if args.device else [])
    try:
        cfg = load_config(PretrainConfig, args.config, overrides=overrides)
        resolve_device(cfg.runner.device)
        env = make_env(args.backend, cfg.env, args.warp_device)
    except (ConfigError, DeviceError, ImportError, RuntimeError, ValueError) as e:
        sys.stderr.write("go1o4 pretrain: %s\n" % e)
        return 2
    os.makedirs(args.out, exist_ok=True)
    save_config(cfg, os.path.join(args.out, "config.yaml"))
    with open(os.path.join(args.out, "command.txt"), "a") as f:
        f.write("%s  git %s\n  go1o4 pretrain %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), _git_state(),
                                                       " ".join(sys.argv[2:] if len(sys.argv) > 2 else [])))
    runner = OnPolicyRunner(cfg, args.out, env=env)
    try:
        if args.resume:
            runner.load(args.resume)
            print("resumed from %s at iteration %d (%d samples)" % (args.resume, runner.iteration, runner.samples))
        stats = runner.learn(args.iterations, progress=not args.no_progress)
    finally:
        runner.close()
    print("done: iteration %d, %d samples, %.0f s; last return %.3f, vx_err %.3f" % (
        runner.iteration, runner.samples, runner.wall, stats.get("episode/r", float("nan")),
        stats.get("episode/vx_err", float("nan"))))
    return 0
