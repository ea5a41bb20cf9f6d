"""Load a sim-pretrained policy as a GaussianActor (online-offline-online recipe, paper A.4).

Accepts a torch state_dict (``.pt``/``.pth``, read with weights_only=True): a GaussianActor state_dict,
one under an ``actor`` key, or a ``sim_pretrain`` checkpoint (``ppo.actor``, normaliser included); or an
exported ONNX policy (``go1o4.rl.export``), whose initializers are read with ``onnx.numpy_helper`` and
whose log-std comes from the ``.yaml`` contract.
"""
import os
from typing import Dict, List, Tuple

import numpy as np
import torch

from go1o4 import contract as C
from go1o4.policy_contract import contract_path_for, load_contract
from go1o4.rl.networks import GaussianActor


class PretrainedError(ValueError):
    pass


def load_pretrained_actor(path: str) -> GaussianActor:
    if not os.path.exists(path):
        raise PretrainedError("pretrained policy %s not found" % path)
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pt", ".pth"):
        return _from_state_dict(path)
    if ext == ".onnx":
        return _from_onnx(path)
    raise PretrainedError("pretrained policy %s: expected a .pt/.pth state_dict or an .onnx file" % path)


def _build(path: str, weights: List[np.ndarray], biases: List[np.ndarray], mean, std, log_std,
           activation: str = "elu") -> GaussianActor:
    shapes = [w.shape[-2:] for w in weights]
    if not shapes or shapes[0][0] != C.POLICY_INPUT_DIM or shapes[-1][1] != C.NUM_ACTIONS:
        raise PretrainedError("%s: layers %s do not map %d -> %d" % (path, shapes, C.POLICY_INPUT_DIM, C.NUM_ACTIONS))
    hidden = [s[1] for s in shapes[:-1]]
    actor = GaussianActor(hidden=hidden, activation=activation)
    layers = [m for m in actor.mu.modules() if hasattr(m, "weight") and m.weight.dim() == 3]
    with torch.no_grad():
        for layer, w, b in zip(layers, weights, biases):
            layer.weight.copy_(torch.as_tensor(np.array(w, np.float32).reshape(layer.weight.shape)))
            layer.bias.copy_(torch.as_tensor(np.array(b, np.float32).reshape(layer.bias.shape)))
        if mean is not None:
            actor.normalizer.mean.copy_(torch.as_tensor(np.array(mean, np.float32)))
            actor.normalizer.std.copy_(torch.as_tensor(np.array(std, np.float32)))
        actor.log_std.copy_(torch.as_tensor(np.array(log_std, np.float32)).reshape(actor.log_std.shape))
    return actor


def _from_state_dict(path: str) -> GaussianActor:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise PretrainedError("%s: not a torch state_dict readable with weights_only=True (%s)" % (path, e))
    if isinstance(sd, dict) and isinstance(sd.get("ppo"), dict):  # a sim_pretrain checkpoint
        sd = sd["ppo"]
    if isinstance(sd, dict) and isinstance(sd.get("actor"), dict):
        sd = sd["actor"]
    if not isinstance(sd, dict):
        raise PretrainedError("%s: expected a state_dict (mapping), got %s" % (path, type(sd).__name__))
    sd = {k[len("actor."):] if k.startswith("actor.") else k: v for k, v in sd.items()}
    idx = sorted(int(k.split(".")[2]) for k in sd if k.startswith("mu.net.") and k.endswith(".weight"))
    if not idx:
        raise PretrainedError("%s: no GaussianActor weights (mu.net.N.weight) in the state_dict" % path)
    weights = [sd["mu.net.%d.weight" % i] for i in idx]
    if weights[0].dim() != 3 or weights[0].shape[0] != 1:
        raise PretrainedError("%s: expected a single policy (ensemble size 1), got weight shape %s"
                              % (path, tuple(weights[0].shape)))
    biases = [sd["mu.net.%d.bias" % i] for i in idx]
    log_std = sd.get("log_std", torch.zeros(C.NUM_ACTIONS))
    mean, std = sd.get("normalizer.mean"), sd.get("normalizer.std")
    return _build(path, [w.numpy() for w in weights], [b.numpy() for b in biases],
                  None if mean is None else mean.numpy(), None if std is None else std.numpy(), log_std.numpy())


