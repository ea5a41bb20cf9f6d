"""The Go1 contract: orders, permutation, pose, action mapping, observation builder."""
import numpy as np
import pytest

from go1o4 import contract as C


def test_joint_orders_and_permutation():
    assert C.JOINT_NAMES_SIM[:3] == ("FL_hip", "FL_thigh", "FL_calf")
    assert C.JOINT_NAMES_SDK[:3] == ("FR_hip", "FR_thigh", "FR_calf")
    # the permutation maps every SDK-ordered name to its sim position
    assert tuple(np.array(C.JOINT_NAMES_SDK)[C.SDK_TO_SIM]) == C.JOINT_NAMES_SIM
    assert tuple(np.array(C.JOINT_NAMES_SIM)[C.SIM_TO_SDK]) == C.JOINT_NAMES_SDK
    assert list(C.SDK_TO_SIM) == [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]
    assert tuple(np.array(C.LEGS_SDK)[C.FEET_SDK_TO_SIM]) == C.LEGS_SIM
    x = np.arange(12.0)
    np.testing.assert_array_equal(C.sim_to_sdk(C.sdk_to_sim(x)), x)
    batch = np.arange(36.0).reshape(3, 12)
    np.testing.assert_array_equal(C.sdk_to_sim(batch)[1], batch[1][C.SDK_TO_SIM])


def test_default_pose_within_limits_and_values():
    assert np.all(C.DEFAULT_Q > C.Q_MIN) and np.all(C.DEFAULT_Q < C.Q_MAX)
    assert np.all(C.LYING_Q >= C.Q_MIN) and np.all(C.LYING_Q <= C.Q_MAX)
    np.testing.assert_allclose(C.DEFAULT_Q[C.HIP_IDS], [0.1, -0.1, 0.1, -0.1])
    np.testing.assert_allclose(C.DEFAULT_Q[[1, 4, 7, 10]], [0.8, 0.8, 1.0, 1.0])
    np.testing.assert_allclose(C.DEFAULT_Q[[2, 5, 8, 11]], -1.5)
    assert C.POLICY_DT == pytest.approx(0.02)


def test_action_to_q_des_scale_hip_and_clip():
    a = np.zeros(12)
    a[0], a[1], a[2] = 1.0, 1.0, 100.0
    q = C.action_to_q_des(a)
    assert q[0] == pytest.approx(0.1 + 0.25 * 0.5)  # hip: extra 0.5
    assert q[1] == pytest.approx(0.8 + 0.25)
    assert q[2] == pytest.approx(-1.5 + 0.25 * 10.0)  # clipped at 10
    np.testing.assert_allclose(C.action_to_q_des(np.zeros((4, 12))), np.tile(C.DEFAULT_Q, (4, 1)))


def test_pd_torque_clipped():
    tau = C.pd_torque(C.DEFAULT_Q + 10.0, C.DEFAULT_Q, np.zeros(12))
    np.testing.assert_allclose(tau, C.TORQUE_LIMIT)
    tau = C.pd_torque(C.DEFAULT_Q, C.DEFAULT_Q, np.ones(12))
    np.testing.assert_allclose(tau, -C.KD)


def _quat_from_rpy(r, p, y):
    cr, sr, cp, sp, cy, sy = np.cos(r / 2), np.sin(r / 2), np.cos(p / 2), np.sin(p / 2), np.cos(y / 2), np.sin(y / 2)
    return np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
                     cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy])


@pytest.mark.parametrize("roll,pitch", [(0.0, 0.0), (0.3, 0.0), (0.0, -0.4), (0.2, 0.5), (-1.2, 0.9)])
def test_projected_gravity_and_roll_pitch_recovery(roll, pitch):
    g = C.projected_gravity(_quat_from_rpy(roll, pitch, 0.7))
    assert np.linalg.norm(g) == pytest.approx(1.0)
    r, p = C.gravity_to_roll_pitch(g)
    assert r == pytest.approx(roll, abs=1e-9) and p == pytest.approx(pitch, abs=1e-9)
    if roll == 0 and pitch == 0:
        np.testing.assert_allclose(g, [0, 0, -1], atol=1e-12)


