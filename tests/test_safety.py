"""Safety decisions are pure functions: each rule on hand-made inputs."""
import numpy as np
import pytest
from go1o4.robot_runtime import safety as S
from hypothesis import given
from hypothesis import strategies as st

from go1o4 import contract as C

LIM = S.SafetyLimits()


def healthy(**kw):
    base = dict(now=10.0, last_target_time=9.99, last_state_time=9.999, policy_active=True,
                motor_temperature=tuple([35.0] * 12))
    base.update(kw)
    return S.WatchdogInputs(**base)


def test_healthy_state_keeps_control():
    d = S.evaluate(healthy(), LIM)
    assert not d.damp and d.events == [] and d.warnings == []


@pytest.mark.parametrize("kw,cause", [
    (dict(last_target_time=10.0 - 0.061), S.STALE_TARGET),  # > 3 x 20 ms
    (dict(last_target_time=None), S.STALE_TARGET),
    (dict(last_state_time=10.0 - 0.2), S.STATE_LOST),
    (dict(last_state_time=None), S.STATE_LOST),
    (dict(crc_failure_times=tuple(9.5 + 0.01 * i for i in range(10))), S.CRC_FAILURES),
    (dict(roll=1.7), S.TILT),
    (dict(pitch=-1.61), S.TILT),
    (dict(motor_temperature=tuple([35.0] * 11 + [80.0])), S.OVER_TEMPERATURE),
    (dict(estop_pressed=True), S.ESTOP_BUTTON),
])
def test_each_rule_damps_with_its_cause(kw, cause):
    d = S.evaluate(healthy(**kw), LIM)
    assert d.damp and d.causes == [cause]
    assert d.events[0].detail


def test_boundaries_do_not_fire():
    assert not S.evaluate(healthy(last_target_time=10.0 - 0.059), LIM).damp
    assert not S.evaluate(healthy(crc_failure_times=tuple(9.5 + 0.01 * i for i in range(9))), LIM).damp
    old = tuple(8.0 + 0.01 * i for i in range(50))  # many, but outside the window
    assert not S.evaluate(healthy(crc_failure_times=old), LIM).damp
    assert not S.evaluate(healthy(roll=1.59, pitch=-1.59), LIM).damp


def test_stale_target_ignored_when_policy_not_running():
    assert not S.evaluate(healthy(last_target_time=None, policy_active=False), LIM).damp


def test_warm_motor_warns_without_damping():
    d = S.evaluate(healthy(motor_temperature=tuple([55.0] + [35.0] * 11)), LIM)
    assert not d.damp and "FL_hip" in d.warnings[0]


def test_several_causes_reported_together():
    d = S.evaluate(healthy(roll=2.0, estop_pressed=True, last_state_time=None), LIM)
    assert set(d.causes) == {S.TILT, S.ESTOP_BUTTON, S.STATE_LOST}


def test_check_action():
    assert S.check_action(np.zeros(12)) is None
    a = np.zeros(12)
    a[4] = np.nan
    assert "FR_thigh" in S.check_action(a)
    a[4] = np.inf
    assert "not finite" in S.check_action(a)
    assert "shape" in S.check_action(np.zeros(11))


def test_check_state():
    assert S.check_state([1, 0, 0, 0], C.DEFAULT_Q, np.zeros(12)) is None
    assert "quaternion" in S.check_state([0, 0, 0, 0], C.DEFAULT_Q, np.zeros(12))
    q = C.DEFAULT_Q.copy()
    q[0] = np.nan
    assert S.check_state([1, 0, 0, 0], q, np.zeros(12)) == "q is not finite"


def test_clamp_to_joint_limits():
    q = C.DEFAULT_Q
    out, changed = S.clamp_q_des(q + np.array([5.0] + [0.0] * 11), q, np.zeros(12), kp=0.0)
    assert out[0] == pytest.approx(C.Q_MAX[0]) and changed[0] and not changed[1:].any()


def test_clamp_to_torque_band_by_hand():
    q = C.DEFAULT_Q.copy()
    dq = np.zeros(12)
    dq[2] = 40.0
    target = q.copy()
    target[1] += 2.0  # thigh: 20 * 2 = 40 N m > 23.7
    target[2] = -2.7  # calf, inside its joint range, but with velocity: 20 * -1.2 - 0.5 * 40 = -44 < -35.55
    out, changed = S.clamp_q_des(target, q, dq, kp=20.0, kd=0.5)
    assert out[1] == pytest.approx(q[1] + 23.7 / 20.0)
    assert out[2] == pytest.approx(q[2] + (-35.55 + 0.5 * 40.0) / 20.0)
    assert changed[1] and changed[2] and not changed[0]


@given(st.lists(st.floats(-5, 5), min_size=12, max_size=12), st.lists(st.floats(-20, 20), min_size=12, max_size=12),
       st.lists(st.floats(-3, 3), min_size=12, max_size=12))
def test_clamped_targets_respect_limits(target, dq, offset):
    q = np.clip(C.DEFAULT_Q + np.asarray(offset) * 0.3, C.Q_MIN, C.Q_MAX)
    dq = np.asarray(dq)
    out, _ = S.clamp_q_des(np.asarray(target), q, dq)
    tau = C.KP * (out - q) - C.KD * dq
    inside = (out >= C.Q_MIN - 1e-9) & (out <= C.Q_MAX + 1e-9)
    # torque band always holds; joint limits hold unless the torque band lies outside them
    assert np.all(np.abs(tau) <= C.TORQUE_LIMIT + 1e-6)
    lo = q + (-C.TORQUE_LIMIT + C.KD * dq) / C.KP
    hi = q + (C.TORQUE_LIMIT + C.KD * dq) / C.KP
    band_overlaps = (hi >= C.Q_MIN) & (lo <= C.Q_MAX)
    assert np.all(inside | ~band_overlaps)


def test_ramp_is_bounded_and_reaches_goal():
    cur = C.LYING_Q.copy()
    steps = 0
    reached = False
    while not reached:
        new, reached = S.ramp_toward(cur, C.DEFAULT_Q, 0.05)
        assert np.max(np.abs(new - cur)) <= 0.05 + 1e-12
        cur, steps = new, steps + 1
        assert steps < 100
    np.testing.assert_allclose(cur, C.DEFAULT_Q)
    assert steps == int(np.ceil(np.max(np.abs(C.DEFAULT_Q - C.LYING_Q)) / 0.05 - 1e-9))


def test_limits_validation():
    from go1o4.config import ConfigError, from_dict
    with pytest.raises(ConfigError, match="ramp_step"):
        from_dict(S.SafetyLimits, {"ramp_step": 0.5})
