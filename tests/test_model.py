"""The MuJoCo Go1 model, its terrains and the single-robot physics wrapper (real MuJoCo, no mocks)."""
import mujoco
import numpy as np
import pytest
from go1o4.sim_pretrain.model import TERRAIN_KINDS, TerrainConfig, go1_mjcf, surface_height
from go1o4.sim_pretrain.model.terrain import LEGACY_MATTRESS
from go1o4.sim_pretrain.physics import Go1Physics, PhysicsDivergedError, quat_to_rpy

from go1o4 import contract
from go1o4.config import ConfigError, from_dict

# PD standing with Kp 20 sags under the Go1's weight: calf error ~0.26 rad (tau = Kp * err ~ 5 N m).
STAND_Q_TOL = 0.35  # rad, any joint, any time during the 2 s
STAND_HIP_TOL = 0.1  # rad, hips (feet must not slide apart)
STAND_TILT_TOL = 0.05  # rad, roll and pitch


def _model(kind="rigid", dt=0.005):
    return mujoco.MjModel.from_xml_string(go1_mjcf(TerrainConfig(kind=kind), dt))


@pytest.mark.parametrize("kind", TERRAIN_KINDS)
def test_model_compiles_for_each_terrain(kind):
    m = _model(kind)
    assert (m.nq, m.nv, m.nu) == (19, 18, 12)
    assert m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    assert m.sensor("base_quat").adr == 0


def test_joint_and_actuator_order_is_the_contract_sim_order():
    m = _model()
    for i, name in enumerate(contract.JOINT_NAMES_SIM):
        j = m.joint(name)
        assert j.id == i + 1 and m.jnt_qposadr[j.id] == 7 + i and m.jnt_dofadr[j.id] == 6 + i
        assert m.actuator(i).name == name and m.actuator_trnid[i, 0] == j.id
    np.testing.assert_allclose(m.jnt_range[1:, 0], contract.Q_MIN)
    np.testing.assert_allclose(m.jnt_range[1:, 1], contract.Q_MAX)
    np.testing.assert_allclose(m.actuator_forcerange[:, 1], contract.TORQUE_LIMIT)
    np.testing.assert_allclose(m.actuator_forcerange[:, 0], -contract.TORQUE_LIMIT)
    assert np.all(m.actuator_forcelimited)


def test_masses_match_published_go1_values():
    m = _model()
    published = {"trunk": 5.204, "hip_link": 0.68, "thigh_link": 1.009, "calf_link": 0.196}
    for leg in contract.LEGS_SIM:
        for part in ("hip_link", "thigh_link", "calf_link"):
            assert m.body("%s_%s" % (leg, part)).mass[0] == pytest.approx(published[part], abs=1e-3)
    assert m.body("trunk").mass[0] == pytest.approx(5.204)
    assert m.body("trunk").subtreemass[0] == pytest.approx(5.204 + 4 * (0.68 + 1.009 + 0.196), abs=0.01)


def test_motor_law_runs_inside_mujoco_and_matches_contract():
    phys = Go1Physics(timestep=0.002)
    rng = np.random.default_rng(3)
    for _ in range(5):
        q_des = contract.DEFAULT_Q + rng.uniform(-1.5, 1.5, 12)
        dq_des, tau_ff = rng.uniform(-5, 5, 12), rng.uniform(-10, 10, 12)
        kp, kd = rng.uniform(0, 80, 12), rng.uniform(0, 3, 12)
        phys.set_motor_command(q_des, dq_des, kp, kd, tau_ff)
        mujoco.mj_forward(phys.model, phys.data)
        expected = contract.pd_torque(q_des, phys.q, phys.dq, kp, kd, dq_des, tau_ff)
        np.testing.assert_allclose(phys.tau, expected, atol=1e-9)
    assert np.any(np.abs(phys.tau) == contract.TORQUE_LIMIT), "clipping never exercised"


def test_pos_stop_disables_position_term_and_damping_mode():
    phys = Go1Physics(timestep=0.002)
    phys.data.qvel[6:18] = np.linspace(-2, 2, 12)
    phys.set_motor_command(np.full(12, contract.POS_STOP_F), 0.0, 20.0, 1.5, 0.5)
    mujoco.mj_forward(phys.model, phys.data)
    np.testing.assert_allclose(phys.tau, -1.5 * phys.dq + 0.5, atol=1e-9)
    phys.set_damping()
    mujoco.mj_forward(phys.model, phys.data)
    np.testing.assert_allclose(phys.tau, -contract.DAMPING_KD * phys.dq, atol=1e-9)


