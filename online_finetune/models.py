"""Online initialisation: the offline policy and V (frozen normalisers, same log-std), reward scaling.

Online PPO starts from the selected offline member and the offline V (paper Sec. 3.3): each network keeps
the frozen observation normaliser it was trained with (dataset mean/std), and the actor keeps its
state-independent log-std parameter as is (no extra tanh, REFERENCE section 1). Rewards are divided by
the std of the discounted return fitted on the offline data and frozen (Engstrom et al. 2019); the
offline V was fitted to unscaled rewards, so its output layer is divided by the same std to predict
returns of the scaled rewards.
"""
import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import yaml

from go1o4.rl.networks import Critic, EnsembleLinear, GaussianActor
from go1o4.rl.normalizer import RewardScaler


class InitError(ValueError):
    """The offline run / pretrained policy cannot initialise online training; names the file."""


def _layers(sd: Dict[str, torch.Tensor], prefix: str) -> List[torch.Tensor]:
    idx = sorted(int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix) and k.endswith(".weight"))
    return [sd["%s%d.weight" % (prefix, i)] for i in idx]


def arch_of(module: torch.nn.Module) -> Dict[str, Any]:
    """Hidden sizes and activation of a GaussianActor / Critic (stored in checkpoints to rebuild it)."""
    lin = [m for m in module.modules() if isinstance(m, EnsembleLinear)]
    acts = [type(m).__name__ for m in (module.mu.net if hasattr(module, "mu") else module.net.net)
            if not isinstance(m, EnsembleLinear)]
    name = {"ELU": "elu", "Tanh": "tanh", "ReLU": "relu", "SiLU": "silu"}[acts[0]] if acts else "elu"
    return {"hidden": [m.d_out for m in lin[:-1]], "activation": name}


def build_actor(arch: Dict[str, Any]) -> GaussianActor:
    return GaussianActor(hidden=arch["hidden"], activation=arch["activation"])


def build_critic(arch: Dict[str, Any]) -> Critic:
    return Critic(hidden=arch["hidden"], activation=arch["activation"])


def _load_sd(path: str) -> Dict[str, torch.Tensor]:
    if not os.path.exists(path):
        raise InitError("%s not found (is it a finished offline run? `go1o4 offline` writes it at export)" % path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unreadable file: name it
        raise InitError("%s: not a state_dict readable with weights_only=True (%s)" % (path, e))
    if not isinstance(sd, dict):
        raise InitError("%s: expected a state_dict, got %s" % (path, type(sd).__name__))
    return sd


def load_offline(offline_dir: str) -> Tuple[GaussianActor, Critic, Dict[str, Any]]:
    """(actor, V, info) from an offline run directory (policy_actor.pt, value_v.pt, config.yaml)."""
    asd = _load_sd(os.path.join(offline_dir, "policy_actor.pt"))
    vsd = _load_sd(os.path.join(offline_dir, "value_v.pt"))
    activation = "relu"
    cfg_path = os.path.join(offline_dir, "config.yaml")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            activation = ((yaml.safe_load(f) or {}).get("value") or {}).get("activation", activation)
    weights = _layers(asd, "mu.net.")
    if not weights or weights[0].dim() != 3 or weights[0].shape[0] != 1:
        raise InitError("%s/policy_actor.pt: not a single GaussianActor state_dict" % offline_dir)
    actor = build_actor({"hidden": [int(w.shape[2]) for w in weights[:-1]], "activation": "elu"})
    vw = _layers(vsd, "net.net.")
    if not vw:
        raise InitError("%s/value_v.pt: no critic layers (net.net.N.weight)" % offline_dir)
    critic = build_critic({"hidden": [int(w.shape[2]) for w in vw[:-1]], "activation": activation})
    try:
        actor.load_state_dict(asd)
        critic.load_state_dict(vsd)
    except RuntimeError as e:
        raise InitError("%s: state_dicts do not fit the online networks: %s" % (offline_dir, str(e)[:300]))
    summary = {}
    spath = os.path.join(offline_dir, "summary.json")
    if os.path.exists(spath):
        import json
        with open(spath) as f:
            summary = json.load(f)
    return actor, critic, {"source": "offline", "offline_dir": os.path.abspath(offline_dir),
                           "offline_algo": summary.get("algo"), "offline_init": summary.get("init")}


def load_pretrained(path: str, critic_hidden: Sequence[int], obs_mean, obs_std) -> Tuple[GaussianActor, Critic, Dict]:
    """PPO-without-offline baseline: the pretrained actor and a fresh critic normalised by the dataset stats."""
    from go1o4.offline_finetune.pretrained import PretrainedError, load_pretrained_actor

    try:
        actor = load_pretrained_actor(path)
    except PretrainedError as e:
        raise InitError(str(e))
    critic = build_critic({"hidden": list(critic_hidden), "activation": "elu"})
    critic.normalizer.set_stats(obs_mean, obs_std)
    return actor, critic, {"source": "pretrained", "pretrained": os.path.abspath(path)}


def episode_starts(episode_ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(episode_ids)
    return np.concatenate([[True], ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, bool)


def fit_reward_scale(rewards: np.ndarray, episode_ids: np.ndarray, gamma: float) -> float:
    """Std of the discounted return over the offline data (frozen reward scale, RewardScaler.fit)."""
    scaler = RewardScaler(1, gamma)
    scaler.fit(np.asarray(rewards, dtype=np.float64), episode_starts(episode_ids))
    std = float(scaler.rms.std)
    if not np.isfinite(std) or std <= 1e-8:
        raise InitError("reward scale from the offline data is %r (constant or empty rewards?)" % std)
    return std


@torch.no_grad()
def scale_critic(critic: Critic, factor: float) -> None:
    """V <- factor * V by scaling the output layer (V fitted on raw rewards -> V of rewards / std)."""
    last = [m for m in critic.modules() if isinstance(m, EnsembleLinear)][-1]
    last.weight.mul_(factor)
    last.bias.mul_(factor)


def all_finite(*modules: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for m in modules for t in m.state_dict().values()
               if torch.is_tensor(t) and t.is_floating_point())
