"""Probabilistic dynamics ensemble for AM-Q (paper Eq. 5), shaped for the Go1's 290-float history input.

Input: the 290 history and the 12 action, standardised. Output: mean and soft-bounded log-variance of
the change of the *predicted* entries of the newest 58-step (projected gravity, joint positions, joint
velocities) and of the reward (targets standardised too). The rest of the next step is known, not
learned: commands stay as they are, ``last_action`` is the action just taken, and the gait clock
advances deterministically (:func:`go1o4.contract.advance_gait_index`, :func:`clock_inputs`). The
next 290 input is the history shifted by one step (oldest 58 dropped, the new step appended), so
rollouts stay consistent with the policy's input. A fall (|roll| or |pitch| above
``contract.FALL_ROLL_PITCH`` from the predicted gravity vector) ends a rollout.
Members (7, elites 5, 4 x 200 Swish, per-layer weight decay) train as one batched network
(``EnsembleLinear``), each on its own minibatches, with holdout early stopping per member.
"""
import math
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from go1o4.offline_finetune.config import DynamicsConfig
from torch import nn
from torch.nn import functional as F

from go1o4 import contract as C
from go1o4.rl.device import make_generator
from go1o4.rl.networks import EnsembleLinear, EnsembleMLP

S = C.OBS_SLICES
#: indices (within one 58-step) the model predicts; the others are known (commands, last action, clock)
PREDICTED = np.concatenate([np.arange(S[n].start, S[n].stop) for n in ("projected_gravity", "dof_pos", "dof_vel")])
OUT_DIM = len(PREDICTED) + 1  # + reward
IN_DIM = C.POLICY_INPUT_DIM + C.NUM_ACTIONS


def shift_history(obs: torch.Tensor, new_step: torch.Tensor) -> torch.Tensor:
    """(N, 290) history, (N, 58) newest step -> next (N, 290): drop the oldest step, append the new one."""
    return torch.cat([obs[:, C.OBS_DIM:], new_step], dim=-1)


def next_clock(clock, prev_clock, commands_scaled):
    """Next gait-clock inputs from the last two clock readings and the gait commands (contract functions).

    sin(2 pi phase) alone is ambiguous; with the previous reading and the known advance w = 2 pi f dt,
    cos(2 pi phase) = (s_t cos w - s_{t-1}) / sin w, which gives the gait index; it is then advanced with
    :func:`go1o4.contract.advance_gait_index`. A padded history (identical readings) falls back to cos >= 0.
    numpy in -> numpy out; torch in -> torch float64 on the same device (the model step: no host round-trip).
    """
    if not isinstance(clock, torch.Tensor):
        return next_clock(*(torch.as_tensor(np.asarray(x, np.float64)) for x in (clock, prev_clock,
                                                                                 commands_scaled))).numpy()
    f64 = dict(dtype=torch.float64, device=clock.device)
    cmd = commands_scaled.to(**f64) / torch.as_tensor(C.COMMAND_SCALES, **f64)
    w = 2.0 * np.pi * cmd[..., 4] * C.POLICY_DT
    s1, s0 = clock.to(**f64)[..., 1], prev_clock.to(**f64)[..., 1]  # FR = g + offset
    sin_w = torch.sin(w)
    ok = (sin_w.abs() > 1e-6) & ((s1 - s0).abs() > 1e-7)
    c1 = torch.where(ok, (s1 * torch.cos(w) - s0) / torch.where(ok, sin_w, torch.ones_like(sin_w)),
                     torch.sqrt(torch.clamp(1.0 - s1 ** 2, 0.0, 1.0)))
    g = torch.remainder(torch.atan2(s1, c1.clamp(-1.0, 1.0)) / (2.0 * np.pi) - cmd[..., 6], 1.0)
    g = torch.remainder(g + C.POLICY_DT * cmd[..., 4], 1.0)  # contract.advance_gait_index
    phase, offset, bound = cmd[..., 5], cmd[..., 6], cmd[..., 7]  # contract.foot_phases
    phases = torch.remainder(torch.stack([g + phase + offset + bound, g + offset, g + bound, g + phase], -1), 1.0)
    return torch.sin(2.0 * np.pi * phases)  # contract.clock_inputs