@pytest.mark.parametrize("kind", ["rigid", "mattress", "mattress_soft_legacy"])
@pytest.mark.parametrize("dt", [0.002, 0.005])
def test_pd_standing_holds_default_pose(kind, dt):
    phys = Go1Physics(TerrainConfig(kind=kind), timestep=dt)
    phys.reset(pose="standing")
    worst_q, worst_hip, worst_tilt, worst_tau = 0.0, 0.0, 0.0, 0.0
    for _ in range(int(round(2.0 / dt))):
        phys.step()
        err = np.abs(phys.q - contract.DEFAULT_Q)
        worst_q, worst_hip = max(worst_q, err.max()), max(worst_hip, err[contract.HIP_IDS].max())
        worst_tilt = max(worst_tilt, np.abs(phys.rpy[:2]).max())
        worst_tau = max(worst_tau, (np.abs(phys.tau) / contract.TORQUE_LIMIT).max())
    assert worst_q < STAND_Q_TOL and worst_hip < STAND_HIP_TOL and worst_tilt < STAND_TILT_TOL
    assert worst_tau <= 1.0 + 1e-12
    assert (0.15 if kind == "mattress" else 0.22) < phys.base_pos[2] < 0.30  # calibrated mattress: ~9 cm sink
    assert np.abs(phys.base_lin_vel_world).max() < 0.02
    # the torque that holds the sag is the gravity load: feet carry the whole robot
    assert phys.foot_forces.sum() == pytest.approx(phys.model.body("trunk").subtreemass[0] * 9.81, rel=0.05)


def test_pd_standing_at_1khz_sim_robot_rate():
    phys = Go1Physics(TerrainConfig(kind="mattress"), timestep=0.001)
    phys.reset(pose="standing")
    phys.step(1000)
    assert np.abs(phys.q - contract.DEFAULT_Q).max() < STAND_Q_TOL


def _standing_sink(cfg):
    phys = Go1Physics(cfg, timestep=0.005)
    phys.reset(pose="standing", settle=1.5)
    return -phys.foot_heights().mean()


def test_feet_sink_into_mattress_not_into_rigid_floor():
    legacy = dict(LEGACY_MATTRESS)
    rigid, mattress = _standing_sink(TerrainConfig()), _standing_sink(TerrainConfig(kind="mattress", **legacy))
    assert rigid < 0.004
    assert 0.01 < mattress < 0.06, mattress  # "a few cm" for a 12.7 kg dog
    assert mattress > rigid + 0.01
    soft = _standing_sink(TerrainConfig(kind="mattress", **dict(legacy, mattress_stiffness=600.0)))
    firm = _standing_sink(TerrainConfig(kind="mattress", **dict(legacy, mattress_stiffness=2400.0)))
    assert soft > mattress > firm
    # the calibrated default: the densifying foam carries a standing Go1 at ~9 cm (REPORT.md)
    assert 0.06 < _standing_sink(TerrainConfig(kind="mattress")) < TerrainConfig().mattress_thickness
    # linear spring: sink ~ load / K (load per foot ~ 31 N), within the series-compliance slack
    assert mattress == pytest.approx(12.74 * 9.81 / 4 / 1200.0, rel=0.3)


def test_mixed_terrain_patch_raises_the_surface():
    cfg = TerrainConfig(kind="patch", **LEGACY_MATTRESS)
    assert surface_height(cfg, np.array([cfg.mattress_center]))[0] == pytest.approx(cfg.mattress_thickness)
    assert surface_height(cfg, np.array([[-3.0, 0.0]]))[0] == 0.0
    phys = Go1Physics(cfg, timestep=0.005)
    phys.reset(pose="standing", xy=cfg.mattress_center)
    on_patch = phys.base_pos[2]
    phys.reset(pose="standing", xy=(-2.0, 0.0))
    assert on_patch - phys.base_pos[2] == pytest.approx(cfg.mattress_thickness - 0.025, abs=0.015)


