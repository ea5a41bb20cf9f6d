"""Shared RL math on hand-computed cases: GAE with terminals vs truncations, clipped surrogate, losses."""
import math

import numpy as np
import pytest
import torch

from go1o4.rl.losses import clipped_surrogate, expectile_loss, gae, gaussian_entropy, value_loss
from go1o4.rl.networks import Critic, GaussianActor
from go1o4.rl.normalizer import RewardScaler, RunningMeanStd
from go1o4.rl.storage import RolloutStorage


def test_gae_terminal_vs_truncation_by_hand():
    g, lam = 0.9, 0.5
    r = torch.tensor([[1.0], [2.0]])
    v = torch.tensor([[0.5], [1.0]])
    nv = torch.tensor([[1.0], [3.0]])
    # step 1 ends the episode: as a terminal the bootstrap is dropped, as a truncation it is kept
    adv_t, _ = gae(r, v, nv, torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [1.0]]), g, lam)
    d1 = 2.0 - 1.0
    d0 = 1.0 + g * 1.0 - 0.5
    assert adv_t[1, 0].item() == pytest.approx(d1)
    assert adv_t[0, 0].item() == pytest.approx(d0 + g * lam * d1)
    adv_tr, ret = gae(r, v, nv, torch.tensor([[0.0], [0.0]]), torch.tensor([[0.0], [1.0]]), g, lam)
    d1 = 2.0 + g * 3.0 - 1.0
    assert adv_tr[1, 0].item() == pytest.approx(d1)
    assert ret[1, 0].item() == pytest.approx(d1 + 1.0)


def test_gae_done_cuts_trace():
    r = torch.tensor([[1.0], [1.0]])
    v = torch.zeros(2, 1)
    nv = torch.zeros(2, 1)
    adv, _ = gae(r, v, nv, torch.tensor([[1.0], [0.0]]), torch.tensor([[1.0], [0.0]]), 0.99, 0.95)
    assert adv[0, 0].item() == pytest.approx(1.0)  # no leak from the next episode


def test_storage_bootstraps_truncations_with_final_value():
    s = RolloutStorage(2, 2, 3, 1)
    for t in range(2):
        s.add(torch.zeros(2, 3), torch.zeros(2, 1), torch.zeros(2), torch.zeros(2), torch.ones(2),
              terminals=torch.tensor([0.0, 0.0]), timeouts=torch.tensor([1.0 if t == 0 else 0.0, 0.0]),
              truncation_values=torch.tensor([10.0 if t == 0 else 0.0, 0.0]))
    s.compute_returns(torch.zeros(2), gamma=0.5, lam=1.0)
    assert s.advantages[0, 0].item() == pytest.approx(1.0 + 0.5 * 10.0)  # bootstrapped from V(s_final)
    assert s.advantages[0, 1].item() == pytest.approx(1.0 + 0.5 * 1.0)  # ordinary trace


def test_clipped_surrogate_inside_and_outside_clip():
    adv = torch.tensor([1.0, 1.0, -1.0])
    old = torch.zeros(3)
    new = torch.log(torch.tensor([1.1, 1.5, 0.5]))
    loss, info = clipped_surrogate(new, old, adv, clip=0.2)
    # min(r A, clip(r) A): 1.1 ; min(1.5, 1.2) = 1.2 ; min(-0.5, -0.8) = -0.8
    assert loss.item() == pytest.approx(-(1.1 + 1.2 - 0.8) / 3)
    assert info["clip_fraction"].item() == pytest.approx(2 / 3)


def test_value_loss_clipped():
    v, old, ret = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
    assert value_loss(v, old, ret, clip=0.0).item() == pytest.approx(1.0)
    assert value_loss(v, old, ret, clip=0.5).item() == pytest.approx(max(1.0, 2.5 ** 2))


def test_expectile_loss_by_hand():
    u = torch.tensor([2.0, -1.0])
    assert expectile_loss(u, 0.7).item() == pytest.approx((0.7 * 4 + 0.3 * 1) / 2)
    assert expectile_loss(u, 0.5).item() == pytest.approx(0.5 * (4 + 1) / 2)


def test_gaussian_entropy_matches_torch():
    log_std = torch.tensor([[0.1, -0.3]])
    ref = torch.distributions.Normal(torch.zeros(2), log_std.exp()[0]).entropy().sum()
    assert gaussian_entropy(log_std)[0].item() == pytest.approx(ref.item(), rel=1e-6)


def test_ensemble_actor_members_are_independent_and_batched():
    torch.manual_seed(0)
    ens = GaussianActor(ensemble_size=3)
    x = torch.randn(5, 290)
    out = ens(x)
    assert out.shape == (3, 5, 12)
    for i in range(3):
        torch.testing.assert_close(ens.member(i)(x), out[i])
    assert not torch.allclose(out[0], out[1])
    # per-member inputs (K, B, obs)
    xs = torch.randn(3, 5, 290)
    torch.testing.assert_close(ens(xs)[2], ens.member(2)(xs[2]))
    lp = ens.log_prob(x, torch.zeros(3, 5, 12))
    assert lp.shape == (3, 5)


def test_actor_init_std_and_normalizer():
    a = GaussianActor(init_std=0.5)
    assert a.log_std.exp().mean().item() == pytest.approx(0.5)
    a.normalizer.set_stats(np.full(290, 1.0), np.full(290, 2.0))
    x = torch.full((1, 290), 3.0)
    torch.testing.assert_close(a.normalizer(x), torch.ones(1, 290))


def test_q_critic_needs_actions():
    q = Critic(act_dim=12, ensemble_size=2)
    assert q(torch.randn(4, 290), torch.randn(4, 12)).shape == (2, 4)
    with pytest.raises(ValueError, match="pass actions"):
        q(torch.randn(4, 290))


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(1000, 4))
    rms = RunningMeanStd((4,))
    for chunk in np.split(x, 10):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean, x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(rms.std, x.std(0), rtol=1e-3)


def test_reward_scaler_fit_freezes_scale():
    s = RewardScaler(1, gamma=0.0)
    r = np.array([1.0, 3.0, 1.0, 3.0])
    s.fit(r, np.array([True, False, False, False]))
    assert s.rms.std == pytest.approx(1.0)
    assert s(np.array([2.0]), np.array([False]))[0] == pytest.approx(2.0, rel=1e-6)
    assert math.isfinite(s.rms.mean)
