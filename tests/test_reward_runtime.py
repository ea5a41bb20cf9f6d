"""The runtime's per-step reward equals data.rewards' recomputation on the same episode (one definition)."""
import numpy as np
import pytest
from go1o4.data.rewards import compute_reward, uni_o4_terms
from go1o4.robot_runtime.reward import StepRewardComputer
from go1o4.robot_runtime.t265 import frames as F
from go1o4.robot_runtime.t265.source import VelocityReading

from go1o4 import contract as C


def make_episode(rng, n=60, first_last_action=None, action_std=0.15, big_actions=()):
    """A random but plausible episode with raw T265 samples and everything the runtime logs."""
    steps = {k: [] for k in ("obs", "action", "dq", "command", "t265_velocity_body", "t265_velocity_world",
                             "t265_angular_velocity", "t265_rpy")}
    readings, g = [], 0.0
    last_a = np.zeros(12) if first_last_action is None else np.asarray(first_last_action, dtype=np.float64)
    yaw = 0.0
    for t in range(n):
        cmd = C.command_vector(rng.uniform(-0.5, 1.5), rng.uniform(-0.3, 0.3), rng.uniform(-1, 1))
        a = rng.normal(0, action_std, 12)
        if t in big_actions:
            a[2] = 11.0  # beyond the +-10 clip
        dq = rng.normal(0, 1.0, 12)
        q = C.DEFAULT_Q + rng.normal(0, 0.1, 12)
        yaw += 0.02 * rng.uniform(-1, 1)
        tilt = rng.normal(0, 0.05, 2)
        # camera pose: yaw about world Y (up), small tilt about X and Z; walking roughly forward
        qc = np.array([tilt[0], np.sin(yaw / 2), tilt[1], np.cos(yaw / 2)])
        qc /= np.linalg.norm(qc)
        v_w = F.quat_xyzw_to_matrix(qc) @ np.array([rng.normal(0, 0.1), rng.normal(0, 0.05), -rng.uniform(0, 1.2)])
        w_w = rng.normal(0, 0.3, 3)
        sample = F.PoseSample(np.zeros(3), v_w, np.zeros(3), qc, w_w, np.zeros(3), 3, 3)
        conv = F.body_velocity(v_w, w_w, qc)
        readings.append(VelocityReading(conv.ok, conv.reason, conv.v_body, conv.omega_body, np.zeros(3), qc, 3,
                                        0.0, t * 0.02, t, conv.clipped, sample))
        obs = C.build_observation([1.0, 0.0, 0.0, 0.0], q, dq, cmd, last_a, g)
        g = C.advance_gait_index(g, cmd)
        cols = readings[-1].log_fields()
        for k, x in (("obs", obs), ("action", a), ("dq", dq), ("command", cmd),
                     ("t265_velocity_body", cols["t265_velocity_body"]),
                     ("t265_velocity_world", cols["t265_velocity_world"]),
                     ("t265_angular_velocity", cols["t265_angular_velocity"]), ("t265_rpy", cols["t265_rpy"])):
            steps[k].append(np.asarray(x, dtype=np.float64))
        last_a = a
    return {k: np.stack(v) for k, v in steps.items()}, readings


@pytest.mark.parametrize("name", ["uni_o4_body", "uni_o4_body_si", "uni_o4_world"])
def test_step_reward_equals_data_layer_recomputation(name):
    rng = np.random.default_rng(3)
    steps, readings = make_episode(rng)
    comp = StepRewardComputer(name)
    online = np.array([comp.step_reading(steps["command"][t], readings[t], steps["action"][t], steps["dq"][t]).reward
                       for t in range(len(readings))])
    offline = compute_reward(name, steps)
    assert np.all(np.isfinite(online)) and np.median(online) > 0.01 and np.std(online) > 1e-3  # not trivial
    np.testing.assert_allclose(online, offline, rtol=1e-5, atol=0)


