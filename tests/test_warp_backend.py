"""The MuJoCo Warp backend (``go1o4 pretrain --backend warp``) on Warp's CPU device: the same task as the
CPU vector env step for step, a pluggable motor model, and a short PPO run.

The first run on a machine compiles Warp's kernels for the CPU (a few minutes; cached in ~/.cache/warp).
"""
import os

import numpy as np
import pytest

mjw = pytest.importorskip("mujoco_warp", reason="the warp extra (mujoco-warp, warp-lang) is not installed")

from go1o4.sim_pretrain.env import EnvConfig, Go1VecEnv  # noqa: E402
from go1o4.sim_pretrain.env.robots import RobotBatch  # noqa: E402
from go1o4.sim_pretrain.env.warp_env import WarpGo1VecEnv  # noqa: E402
from go1o4.sim_pretrain.env.warp_robots import WarpRobotBatch  # noqa: E402

from go1o4 import contract as C  # noqa: E402
from go1o4.config import load_config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow
#: float32 Warp vs float64 MuJoCo over 10 policy steps with contacts on both terrains: measured <= 6e-5
OBS_TOL, REWARD_TOL = 1e-3, 1e-4


def test_warp_and_cpu_backends_agree_step_for_step():
    cfg = load_config(EnvConfig, overrides=["num_envs=4", "num_workers=0", "terrain=mixed", "mattress_fraction=0.5"])
    cpu, warp = Go1VecEnv(cfg), WarpGo1VecEnv(cfg, device="cpu")
    try:
        assert warp.terrains == cpu.terrains and set(warp.terrains) == {"rigid", "mattress"}
        (oc, ic), (ow, iw) = cpu.reset(seed=3), warp.reset(seed=3)
        np.testing.assert_allclose(ow, oc, atol=OBS_TOL)
        np.testing.assert_allclose(iw["critic_obs"], ic["critic_obs"], atol=OBS_TOL)
        rng = np.random.default_rng(0)
        touched = False
        for _ in range(10):
            a = rng.normal(size=(4, 12)) * 0.3
            rc, rw = cpu.step(a), warp.step(a)
            np.testing.assert_allclose(rw[0], rc[0], atol=OBS_TOL)  # policy observation
            np.testing.assert_allclose(rw[1], rc[1], atol=REWARD_TOL)  # reward
            np.testing.assert_allclose(rw[4]["critic_obs"], rc[4]["critic_obs"], atol=OBS_TOL)
            assert np.array_equal(rw[2], rc[2]) and np.array_equal(rw[3], rc[3])
            touched |= bool((warp.group.robots.state()["foot_forces"] > 1.0).any())
        assert touched  # the comparison covered ground contact
    finally:
        cpu.close()
        warp.close()


def test_pluggable_motor_model_ideal_pd_matches_the_actuators():
    """An explicit PD torque function (the slot an actuator network uses) tracks the MJCF's PD actuators."""
    calls = []

    def ideal_pd(q, dq, q_des, strength):
        calls.append(len(q))
        tau = strength[:, None] * (C.KP * (q_des - q) - C.KD * dq)
        return np.clip(tau, -C.TORQUE_LIMIT, C.TORQUE_LIMIT)

    qpos = np.concatenate([[0.0, 0.0, 0.34, 1.0, 0.0, 0.0, 0.0], C.DEFAULT_Q])
    out = {}
    for name, batch in (("actuators", WarpRobotBatch(["rigid"], device="cpu")),
                        ("torque_fn", WarpRobotBatch(["rigid"], device="cpu", torque_fn=ideal_pd)),
                        ("cpu", RobotBatch(["rigid"]))):
        batch.randomize(0, 1.0, 0.0, 1.0, 0)
        batch.reset(0, qpos, np.zeros(18))
        for _ in range(5):
            batch.step(np.asarray(C.DEFAULT_Q)[None] + 0.1)
        out[name] = batch.state()
    assert calls and calls[0] == 1
    np.testing.assert_allclose(out["actuators"]["q"], out["cpu"]["q"], atol=1e-4)
    np.testing.assert_allclose(out["torque_fn"]["q"], out["actuators"]["q"], atol=2e-2)  # explicit vs implicit PD


def test_warp_backend_trains_a_few_iterations(tmp_path):
    import torch
    from go1o4.sim_pretrain.runner import OnPolicyRunner, PretrainConfig

    cfg = load_config(PretrainConfig, os.path.join(REPO, "sim_pretrain", "configs", "mixed.yaml"),
                      ["env.num_envs=2", "runner.num_steps_per_env=4", "runner.bc_prior_steps=0",
                       "ppo.num_minibatches=2", "runner.device=cpu", "runner.max_iterations=2",
                       "runner.critic_warmup_iterations=0"])
    runner = OnPolicyRunner(cfg, str(tmp_path), env=WarpGo1VecEnv(cfg.env, device="cpu"))
    try:
        before = [p.detach().clone() for p in runner.actor.parameters()]
        stats = runner.learn(2, progress=False)
    finally:
        runner.close()
    assert runner.iteration == 2 and runner.samples == 16 and np.isfinite(stats["loss/value"])
    assert any(not torch.equal(a, b) for a, b in zip(before, runner.actor.parameters()))
    assert os.path.exists(os.path.join(str(tmp_path), "model_last.pt"))