def test_projected_gravity_rejects_bad_quaternion():
    with pytest.raises(ValueError, match="quaternion"):
        C.projected_gravity([0.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="quaternion"):
        C.projected_gravity([np.nan, 0.0, 0.0, 1.0])


def test_observation_layout_and_values():
    assert C.OBS_DIM == 58 and C.POLICY_INPUT_DIM == 290
    cmd = C.command_vector(0.5, -0.1, 0.3)
    q = C.DEFAULT_Q + 0.1
    dq = np.full(12, 2.0)
    last = np.full(12, 20.0)
    obs = C.build_observation([1, 0, 0, 0], q, dq, cmd, last, 0.25)
    assert obs.shape == (58,)
    np.testing.assert_allclose(obs[C.OBS_SLICES["projected_gravity"]], [0, 0, -1])
    np.testing.assert_allclose(obs[C.OBS_SLICES["commands"]][:3], [1.0, -0.2, 0.075])
    np.testing.assert_allclose(obs[C.OBS_SLICES["dof_pos"]], 0.1)
    np.testing.assert_allclose(obs[C.OBS_SLICES["dof_vel"]], 0.1)
    np.testing.assert_allclose(obs[C.OBS_SLICES["last_action"]], 10.0)  # clipped like the action
    # trot: FL and RR half a period from FR and RL; g = 0.25 -> sin(2 pi 0.75) = -1 for FL
    np.testing.assert_allclose(obs[C.OBS_SLICES["clock"]], [-1.0, 1.0, 1.0, -1.0], atol=1e-12)
    batched = C.build_observation(np.tile([1.0, 0, 0, 0], (3, 1)), np.tile(q, (3, 1)), np.tile(dq, (3, 1)),
                                  cmd, np.tile(last, (3, 1)), np.array([0.25, 0.25, 0.25]))
    np.testing.assert_allclose(batched, np.tile(obs, (3, 1)))


def test_observation_matches_real_log_command_block(real_logs_dir):
    """The stored commands of the real logs are the scaled default trot commands of the contract."""
    import h5py
    files = sorted(real_logs_dir.glob("*/*.hdf5"))
    ours = C.command_vector(0, 0, 0) * C.COMMAND_SCALES
    fixed = [3, 5, 6, 7, 8, 10, 11, 12, 13, 14]  # gait entries the operators never changed (not freq/footswing)
    for f in files[::17]:
        with h5py.File(f, "r") as h:
            states = h["states"][:]
        stored = states[:, 3:18]
        np.testing.assert_allclose(np.median(stored, axis=0)[fixed], ours[fixed], atol=0.002, err_msg=str(f))
        assert min(abs(np.median(stored[:, 4]) - f) for f in (3.0, 4.0)) < 0.05  # step frequency (Hz)
    # clock columns are sines of foot phases with the trot pattern FL = RR = -FR = -RL
    clock = states[:, 54:58]
    np.testing.assert_allclose(clock[:, 0], clock[:, 3], atol=1e-6)
    np.testing.assert_allclose(clock[:, 0], -clock[:, 1], atol=1e-6)


def test_gait_clock_advances_by_frequency():
    cmd = C.command_vector(0, 0, 0)
    g = C.advance_gait_index(0.0, cmd)
    assert g == pytest.approx(3.0 * 0.02)
    assert C.advance_gait_index(0.99, cmd) == pytest.approx((0.99 + 0.06) % 1.0)


def test_history_starts_filled_and_rolls():
    h = C.ObservationHistory()
    first = np.full(58, 1.0)
    x = h.reset(first)
    assert x.shape == (290,) and np.all(x == 1.0)
    x = h.push(np.full(58, 2.0))
    np.testing.assert_array_equal(x[-58:], 2.0)  # newest last
    np.testing.assert_array_equal(x[:58], 1.0)
    for v in range(3, 8):
        x = h.push(np.full(58, float(v)))
    np.testing.assert_array_equal(x.reshape(5, 58)[:, 0], [3, 4, 5, 6, 7])
    with pytest.raises(ValueError):
        C.stack_history([first] * 4)


def test_command_vector_rejects_unknown_gait_key():
    with pytest.raises(ValueError, match="unknown gait"):
        C.command_vector(0, 0, 0, gait={"gait_freq": 2.0})


def test_one_history_stacker_three_call_sites():
    """The runtime (ObservationHistory, one step at a time), the vectorised env (push_history + fill_history on
    (N, 5, 58)) and the dataset (stack_logged_history over a whole log) give the same 290 inputs."""
    rng = np.random.default_rng(0)
    lengths = [7, 3, 9]
    obs = rng.normal(size=(sum(lengths), C.OBS_DIM))
    starts = np.repeat(np.cumsum([0] + lengths[:-1]), lengths)
    runtime, h = [], C.ObservationHistory()
    batched, env = [], np.zeros((2, C.HISTORY_LEN, C.OBS_DIM))
    for row in range(len(obs)):
        new = row == starts[row]
        runtime.append(h.reset(obs[row]) if new else h.push(obs[row]))
        C.push_history(env, np.stack([obs[row], -obs[row]]))
        if new:
            C.fill_history(env, np.array([0, 1]), np.stack([obs[row], -obs[row]]))
        batched.append(env.reshape(2, -1).copy())
    logged = C.stack_logged_history(obs, np.arange(len(obs)), starts)
    np.testing.assert_allclose(np.array(runtime), logged, rtol=1e-6)
    np.testing.assert_allclose(np.array([b[0] for b in batched]), logged, rtol=1e-6)
    np.testing.assert_allclose(np.array([b[1] for b in batched]), -np.array(runtime), rtol=1e-6)
    assert not np.allclose(logged[7], logged[6])  # the second episode does not see the first one's steps
    np.testing.assert_array_equal(logged[7].reshape(5, -1), np.repeat(obs[7:8], 5, 0).astype(np.float32))
