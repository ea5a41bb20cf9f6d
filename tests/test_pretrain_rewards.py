"""Reward terms, reward combination, gait clock targets, termination and command sampling on hand cases."""
import math

import numpy as np
import pytest
from go1o4.sim_pretrain.env.commands import sample_commands
from go1o4.sim_pretrain.env.config import CommandConfig, PretrainRewardConfig
from go1o4.sim_pretrain.rewards import (
    REWARD_FUNCTIONS,
    RewardState,
    check_termination,
    combine_terms,
    compute_rewards,
    desired_contact_states,
)

from go1o4 import contract as C


def state(n=2, **kw):
    z3, z12, z4 = np.zeros((n, 3)), np.zeros((n, 12)), np.zeros((n, 4))
    base = dict(commands=np.tile(C.command_vector(0.0, 0.0, 0.0), (n, 1)), base_lin_vel=z3.copy(),
                base_ang_vel=z3.copy(), projected_gravity=np.tile([0.0, 0.0, -1.0], (n, 1)), base_height=np.full(n, 0.3),
                q=np.tile(C.DEFAULT_Q, (n, 1)), dq=z12.copy(), last_dq=z12.copy(), torques=z12.copy(),
                actions=z12.copy(), last_actions=z12.copy(), foot_forces=z4.copy(), foot_vel=np.zeros((n, 4, 3)),
                foot_height=z4.copy(), first_contact=np.zeros((n, 4), bool), air_time=z4.copy(),
                collisions=np.zeros(n, dtype=int), gait_index=np.zeros(n), dt=0.02)
    base.update(kw)
    return RewardState(**base)


def term(name, s, **cfg_kw):
    return REWARD_FUNCTIONS[name](s, PretrainRewardConfig(**cfg_kw))


def test_tracking_terms_by_hand():
    cmds = np.tile(C.command_vector(1.0, 0.0, 0.5), (2, 1))
    s = state(commands=cmds, base_lin_vel=np.array([[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]]),
              base_ang_vel=np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5]]))
    np.testing.assert_allclose(term("tracking_lin_vel", s), [math.exp(-0.25 / 0.25), 1.0])
    np.testing.assert_allclose(term("tracking_ang_vel", s), [math.exp(-0.25 / 0.25), 1.0])


def test_penalties_by_hand():
    s = state(base_lin_vel=np.array([[0.0, 0.0, 0.5]] * 2), base_ang_vel=np.array([[1.0, 2.0, 9.0]] * 2),
              projected_gravity=np.array([[0.6, 0.0, -0.8]] * 2), torques=np.full((2, 12), 2.0),
              dq=np.full((2, 12), 0.1), actions=np.ones((2, 12)), collisions=np.array([0, 3]))
    np.testing.assert_allclose(term("lin_vel_z", s), 0.25)
    np.testing.assert_allclose(term("ang_vel_xy", s), 5.0)
    np.testing.assert_allclose(term("orientation", s), 0.36)
    np.testing.assert_allclose(term("torques", s), 48.0)
    np.testing.assert_allclose(term("dof_acc", s), 12 * (0.1 / 0.02) ** 2)
    np.testing.assert_allclose(term("action_rate", s), 12.0)
    np.testing.assert_allclose(term("collision", s), [0.0, 3.0])


def test_dof_pos_limits_soft_range():
    q = np.tile(C.DEFAULT_Q, (1, 1))
    q[0, 0] = C.Q_MAX[0]  # hip at its hard limit: beyond the 90 % soft limit by 10 % of the half range
    s = state(n=1, q=q)
    np.testing.assert_allclose(term("dof_pos_limits", s), 0.1 * C.Q_MAX[0])
    assert term("dof_pos_limits", state(n=1))[0] == 0.0


def test_feet_air_time_rewards_long_steps_only_when_moving():
    first = np.array([[True, False, False, False]] * 2)
    cmds = np.stack([C.command_vector(1.0, 0, 0), C.command_vector(0.0, 0, 0)])
    s = state(first_contact=first, air_time=np.full((2, 4), 0.7), commands=cmds)
    np.testing.assert_allclose(term("feet_air_time", s), [0.2, 0.0])


