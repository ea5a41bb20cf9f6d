"""``go1o4 import-policy``: a walk-these-ways / Uni-O4 actor checkpoint -> ONNX policy + YAML contract.

    go1o4 import-policy ../shared/data/uni_o4_go1_policies/ac_weights_000300.pt --out policies/uni_o4_ac300

writes ``DIR/policy.onnx`` and ``DIR/policy.yaml`` (the contract, with the action std). The imported
actor is checked three ways on random inputs: the project's GaussianActor against the authors'
Linear/ELU chain, and ONNX Runtime against both (max abs diff <= 1e-4 each).
"""
import os
import sys

import numpy as np


def add_arguments(p) -> None:
    p.add_argument("checkpoint", help="walk-these-ways / Uni-O4 ActorCritic state_dict (.pt; actor_body.*, std)")
    p.add_argument("--out", required=True, help="output folder: policy.onnx + policy.yaml")
    p.add_argument("--name", default="policy", help="file stem inside --out (default: policy)")
    p.add_argument("--samples", type=int, default=512, help="random inputs for the torch/ONNX checks")


def import_policy(checkpoint: str, out_dir: str, name: str = "policy", samples: int = 512) -> dict:
    """Convert and check; returns the report (paths, diffs, std). Raises ImportPolicyError on a bad checkpoint."""
    import onnxruntime as ort
    import torch

    from go1o4 import contract as C
    from go1o4.policy_contract import file_sha256
    from go1o4.rl.export import export_onnx
    from go1o4.rl.wtw_import import actor_from_wtw, max_abs_diff, read_state_dict, reference_actor, std_of

    sd = read_state_dict(checkpoint)
    actor = actor_from_wtw(sd, checkpoint)
    ref = reference_actor(sd)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(samples, C.POLICY_INPUT_DIM)).astype(np.float32))
    d_ref = max_abs_diff(actor, ref, x)
    if d_ref > 1e-5:
        raise RuntimeError("imported actor disagrees with the checkpoint's own network: max abs diff %.3g" % d_ref)
    onnx_path = os.path.join(out_dir, name + ".onnx")
    extra = {"source": "walk-these-ways/Uni-O4 state_dict (go1o4 import-policy)",
             "checkpoint": os.path.abspath(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
             "std": std_of(actor), "normalisation": "none (identity)",
             "torch_reference_max_abs_diff": d_ref}
    d_onnx = export_onnx(actor, onnx_path, extra=extra, check_samples=samples)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        d_onnx_ref = float(np.max(np.abs(sess.run(["action"], {"obs": x.numpy()})[0] - ref(x).numpy())))
    if d_onnx_ref > 1e-4:
        raise RuntimeError("ONNX policy disagrees with the checkpoint's network: max abs diff %.3g" % d_onnx_ref)
    return {"onnx": onnx_path, "contract": os.path.join(out_dir, name + ".yaml"), "torch_vs_reference": d_ref,
            "onnx_vs_torch": d_onnx, "onnx_vs_reference": d_onnx_ref, "std": std_of(actor)}


def run(args) -> int:
    from go1o4.rl.wtw_import import ImportPolicyError

    try:
        rep = import_policy(args.checkpoint, args.out, args.name, args.samples)
    except ImportPolicyError as e:
        sys.stderr.write("go1o4 import-policy: %s\n" % e)
        return 2
    print("wrote %s and %s" % (rep["onnx"], rep["contract"]))
    print("max abs diff: torch vs checkpoint network %.2g, ONNX Runtime vs torch %.2g, ONNX vs checkpoint %.2g"
          % (rep["torch_vs_reference"], rep["onnx_vs_torch"], rep["onnx_vs_reference"]))
    print("action std: %s" % " ".join("%.3f" % s for s in rep["std"]))
    return 0
