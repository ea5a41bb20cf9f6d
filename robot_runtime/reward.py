"""The per-step reward the runtime logs: the Uni-O4 real-robot reward (paper A.4.2, Table 3).

    r = (0.8 exp(-|c_xy - v_xy|^2/0.25) + 0.7 exp(-(c_yaw - w_z)^2/0.25)) * exp(neg) / 10

The formula lives in :func:`data.rewards.uni_o4_terms` (one definition, also used to recompute
rewards from logs); this module only feeds it one step at a time. :class:`StepRewardComputer` keeps
the two previous actions and the previous joint velocity (action-rate, smoothness and joint
acceleration terms), so its per-step value equals ``data.rewards.compute_reward(name, episode)``
on the same sequence. Like the data layer, a_t-1 is the previous action as the observation holds
it (clipped to +-10; zeros before an episode's first step unless given). Reset it at every
episode start. Python 3.8 syntax.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from go1o4.data import rewards as R

from go1o4 import contract as C

#: Reward names this runtime can compute online, and what they want: command scaling ("obs": as the
#: policy saw it, obs scales; "si": m/s, rad/s) and the frame of the T265 velocities.
ONLINE_REWARDS = {
    "uni_o4_body": ("obs", "body"),
    "uni_o4_body_si": ("si", "body"),
    "uni_o4_world": ("obs", "world"),
}
_HISTORY = 2  # rows t-1 and t: (a, a_t-1 as observed, dq) -> a_t-2 and dq_t-1


@dataclass
class StepReward:
    reward: float  # NaN if an input was not finite (e.g. a bad T265 sample)
    terms: Dict[str, float]  # every term of data.rewards.uni_o4_terms for this step
    valid: bool


class StepRewardComputer:
    """Stateful per-step Uni-O4 reward; ``reset()`` per episode, then ``step(...)`` every policy step."""

    def __init__(self, reward: str = "uni_o4_body", dt: float = C.POLICY_DT,
                 weights: Optional[Dict[str, float]] = None):
        if reward not in ONLINE_REWARDS:
            raise ValueError("reward %r cannot be computed online; choose from %s"
                             % (reward, ", ".join(sorted(ONLINE_REWARDS))))
        if reward not in R.REWARDS:
            raise ValueError("reward %r is not registered in data.rewards" % reward)
        self.name, self.dt, self.weights = reward, float(dt), weights
        self.command_units, self.frame = ONLINE_REWARDS[reward]
        self.reset()

    def reset(self) -> None:
        self._rows: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (a, a_t-1, dq) per step

    def _vector(self, x, n: int, name: str) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64).reshape(-1)
        if a.shape[0] < n:
            raise ValueError("StepRewardComputer.step: %s needs %d values, got %d" % (name, n, a.shape[0]))
        return a[:n]

    def step(self, command, v, omega, action, dq, prev_action=None) -> StepReward:
        """One policy step.

        ``command``: unscaled (vx m/s, vy m/s, yaw rate rad/s[, gait...]) as in ``contract.command_vector``;
        ``v``/``omega``: T265 linear/angular velocity in the frame this reward uses (``self.frame``:
        trunk frame for ``uni_o4_body*``, remapped world for ``uni_o4_world``); ``action``: raw policy
        output (12); ``dq``: joint velocities in rad/s (12, sim order); ``prev_action``: the previous
        action the observation held (default: this computer's previous ``action``, zeros at the start).
        """
        cmd = self._vector(command, 3, "command")
        if self.command_units == "obs":
            cmd = cmd * C.COMMAND_SCALES[:3]
        v, omega = self._vector(v, 3, "v"), self._vector(omega, 3, "omega")
        a = self._vector(action, C.NUM_ACTIONS, "action")
        q_vel = self._vector(dq, C.NUM_JOINTS, "dq")
        if prev_action is None:
            prev = self._rows[-1][0] if self._rows else np.zeros(C.NUM_ACTIONS)
        else:
            prev = self._vector(prev_action, C.NUM_ACTIONS, "prev_action")
        prev = np.clip(prev, -C.CLIP_ACTIONS, C.CLIP_ACTIONS)  # as build_observation stores it
        self._rows = (self._rows + [(a, prev, q_vel)])[-_HISTORY:]
        n = len(self._rows)
        acts, prevs, dqs = (np.stack(x) for x in zip(*self._rows))
        terms = R.uni_o4_terms(np.tile(cmd, (n, 1)), np.tile(v, (n, 1)), np.tile(omega, (n, 1)), acts, dqs,
                               prev_action=prevs, dt=self.dt, weights=self.weights)
        out = {k: float(t[-1]) for k, t in terms.items()}
        valid = bool(np.isfinite(out["reward"]))
        return StepReward(reward=out["reward"], terms=out, valid=valid)

    def step_reading(self, command, reading, action, dq, prev_action=None) -> StepReward:
        """:meth:`step` from a :class:`robot_runtime.t265.source.VelocityReading` (picks the right frame)."""
        if self.frame == "body":
            v, omega = reading.v_body, reading.omega_body
        elif reading.sample is None:
            v = omega = np.full(3, np.nan)
        else:
            cols = reading.log_fields()
            v, omega = cols["t265_velocity_world"], cols["t265_angular_velocity"]
        return self.step(command, v, omega, action, dq, prev_action)