def test_desired_contacts_follow_the_trot_clock():
    cmds = np.tile(C.command_vector(0, 0, 0), (3, 1))
    d = desired_contact_states(np.array([0.25, 0.75, 0.0]), cmds)
    # trot: FL and RR share a phase (offset 0.5), FR and RL the other
    np.testing.assert_allclose(d[0], [0.0, 1.0, 1.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(d[1], [1.0, 0.0, 0.0, 1.0], atol=1e-3)
    np.testing.assert_allclose(d[2], [0.5, 0.5, 0.5, 0.5], atol=1e-3)  # at a transition
    clock = C.clock_inputs(np.array([0.25, 0.75]), cmds[:2])
    assert np.all((clock > 0) == (d[:2] > 0.5))  # stance while sin(2 pi phase) > 0


def test_gait_terms_penalise_wrong_contacts_only():
    cmds = np.tile(C.command_vector(0, 0, 0), (2, 1))
    forces = np.array([[0.0, 50.0, 50.0, 0.0], [50.0, 0.0, 0.0, 50.0]])  # right pattern, wrong pattern
    s = state(commands=cmds, gait_index=np.array([0.25, 0.25]), foot_forces=forces)
    f = term("tracking_contacts_shaped_force", s)
    assert f[0] == pytest.approx(0.0, abs=1e-3) and f[1] == pytest.approx(-0.5, abs=1e-3)
    vel = np.zeros((2, 4, 3))
    vel[1, 1, 0] = 5.0  # stance foot FR sliding
    s = state(commands=cmds, gait_index=np.array([0.25, 0.25]), foot_vel=vel)
    v = term("tracking_contacts_shaped_vel", s)
    assert v[0] == pytest.approx(0.0, abs=1e-6) and v[1] == pytest.approx(-(1 - math.exp(-25 / 10)) / 4, rel=1e-3)


def test_combine_modes_by_hand():
    terms = {"a": np.array([0.02, 0.02]), "b": np.array([-0.01, -0.04])}
    np.testing.assert_allclose(combine_terms(terms, "sum"), [0.01, -0.02])
    np.testing.assert_allclose(combine_terms(terms, "clip"), [0.01, 0.0])
    np.testing.assert_allclose(combine_terms(terms, "exp", 0.02), [0.02 * math.exp(-0.5), 0.02 * math.exp(-2.0)])
    with pytest.raises(ValueError, match="mode"):
        combine_terms(terms, "max")


def test_compute_rewards_scales_by_dt_and_skips_zero_scales():
    cfg = PretrainRewardConfig(scales={"tracking_lin_vel": 1.0, "torques": 0.0}, mode="sum")
    total, terms = compute_rewards(state(), cfg)
    assert set(terms) == {"tracking_lin_vel"}
    np.testing.assert_allclose(total, 0.02)  # exp(0) * 1.0 * dt


def test_termination_vs_truncation():
    g = np.array([[0.0, 0.0, -1.0], [0.0, -math.sin(1.7), -math.cos(1.7)], [0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    bad = np.array([False, False, True, False])
    step = np.array([10, 10, 1000, 1000])
    term_, trunc = check_termination(g, bad, step, 1000)
    assert term_.tolist() == [False, True, True, False]
    assert trunc.tolist() == [False, False, False, True]  # a fall at the time limit is a fall


def test_sample_commands_ranges_and_zeroing():
    cfg = CommandConfig(lin_vel_x=[0.5, 1.0], lin_vel_y=[-0.5, 0.5], ang_vel_yaw=[-1, 1], zero_prob=0.0)
    c = sample_commands(np.random.default_rng(0), 1000, cfg)
    assert c.shape == (1000, 15)
    assert np.all((c[:, 0] >= 0.5) & (c[:, 0] <= 1.0))
    np.testing.assert_allclose(c[:, 3:], np.tile(C.command_vector(0, 0, 0)[3:], (1000, 1)))
    cfg.zero_prob = 1.0
    assert np.all(sample_commands(np.random.default_rng(0), 10, cfg)[:, :3] == 0.0)


def test_trot_prior_kinematics_and_clock():
    from go1o4.sim_pretrain.env.trot_prior import leg_fk, leg_ik, trot_actions
    th, ca = np.array([0.8, 1.0, 0.3]), np.array([-1.5, -1.2, -2.0])
    np.testing.assert_allclose(leg_ik(*leg_fk(th, ca)), (th, ca), atol=1e-9)
    cmds = np.tile(C.command_vector(0.0, 0.0, 0.0), (2, 1))
    # gait index 0.25: FR/RL mid-stance (phase 0.25), FL/RR mid-swing (phase 0.75)
    a = trot_actions(np.array([0.25, 0.25]), cmds, swing_height=0.06)
    q = C.action_to_q_des(a)[0].reshape(4, 3)
    q0 = C.DEFAULT_Q.reshape(4, 3)
    x0, z0 = leg_fk(q0[:, 1], q0[:, 2])
    x, z = leg_fk(q[:, 1], q[:, 2])
    np.testing.assert_allclose(z - z0, [0.06, 0.0, 0.0, 0.06], atol=1e-9)  # swing feet lifted, stance feet down
    np.testing.assert_allclose(x, x0, atol=1e-9)  # no stride at zero command
    fwd = C.action_to_q_des(trot_actions(np.array([0.0]), C.command_vector(1.0, 0, 0)[None]))[0].reshape(4, 3)
    xs, _ = leg_fk(fwd[:, 1], fwd[:, 2])
    assert xs[1] > x0[1] and xs[2] > x0[2]  # stance feet (FR, RL) at touchdown are ahead of the hip when walking forward
