"""The walk-these-ways Go1 actuator network as a motor model (pure numpy, Python 3.8).

Formulation (shared/data/walk_these_ways_go1_actuator_net/README.md; walk-these-ways ``_compute_torques``
with ``control_type: actuator_net``): per joint, one 6 -> 32 -> 32 -> 1 MLP with softsign hidden layers,

    x_t   = (e_t, e_{t-1}, e_{t-2}, v_t, v_{t-1}, v_{t-2}),  e = q - q_des + offset,  v = dq
    tau_t = clip(strength * net(x_t), -tau_max, tau_max)

with the history taken at the physics step of 0.005 s and reset to zero with the episode. It replaces
the ideal PD law tau = Kp (q_des - q) - Kd dq (Kp 20, Kd 0.5). ``offset`` and ``strength`` are the
per-joint motor offset and strength that walk-these-ways randomises in training.
"""
import os
from typing import Dict, Optional

import numpy as np

from go1o4 import contract as C

HISTORY_DT = 0.005  # s: the physics step the network's history was fitted and trained at
DEFAULT_NPZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "shared", "data",
                           "walk_these_ways_go1_actuator_net", "unitree_go1_actuator_net.npz")
_KEYS = ("0_weight", "0_bias", "2_weight", "2_bias", "4_weight", "4_bias")
_SHAPES = {"0_weight": (32, 6), "0_bias": (32,), "2_weight": (32, 32), "2_bias": (32,), "4_weight": (1, 32),
           "4_bias": (1,)}


def softsign(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.abs(x))


def resolve_npz(path: str = "") -> str:
    """``path`` as given, or the shared file (``GO1O4_ACTUATOR_NET`` overrides the default location)."""
    p = path or os.environ.get("GO1O4_ACTUATOR_NET", "") or os.path.normpath(DEFAULT_NPZ)
    if not os.path.exists(p):
        raise FileNotFoundError("actuator network %s not found (shared/data/walk_these_ways_go1_actuator_net, "
                                "or set env.actuator_net / GO1O4_ACTUATOR_NET)" % p)
    return p


def load_weights(path: str = "") -> Dict[str, np.ndarray]:
    p = resolve_npz(path)
    with np.load(p, allow_pickle=False) as z:
        w = {k: np.asarray(z[k], dtype=np.float64) for k in _KEYS if k in z.files}
    bad = [k for k in _KEYS if k not in w or w[k].shape != _SHAPES[k]]
    if bad:
        raise ValueError("%s is not the 6-32-32-1 actuator network: arrays %s missing or misshaped" % (p, bad))
    return w


def net_torque(w: Dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The network on inputs (..., 6) -> torque (...,) in N m (before strength and clipping)."""
    x2 = x.reshape(-1, 6)  # 2-D matmuls: numpy's stacked matmul does not use BLAS
    h = softsign(x2 @ w["0_weight"].T + w["0_bias"])
    h = softsign(h @ w["2_weight"].T + w["2_bias"])
    return (h @ w["4_weight"][0] + w["4_bias"][0]).reshape(x.shape[:-1])


class ActuatorNet:
    """Motor state of N robots x 12 joints: the two previous (e, v) samples, updated once per ``torque`` call."""

    def __init__(self, n: int, weights: Optional[Dict[str, np.ndarray]] = None, path: str = ""):
        self.w = load_weights(path) if weights is None else weights
        self.n = n
        self.e_hist = np.zeros((n, C.NUM_JOINTS, 2))  # [..., 0] = e_{t-1}, [..., 1] = e_{t-2}
        self.v_hist = np.zeros((n, C.NUM_JOINTS, 2))
        self.offset = np.zeros((n, C.NUM_JOINTS))
        self.strength = np.ones((n, C.NUM_JOINTS))

    def reset(self, idx=None) -> None:
        """Zero the history (walk-these-ways resets it with the episode)."""
        sl = slice(None) if idx is None else idx
        self.e_hist[sl] = 0.0
        self.v_hist[sl] = 0.0

    def torque(self, q: np.ndarray, dq: np.ndarray, q_des: np.ndarray) -> np.ndarray:
        """Torque (N, 12) for this physics step from q, dq, q_des (N, 12); shifts the history by one step."""
        e = q - q_des + self.offset
        x = np.concatenate([e[..., None], self.e_hist, dq[..., None], self.v_hist], axis=-1)
        tau = self.strength * net_torque(self.w, x)
        self.e_hist[..., 1] = self.e_hist[..., 0]
        self.e_hist[..., 0] = e
        self.v_hist[..., 1] = self.v_hist[..., 0]
        self.v_hist[..., 0] = dq
        return C.clip12(tau, -C.TORQUE_LIMIT, C.TORQUE_LIMIT)