def assemble_next_step(obs: torch.Tensor, action: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The next 58-step from the current history, the action and the predicted change (N, len(PREDICTED))."""
    latest, prev = obs[:, -C.OBS_DIM:], obs[:, -2 * C.OBS_DIM:-C.OBS_DIM]
    new = latest.clone()
    new[:, PREDICTED] = latest[:, PREDICTED] + delta
    g = new[:, S["projected_gravity"]]
    new[:, S["projected_gravity"]] = g / g.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    new[:, S["last_action"]] = action.clamp(-C.CLIP_ACTIONS, C.CLIP_ACTIONS)
    new[:, S["clock"]] = next_clock(latest[:, S["clock"]], prev[:, S["clock"]], latest[:, S["commands"]]).to(obs.dtype)
    return new


def fell(step58: torch.Tensor) -> torch.Tensor:
    """|roll| or |pitch| (``contract.gravity_to_roll_pitch``, float64) beyond ``contract.FALL_ROLL_PITCH``."""
    g = step58[:, S["projected_gravity"]].to(torch.float64)
    roll = torch.atan2(-g[..., 1], -g[..., 2])
    pitch = torch.asin(g[..., 0].clamp(-1.0, 1.0))
    return (roll.abs() > C.FALL_ROLL_PITCH) | (pitch.abs() > C.FALL_ROLL_PITCH)


def model_targets(obs: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    delta = next_obs[:, -C.OBS_DIM:][:, PREDICTED] - obs[:, -C.OBS_DIM:][:, PREDICTED]
    return torch.cat([delta, rewards.unsqueeze(-1)], dim=-1)


class EnsembleDynamics(nn.Module):
    """K Gaussian models p(delta, r | s, a); ``forward`` -> standardised (mean, logvar), each (K, B, OUT_DIM)."""

    def __init__(self, cfg: DynamicsConfig, in_dim: int = IN_DIM, out_dim: int = OUT_DIM):
        super().__init__()
        self.cfg, self.k = cfg, cfg.ensemble_size
        self.net = EnsembleMLP(self.k, in_dim, cfg.hidden, 2 * out_dim, activation="silu")
        self.max_logvar = nn.Parameter(torch.full((out_dim,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((out_dim,), -10.0))
        for name, dim in (("in_mean", in_dim), ("in_std", in_dim), ("out_mean", out_dim), ("out_std", out_dim)):
            self.register_buffer(name, torch.zeros(dim) if "mean" in name else torch.ones(dim))
        self.register_buffer("elites", torch.arange(cfg.num_elites))

    def set_stats(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.in_mean.copy_(inputs.mean(0))
        self.in_std.copy_(inputs.std(0).clamp_min(1e-3))
        self.out_mean.copy_(targets.mean(0))
        self.out_std.copy_(targets.std(0).clamp_min(1e-6))

    def layers(self) -> List[EnsembleLinear]:
        return [m for m in self.net.modules() if isinstance(m, EnsembleLinear)]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.net((x - self.in_mean) / self.in_std)
        mean, raw = out.chunk(2, dim=-1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw)  # soft bounds (PETS/MBPO)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Gaussian NLL (Eq. 5) in standardised target space, summed over members, + bound and decay terms."""
        mean, logvar = self(x)
        z = (y - self.out_mean) / self.out_std
        nll = ((mean - z).pow(2) * torch.exp(-logvar) + logvar).mean(dim=(-1, -2)).sum()
        bounds = self.cfg.logvar_loss_coef * (self.max_logvar.sum() - self.min_logvar.sum())
        decay = sum(wd * 0.5 * layer.weight.pow(2).sum() for wd, layer in zip(self.cfg.weight_decay, self.layers()))
        return nll + bounds + decay, {"dynamics/nll": nll.detach() / self.k}

    @torch.no_grad()
    def holdout_mse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member MSE of the mean on standardised targets: (K,)."""
        mean, _ = self(x)
        return (mean - (y - self.out_mean) / self.out_std).pow(2).mean(dim=(-1, -2))

    @staticmethod
    def _rows(counts: torch.Tensor, n: int) -> int:
        """Rows of the padded per-member batch: the largest member's count on the CPU (cheap to read), all
        ``n`` on a GPU (reading the count would stall the device every model step; padding costs little)."""
        return int(counts.max()) if counts.device.type == "cpu" else n

    def forward_assigned(self, x: torch.Tensor, members: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each row of ``x`` (N, in) through its own member only: rows are grouped per member into a padded
        (K, M, in) batch (M = most rows of one member), so the cost is ~N rows, not K * N."""
        n = x.shape[0]
        counts = torch.bincount(members, minlength=self.k)
        order = torch.argsort(members, stable=True)
        m_sorted = members[order]
        pos = torch.arange(n, device=x.device) - (torch.cumsum(counts, 0) - counts)[m_sorted]
        padded = x.new_zeros(self.k, self._rows(counts, n), x.shape[1])
        padded[m_sorted, pos] = x[order]
        mean_p, logvar_p = self(padded)
        mean, logvar = x.new_empty(n, mean_p.shape[-1]), x.new_empty(n, mean_p.shape[-1])
        mean[order], logvar[order] = mean_p[m_sorted, pos], logvar_p[m_sorted, pos]
        return mean, logvar

    @torch.no_grad()
    def step(self, obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator,
             members: Optional[torch.Tensor] = None, sample: bool = False):
        """One model step for a batch: -> (next_obs (N, 290), reward (N,), terminal (N,) bool).

        ``members`` (N,) picks the ensemble member per sample (default: a random elite).
        """
        n = obs.shape[0]
        if members is None:
            members = self.elites[torch.randint(0, len(self.elites), (n,), generator=generator, device=obs.device)]
        mean, logvar = self.forward_assigned(torch.cat([obs, action], dim=-1), members)
        if sample:
            mean = mean + torch.randn(mean.shape, generator=generator, device=mean.device) * torch.exp(0.5 * logvar)
        out = mean * self.out_std + self.out_mean
        new_step = assemble_next_step(obs, action, out[:, :-1])
        return shift_history(obs, new_step), out[:, -1], fell(new_step)


def _episode_holdout(episode_ids: np.ndarray, fraction: float, max_holdout: int, rng) -> np.ndarray:
    eps = np.unique(episode_ids)
    rng.shuffle(eps)
    n_hold = max(1, int(round(fraction * len(eps)))) if len(eps) > 1 else 0
    mask = np.isin(episode_ids, eps[:n_hold])
    if n_hold == 0:  # one episode: hold out a random fraction of its steps
        mask = rng.random(len(episode_ids)) < fraction
    hold = np.flatnonzero(mask)
    if len(hold) > max_holdout:
        hold = rng.choice(hold, max_holdout, replace=False)
        mask = np.zeros(len(episode_ids), bool)
        mask[hold] = True
    return mask


class DynamicsTrainer:
    """Fits an :class:`EnsembleDynamics` with per-member minibatches and holdout early stopping."""

    def __init__(self, model: EnsembleDynamics, data, episode_ids: np.ndarray, seed: int = 0):
        cfg = model.cfg
        self.model, self.cfg = model, cfg
        x = torch.cat([data["observations"], data["actions"]], dim=-1)
        y = model_targets(data["observations"], data["next_observations"], data["rewards"])
        hold = torch.as_tensor(_episode_holdout(episode_ids, cfg.holdout_fraction, cfg.max_holdout,
                                                np.random.default_rng(seed)), device=x.device)
        self.x, self.y = x[~hold], y[~hold]
        self.x_hold, self.y_hold = x[hold], y[hold]
        model.set_stats(self.x, self.y)
        self.opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        self.gen = make_generator(x.device, seed)
        self.best = torch.full((model.k,), math.inf, device=x.device)
        self.best_state = {k: v.clone() for k, v in model.state_dict().items()}
        self.epochs, self.epochs_since_update, self.steps, self.done = 0, 0, 0, False

    def update(self) -> Dict[str, float]:
        idx = torch.randint(0, self.x.shape[0], (self.model.k, self.cfg.batch_size), generator=self.gen,
                            device=self.x.device)
        loss, info = self.model.loss(self.x[idx], self.y[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1
        return info

    def end_epoch(self) -> Dict[str, float]:
        """Holdout check: keep each member's best weights; stop after ``max_epochs_since_update`` epochs
        in which no member improved by more than 1 %."""
        mse = self.model.holdout_mse(self.x_hold, self.y_hold)
        improved = (self.best - mse) / self.best.clamp_min(1e-12) > 0.01
        improved |= torch.isinf(self.best)
        state = self.model.state_dict()
        for name, layer_param in state.items():
            if name.startswith("net.") and layer_param.shape[0] == self.model.k:
                self.best_state[name][improved] = layer_param[improved]
        self.best = torch.where(improved, mse, self.best)
        self.epochs += 1
        self.epochs_since_update = 0 if bool(improved.any()) else self.epochs_since_update + 1
        if self.epochs_since_update > self.cfg.max_epochs_since_update or self.epochs >= self.cfg.max_epochs:
            self.finish()
        return {"dynamics/holdout_mse": float(mse.mean()), "dynamics/holdout_mse_best": float(self.best.mean())}

    @torch.no_grad()
    def holdout_rmse_by_block(self) -> Dict[str, float]:
        """Holdout RMSE of the elites' mean prediction in raw units, per predicted block and for the reward."""
        mean, _ = self.model(self.x_hold)
        pred = mean[self.model.elites] * self.model.out_std + self.model.out_mean  # (E, N, OUT)
        err = (pred - self.y_hold).pow(2).mean(dim=(0, 1))
        out, start = {}, 0
        for name in ("projected_gravity", "dof_pos", "dof_vel"):
            size = S[name].stop - S[name].start
            out["dynamics/holdout_rmse_" + name] = float(err[start:start + size].mean().sqrt())
            start += size
        out["dynamics/holdout_rmse_reward"] = float(err[-1].sqrt())
        return out

    def finish(self) -> None:
        """Load each member's best weights and pick the elites (lowest holdout error)."""
        state = self.model.state_dict()
        for name, p in self.best_state.items():
            if name.startswith("net."):
                state[name] = p
        self.model.load_state_dict(state)
        self.model.elites.copy_(torch.argsort(self.best)[: self.cfg.num_elites])
        self.done = True

    def state_dict(self) -> Dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "best": self.best,
                "best_state": self.best_state, "epochs": self.epochs, "steps": self.steps,
                "epochs_since_update": self.epochs_since_update, "done": self.done}

    def load_state_dict(self, d: Dict) -> None:
        self.model.load_state_dict(d["model"])
        self.opt.load_state_dict(d["opt"])
        dev = self.best.device  # checkpoints are read on the CPU (map_location)
        self.best = d["best"].to(dev)
        self.best_state = {k: v.to(dev) for k, v in d["best_state"].items()}
        self.epochs, self.steps = int(d["epochs"]), int(d["steps"])
        self.epochs_since_update, self.done = int(d["epochs_since_update"]), bool(d["done"])
