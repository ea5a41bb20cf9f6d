"""``go1o4 online``: PPO fine-tuning on the (simulated) Go1 through the runtime, from an offline Uni-O4 run.

    go1o4 online --offline runs/offline --dataset runs/data/dataset.h5 --out runs/online
    go1o4 online --init pretrained --pretrained sim_pretrain/policies/go1_flat.onnx --dataset D --out runs/ppo
    go1o4 online --out runs/online              # after a crash / Ctrl-C: resume from its checkpoint

Default robot: the simulated Go1 on 127.0.0.1, mattress terrain, lock-step. Exit status 0 done,
2 setup error (config, missing/unfit offline run or dataset), 1 runtime failure.
"""
import os
import sys

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "online.yaml")


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, help="run directory (resumes if it holds a checkpoint)")
    p.add_argument("--offline", help="offline run directory (go1o4 offline --out): policy_actor.pt, value_v.pt")
    p.add_argument("--dataset", help="the offline dataset (file, log directory or 'uni_o4_real'): reward scale")
    p.add_argument("--reward", default="logged", help="reward name when --dataset is a log directory")
    p.add_argument("--init", choices=("offline", "pretrained"), help="start from the offline run or a pretrained policy")
    p.add_argument("--pretrained", help="pretrained policy (.onnx or .pt) for --init pretrained")
    p.add_argument("--config", help="YAML OnlineConfig (default: <out>/config.yaml on resume, else %s)" % CONFIG)
    p.add_argument("--steps", type=int, help="total online steps (overrides total_steps)")
    p.add_argument("--seed", type=int, help="random seed (default: the config's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set robot.terrain=rigid (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    p.add_argument("--device", help="auto | cpu | cuda[:N] for the PPO update (config key device)")
    p.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs `pip install wandb`)")


def run(args) -> int:
    from go1o4.online_finetune.config import OnlineConfig
    from go1o4.online_finetune.models import InitError
    from go1o4.online_finetune.runfiles import RunDirBusy

    from go1o4.config import ConfigError, load_config, to_dict
    from go1o4.rl.device import DeviceError, resolve_device
    from go1o4.runs import RunError, start_wandb

    saved = os.path.join(args.out, "config.yaml")
    path = args.config or (saved if os.path.exists(saved) else CONFIG)
    over = list(args.overrides)
    for key, name in (("init", "init"), ("steps", "total_steps"), ("seed", "seed"), ("device", "device")):
        if getattr(args, key) is not None:
            over.append("%s=%s" % (name, getattr(args, key)))
    try:
        cfg = load_config(OnlineConfig, path, over)
        resolve_device(cfg.device)
        if args.wandb:  # before the trainer opens its TensorBoard writer (W&B mirrors it)
            os.makedirs(args.out, exist_ok=True)
            start_wandb(args.out, to_dict(cfg), job="online")
        resume = os.path.exists(os.path.join(args.out, "checkpoint.pt"))
        dataset = None
        if not resume:
            if not args.dataset:
                raise InitError("--dataset is needed to start a run (reward scale of the offline data)")
            from go1o4.offline_finetune.dataset import DatasetError, load_dataset
            try:
                dataset = load_dataset(args.dataset, reward=args.reward, progress=not args.no_progress)
            except DatasetError as e:
                raise InitError(str(e))
            if cfg.init == "offline" and not args.offline:
                raise InitError("--offline DIR is needed with init=offline")
        from go1o4.online_finetune.trainer import OnlineTrainer
        trainer = OnlineTrainer(cfg, args.out, offline_dir=args.offline, pretrained=args.pretrained, dataset=dataset,
                                progress=not args.no_progress)
    except (ConfigError, InitError, RunDirBusy, DeviceError, RunError) as e:
        sys.stderr.write("go1o4 online: %s\n" % e)
        return 2
    try:
        summary = trainer.train()
    except KeyboardInterrupt:
        sys.stderr.write("go1o4 online: interrupted; re-run with --out %s to resume\n" % args.out)
        return 1
    except (RuntimeError, OSError, TimeoutError) as e:
        sys.stderr.write("go1o4 online: %s\nre-run with --out %s to resume\n" % (e, args.out))
        return 1
    print("online: %d updates (%d rejected), %d steps, %.0f s; policy %s"
          % (summary["updates"], summary["rejected"], summary["steps"], summary["wall_s"], summary["policy"]))
    return 0
