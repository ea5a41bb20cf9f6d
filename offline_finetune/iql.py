"""IQL baseline policy extraction: advantage-weighted regression on the same Q/V (Kostrikov et al. 2021, Eq. 7).

    L_pi = -E_D[ min(exp(beta * (Q(s, a) - V(s))), w_max) * log pi(a|s) ],  beta = 3, w_max = 100.

The paper's real-robot IQL baseline (A.4.5). A single Gaussian actor of the same architecture, trained from a
random init; the best of its trained checkpoints (every ``iql.eval_every`` steps and the last) is picked by the
same AM-Q score as Uni-O4 (never by real returns). The untrained init is scored for reference only.
"""
from typing import Dict

import torch
from go1o4.offline_finetune.config import IQLPolicyConfig
from go1o4.offline_finetune.value import IQLValue

from go1o4.rl.device import finite_check_due
from go1o4.rl.networks import GaussianActor


def awr_weights(adv: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    return torch.exp(beta * adv).clamp(max=max_weight)


def awr_loss(actor: GaussianActor, value: IQLValue, batch: Dict[str, torch.Tensor], beta: float, max_weight: float):
    obs, act = batch["observations"], batch["actions"]
    with torch.no_grad():
        w = awr_weights(value.advantage(obs, act), beta, max_weight)
    return -(w * actor.log_prob(obs, act)).mean(), w


class AWR:
    def __init__(self, actor: GaussianActor, value: IQLValue, cfg: IQLPolicyConfig, min_log_std: float = -5.0):
        self.actor, self.value, self.cfg, self.min_log_std = actor, value, cfg, min_log_std
        self.opt = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
        self.steps = 0
        self.check_every = 1  # finite-loss check period (a host sync on a GPU)

    def update(self, batch: Dict[str, torch.Tensor]) -> Dict:
        """One step; returns 0-dim tensors (``go1o4.rl.device.to_floats`` when logging)."""
        loss, w = awr_loss(self.actor, self.value, batch, self.cfg.beta, self.cfg.max_weight)
        if finite_check_due(self.steps, self.check_every) and not torch.isfinite(loss):
            raise FloatingPointError("AWR loss not finite at step %d" % self.steps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.actor.log_std.clamp_(min=self.min_log_std)
        self.steps += 1
        return {"iql/actor_loss": loss.detach(), "iql/weight_mean": w.mean()}

    def state_dict(self) -> Dict:
        return {"actor": self.actor.state_dict(), "opt": self.opt.state_dict(), "steps": self.steps}

    def load_state_dict(self, d: Dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.opt.load_state_dict(d["opt"])
        self.steps = int(d["steps"])