def _from_onnx(path: str) -> GaussianActor:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(path)
    except Exception as e:  # noqa: BLE001
        raise PretrainedError("%s: not a readable ONNX model (%s)" % (path, e))
    init: Dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights, biases, mean, std = [], [], None, None
    pending: Dict[str, int] = {}  # tensor name -> layer index whose bias is still to be found
    for node in model.graph.node:
        ins = list(node.input)
        if node.op_type in ("MatMul", "Gemm") and len(ins) > 1 and ins[1] in init:
            w = init[ins[1]]
            trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
            weights.append(w.T if (node.op_type == "Gemm" and trans_b) else w)
            if node.op_type == "Gemm" and len(ins) > 2 and ins[2] in init:
                biases.append(init[ins[2]])
            else:
                pending[node.output[0]] = len(weights) - 1
        elif node.op_type == "Sub" and len(ins) > 1 and ins[1] in init and mean is None:
            mean = init[ins[1]]
        elif node.op_type == "Div" and len(ins) > 1 and ins[1] in init and std is None:
            std = init[ins[1]]
        else:
            for src in ins:
                if src in pending:  # follow the MatMul output (through Mul-by-1) to its bias Add
                    layer = pending.pop(src)
                    other = [i for i in ins if i != src and i in init]
                    if node.op_type == "Add" and other:
                        biases.append(init[other[0]])
                    else:
                        pending[node.output[0]] = layer
    if len(biases) != len(weights):
        raise PretrainedError("%s: found %d weight matrices but %d biases; not a GaussianActor export"
                              % (path, len(weights), len(biases)))
    log_std, activation = np.zeros(C.NUM_ACTIONS), "elu"
    contract_file = contract_path_for(path)
    if os.path.exists(contract_file):
        policy = load_contract(contract_file).get("policy", {}) or {}
        log_std = np.asarray(policy.get("log_std", log_std), dtype=np.float64)
        activation = policy.get("activation", activation)
    return _build(path, weights, biases, mean, std, log_std, activation)


def ensemble_from_pretrained(path: str, k: int) -> Tuple[GaussianActor, GaussianActor]:
    """(single pretrained actor, K-member ensemble whose members all start as copies of it)."""
    single = load_pretrained_actor(path)
    return single, GaussianActor.stack([single] * k)


@torch.no_grad()
def behaviour_std(actor: GaussianActor, observations: torch.Tensor, actions: torch.Tensor,
                  batch: int = 8192) -> np.ndarray:
    """Per-joint maximum-likelihood std of the data's actions around ``actor``'s mean: sqrt(mean((a - mu(s))^2)).

    For data collected by this policy with a scaled std (e.g. ``std_scale`` 0.5) it recovers that std; the
    A.4 recipe starts the members with it so that PPO samples actions like the data's (paper A.4).
    """
    sq = torch.zeros(actions.shape[-1], dtype=torch.float64)
    for i in range(0, observations.shape[0], batch):
        sq += (actions[i:i + batch] - actor(observations[i:i + batch])).double().pow(2).sum(0)
    return np.sqrt(sq.numpy() / max(1, observations.shape[0]))


@torch.no_grad()
def set_std(actor: GaussianActor, std) -> None:
    """Set every member's (state-independent) std to ``std`` (a scalar or one value per action)."""
    std = torch.as_tensor(np.broadcast_to(np.asarray(std, dtype=np.float64), (actor.act_dim,)).copy())
    actor.log_std.copy_(std.clamp_min(1e-6).log().float().view(1, 1, -1).expand_as(actor.log_std))
