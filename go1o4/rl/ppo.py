"""PPO (clipped surrogate, GAE, value clipping, advantage normalisation, adaptive or linear lr).

The same update serves sim pretraining and online fine-tuning; offline Uni-O4 reuses its
objective (:func:`go1o4.rl.losses.clipped_surrogate`) on dataset states.
"""
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import nn

from go1o4.config import require
from go1o4.rl.losses import clipped_surrogate, gaussian_entropy, normalize, value_loss
from go1o4.rl.networks import Critic, GaussianActor
from go1o4.rl.storage import RolloutStorage


@dataclass
class PPOConfig:
    clip: float = 0.2
    epochs: int = 5
    num_minibatches: int = 4
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    schedule: str = "adaptive"  # adaptive (on KL) | linear | fixed
    desired_kl: float = 0.01
    gamma: float = 0.99
    lam: float = 0.95
    value_coef: float = 1.0
    value_clip: float = 0.2
    entropy_coef: float = 0.01
    max_grad_norm: float = 1.0
    min_log_std: float = -5.0

    def validate(self) -> None:
        if self.schedule not in ("adaptive", "linear", "fixed"):
            raise ValueError("schedule must be adaptive, linear or fixed, got %r" % self.schedule)
        if not 0 < self.clip < 1:
            raise ValueError("clip must be in (0, 1), got %r" % self.clip)
        if self.epochs < 1 or self.num_minibatches < 1:
            raise ValueError("epochs and num_minibatches must be >= 1")
        require(self, "", ("actor_lr", "critic_lr", "max_grad_norm"), (), ("value_coef", "entropy_coef"))


class PPO:
    def __init__(self, actor: GaussianActor, critic: Critic, cfg: PPOConfig, total_updates: int = 1):
        self.actor, self.critic, self.cfg = actor, critic, cfg
        self.actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(critic.net.parameters(), lr=cfg.critic_lr)
        self.total_updates, self.num_updates = max(1, total_updates), 0
        self.lr_scale = 1.0

    @torch.no_grad()
    def act(self, obs: torch.Tensor, critic_obs: Optional[torch.Tensor] = None):
        """Sample actions; returns (actions, log_probs, values). ``critic_obs``: asymmetric critic input."""
        dist = self.actor.distribution(obs)
        actions = dist.sample()
        return actions, dist.log_prob(actions).sum(-1), self.critic(obs if critic_obs is None else critic_obs)

    def _set_lr(self) -> None:
        for g in self.actor_opt.param_groups:
            g["lr"] = self.cfg.actor_lr * self.lr_scale
        for g in self.critic_opt.param_groups:
            g["lr"] = self.cfg.critic_lr * self.lr_scale

    def update(self, storage: RolloutStorage) -> Dict[str, float]:
        cfg = self.cfg
        if cfg.schedule == "linear":
            self.lr_scale = max(0.0, 1.0 - self.num_updates / self.total_updates)
            self._set_lr()
        stats = {"loss/policy": 0.0, "loss/value": 0.0, "loss/entropy": 0.0, "ppo/approx_kl": 0.0,
                 "ppo/clip_fraction": 0.0}
        n = 0
        for _ in range(cfg.epochs):
            for mb in storage.minibatches(cfg.num_minibatches):
                adv = normalize(mb["advantages"])
                log_prob = self.actor.log_prob(mb["obs"], mb["actions"])
                pi_loss, info = clipped_surrogate(log_prob, mb["log_probs"], adv, cfg.clip)
                entropy = gaussian_entropy(self.actor.log_std).mean()
                v_loss = value_loss(self.critic(mb.get("critic_obs", mb["obs"])), mb["values"], mb["returns"], cfg.value_clip)
                if cfg.schedule == "adaptive":
                    kl = info["approx_kl"].item()
                    if kl > 2.0 * cfg.desired_kl:
                        self.lr_scale = max(1e-3, self.lr_scale / 1.5)
                    elif 0.0 < kl < cfg.desired_kl / 2.0:
                        self.lr_scale = min(10.0, self.lr_scale * 1.5)
                    self._set_lr()
                loss = pi_loss - cfg.entropy_coef * entropy + cfg.value_coef * v_loss
                if not torch.isfinite(loss):
                    raise FloatingPointError("PPO loss is not finite (policy %s, value %s)" % (pi_loss.item(), v_loss.item()))
                self.actor_opt.zero_grad()
                self.critic_opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
                nn.utils.clip_grad_norm_(self.critic.net.parameters(), cfg.max_grad_norm)
                self.actor_opt.step()
                self.critic_opt.step()
                with torch.no_grad():
                    self.actor.log_std.clamp_(min=cfg.min_log_std)
                stats["loss/policy"] += pi_loss.item()
                stats["loss/value"] += v_loss.item()
                stats["loss/entropy"] += entropy.item()
                stats["ppo/approx_kl"] += info["approx_kl"].item()
                stats["ppo/clip_fraction"] += info["clip_fraction"].item()
                n += 1
        self.num_updates += 1
        out = {k: v / max(n, 1) for k, v in stats.items()}
        out["ppo/lr_actor"] = self.cfg.actor_lr * self.lr_scale
        out["ppo/std"] = self.actor.log_std.exp().mean().item()
        return out

    def state_dict(self) -> Dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "num_updates": self.num_updates, "lr_scale": self.lr_scale}

    def load_state_dict(self, d: Dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.critic.load_state_dict(d["critic"])
        self.actor_opt.load_state_dict(d["actor_opt"])
        self.critic_opt.load_state_dict(d["critic_opt"])
        self.num_updates, self.lr_scale = int(d["num_updates"]), float(d["lr_scale"])
