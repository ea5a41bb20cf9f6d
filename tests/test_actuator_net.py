"""The actuator-network motor model: hand-computed outputs, history at the physics step, offset/strength/limits,
the shared walk-these-ways network, and both simulator paths (vector env, simulated Go1's physics)."""
import numpy as np
import pytest
from go1o4.sim_pretrain.actuator_net import ActuatorNet, load_weights, net_torque
from go1o4.sim_pretrain.physics import Go1Physics

from go1o4 import contract as C


def picking_weights(col: int, out_gain: float = 2.0, out_bias: float = 0.5):
    """A network whose output is out_gain * softsign(softsign(x[col])) + out_bias (by hand)."""
    w = {"0_weight": np.zeros((32, 6)), "0_bias": np.zeros(32), "2_weight": np.zeros((32, 32)),
         "2_bias": np.zeros(32), "4_weight": np.zeros((1, 32)), "4_bias": np.array([out_bias])}
    w["0_weight"][0, col] = 1.0
    w["2_weight"][0, 0] = 1.0
    w["4_weight"][0, 0] = out_gain
    return w


def test_hand_computed_outputs():
    # x = 1: softsign(1) = 1/2, softsign(1/2) = 1/3 -> 2/3 + 1/2
    assert net_torque(picking_weights(0), np.array([1.0, 0, 0, 0, 0, 0])) == pytest.approx(2.0 / 3.0 + 0.5)
    # x = -3: softsign = -3/4, softsign(-3/4) = -3/7 -> -6/7 + 1/2
    assert net_torque(picking_weights(3), np.array([0, 0, 0, -3.0, 0, 0])) == pytest.approx(-6.0 / 7.0 + 0.5)


def test_history_order_offset_strength_and_limits():
    n = ActuatorNet(1, weights=picking_weights(2, out_gain=1.0, out_bias=0.0))  # reads e_{t-2}
    q_des = np.zeros((1, 12))
    dq = np.zeros((1, 12))
    outs = [n.torque(np.full((1, 12), e), dq, q_des)[0, 0] for e in (1.0, 2.0, 3.0, 4.0)]
    # e_{t-2}: 0 (zero history), 0, then 1 and 2: softsign(softsign(1)) = 1/3, softsign(softsign(2)) = 2/5
    np.testing.assert_allclose(outs, [0.0, 0.0, 1.0 / 3.0, 2.0 / 5.0])
    n.reset()
    assert n.torque(np.full((1, 12), 9.0), dq, q_des)[0, 0] == 0.0  # history cleared with the episode
    # v_{t-1} is input 4
    n = ActuatorNet(1, weights=picking_weights(4, out_gain=1.0, out_bias=0.0))
    n.torque(q_des, np.full((1, 12), 1.0), q_des)
    assert n.torque(q_des, dq, q_des)[0, 0] == pytest.approx(1.0 / 3.0)
    # e = q - q_des + offset; tau = strength * net, clipped to the torque limits
    n = ActuatorNet(1, weights=picking_weights(0, out_gain=100.0, out_bias=0.0))
    n.offset[0] = 0.5
    n.strength[0] = 0.9
    tau = n.torque(np.full((1, 12), 1.5), dq, np.full((1, 12), 1.0))[0]  # e = 1: 100/3 * 0.9 = 30
    np.testing.assert_allclose(tau, np.minimum(30.0, C.TORQUE_LIMIT))


def test_shared_network_is_a_stiff_damped_servo(actuator_net_npz):
    """The fitted Go1 motor: about Kp 20 around the target, and it opposes velocity (damping)."""
    w = load_weights(str(actuator_net_npz))
    for e in (0.05, 0.1, -0.1):
        tau = net_torque(w, np.array([e, e, e, 0.0, 0.0, 0.0]))
        assert tau == pytest.approx(-C.KP * e, rel=0.1)
    assert net_torque(w, np.array([0, 0, 0, 1.0, 1.0, 1.0])) < -0.3
    with pytest.raises(ValueError, match="6-32-32-1"):
        load_weights(_bad_npz(actuator_net_npz))


def _bad_npz(src):
    import os
    import tempfile
    z = dict(np.load(str(src)))
    z["2_weight"] = z["2_weight"][:16]
    path = os.path.join(tempfile.mkdtemp(), "bad.npz")
    np.savez(path, **z)
    return path


def test_simulated_go1_stands_on_the_actuator_network():
    q = {}
    for model in ("ideal_pd", "actuator_net"):
        p = Go1Physics(timestep=0.001, motor_model=model)
        p.reset(pose="standing")
        p.set_motor_command(C.DEFAULT_Q)
        p.step(1000)
        q[model] = p.q
        assert 0.2 < p.base_pos[2] < 0.4 and p.projected_gravity[2] < -0.99
    assert np.abs(q["actuator_net"] - q["ideal_pd"]).max() < 0.1  # the same servo, about Kp 20
    assert np.any(np.abs(p.tau) > 0.5)  # the net holds the weight, not zero torque
    with pytest.raises(ValueError, match="actuator_net needs a physics step"):
        Go1Physics(timestep=0.002, motor_model="actuator_net")


def test_vector_env_stands_on_the_actuator_network():
    from go1o4.sim_pretrain.cli_evaluate import evaluation_env_config
    from go1o4.sim_pretrain.env.config import EnvConfig
    from go1o4.sim_pretrain.env.group import Go1EnvGroup

    cfg = EnvConfig()
    cfg.motor_model = "actuator_net"
    cfg = evaluation_env_config(cfg, 2, "rigid", dr=False, noise=False, workers=0, seed=0)
    g = Go1EnvGroup(cfg, ["rigid"] * 2, seed=0)
    g.reset(0)
    for _ in range(100):
        g.step(np.zeros((2, 12)))
    s = g.robots.state()
    assert np.abs(s["q"] - C.DEFAULT_Q).max() < 0.35 and np.all(s["base_pos"][:, 2] > 0.2)
    tau_net = g.robots.net.torque(s["q"], s["dq"], np.tile(C.DEFAULT_Q, (2, 1)))
    assert np.all(np.abs(tau_net) <= C.TORQUE_LIMIT)
