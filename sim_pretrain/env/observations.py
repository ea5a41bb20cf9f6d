"""Policy and critic observations (pure numpy).

The policy sees the contract's 58-float observation (:func:`go1o4.contract.build_observation`),
with uniform noise, stacked over 5 steps (290, oldest first; ``contract.push_history`` / ``fill_history``) -- no base linear velocity, as on the
real robot. The critic is asymmetric: the noise-free current observation plus privileged state
(base velocity, height, contacts, randomised physics).
"""
import numpy as np

from go1o4 import contract as C

PRIVILEGED_NAMES = (
    ["base_lin_vel_%s" % a for a in "xyz"] + ["base_ang_vel_%s" % a for a in "xyz"] + ["base_height"]
    + ["contact_%s" % leg for leg in C.LEGS_SIM] + ["foot_height_%s" % leg for leg in C.LEGS_SIM]
    + ["friction", "added_mass", "motor_strength", "latency"]
)
CRITIC_OBS_DIM = C.OBS_DIM + len(PRIVILEGED_NAMES)


def noise_scale_vector(noise_cfg) -> np.ndarray:
    """Per-entry half-width of the uniform observation noise (legged_gym ``_get_noise_scale_vec``)."""
    v = np.zeros(C.OBS_DIM)
    if not noise_cfg.enabled:
        return v
    v[C.OBS_SLICES["projected_gravity"]] = noise_cfg.gravity
    v[C.OBS_SLICES["dof_pos"]] = noise_cfg.dof_pos
    v[C.OBS_SLICES["dof_vel"]] = noise_cfg.dof_vel * C.OBS_BLOCKS[3].scale
    return v * noise_cfg.level


def add_noise(obs: np.ndarray, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if not np.any(scale):
        return obs
    return obs + scale * rng.uniform(-1.0, 1.0, size=obs.shape)


def privileged_obs(clean_obs, base_lin_vel, base_ang_vel, base_height, contact, foot_height,
                   friction, added_mass, motor_strength, latency) -> np.ndarray:
    """(N, CRITIC_OBS_DIM) critic input; order as in PRIVILEGED_NAMES after the 58 clean obs."""
    cols = [np.asarray(clean_obs), base_lin_vel, base_ang_vel, np.asarray(base_height)[:, None],
            np.asarray(contact, dtype=np.float64), foot_height,
            np.stack([friction, added_mass, motor_strength, latency], axis=1)]
    return np.concatenate(cols, axis=1)
