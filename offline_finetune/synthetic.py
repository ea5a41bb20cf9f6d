"""A small synthetic Go1-shaped dataset for tests and demos: real contract layout, toy physics.

Every observation is built with :func:`go1o4.contract.build_observation` and stacked with
:class:`go1o4.contract.ObservationHistory`, so the history shift, ``last_action`` and the gait clock
follow the same rules as the real logs. The joints follow a damped PD response to the actions; the
behaviour policy is a noisy linear map of the newest observation. Some episodes end in a fall
(terminal), the others in a time-limit truncation.
"""
import numpy as np
from go1o4.data.dataset import TransitionDataset

from go1o4 import contract as C


def _observe(roll, q, dq, cmd, last_a, gait) -> np.ndarray:
    quat = np.array([np.cos(roll / 2), np.sin(roll / 2), 0.0, 0.0])
    return C.build_observation(quat, q, dq, cmd, last_a, gait)


def make_synthetic(num_episodes: int = 8, steps: int = 100, fall_every: int = 4, seed: int = 0,
                   action_noise: float = 0.3) -> TransitionDataset:
    rng = np.random.default_rng(seed)
    w_policy = rng.normal(0.0, 0.1, size=(C.OBS_DIM, C.NUM_ACTIONS))
    cols = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
                            "episode_ids")}
    for ep in range(num_episodes):
        falls = fall_every > 0 and ep % fall_every == fall_every - 1
        cmd = C.command_vector(rng.uniform(-0.5, 1.0), 0.0, rng.uniform(-0.3, 0.3))
        q, dq = C.DEFAULT_Q + rng.normal(0, 0.05, 12), np.zeros(12)
        roll, gait, last_a = rng.normal(0, 0.02), rng.uniform(), np.zeros(12)
        hist = C.ObservationHistory()

        stacked = hist.reset(_observe(roll, q, dq, cmd, last_a, gait))
        for t in range(steps):
            a = np.clip(_observe(roll, q, dq, cmd, last_a, gait) @ w_policy + rng.normal(0, action_noise, 12), -C.CLIP_ACTIONS, C.CLIP_ACTIONS)
            tau = C.pd_torque(C.action_to_q_des(a), q, dq)
            dq = 0.9 * dq + 0.02 * tau
            q = q + C.POLICY_DT * dq
            roll = roll + (0.12 if falls and t > steps // 2 else 0.0) + rng.normal(0, 0.005)
            gait = float(C.advance_gait_index(gait, cmd))
            last_a = a
            next_stacked = hist.push(_observe(roll, q, dq, cmd, last_a, gait))
            fell = abs(roll) > C.FALL_ROLL_PITCH
            cols["observations"].append(stacked)
            cols["actions"].append(a)
            cols["rewards"].append(np.exp(-np.square(dq.mean() - cmd[0])) - 0.1 * abs(roll))
            cols["next_observations"].append(next_stacked)
            cols["terminals"].append(float(fell))
            cols["timeouts"].append(float(t == steps - 1 and not fell))
            cols["episode_ids"].append(ep)
            stacked = next_stacked
            if fell:
                break
    arrays = {k: np.asarray(v) for k, v in cols.items()}
    arrays = {k: (v.astype(np.int64) if k == "episode_ids" else v.astype(np.float32)) for k, v in arrays.items()}
    return TransitionDataset(source="synthetic(seed=%d)" % seed, **arrays)
