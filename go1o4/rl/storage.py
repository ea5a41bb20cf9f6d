"""Rollout storage for on-policy PPO: (T, N) buffers filled by a runner, read as shuffled minibatches."""
import functools
from typing import Dict, Iterator, Optional, Union

import torch

from go1o4.rl.losses import gae


class RolloutStorage:
    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, act_dim: int, critic_obs_dim: Optional[int] = None,
                 device: Union[str, torch.device] = "cpu"):
        T, N = num_steps, num_envs
        self.num_steps, self.num_envs, self.device = T, N, torch.device(device)
        z = functools.partial(torch.zeros, device=self.device)
        self.obs = z(T, N, obs_dim)
        #: asymmetric critic input (privileged observation); None = the critic sees ``obs``
        self.critic_obs = z(T, N, critic_obs_dim) if critic_obs_dim else None
        self.actions = z(T, N, act_dim)
        self.log_probs = z(T, N)
        self.values = z(T, N)
        self.rewards = z(T, N)
        self.terminals = z(T, N)
        self.timeouts = z(T, N)
        #: V(s_final) for transitions cut by a time limit (bootstrap target), 0 elsewhere
        self.truncation_values = z(T, N)
        self.advantages = z(T, N)
        self.returns = z(T, N)
        self.step = 0

    def add(self, obs, actions, log_probs, values, rewards, terminals, timeouts, truncation_values=None,
            critic_obs=None) -> None:
        if self.step >= self.num_steps:
            raise RuntimeError("rollout storage is full (%d steps); call clear()" % self.num_steps)
        t = self.step
        if self.critic_obs is not None:
            if critic_obs is None:
                raise ValueError("this storage holds critic observations: pass critic_obs")
            self.critic_obs[t] = torch.as_tensor(critic_obs, dtype=torch.float32, device=self.device)
        self.obs[t], self.actions[t], self.log_probs[t], self.values[t] = obs, actions, log_probs, values
        self.rewards[t] = torch.as_tensor(rewards, dtype=torch.float32, device=self.device)
        self.terminals[t] = torch.as_tensor(terminals, dtype=torch.float32, device=self.device)
        self.timeouts[t] = torch.as_tensor(timeouts, dtype=torch.float32, device=self.device)
        if truncation_values is not None:
            self.truncation_values[t] = truncation_values
        self.step += 1

    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        """GAE with next-state values: V(s_{t+1}) within an episode, V(s_final) at a time-limit cut."""
        if self.step != self.num_steps:
            raise RuntimeError("rollout incomplete: %d of %d steps" % (self.step, self.num_steps))
        dones = torch.clamp(self.terminals + self.timeouts, max=1.0)
        next_values = torch.cat([self.values[1:], last_values.unsqueeze(0)], 0)
        next_values = torch.where(self.timeouts > 0, self.truncation_values, next_values)
        self.advantages, self.returns = gae(self.rewards, self.values, next_values, self.terminals, dones, gamma, lam)

    def minibatches(self, num_minibatches: int, generator: torch.Generator = None) -> Iterator[Dict[str, torch.Tensor]]:
        n = self.num_steps * self.num_envs
        idx = torch.randperm(n, generator=generator, device=self.device)
        size = n // num_minibatches
        flat = {
            "obs": self.obs.reshape(n, -1), "actions": self.actions.reshape(n, -1),
            "log_probs": self.log_probs.reshape(n), "values": self.values.reshape(n),
            "advantages": self.advantages.reshape(n), "returns": self.returns.reshape(n),
        }
        if self.critic_obs is not None:
            flat["critic_obs"] = self.critic_obs.reshape(n, -1)
        for i in range(num_minibatches):
            b = idx[i * size:(i + 1) * size]
            yield {k: v[b] for k, v in flat.items()}

    def clear(self) -> None:
        self.step = 0
