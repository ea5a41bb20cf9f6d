"""Small rotation helpers shared by the data layer and the runtime (pure numpy, Python 3.8)."""
import numpy as np


def rpy_to_matrix(rpy) -> np.ndarray:
    """Rotation matrices (..., 3, 3) = Rz(yaw) Ry(pitch) Rx(roll) (body -> world, ZYX Euler, as in the logs)."""
    rpy = np.asarray(rpy, dtype=np.float64)
    cr, sr = np.cos(rpy[..., 0]), np.sin(rpy[..., 0])
    cp, sp = np.cos(rpy[..., 1]), np.sin(rpy[..., 1])
    cy, sy = np.cos(rpy[..., 2]), np.sin(rpy[..., 2])
    rows = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)
