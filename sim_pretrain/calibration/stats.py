"""Statistics compared between the real mattress logs and the simulator (pure numpy, no I/O).

Both sides are reduced to the same per-step arrays at a held command: forward speed in the heading
frame (world-horizontal velocity rotated by the yaw), the 58-float observation (joint positions and
velocities, projected gravity) and the raw actions. ``summarize`` gives the numbers the search fits;
``score`` weighs their differences by the issue's tolerances (speed +-0.07 m/s, per-joint std 20 %).
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from go1o4 import contract as C

#: Commanded-vx bands of the real logs (policy README): held >= 1 s, falls excluded.
BANDS = ((0.25, 0.75), (0.75, 1.25))
HOLD_STEPS = 50  # 1 s at 50 Hz
SPEED_TOL = 0.07  # m/s
STD_TOL = 0.20  # relative


def heading_speed(v_xy: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Velocity (..., 2) projected on the heading (cos yaw, sin yaw): forward speed."""
    return np.cos(yaw) * v_xy[..., 0] + np.sin(yaw) * v_xy[..., 1]


def held_mask(cmd_vx: np.ndarray, band: Tuple[float, float], hold: int = HOLD_STEPS) -> np.ndarray:
    """Steps whose commanded vx has been inside ``band`` for at least ``hold`` consecutive steps."""
    inside = (cmd_vx >= band[0]) & (cmd_vx < band[1])
    run = np.zeros(len(cmd_vx), dtype=np.int64)
    for i, x in enumerate(inside):
        run[i] = (run[i - 1] + 1 if i else 1) if x else 0
    return run > hold


def fall_index(obs: np.ndarray) -> int:
    """First step whose roll or pitch (from projected gravity) exceeds the fall threshold; len if none."""
    roll, pitch = C.gravity_to_roll_pitch(obs[:, 0:3])
    fell = (np.abs(roll) > C.FALL_ROLL_PITCH) | (np.abs(pitch) > C.FALL_ROLL_PITCH)
    return int(np.argmax(fell)) if fell.any() else len(obs)


def per_step_arrays(obs: np.ndarray, actions: np.ndarray, prev_actions: np.ndarray, speed: np.ndarray
                    ) -> Dict[str, np.ndarray]:
    """The compared quantities per step: speed, q (12), dq (12, rad/s), roll/pitch, |a|, |delta a|."""
    sl = C.OBS_SLICES
    roll, pitch = C.gravity_to_roll_pitch(obs[:, sl["projected_gravity"]])
    return {"speed": speed, "q": obs[:, sl["dof_pos"]] + C.DEFAULT_Q,
            "dq": obs[:, sl["dof_vel"]] / C.OBS_BLOCKS[3].scale, "roll": roll, "pitch": pitch,
            "abs_action": np.mean(np.abs(actions), axis=1),
            "action_change": np.mean(np.abs(actions - prev_actions), axis=1)}


def concat(parts: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


def summarize(a: Dict[str, np.ndarray]) -> Dict[str, object]:
    """Scalars and per-joint vectors of one band's per-step arrays."""
    return {"steps": int(len(a["speed"])), "speed": float(np.mean(a["speed"])),
            "speed_std": float(np.std(a["speed"])),
            "q_mean": np.mean(a["q"], 0).tolist(), "q_std": np.std(a["q"], 0).tolist(),
            "dq_std": np.std(a["dq"], 0).tolist(),
            "roll_std": float(np.std(a["roll"])), "pitch_std": float(np.std(a["pitch"])),
            "pitch_mean": float(np.mean(a["pitch"])),
            "abs_action": float(np.mean(a["abs_action"])), "action_change": float(np.mean(a["action_change"]))}


def score(real: Dict[str, Dict], sim: Dict[str, Dict]) -> Tuple[float, Dict[str, float]]:
    """Weighted mean of squared, tolerance-normalised differences over the bands (lower is better).

    Speed counts most (its tolerance is SPEED_TOL); per-joint q/dq stds by relative error over STD_TOL;
    roll/pitch spread and action statistics by relative error over 2 x STD_TOL (lower weight).
    """
    terms: Dict[str, List[float]] = {"speed": [], "q_std": [], "dq_std": [], "roll_pitch": [], "actions": []}
    for band, r in real.items():
        s = sim[band]
        terms["speed"].append(((s["speed"] - r["speed"]) / SPEED_TOL) ** 2)
        for k in ("q_std", "dq_std"):
            rel = (np.asarray(s[k]) - np.asarray(r[k])) / np.asarray(r[k])
            terms[k].append(float(np.mean((rel / STD_TOL) ** 2)))
        for k, group in (("roll_std", "roll_pitch"), ("pitch_std", "roll_pitch"), ("abs_action", "actions"),
                         ("action_change", "actions")):
            terms[group].append(((s[k] - r[k]) / r[k] / (2 * STD_TOL)) ** 2)
    weights = {"speed": 3.0, "q_std": 1.0, "dq_std": 1.0, "roll_pitch": 0.5, "actions": 0.5}
    parts = {k: float(np.mean(v)) for k, v in terms.items()}
    total = sum(weights[k] * parts[k] for k in parts) / sum(weights.values())
    return float(total), parts


def within_targets(real: Dict[str, Dict], sim: Dict[str, Dict]) -> Dict[str, Dict[str, object]]:
    """Per band: speed within +-SPEED_TOL, and which joints' q/dq std are within STD_TOL."""
    out = {}
    for band, r in real.items():
        s = sim[band]
        out[band] = {"speed_ok": bool(abs(s["speed"] - r["speed"]) <= SPEED_TOL)}
        for k in ("q_std", "dq_std"):
            rel = np.abs(np.asarray(s[k]) - np.asarray(r[k])) / np.asarray(r[k])
            out[band][k + "_ok_joints"] = int(np.sum(rel <= STD_TOL))
    return out
