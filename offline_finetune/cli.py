"""``go1o4 offline``: offline Uni-O4 (or the one-step / IQL baselines) on a dataset, sim-free.

    go1o4 offline --dataset uni_o4_real --preset quick --out runs/offline_quick
    go1o4 offline --dataset data.h5 --preset paper --algo one_step --out runs/offline_onestep
    go1o4 offline --dataset uni_o4_real --init pretrained --pretrained policy.onnx --out runs/ooo

Re-running with the same ``--out`` resumes from its checkpoint.
"""
import os
import sys

from go1o4.offline_finetune.algorithms import algorithm_names

PRESETS = ("paper", "quick")


def preset_path(name: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "%s.yaml" % name)


def add_arguments(p) -> None:
    p.add_argument("--dataset", required=True,
                   help="a built dataset file, a directory of our episode logs, or 'uni_o4_real'")
    p.add_argument("--preset", default="quick", help="paper | quick, or a path to a YAML config")
    p.add_argument("--out", required=True, help="output directory (resumes if it holds a checkpoint)")
    p.add_argument("--algo", choices=algorithm_names(), default=None, help="algorithm (default: the preset's)")
    p.add_argument("--init", choices=("data", "pretrained"), default=None,
                   help="initialise the policy from behaviour cloning (data) or the pretrained policy (default: the preset's)")
    p.add_argument("--pretrained", default=None, help=".pt state_dict or .onnx of the sim-pretrained policy")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set improve.steps=2000 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (config key device; auto = CUDA if present)")
    p.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs `pip install wandb`)")


def run(args) -> int:
    from go1o4.offline_finetune.config import OfflineConfig
    from go1o4.offline_finetune.dataset import DatasetError, load_dataset
    from go1o4.offline_finetune.pretrained import PretrainedError

    from go1o4.config import ConfigError, load_config, to_dict
    from go1o4.rl.device import DeviceError, resolve_device
    from go1o4.runs import RunError, start_wandb

    path = preset_path(args.preset) if args.preset in PRESETS else args.preset
    overrides = list(args.overrides)
    for key in ("algo", "init", "pretrained", "seed", "device"):
        if getattr(args, key) is not None:
            overrides.append("%s=%s" % (key, getattr(args, key)))
    try:
        cfg = load_config(OfflineConfig, path, overrides)
        resolve_device(cfg.device)  # fail before reading the dataset
        if args.wandb:  # before the trainer opens its TensorBoard writer (W&B mirrors it)
            os.makedirs(args.out, exist_ok=True)
            start_wandb(args.out, to_dict(cfg), job="offline")
        dataset = load_dataset(args.dataset, progress=not args.no_progress)
        from go1o4.offline_finetune.train import OfflineRun
        summary = OfflineRun(cfg, dataset, args.out, progress=not args.no_progress).run()
    except (ConfigError, DatasetError, PretrainedError, DeviceError, RunError) as e:
        sys.stderr.write("go1o4 offline: %s\n" % e)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ngo1o4 offline: interrupted; checkpoint in %s, the same command resumes\n" % args.out)
        return 130
    print("selected member %s, OPE best scores %s, accepted updates %s"
          % (summary["selected_member"], summary["ope_best_scores"], summary["accepted_updates"]))
    print("policy: %s  report: %s" % (os.path.join(args.out, "policy.onnx"), os.path.join(args.out, "report.md")))
    return 0