def test_observed_previous_action_is_used_like_the_data_layer():
    """Explicit prev_action (as in the observation: clipped to +-10, non-zero at the start) matches too."""
    rng = np.random.default_rng(5)
    steps, readings = make_episode(rng, n=40, first_last_action=np.r_[12.0, np.zeros(11)],
                                    big_actions=(10, 20))
    comp = StepRewardComputer("uni_o4_body")
    last = C.OBS_SLICES["last_action"]
    online = [comp.step_reading(steps["command"][t], readings[t], steps["action"][t], steps["dq"][t],
                                prev_action=np.r_[12.0, np.zeros(11)] if t == 0 else steps["action"][t - 1]).reward
              for t in range(len(readings))]
    np.testing.assert_allclose(steps["obs"][1:, last], np.clip(steps["action"][:-1], -10, 10))
    offline = compute_reward("uni_o4_body", steps)
    np.testing.assert_allclose(online, offline, rtol=1e-5, atol=0)
    # the test is sensitive to a_t-1: the default (zeros) differs at step 0; 12 is clipped to 10, 9 is not
    def first(prev):
        return StepRewardComputer("uni_o4_body").step_reading(steps["command"][0], readings[0], steps["action"][0],
                                                              steps["dq"][0], prev_action=prev).reward
    assert first(None) > 1e3 * offline[0] > 0
    assert first(np.r_[10.0, np.zeros(11)]) == online[0]
    assert first(np.r_[9.0, np.zeros(11)]) > 2 * online[0]


def test_reset_starts_a_new_episode():
    rng = np.random.default_rng(4)
    steps, readings = make_episode(rng, n=10)
    comp = StepRewardComputer("uni_o4_body")
    for t in range(5):
        comp.step_reading(steps["command"][t], readings[t], steps["action"][t], steps["dq"][t])
    comp.reset()
    last = C.OBS_SLICES["last_action"]  # the logged sub-episode starts with a non-zero previous action
    second = [comp.step_reading(steps["command"][t], readings[t], steps["action"][t], steps["dq"][t],
                                prev_action=steps["obs"][t, last]).reward for t in range(5, 10)]
    sub = {k: v[5:] for k, v in steps.items()}
    np.testing.assert_allclose(second, compute_reward("uni_o4_body", sub), rtol=1e-5, atol=0)
    # without the reset the history terms (joint acceleration) would differ
    comp2 = StepRewardComputer("uni_o4_body")
    for t in range(6):
        r = comp2.step_reading(steps["command"][t], readings[t], steps["action"][t], steps["dq"][t]).reward
    assert abs(r - second[0]) > 1e-6


def test_terms_are_reported_and_history_terms_start_at_zero():
    comp = StepRewardComputer("uni_o4_body")
    a, dq = np.full(12, 0.5), np.full(12, 2.0)
    first = comp.step([1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], a, dq)
    # previous action 0 before the first step (as the observation holds it); no dq_t-1, no a_t-2
    assert first.valid and first.terms["action_rate"] == pytest.approx(12 * 0.25)
    assert first.terms["dof_acc"] == 0.0 and first.terms["smoothness_2"] == 0.0
    second = comp.step([1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], a + 0.1, dq + 0.2)
    assert second.terms["action_rate"] == pytest.approx(12 * 0.01)
    assert second.terms["dof_acc"] == pytest.approx(12 * (0.2 / C.POLICY_DT) ** 2)
    assert second.terms["smoothness_2"] == pytest.approx(12 * (0.6 - 2 * 0.5 + 0.0) ** 2)
    ref = uni_o4_terms(np.array([[2.0, 0.0, 0.0]] * 2), np.array([[1.0, 0.0, 0.0]] * 2), np.zeros((2, 3)),
                       np.stack([a, a + 0.1]), np.stack([dq, dq + 0.2]), prev_action=np.stack([0 * a, a]))
    assert second.reward == pytest.approx(float(ref["reward"][-1]))


def test_bad_t265_reading_gives_invalid_nan_reward():
    comp = StepRewardComputer("uni_o4_body")
    r = comp.step([0.5, 0.0, 0.0], [np.nan] * 3, [np.nan] * 3, np.zeros(12), np.zeros(12))
    assert not r.valid and np.isnan(r.reward)


def test_input_errors_are_clear():
    with pytest.raises(ValueError, match="cannot be computed online"):
        StepRewardComputer("logged")
    comp = StepRewardComputer()
    with pytest.raises(ValueError, match="action needs 12"):
        comp.step([0, 0, 0], [0, 0, 0], [0, 0, 0], np.zeros(3), np.zeros(12))
