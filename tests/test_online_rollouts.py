"""Online PPO data path (pure): segments from episodes, bootstrapping, batches, GAE, reward scale, ledger."""
import json

import numpy as np
import pytest
import torch
from go1o4.online_finetune import models
from go1o4.online_finetune.rollouts import LEDGER, append_ledger, make_segment, ppo_batch, read_ledger, transitions
from go1o4.online_finetune.trainer import fill_storage

from go1o4 import contract as C
from go1o4.rl.networks import Critic


def _episode(n, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, C.POLICY_INPUT_DIM)).astype(np.float32)
    act = rng.normal(size=(n, C.NUM_ACTIONS)).astype(np.float32)
    return obs, act, rng.normal(size=n), rng.uniform(size=n)


def test_terminal_keeps_every_step_and_no_bootstrap():
    obs, act, lp, r = _episode(6)
    s = make_segment("a", obs, act, lp, r, "terminal", final_obs=obs[0])
    assert len(s) == 6 and s.terminal and s.final_obs is None and s.logged_steps == 6


def test_truncation_with_final_state_keeps_every_step():
    obs, act, lp, r = _episode(6)
    final = np.full(C.POLICY_INPUT_DIM, 7.0)
    s = make_segment("a", obs, act, lp, r, "truncation", final_obs=final)
    assert len(s) == 6 and not s.terminal
    np.testing.assert_array_equal(s.final_obs, final)


def test_truncation_without_final_state_bootstraps_from_last_logged_step():
    obs, act, lp, r = _episode(6)
    s = make_segment("a", obs, act, lp, r, "truncation", final_obs=None)
    assert len(s) == 5 and s.logged_steps == 6
    np.testing.assert_array_equal(s.final_obs, obs[5])


def test_non_finite_reward_cuts_the_episode_there():
    obs, act, lp, r = _episode(8)
    r[5] = np.nan
    s = make_segment("a", obs, act, lp, r, "terminal")  # the fall after a NaN is not trusted
    assert len(s) == 5 and not s.terminal and s.reason == "non_finite"
    np.testing.assert_array_equal(s.final_obs, obs[5])
    obs[5, 3] = np.inf  # a broken state: bootstrap from the one before
    s = make_segment("a", obs, act, lp, r, "truncation")
    assert len(s) == 4
    np.testing.assert_array_equal(s.final_obs, obs[4])
    r[0] = np.nan
    assert make_segment("a", obs, act, lp, r, "truncation") is None


def test_missing_log_probs_rejected_for_ppo_but_fine_for_replay():
    obs, act, _, r = _episode(4)
    assert make_segment("a", obs, act, None, r, "terminal") is None
    assert len(make_segment("a", obs, act, None, r, "terminal", need_log_probs=False)) == 4
    with pytest.raises(ValueError, match="inconsistent shapes"):
        make_segment("a", obs[:, :10], act, None, r, "terminal")


def test_batch_flags_and_gae_by_hand():
    o1, a1, lp1, r1 = _episode(3, 1)
    o2, a2, lp2, r2 = _episode(2, 2)
    final = np.zeros(C.POLICY_INPUT_DIM, np.float32)
    segs = [make_segment("t", o1, a1, lp1, r1, "terminal"), make_segment("c", o2, a2, lp2, r2, "truncation", final)]
    b = ppo_batch(segs)
    np.testing.assert_array_equal(b["terminals"], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(b["timeouts"], [0, 0, 0, 0, 1])
    critic = Critic(hidden=[8])
    gamma, lam, scale = 0.9, 0.8, 2.0
    st = fill_storage(b, critic, scale, gamma, lam)
    with torch.no_grad():
        v = critic(torch.as_tensor(b["obs"])).numpy()
        v_final = float(critic(torch.as_tensor(final[None]))[0])
    rs = b["rewards"] / scale
    adv = np.zeros(5)
    adv[2] = rs[2] - v[2]  # fall: no bootstrap
    adv[1] = rs[1] + gamma * v[2] - v[1] + gamma * lam * adv[2]
    adv[0] = rs[0] + gamma * v[1] - v[0] + gamma * lam * adv[1]
    adv[4] = rs[4] + gamma * v_final - v[4]  # time-limit cut: bootstrap from the final state
    adv[3] = rs[3] + gamma * v[4] - v[3] + gamma * lam * adv[4]  # no leak across episodes: adv[2] never enters
    np.testing.assert_allclose(st.advantages[:, 0].numpy(), adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st.returns[:, 0].numpy(), adv + v, rtol=1e-5, atol=1e-6)


def test_transitions_next_states():
    o, a, lp, r = _episode(3)
    final = np.full(C.POLICY_INPUT_DIM, 3.0, np.float32)
    tr = transitions([make_segment("c", o, a, lp, r, "truncation", final), make_segment("t", o, a, lp, r, "terminal")])
    np.testing.assert_array_equal(tr["next_observations"][:3], np.concatenate([o[1:], final[None]]))
    np.testing.assert_array_equal(tr["timeouts"], [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(tr["terminals"], [0, 0, 0, 0, 0, 1])


def test_reward_scale_and_critic_rescaling():
    rewards = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    ids = np.array([0, 0, 0, 1, 1])
    std = models.fit_reward_scale(rewards, ids, 0.5)
    rets = np.array([1.0, 1.5, 1.75, 0.0, 0.0])  # discounted return restarts at episode 1
    assert std == pytest.approx(rets.std())
    critic = Critic(hidden=[8, 8])
    x = torch.randn(4, C.POLICY_INPUT_DIM)
    before = critic(x).detach()
    models.scale_critic(critic, 0.25)
    torch.testing.assert_close(critic(x).detach(), 0.25 * before)
    with pytest.raises(models.InitError, match="reward scale"):
        models.fit_reward_scale(np.zeros(4), np.zeros(4), 0.99)


def test_ledger_survives_a_torn_line(tmp_path):
    append_ledger(str(tmp_path), {"key": "s/episode_00000.h5", "steps": 3})
    with open(tmp_path / LEDGER, "a") as f:
        f.write('{"key": "s/episode_00001.h5", "ste')  # killed mid-write
    assert list(read_ledger(str(tmp_path))) == ["s/episode_00000.h5"]
    append_ledger(str(tmp_path), {"key": "s/episode_00002.h5", "steps": 5})
    assert sorted(read_ledger(str(tmp_path))) == ["s/episode_00000.h5", "s/episode_00002.h5"]
    with open(tmp_path / LEDGER) as f:
        assert json.loads(f.readlines()[0])["steps"] == 3
