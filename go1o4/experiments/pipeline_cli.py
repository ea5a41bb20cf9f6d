"""``go1o4 pipeline [--quick]``: pretrained -> mattress data -> offline Uni-O4 -> online PPO -> evaluation + baselines.

    go1o4 pipeline --quick                      # every stage, tiny budgets (minutes); runs/pipeline_quick
    go1o4 pipeline --out runs/pipeline_full     # the paper's budgets (180k offline, 100k online steps), 3 seeds

Re-running with the same ``--out`` skips finished stages and resumes the interrupted one.
Writes ``report.md``, ``learning_curves.png``, ``results.png`` and ``results.json`` in the out dir.
"""
import os
import sys

from go1o4.experiments.config import CONFIGS


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="tiny budgets (configs/quick.yaml)")
    p.add_argument("--config", help="YAML PipelineConfig (default configs/full.yaml, or quick.yaml with --quick)")
    p.add_argument("--out", help="output directory (default runs/pipeline_quick or runs/pipeline_full)")
    p.add_argument("--pretrained", help="pretrained ONNX policy (default sim_pretrain/policies/go1_flat.onnx)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the config's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set online.total_steps=5000 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    p.add_argument("--device", help="auto | cpu | cuda[:N] for offline and online training")


def run(args) -> int:
    from go1o4.config import ConfigError, load_config
    from go1o4.experiments.config import PipelineConfig
    from go1o4.experiments.pipeline import Pipeline
    from go1o4.rl.device import resolve_device

    path = args.config or os.path.join(CONFIGS, "quick.yaml" if args.quick else "full.yaml")
    out = args.out or os.path.join("runs", "pipeline_quick" if args.quick else "pipeline_full")
    over = list(args.overrides)
    if args.pretrained:
        over.append("pretrained=%s" % args.pretrained)
    if args.seeds:
        over.append("seeds=[%s]" % ",".join(str(s) for s in args.seeds))
    if args.device:
        over += ["device=%s" % args.device, "online.device=%s" % args.device]
    try:
        cfg = load_config(PipelineConfig, path, over)
        resolve_device(cfg.device)
        resolve_device(cfg.online.device)
        results = Pipeline(cfg, out, progress=not args.no_progress).run()
    except (ConfigError, FileNotFoundError, ValueError) as e:
        sys.stderr.write("go1o4 pipeline: %s\n" % e)
        return 2
    except (RuntimeError, OSError, TimeoutError) as e:
        sys.stderr.write("go1o4 pipeline: %s\nre-run with --out %s to resume\n" % (e, out))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\ngo1o4 pipeline: interrupted; re-run with --out %s to resume\n" % out)
        return 130
    print("pipeline done: %s" % os.path.join(out, "report.md"))
    for m in results["methods"]:
        t = results["table"].get(m, {})
        r, e, f = (t.get(k, {}).get("mean", float("nan")) for k in ("return_all", "tracking_error_all", "fall_all"))
        print("  %-15s return %8.3f  tracking error %.3f m/s  fall rate %.2f" % (m, r, e, f))
    return 0
