"""``go1o4 export``: pretrain checkpoint -> ONNX policy + YAML contract (via go1o4.rl.export.export_onnx)."""
import os
import sys


def add_arguments(p) -> None:
    p.add_argument("checkpoint", help="pretrain checkpoint (runs/NAME/model_*.pt)")
    p.add_argument("--out", required=True, help="ONNX path; the contract is written beside it as <name>.yaml")


def run(args) -> int:
    from go1o4.sim_pretrain.runner import actor_from_checkpoint, load_checkpoint

    from go1o4.rl.export import export_onnx

    try:
        actor = actor_from_checkpoint(args.checkpoint)
        ckpt = load_checkpoint(args.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        sys.stderr.write("go1o4 export: %s\n" % e)
        return 2
    env = ckpt["config"]["env"]
    extra = {"source": "sim_pretrain", "checkpoint": os.path.basename(args.checkpoint),
             "iteration": int(ckpt["iteration"]), "samples": int(ckpt["samples"]),
             "terrain": env["terrain"], "gait": env["commands"]["gait"] or "default trot (contract.DEFAULT_GAIT)"}
    diff = export_onnx(actor, args.out, extra=extra)
    print("wrote %s and %s; ONNX Runtime vs torch max abs diff %.3g" % (
        args.out, os.path.splitext(args.out)[0] + ".yaml", diff))
    return 0
