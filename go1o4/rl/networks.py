"""Networks: an ensemble-batched MLP, the Gaussian actor used everywhere, and the critic.

Every network holds ``ensemble_size`` members evaluated as one batched computation
(``torch.baddbmm``): K = 1 is the ordinary single policy; K = 4 is the Uni-O4 ensemble
(paper Eq. 6). Observation normalisation (frozen or running statistics) is part of the actor,
so an exported ONNX policy takes the raw 290-float input.
"""
import math
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from go1o4 import contract as C

ACTOR_HIDDEN = (512, 256, 128)


class EnsembleLinear(nn.Module):
    """K independent linear layers applied as one batched matmul. Input (K, B, in) or (B, in)."""

    def __init__(self, k: int, d_in: int, d_out: int, gain: float = math.sqrt(2.0)):
        super().__init__()
        self.k, self.d_in, self.d_out = k, d_in, d_out
        self.weight = nn.Parameter(torch.empty(k, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(k, 1, d_out))
        for i in range(k):  # orthogonal init per member (Engstrom et al. 2019)
            nn.init.orthogonal_(self.weight.data[i].T, gain=gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.k, -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    def __init__(self, k: int, d_in: int, hidden: Sequence[int], d_out: int, activation: str = "elu",
                 out_gain: float = 1.0):
        super().__init__()
        act = {"elu": nn.ELU, "tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}[activation]
        layers, d = [], d_in
        for h in hidden:
            layers += [EnsembleLinear(k, d, h), act()]
            d = h
        layers.append(EnsembleLinear(k, d, d_out, gain=out_gain))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ObsNormalizer(nn.Module):
    """(x - mean) / std with clipping; statistics are buffers (saved, exported, frozen unless updated)."""

    def __init__(self, dim: int, clip: float = 10.0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.clip = clip

    def set_stats(self, mean, std, min_std: float = 1e-3) -> None:
        self.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(np.asarray(std), min_std), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp((x - self.mean) / self.std, -self.clip, self.clip)


class GaussianActor(nn.Module):
    """pi(a|s) = N(mu_theta(s), diag(exp(log_std))): 290 -> 512 -> 256 -> 128 -> 12, ELU, state-independent log-std.

    ``forward`` returns the mean with shape (K, B, act) for K > 1 and (B, act) for K = 1.
    """

    def __init__(self, obs_dim: int = C.POLICY_INPUT_DIM, act_dim: int = C.NUM_ACTIONS,
                 hidden: Sequence[int] = ACTOR_HIDDEN, ensemble_size: int = 1, init_std: float = 1.0,
                 activation: str = "elu"):
        super().__init__()
        self.obs_dim, self.act_dim, self.ensemble_size = obs_dim, act_dim, ensemble_size
        self.hidden, self.activation = tuple(hidden), activation
        self.normalizer = ObsNormalizer(obs_dim)
        self.mu = EnsembleMLP(ensemble_size, obs_dim, hidden, act_dim, activation, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((ensemble_size, 1, act_dim), math.log(init_std)))

    def _squeeze(self, x: torch.Tensor) -> torch.Tensor:
        return x[0] if self.ensemble_size == 1 else x

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self._squeeze(self.mu(self.normalizer(obs)))

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        mean = self.mu(self.normalizer(obs))
        std = self.log_std.exp().expand_as(mean)
        return torch.distributions.Normal(self._squeeze(mean), self._squeeze(std))

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs).log_prob(actions).sum(-1)

    def member(self, i: int) -> "GaussianActor":
        """A single-policy copy (K = 1) of ensemble member ``i``."""
        single = GaussianActor(self.obs_dim, self.act_dim, self.hidden, 1, activation=self.activation)
        single.normalizer.load_state_dict(self.normalizer.state_dict())
        with torch.no_grad():
            for dst, src in zip(single.mu.modules(), self.mu.modules()):
                if isinstance(dst, EnsembleLinear):
                    dst.weight.copy_(src.weight[i:i + 1])
                    dst.bias.copy_(src.bias[i:i + 1])
            single.log_std.copy_(self.log_std[i:i + 1])
        return single

    @classmethod
    def stack(cls, actors: Sequence["GaussianActor"]) -> "GaussianActor":
        """An ensemble whose members are copies of ``actors`` (K = 1 each); the first one's normaliser is used."""
        a0 = actors[0]
        ens = cls(a0.obs_dim, a0.act_dim, a0.hidden, len(actors), activation=a0.activation)
        ens.normalizer.load_state_dict(a0.normalizer.state_dict())
        with torch.no_grad():
            for i, a in enumerate(actors):
                for dst, src in zip(ens.mu.modules(), a.mu.modules()):
                    if isinstance(dst, EnsembleLinear):
                        dst.weight[i:i + 1].copy_(src.weight)
                        dst.bias[i:i + 1].copy_(src.bias)
                ens.log_std[i:i + 1].copy_(a.log_std)
        return ens


class Critic(nn.Module):
    """V(s) (or Q(s, a) with ``act_dim`` > 0) with ``ensemble_size`` heads; returns (K, B) or (B,) for K = 1."""

    def __init__(self, obs_dim: int = C.POLICY_INPUT_DIM, hidden: Sequence[int] = ACTOR_HIDDEN,
                 act_dim: int = 0, ensemble_size: int = 1, activation: str = "elu",
                 normalizer: Optional[ObsNormalizer] = None):
        super().__init__()
        self.act_dim, self.ensemble_size = act_dim, ensemble_size
        self.normalizer = normalizer if normalizer is not None else ObsNormalizer(obs_dim)
        self.net = EnsembleMLP(ensemble_size, obs_dim + act_dim, hidden, 1, activation, out_gain=1.0)

    def forward(self, obs: torch.Tensor, actions: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.normalizer(obs)
        if self.act_dim:
            if actions is None:
                raise ValueError("this critic is Q(s, a): pass actions")
            x = torch.cat([x.expand(actions.shape[:-1] + x.shape[-1:]) if actions.dim() > x.dim() else x, actions], -1)
        v = self.net(x).squeeze(-1)
        return v[0] if self.ensemble_size == 1 else v
