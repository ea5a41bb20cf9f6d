"""Sim/runtime parity: the same robot state gives the same 58-float observation on both sides.

(a) simulator side: ``build_observation`` from Go1Physics' sim-order state;
(b) runtime side: LowState over real UDP -> Unitree's SDK -> RobotState (SDK -> sim order) -> ``build_observation``.
Lock-step mode freezes the physics between a reply and the next command, so both see one state.
"""
import numpy as np
import pytest
from go1o4.robot_runtime import wire
from go1o4.robot_runtime.robot_state import RobotState
from go1o4.robot_runtime.sdk_link import SdkLink
from go1o4.robot_runtime.simulated_go1.config import SimRobotConfig
from go1o4.robot_runtime.simulated_go1.server import SimulatedGo1
from go1o4.sim_pretrain.model.terrain import TerrainConfig

from go1o4 import contract as C

pytest.importorskip("unitree_legged_sdk.robot_interface")


@pytest.mark.parametrize("terrain", ["rigid", "mattress"])
def test_observation_parity_sim_vs_sdk(udp_port, terrain):
    rng = np.random.default_rng(7)
    cfg = SimRobotConfig(mode="lockstep", port=udp_port, start_pose="standing", terrain=TerrainConfig(kind=terrain))
    commands = C.command_vector(0.6, -0.2, 0.4)
    with SimulatedGo1(cfg).start() as sim:
        link = SdkLink("127.0.0.1", sim.port, local_port=0)
        action, gait, checked = np.zeros(C.NUM_ACTIONS), 0.0, 0
        max_dq = 0.0
        for step in range(25):  # 25 policy steps of random actions: an asymmetric, moving robot
            last_action = action
            action = rng.normal(0.0, 1.0, C.NUM_ACTIONS)
            q_des = C.action_to_q_des(action)
            for _ in range(C.DECIMATION * 2 + 2):  # 10 link periods per policy step
                link.send(q_des, 0.0, C.KP, C.KD, 0.0)
                state = link.receive(timeout=1.0)
                assert state is not None
            with sim.lock:  # the robot is frozen until our next LowCmd
                p = sim.physics
                obs_sim = C.build_observation(p.base_quat_wxyz, p.q, p.dq, commands, last_action, gait)
                sim_rpy, sim_feet, sim_gravity = p.rpy, p.foot_forces, p.projected_gravity
                packet = sim.state_packet()
                tick = int(round(sim.time * 1000))
            assert state.tick == tick
            obs_rt = C.build_observation(state.quat_wxyz, state.q, state.dq, commands, last_action, gait)
            assert obs_sim.shape == obs_rt.shape == (C.OBS_DIM,)
            np.testing.assert_allclose(obs_rt, obs_sim, rtol=2e-6, atol=2e-6, err_msg="step %d" % step)
            np.testing.assert_allclose(state.projected_gravity, sim_gravity, atol=2e-6)
            np.testing.assert_allclose(state.rpy, sim_rpy, atol=2e-6)
            np.testing.assert_allclose(state.foot_forces, np.round(sim_feet), atol=0)  # int16 N on the wire
            # the SDK path and a direct decode of the same packet agree exactly
            rec = RobotState.from_record(np.frombuffer(packet, dtype=wire.LOW_STATE)[0])
            np.testing.assert_array_equal(
                C.build_observation(rec.quat_wxyz, rec.q, rec.dq, commands, last_action, gait), obs_rt)
            max_dq = max(max_dq, float(np.abs(p.dq).max()))
            gait = float(C.advance_gait_index(gait, commands))
            checked += 1
    assert checked == 25 and max_dq > 0.5  # the states compared were not a robot at rest
    # a wrong joint order would have been caught: the two sides' legs genuinely differ
    assert np.abs(state.q - C.sdk_to_sim(state.q)).max() > 0.01
