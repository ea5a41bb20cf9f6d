"""Export a policy as ONNX + YAML contract, and check ONNX Runtime agrees with torch."""
import copy
import os
from typing import Any, Dict, Optional

import numpy as np
import torch

from go1o4 import contract as C
from go1o4.policy_contract import make_contract, save_contract
from go1o4.rl.networks import GaussianActor


class _Deterministic(torch.nn.Module):
    def __init__(self, actor: GaussianActor):
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)


def export_onnx(actor: GaussianActor, path: str, extra: Optional[Dict[str, Any]] = None,
                check_samples: int = 256, seed: int = 0) -> float:
    """Write ``path`` (ONNX, input ``obs`` (B, 290) -> output ``action`` (B, 12), the deterministic mean
    with normalisation inside) and ``<path>.yaml`` (the policy contract). Returns the max abs difference
    between ONNX Runtime and torch on random inputs; raises if it exceeds 1e-4.
    """
    import onnxruntime as ort

    if actor.ensemble_size != 1:
        raise ValueError("export one ensemble member: actor.member(i)")
    actor = copy.deepcopy(actor).cpu().eval()  # a CUDA-trained policy exports (and is checked) on the CPU
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    dummy = torch.zeros(1, C.POLICY_INPUT_DIM)
    torch.onnx.export(_Deterministic(actor), (dummy,), path, input_names=["obs"], output_names=["action"],
                      dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, opset_version=17, dynamo=False)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(check_samples, C.POLICY_INPUT_DIM)).astype(np.float32) * 2.0
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y_onnx = sess.run(["action"], {"obs": x})[0]
    with torch.no_grad():
        y_torch = actor(torch.from_numpy(x)).numpy()
    diff = float(np.max(np.abs(y_onnx - y_torch)))
    if diff > 1e-4:
        raise RuntimeError("ONNX export of %s disagrees with torch: max abs diff %.3g" % (path, diff))
    info = {"hidden": list(actor.hidden), "activation": actor.activation,
            "log_std": [float(v) for v in actor.log_std.detach().reshape(-1)],
            "onnx_torch_max_abs_diff": diff}
    info.update(extra or {})
    save_contract(os.path.splitext(path)[0] + ".yaml", make_contract(policy=info))
    return diff
