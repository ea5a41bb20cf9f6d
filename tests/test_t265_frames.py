"""T265 frames: hand cases, the Uni-O4 log remap, bad samples, agreement with the simulated T265."""
import numpy as np
import pytest
from go1o4.robot_runtime.t265 import frames as F

S45, C45 = np.sin(np.pi / 4), np.cos(np.pi / 4)


def quat_about(axis, angle):
    """Quaternion (x, y, z, w) of a rotation by ``angle`` about ``axis``."""
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return np.concatenate([axis * np.sin(angle / 2), [np.cos(angle / 2)]])


def random_quat(rng):
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


# ----------------------------------------------------------------------------- hand cases
def test_level_forward_camera_walking_forward():
    # Camera looks along -Z of its (= the world's, at start) frame: forward motion is v_world = -Z.
    r = F.body_velocity([0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0])
    assert r.ok and r.reason == ""
    np.testing.assert_allclose(r.v_body, [1.0, 0.0, 0.0], atol=1e-12)


def test_sideways_and_up_axes():
    # T265 X right -> trunk -y; T265 Y up -> trunk +z.
    r = F.body_velocity([0.5, 0.2, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(r.v_body, [0.0, -0.5, 0.2], atol=1e-12)


def test_robot_yawed_90_left_walking_forward():
    # Since tracking started the robot turned 90 deg left (about world Y, up): its forward is world -X.
    q = [0.0, S45, 0.0, C45]
    r = F.body_velocity([-1.0, 0.0, 0.0], [0.0, 0.5, 0.0], q)
    assert r.ok
    np.testing.assert_allclose(r.v_body, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r.omega_body, [0.0, 0.0, 0.5], atol=1e-12)  # yaw rate about trunk z
    # The world-frame velocity (what the Uni-O4 logs used) would have said "walking sideways".
    np.testing.assert_allclose(F.remap_axes([-1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)


def test_camera_mounted_yawed_90_robot_walking_forward():
    # Camera faces the robot's left. The robot walks forward at 1 m/s: the camera moves to its right (+X).
    mount = F.mount_matrix([0.0, 0.0, np.pi / 2])
    r = F.body_velocity([1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], mount=mount)
    np.testing.assert_allclose(r.v_body, [1.0, 0.0, 0.0], atol=1e-12)
    # After the robot turned 90 deg right (about world Y, up, by -90 deg) its forward, world +X at
    # start, is world +Z; it keeps turning right at 0.3 rad/s.
    q = quat_about([0, 1, 0], -np.pi / 2)
    r2 = F.body_velocity([0.0, 0.0, 1.0], [0.0, -0.3, 0.0], q, mount=mount)
    np.testing.assert_allclose(r2.v_body, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r2.omega_body, [0.0, 0.0, -0.3], atol=1e-12)


def test_camera_pitched_down_30_degrees():
    # Camera pitched 30 deg nose-down on the trunk; the T265 world is gravity-aligned, so the pose holds
    # the pitch (rotation about the camera's X, right axis, by -30 deg). Walking forward horizontally.
    mount = F.mount_matrix([0.0, np.deg2rad(30.0), 0.0])
    q = quat_about([1, 0, 0], np.deg2rad(-30.0))
    r = F.body_velocity([0.0, 0.0, -1.0], [0.0, 0.0, 0.0], q, mount=mount)
    np.testing.assert_allclose(r.v_body, [1.0, 0.0, 0.0], atol=1e-12)


def test_lever_arm_removes_rotation_induced_velocity():
    # Trunk turning on the spot at 1 rad/s, camera 0.3 m ahead of the trunk origin: the camera moves
    # left at 0.3 m/s (world -X) but the trunk does not translate.
    r = F.body_velocity([-0.3, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], lever_arm=[0.3, 0.0, 0.0])
    np.testing.assert_allclose(r.v_body, [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r.omega_body, [0.0, 0.0, 1.0], atol=1e-12)
    no_lever = F.body_velocity([-0.3, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(no_lever.v_body, [0.0, 0.3, 0.0], atol=1e-12)


def test_clip_to_aprl_limit():
    r = F.body_velocity([0.0, 0.0, -2.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0])
    assert r.ok and r.clipped
    np.testing.assert_allclose(r.v_body, [1.5, 0.0, 0.0])
    r = F.body_velocity([0.0, 0.0, 1.7], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], max_speed=2.0)
    assert not r.clipped
    np.testing.assert_allclose(r.v_body, [-1.7, 0.0, 0.0])


def test_unnormalised_quaternion_is_normalised():
    q = np.array([0.0, S45, 0.0, C45])
    a = F.body_velocity([-1.0, 0.0, 0.0], [0.0, 0.5, 0.0], q)
    b = F.body_velocity([-1.0, 0.0, 0.0], [0.0, 0.5, 0.0], 3.0 * q)
    np.testing.assert_allclose(a.v_body, b.v_body, atol=1e-12)


# ----------------------------------------------------------------------------- bad samples
@pytest.mark.parametrize("v, w, q, reason", [
    ([0, 0, -1], [0, 0, 0], [0, 0, 0, 0], F.T265_BAD_QUATERNION),
    ([0, 0, -1], [0, 0, 0], [1e-4, 0, 0, 1e-4], F.T265_BAD_QUATERNION),
    ([0, 0, -1], [0, 0, 0], [0, 0, 0, np.nan], F.T265_NAN),
    ([np.nan, 0, -1], [0, 0, 0], [0, 0, 0, 1], F.T265_NAN),
    ([0, 0, -1], [np.inf, 0, 0], [0, 0, 0, 1], F.T265_NAN),
    ([0, 0], [0, 0, 0], [0, 0, 0, 1], F.T265_BAD_SAMPLE),
    ([0, 0, -1], [0, 0, 0], [0, 0, 1], F.T265_BAD_QUATERNION),
])
def test_bad_samples_are_reported_not_raised(v, w, q, reason):
    with np.errstate(all="raise"):  # nothing may even warn deep in numpy
        r = F.body_velocity(v, w, q)
    assert not r.ok and r.reason == reason
    assert np.all(np.isnan(r.v_body)) and np.all(np.isnan(r.omega_body))


def test_mount_validation():
    with pytest.raises(ValueError, match="not a rotation"):
        F.mount_matrix(matrix=[[1, 0, 0], [0, 1, 0], [0, 0, -1]])  # a reflection
    with pytest.raises(ValueError, match="3x3"):
        F.mount_matrix(matrix=[[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="mount_rpy"):
        F.mount_matrix([0.0, np.nan, 0.0])
    rpy = [0.1, -0.2, 0.3]
    np.testing.assert_allclose(F.mount_matrix(matrix=F.rpy_to_matrix(rpy)), F.mount_matrix(rpy))
    np.testing.assert_array_equal(F.DEFAULT_MOUNT, F.RUB_TO_FLU)


# ----------------------------------------------------------------------------- logs and live agree
def test_rotation_helpers_agree():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = random_quat(rng)
        m = F.quat_xyzw_to_matrix(q)
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(F.rpy_to_matrix(F.quat_xyzw_to_rpy(q)), m, atol=1e-9)
        # The Uni-O4 quaternion "flip" is the remapped rotation M R M^T.
        np.testing.assert_allclose(F.quat_xyzw_to_matrix(F.remap_quat_xyzw(q)), F.RUB_TO_FLU @ m @ F.RUB_TO_FLU.T,
                                   atol=1e-12)


def test_remapped_log_columns_give_the_same_body_velocity():
    """Imported Uni-O4 logs (remapped vectors + rpy) and live samples convert identically."""
    rng = np.random.default_rng(1)
    n = 50
    qs = np.stack([random_quat(rng) for _ in range(n)])
    v = rng.uniform(-1, 1, (n, 3))
    w = rng.uniform(-2, 2, (n, 3))
    mount_rpy, lever = [0.05, 0.3, -0.1], [0.28, 0.0, 0.03]
    mount = F.mount_matrix(mount_rpy)
    live = [F.body_velocity(v[i], w[i], qs[i], mount, lever) for i in range(n)]
    v_b, w_b, valid = F.body_velocity_from_remapped(F.remap_axes(v), F.remap_axes(w), F.remapped_rpy(qs),
                                                    mount_rpy, lever)
    assert valid.all()
    np.testing.assert_allclose(v_b, np.stack([r.v_body for r in live]), atol=1e-9)
    np.testing.assert_allclose(w_b, np.stack([r.omega_body for r in live]), atol=1e-9)
    # The data layer's world_to_body (default mount) is the same transform.
    from go1o4.data.rewards import world_to_body
    default = [F.body_velocity(v[i], w[i], qs[i], max_speed=10.0) for i in range(n)]
    np.testing.assert_allclose(world_to_body(F.remap_axes(v), F.remapped_rpy(qs)),
                               np.stack([r.v_body for r in default]), atol=1e-9)


def test_remapped_batch_flags_bad_rows():
    v = np.array([[1.0, 0, 0], [np.nan, 0, 0]])
    v_b, w_b, valid = F.body_velocity_from_remapped(v, np.zeros((2, 3)), np.zeros((2, 3)))
    assert valid.tolist() == [True, False]
    np.testing.assert_allclose(v_b[0], [1.0, 0.0, 0.0])
    assert np.isnan(v_b[1]).all() and np.isnan(w_b[1]).all()
    with pytest.raises(ValueError, match="rpy_flu"):
        F.body_velocity_from_remapped(v, np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="different lengths"):
        F.body_velocity_from_remapped(v, np.zeros((3, 3)), np.zeros((2, 3)))


def test_real_log_columns_convert(real_logs_dir):
    """On a real Uni-O4 file the remapped T265 roll/pitch match the IMU gravity, and conversion is finite."""
    import h5py

    from go1o4.contract import gravity_to_roll_pitch
    path = sorted(real_logs_dir.glob("*/*.hdf5"))[0]
    with h5py.File(path, "r") as f:
        s = np.asarray(f["states"])
    v_b, w_b, valid = F.body_velocity_from_remapped(s[:, 61:64], s[:, 70:73], s[:, 67:70])
    assert valid.all() and np.all(np.abs(v_b) <= F.MAX_SPEED)
    roll, pitch = gravity_to_roll_pitch(s[:, 0:3])
    assert np.corrcoef(roll, s[:, 67])[0, 1] > 0.9
    assert np.corrcoef(pitch, s[:, 68])[0, 1] > 0.9


# ----------------------------------------------------------------------------- simulated T265
def test_simulated_t265_recovers_trunk_velocity():
    """The simulated T265 (other stage) + this conversion give back the trunk's own velocity."""
    from go1o4.robot_runtime.simulated_go1.t265 import SimT265Config, SimulatedT265
    cfg = SimT265Config(mount_rpy=(0.0, 0.2, 0.0))
    cam = SimulatedT265(cfg)
    yaw = 0.0
    v_trunk_body = np.array([0.7, -0.2, 0.0])
    w_body = np.array([0.0, 0.0, 0.8])
    for k in range(40):
        t = k * 0.005
        yaw = 0.8 * t + 0.3
        quat = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        cam.update(t, [t, 0.0, 0.3], quat, rz @ v_trunk_body, w_body)
    samples = []
    while not cam.queue.empty():
        samples.append(cam.queue.get_nowait())
    assert len(samples) >= 30
    s = samples[-1]
    r = F.body_velocity(s.velocity, s.angular_velocity, s.rotation, F.mount_matrix(cfg.mount_rpy), cfg.mount_pos)
    assert r.ok
    np.testing.assert_allclose(r.v_body, v_trunk_body, atol=1e-9)
    np.testing.assert_allclose(r.omega_body, w_body, atol=1e-9)


def test_local_rpy_to_matrix_equals_the_shared_one():
    """frames keeps a copy (the publisher process imports no go1o4); it must stay identical."""
    from go1o4.geometry import rpy_to_matrix
    rpy = np.random.default_rng(0).uniform(-3, 3, size=(50, 3))
    np.testing.assert_allclose(F.rpy_to_matrix(rpy), rpy_to_matrix(rpy), atol=0)
