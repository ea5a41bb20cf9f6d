"""Running statistics: observation mean/std and reward scaling by the std of the discounted return."""
import numpy as np


class RunningMeanStd:
    """Parallel (Chan et al.) running mean/variance over the first axis."""

    def __init__(self, shape=(), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = epsilon

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        b_mean, b_var, b_count = x.mean(0), x.var(0), x.shape[0]
        delta = b_mean - self.mean
        tot = self.count + b_count
        self.mean = self.mean + delta * b_count / tot
        m2 = self.var * self.count + b_var * b_count + delta ** 2 * self.count * b_count / tot
        self.var, self.count = m2 / tot, tot

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def state_dict(self):
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": float(self.count)}

    def load_state_dict(self, d) -> None:
        self.mean, self.var, self.count = np.asarray(d["mean"]), np.asarray(d["var"]), float(d["count"])


class RewardScaler:
    """Divide rewards by the std of a running discounted return (Engstrom et al. 2019, 'reward scaling')."""

    def __init__(self, num_envs: int, gamma: float, epsilon: float = 1e-8):
        self.ret = np.zeros(num_envs)
        self.rms = RunningMeanStd(())
        self.gamma, self.epsilon = gamma, epsilon
        self.frozen = False

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        if not self.frozen:
            self.ret = self.ret * self.gamma + rewards
            self.rms.update(self.ret)
            self.ret = np.where(dones, 0.0, self.ret)
        return rewards / (self.rms.std + self.epsilon)

    def fit(self, rewards: np.ndarray, episode_starts: np.ndarray) -> None:
        """Fit the scale on a fixed reward sequence (e.g. the offline data) and freeze it."""
        ret, rets = 0.0, np.empty(len(rewards))
        for i, (r, s) in enumerate(zip(rewards, episode_starts)):
            ret = r + (0.0 if s else self.gamma * ret)
            rets[i] = ret
        self.rms = RunningMeanStd((), epsilon=0.0)
        self.rms.update(rets)
        self.frozen = True
