"""The vectorised MuJoCo Go1 env: shapes, observation = contract, action mapping, latency, resets, determinism."""
import numpy as np
import pytest
from go1o4.sim_pretrain.env import CRITIC_OBS_DIM, EnvConfig, Go1VecEnv
from go1o4.sim_pretrain.env.robots import latency_runs, substep_delays

from go1o4 import contract as C
from go1o4.config import load_config


def make_env(n=3, workers=0, **over):
    sets = ["num_envs=%d" % n, "num_workers=%d" % workers] + ["%s=%s" % kv for kv in over.items()]
    return Go1VecEnv(load_config(EnvConfig, overrides=sets))


@pytest.fixture(scope="module")
def env():
    e = make_env(3, **{"noise.enabled": "false", "domain_rand.latency": "[0.0, 0.0]"})
    yield e
    e.close()


def test_reset_step_shapes_and_dtypes(env):
    obs, info = env.reset(seed=0)
    assert obs.shape == (3, C.POLICY_INPUT_DIM) and obs.dtype == np.float64
    assert info["critic_obs"].shape == (3, CRITIC_OBS_DIM)
    obs, rew, term, trunc, info = env.step(np.zeros((3, 12)))
    assert obs.shape == (3, 290) and rew.shape == (3,) and rew.dtype == np.float64
    assert term.dtype == bool and trunc.dtype == bool and term.shape == trunc.shape == (3,)
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rew))
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step(np.zeros((2, 12)))


def test_new_episode_history_is_filled_with_first_observation(env):
    obs, _ = env.reset(seed=1)
    blocks = obs.reshape(3, C.HISTORY_LEN, C.OBS_DIM)
    assert np.array_equal(blocks, np.repeat(blocks[:, -1:], C.HISTORY_LEN, axis=1))


def test_observation_equals_contract_builder_of_physics_state(env):
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    prev = None
    for _ in range(5):
        a = rng.normal(size=(3, 12)) * 0.3
        obs, _, term, trunc, _ = env.step(a)
        g = env.group
        for i in range(3):
            d = g.robots.datas[i]
            expected = C.build_observation(d.qpos[3:7], d.qpos[7:19], d.qvel[6:18], g.commands[i], a[i], g.gait_index[i])
            np.testing.assert_allclose(obs[i, -C.OBS_DIM:], expected, atol=1e-12)
        if prev is not None:  # history shifts by one step, oldest first
            np.testing.assert_array_equal(obs[:, :-C.OBS_DIM], prev[:, C.OBS_DIM:])
        prev = obs
    # no base linear velocity in the policy input, but the critic gets it
    s = env.group.robots.state()
    np.testing.assert_allclose(env.group.critic_obs[:, C.OBS_DIM:C.OBS_DIM + 3], s["base_lin_vel"])


def test_action_to_q_des_reaches_the_actuators(env):
    env.reset(seed=3)
    a = np.linspace(-12.0, 12.0, 36).reshape(3, 12)  # includes values beyond the +-10 clip
    env.step(a)
    for i, d in enumerate(env.group.robots.datas):
        np.testing.assert_allclose(d.ctrl, C.action_to_q_des(a[i]))  # latency 0: the new target is applied
    np.testing.assert_allclose(env.group.actions, np.clip(a, -10, 10))


def test_latency_schedule_by_hand():
    assert substep_delays(0, 4) == [0, 0, 0, 0]
    assert substep_delays(1, 4) == [1, 0, 0, 0]
    assert substep_delays(3, 4) == [1, 1, 1, 0]
    assert substep_delays(4, 4) == [1, 1, 1, 1]
    assert substep_delays(6, 4) == [2, 2, 1, 1]
    assert latency_runs(6, 4) == [(2, 2), (1, 2)]
    assert latency_runs(0, 4) == [(0, 4)]


def test_latency_holds_previous_target():
    e = make_env(1, **{"domain_rand.latency": "[0.01, 0.01]"})  # 2 substeps of 5 ms
    try:
        e.reset(seed=0)
        rb = e.group.robots
        assert rb._runs[0] == [(1, 2), (0, 2)]
        prev = rb.targets[0, 0].copy()  # the reset pose
        e.step(np.full((1, 12), 2.0))
        np.testing.assert_allclose(rb.targets[0, 1], prev)  # applied for the first two substeps
        np.testing.assert_allclose(rb.datas[0].ctrl, C.action_to_q_des(np.full(12, 2.0)))  # last run: new target
    finally:
        e.close()