@pytest.mark.parametrize("kind", ["rigid", "mattress", "mattress_soft_legacy"])
def test_lying_in_damping_mode_stays_lying(kind):
    phys = Go1Physics(TerrainConfig(kind=kind), timestep=0.002)
    phys.reset(pose="lying")
    phys.step(1500)
    assert phys.base_pos[2] < 0.12
    assert np.abs(phys.rpy[:2]).max() < 0.1
    legs = np.ones(12, bool)
    legs[contract.HIP_IDS] = False
    # the calibrated mattress (~9 cm deep under a standing robot) lets the damped legs fold a little further
    assert np.abs(phys.q - contract.LYING_Q)[legs].max() < (0.3 if kind == "mattress" else 0.15)
    assert np.abs(phys.dq).max() < 0.05


def test_imu_sanity_standing_level():
    phys = Go1Physics(timestep=0.002)
    phys.reset(pose="standing", yaw=0.7)
    phys.step(50)
    np.testing.assert_allclose(phys.projected_gravity, [0, 0, -1], atol=0.02)
    np.testing.assert_allclose(phys.accelerometer, [0, 0, 9.81], atol=0.2)
    np.testing.assert_allclose(phys.gyro, 0.0, atol=0.02)
    assert phys.rpy[2] == pytest.approx(0.7, abs=0.02)
    quat_sensor = phys.data.sensordata[0:4]
    np.testing.assert_allclose(np.abs(quat_sensor @ phys.base_quat_wxyz), 1.0, atol=1e-4)


def test_imu_frames_under_rotation_and_free_fall():
    phys = Go1Physics(timestep=0.002)
    phys.reset(pose="standing", base_height=1.5, settle=0.0)
    roll = 0.4
    phys.data.qpos[3:7] = [np.cos(roll / 2), np.sin(roll / 2), 0.0, 0.0]
    phys.data.qvel[0:6] = [1.0, 0.0, 0.0, 0.0, 0.0, 0.5]  # world vx, body yaw rate
    phys.step(5)
    assert phys.rpy[0] == pytest.approx(roll, abs=0.02)
    np.testing.assert_allclose(phys.projected_gravity, [0, np.sin(-roll), -np.cos(roll)], atol=0.02)
    np.testing.assert_allclose(phys.accelerometer, 0.0, atol=0.3)  # free fall: no specific force
    np.testing.assert_allclose(phys.gyro, phys.data.sensordata[4:7], atol=0.05)
    v_body = phys.base_lin_vel_body
    np.testing.assert_allclose(v_body, phys.data.sensordata[16:19], atol=0.05)
    np.testing.assert_allclose(np.linalg.norm(v_body[:2]), 1.0, atol=0.01)
    np.testing.assert_allclose(quat_to_rpy([1.0, 0, 0, 0]), 0.0)


def test_bad_inputs_give_clear_errors():
    phys = Go1Physics(timestep=0.005)
    with pytest.raises(ValueError, match="q_des has non-finite"):
        phys.set_motor_command(np.full(12, np.nan))
    with pytest.raises(ValueError, match="kp must be a scalar or 12"):
        phys.set_motor_command(contract.DEFAULT_Q, kp=np.ones(4))
    with pytest.raises(ValueError, match="kd must be >= 0|kp and kd"):
        phys.set_motor_command(contract.DEFAULT_Q, kd=-1.0)
    with pytest.raises(ValueError, match="pose must be one of"):
        phys.reset(pose="sitting")
    with pytest.raises(ConfigError, match="kind must be one of"):
        from_dict(TerrainConfig, {"kind": "sand"})
    with pytest.raises(ConfigError, match="mattress_stiffness"):
        from_dict(TerrainConfig, {"kind": "mattress", "mattress_stiffness": -5})
    with pytest.raises(ValueError, match="timestep"):
        go1_mjcf(TerrainConfig(), 0.0)


def test_divergence_is_reported_not_silently_reset():
    phys = Go1Physics(timestep=0.005)
    phys.data.qvel[:] = 1e200
    with pytest.raises(PhysicsDivergedError, match="diverged"):
        phys.step(3)
    phys.reset()
    phys.step(10)
    assert np.all(np.isfinite(phys.q))


def test_seeded_reset_noise_is_reproducible():
    a, b = Go1Physics(timestep=0.005, seed=7), Go1Physics(timestep=0.005, seed=7)
    for p in (a, b):
        p.reset(q_noise=0.1, settle=0.0)
    np.testing.assert_array_equal(a.q, b.q)
    assert np.abs(a.q - contract.DEFAULT_Q).max() > 0.01
