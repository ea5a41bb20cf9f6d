"""Import a walk-these-ways / Uni-O4 actor ``state_dict`` as the project's :class:`GaussianActor`.

The authors' actor (walk-these-ways ``ActorCritic``) is ``actor_body = Sequential(Linear, ELU, Linear, ELU,
Linear, ELU, Linear)``, 290 -> 512 -> 256 -> 128 -> 12, no input normalisation, and a state-independent
action std stored as ``std`` (the std itself, not its log): a ~ N(mu(s), diag(std^2)). That is a
GaussianActor with an identity normaliser (mean 0, std 1) and ``log_std = log(std)``. The normaliser's
clip at +-10 never acts on a contract observation: every block is bounded well inside it (the largest
entries are the previous actions, which the contract already clips to +-10).

The checkpoint is read with ``torch.load(weights_only=True)``: tensors only, no code is unpickled.
"""
import math
import os
import re
from typing import Dict, List

import torch
from torch import nn

from go1o4 import contract as C
from go1o4.rl.networks import EnsembleLinear, GaussianActor

PREFIX = "actor_body."


class ImportPolicyError(ValueError):
    """The checkpoint cannot be read or does not fit the Go1 contract (the message says which part)."""


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    if not os.path.exists(path):
        raise ImportPolicyError("checkpoint %s not found" % path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every unreadable file gets the same clear message
        raise ImportPolicyError("%s: not a torch state_dict readable with weights_only=True (%s)" % (path, e))
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ImportPolicyError("%s: expected a state_dict (mapping of names to tensors), got %s"
                                % (path, type(sd).__name__))
    return sd


def actor_layers(sd: Dict[str, torch.Tensor], source: str = "<state_dict>") -> List[int]:
    """Indices N of ``actor_body.N.weight``; checks the chain 290 -> ... -> 12 and every bias."""
    idx = sorted(int(m.group(1)) for k in sd for m in [re.match(r"actor_body\.(\d+)\.weight$", k)] if m)
    if not idx:
        raise ImportPolicyError("%s: no walk-these-ways actor (keys actor_body.N.weight) in the state_dict; "
                                "keys found: %s" % (source, sorted(sd)[:8]))
    problems, d = [], C.POLICY_INPUT_DIM
    for n in idx:
        w, b = sd["%s%d.weight" % (PREFIX, n)], sd.get("%s%d.bias" % (PREFIX, n))
        if w.dim() != 2 or w.shape[1] != d:
            problems.append("actor_body.%d.weight: expected (*, %d), got %s" % (n, d, tuple(w.shape)))
            break
        if b is None or tuple(b.shape) != (w.shape[0],):
            problems.append("actor_body.%d.bias: expected (%d,), got %s"
                            % (n, w.shape[0], None if b is None else tuple(b.shape)))
        d = w.shape[0]
    if not problems and d != C.NUM_ACTIONS:
        problems.append("actor output: expected %d actions, got %d" % (C.NUM_ACTIONS, d))
    std = sd.get("std")
    if std is None:
        problems.append("std: missing (the action standard deviation, %d values)" % C.NUM_ACTIONS)
    elif tuple(std.shape) != (C.NUM_ACTIONS,):
        problems.append("std: expected (%d,), got %s" % (C.NUM_ACTIONS, tuple(std.shape)))
    elif not bool(torch.all(torch.isfinite(std)) and torch.all(std > 0)):
        problems.append("std: must be finite and > 0, got %s" % std.tolist())
    if any(not bool(torch.all(torch.isfinite(sd["%s%d.weight" % (PREFIX, n)]))) for n in idx):
        problems.append("actor weights contain NaN/inf")
    if problems:
        raise ImportPolicyError("%s does not fit the Go1 policy contract (input %d = %d-step history x %d, "
                                "output %d actions):\n  - %s" % (source, C.POLICY_INPUT_DIM, C.HISTORY_LEN,
                                                                 C.OBS_DIM, C.NUM_ACTIONS, "\n  - ".join(problems)))
    return idx


def reference_actor(sd: Dict[str, torch.Tensor]) -> nn.Sequential:
    """The authors' own architecture (Linear/ELU chain) with the checkpoint's weights: the reference."""
    idx = actor_layers(sd)
    mods: List[nn.Module] = []
    for j, n in enumerate(idx):
        w = sd["%s%d.weight" % (PREFIX, n)]
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data.copy_(w)
        lin.bias.data.copy_(sd["%s%d.bias" % (PREFIX, n)])
        mods.append(lin)
        if j < len(idx) - 1:
            mods.append(nn.ELU())
    return nn.Sequential(*mods).eval()


def actor_from_wtw(sd: Dict[str, torch.Tensor], source: str = "<state_dict>") -> GaussianActor:
    """GaussianActor equal to the walk-these-ways actor (identity normaliser, log_std = log(std))."""
    idx = actor_layers(sd, source)
    weights = [sd["%s%d.weight" % (PREFIX, n)] for n in idx]
    actor = GaussianActor(hidden=[int(w.shape[0]) for w in weights[:-1]], activation="elu")
    layers = [m for m in actor.mu.modules() if isinstance(m, EnsembleLinear)]
    with torch.no_grad():
        for layer, n, w in zip(layers, idx, weights):
            layer.weight.copy_(w.T.unsqueeze(0))  # EnsembleLinear stores (K, in, out)
            layer.bias.copy_(sd["%s%d.bias" % (PREFIX, n)].reshape(1, 1, -1))
        actor.normalizer.set_stats(torch.zeros(C.POLICY_INPUT_DIM).numpy(), torch.ones(C.POLICY_INPUT_DIM).numpy())
        actor.log_std.copy_(torch.log(sd["std"].float()).reshape(actor.log_std.shape))
    return actor.eval()


def max_abs_diff(actor: GaussianActor, ref: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.max(torch.abs(actor(x) - ref(x))))


def std_of(actor: GaussianActor) -> List[float]:
    return [float(math.exp(v)) for v in actor.log_std.detach().reshape(-1)]