def test_truncation_vs_termination_and_final_obs():
    e = make_env(2, episode_steps=4, **{"noise.enabled": "false"})
    try:
        obs, _ = e.reset(seed=0)
        for _ in range(3):
            obs, rew, term, trunc, info = e.step(np.zeros((2, 12)))
            assert not trunc.any() and not term.any()
        pre = obs
        obs, rew, term, trunc, info = e.step(np.zeros((2, 12)))
        assert trunc.all() and not term.any()  # time limit, standing robots
        assert info["_final_obs"].all() and info["_episode"].all()
        final = info["final_obs"]
        np.testing.assert_array_equal(final[:, :-C.OBS_DIM], pre[:, C.OBS_DIM:])  # final obs continues the episode
        blocks = obs.reshape(2, C.HISTORY_LEN, C.OBS_DIM)  # autoreset: new episode, filled history
        assert np.array_equal(blocks, np.repeat(blocks[:, -1:], C.HISTORY_LEN, axis=1))
        assert info["final_critic_obs"].shape == (2, CRITIC_OBS_DIM)
        np.testing.assert_allclose(info["episode"]["l"], 4)
        # flip robot 0 upside down: a fall is a termination, not a truncation
        g = e.group
        qpos = g.robots.qpos[0].copy()
        qpos[2], qpos[3:7] = 0.3, [0.0, 1.0, 0.0, 0.0]
        g.robots.reset(0, qpos, np.zeros(18))
        obs, rew, term, trunc, info = e.step(np.zeros((2, 12)))
        assert term[0] and not trunc[0] and not term[1]
        assert info["episode"]["fell"][0] == 1.0
    finally:
        e.close()


def test_determinism_given_seed():
    outs = []
    for _ in range(2):
        e = make_env(2)
        try:
            obs, _ = e.reset(seed=7)
            rng = np.random.default_rng(1)
            traj = [obs]
            for _ in range(10):
                obs, rew, term, trunc, info = e.step(rng.normal(size=(2, 12)))
                traj += [obs, rew[:, None]]
            outs.append(np.concatenate([t.reshape(-1) for t in traj]))
        finally:
            e.close()
    np.testing.assert_array_equal(outs[0], outs[1])
    e = make_env(2)
    try:
        obs8, _ = e.reset(seed=8)
        assert not np.array_equal(obs8.reshape(-1), outs[0][:obs8.size])
    finally:
        e.close()


def test_worker_processes_step_all_robots():
    with make_env(4, workers=2) as e:
        obs, info = e.reset(seed=0)
        assert obs.shape == (4, 290)
        for _ in range(3):
            obs, rew, term, trunc, info = e.step(np.zeros((4, 12)))
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(info["critic_obs"]))
        assert len(set(np.round(obs[:, -C.OBS_DIM], 12))) > 1  # different robots, different states
        assert e.bare_step_time(2) > 0


def test_mixed_terrain_assignment():
    from go1o4.sim_pretrain.env.vec_env import terrain_assignment
    cfg = load_config(EnvConfig, overrides=["num_envs=8", "terrain=mixed", "mattress_fraction=0.25"])
    t = terrain_assignment(cfg)
    assert t.count("mattress") == 2 and t.count("rigid") == 6


def test_bad_config_is_reported_by_key():
    from go1o4.config import ConfigError
    with pytest.raises(ConfigError, match="terrain"):
        load_config(EnvConfig, overrides=["terrain=lava"])
    with pytest.raises(ConfigError, match="unknown reward term"):
        load_config(EnvConfig, overrides=["rewards.scales={'flying': 1.0}"])


def test_isaacgym_backend_says_clearly_it_needs_isaacgym():
    import importlib.util
    if importlib.util.find_spec("isaacgym") is not None:
        pytest.skip("isaacgym is installed here")
    with pytest.raises(ImportError, match="Isaac Gym Preview 4"):
        import go1o4.sim_pretrain.isaacgym_backend  # noqa: F401


@pytest.mark.parametrize("name", ["flat", "mattress", "mixed"])
def test_shipped_configs_load(name):
    import os

    from go1o4.sim_pretrain.runner import PretrainConfig
    path = os.path.join(os.path.dirname(__file__), "..", "sim_pretrain", "configs", name + ".yaml")
    cfg = load_config(PretrainConfig, path)
    assert cfg.env.terrain == {"flat": "rigid"}.get(name, name)
    assert -1.0 >= cfg.env.commands.lin_vel_x[0] and cfg.env.commands.lin_vel_x[1] >= 1.5
