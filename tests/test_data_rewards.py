"""Reward recomputation: hand-computed Uni-O4 reward on real steps, frames, registry errors."""
import math

import h5py
import numpy as np
import pytest
from go1o4.data.import_uni_o4 import load_uni_o4_file
from go1o4.data.rewards import (
    RewardInputError,
    compute_reward,
    reward_names,
    rpy_to_matrix,
    world_to_body,
)

from go1o4 import contract as C


def hand_reward(s, a, t):
    """The data README's formula, term by term, in plain Python on the raw state columns."""
    sq = lambda xs: sum(x * x for x in xs)  # noqa: E731
    c, v, w = s[t, 3:6], s[t, 61:64], s[t, 70:73]
    pos = 0.8 * math.exp(-sq(c[:2] - v[:2]) / 0.25) + 0.7 * math.exp(-((c[2] - w[2]) ** 2) / 0.25)
    dq = s[t, 30:42] / 0.05
    a_t, a_1 = a[t].astype(float), s[t, 42:54]  # previous action as logged in the observation
    ddq = (dq - s[t - 1, 30:42] / 0.05) / 0.02 if t > 0 else np.zeros(12)
    d2a = (a_t - 2 * a_1 + s[t - 1, 42:54]) if t > 0 else np.zeros(12)
    neg = (-0.02 * v[2] ** 2 - 0.001 * sq(w[:2]) - 5e-5 * sq(a_t) - 2.5e-7 * sq(ddq) - 0.01 * sq(a_t - a_1)
           - 1e-4 * sq(dq) - 0.1 * (sq(a_t - a_1) + sq(d2a)))
    return pos * math.exp(neg) / 10.0


@pytest.mark.parametrize("fname", ["20230807-170045/20230807-170045.hdf5", "20230808-215007/20230808-215007.hdf5"])
def test_uni_o4_world_matches_hand_computed(real_logs_dir, fname):
    path = str(real_logs_dir / fname)
    with h5py.File(path, "r") as f:
        s, a = f["states"][()], f["actions"][()]
    r = load_uni_o4_file(path)["reward"]
    for t in (0, 1, 2, 3, 57, 400, len(s) - 1):
        assert r[t] == pytest.approx(hand_reward(s, a, t), rel=2e-4, abs=1e-7), t
    assert r.dtype == np.float32 and np.all((r >= 0) & (r <= 0.15))


def test_rotations_agree_with_the_contract_gravity_convention():
    rng = np.random.default_rng(0)
    rpy = rng.uniform(-1.2, 1.2, size=(50, 3))
    m = rpy_to_matrix(rpy)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0)
    # gravity seen in the body frame gives back roll and pitch through go1o4.contract
    g_body = world_to_body(np.broadcast_to([0.0, 0.0, -1.0], (50, 3)), rpy)
    roll, pitch = C.gravity_to_roll_pitch(g_body)
    np.testing.assert_allclose(roll, rpy[:, 0], atol=1e-9)
    np.testing.assert_allclose(pitch, rpy[:, 1], atol=1e-9)
    # facing +y (yaw 90 deg) and moving along world +y is moving forward
    np.testing.assert_allclose(world_to_body([0.0, 1.0, 0.0], [0.0, 0.0, np.pi / 2]), [1.0, 0.0, 0.0], atol=1e-12)


def test_body_equals_world_when_level_and_unrotated(real_logs_dir):
    ep = load_uni_o4_file(str(real_logs_dir / "20230807-165204" / "20230807-165204.hdf5"))
    steps = dict(ep.steps, t265_rpy=np.zeros_like(ep["t265_rpy"]))
    np.testing.assert_allclose(compute_reward("uni_o4_body", steps), compute_reward("uni_o4_world", steps), rtol=1e-6)
    assert not np.allclose(compute_reward("uni_o4_body", ep.steps), compute_reward("uni_o4_world", ep.steps))


def test_si_command_variant_rewards_exact_tracking():
    n = 6
    cmd = np.array([0.5, -0.2, 0.3])
    obs = np.zeros((n, 58))
    obs[:, C.OBS_SLICES["commands"]] = C.command_vector(*cmd) * C.COMMAND_SCALES
    steps = {"obs": obs, "action": np.zeros((n, 12)), "dq": np.zeros((n, 12)), "t265_rpy": np.zeros((n, 3)),
             "t265_velocity_world": np.tile([cmd[0], cmd[1], 0.0], (n, 1)),
             "t265_angular_velocity": np.tile([0.0, 0.0, cmd[2]], (n, 1))}
    np.testing.assert_allclose(compute_reward("uni_o4_body_si", steps), 0.15, rtol=1e-6)
    assert np.all(compute_reward("uni_o4_world", steps) < 0.15)  # the paper's reward compares scaled commands


def test_registry_errors_name_the_problem():
    assert {"uni_o4_world", "uni_o4_body", "uni_o4_body_si", "logged"} <= set(reward_names())
    with pytest.raises(ValueError, match="unknown reward 'nope'; choose from"):
        compute_reward("nope", {})
    with pytest.raises(RewardInputError, match="needs field 't265_velocity_world'"):
        compute_reward("uni_o4_world", {"obs": np.zeros((2, 58)), "action": np.zeros((2, 12))})
