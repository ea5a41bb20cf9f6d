"""Velocity-command sampling and the gait commands (pure numpy)."""
import numpy as np

from go1o4 import contract as C


def sample_commands(rng: np.random.Generator, n: int, cfg) -> np.ndarray:
    """(n, 15) raw commands: vx, vy, yaw rate uniform in the configured ranges, gait from ``cfg.gait``.

    A fraction ``zero_prob`` stands still, and planar commands below ``small_to_zero`` are zeroed
    (legged_gym), so the policy also learns to stand.
    """
    base = C.command_vector(0.0, 0.0, 0.0, cfg.gait)
    out = np.tile(base, (n, 1))
    for i, name in enumerate(("lin_vel_x", "lin_vel_y", "ang_vel_yaw")):
        lo, hi = getattr(cfg, name)
        out[:, i] = rng.uniform(lo, hi, size=n)
    small = np.linalg.norm(out[:, :2], axis=1) < cfg.small_to_zero
    out[small, :2] = 0.0
    zero = rng.random(n) < cfg.zero_prob
    out[zero, :3] = 0.0
    return out


def fixed_commands(n: int, vx: float, vy: float, yaw_rate: float, gait=None) -> np.ndarray:
    """(n, 15) identical commands (evaluation)."""
    return np.tile(C.command_vector(vx, vy, yaw_rate, gait), (n, 1))
