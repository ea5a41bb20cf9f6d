"""Offline Uni-O4 losses on small cases computed by hand: expectile, clipped surrogate, Q target, BC disagreement."""
import math

import numpy as np
import pytest
import torch
from go1o4.offline_finetune.bc import EnsembleBC, bc_loss, gaussian_log_prob, kl_to_mixture, member_disagreement
from go1o4.offline_finetune.config import BCConfig, ValueConfig
from go1o4.offline_finetune.dataset import TorchData
from go1o4.offline_finetune.synthetic import make_synthetic
from go1o4.offline_finetune.value import IQLValue, q_target

from go1o4.rl.losses import clipped_surrogate, expectile_loss
from go1o4.rl.networks import GaussianActor


def test_expectile_loss_by_hand():
    # u = [-1, 2], tau = 0.7: weights 0.3 and 0.7 -> (0.3 * 1 + 0.7 * 4) / 2
    assert float(expectile_loss(torch.tensor([-1.0, 2.0]), 0.7)) == pytest.approx(1.55)


@pytest.mark.parametrize("ratio, adv, expected", [
    (1.1, 1.0, 1.1),     # inside the clip range: r A
    (1.5, 1.0, 1.25),    # above 1 + eps with A > 0: clipped to 1.25 A
    (0.5, -1.0, -0.75),  # below 1 - eps with A < 0: min(-0.5, -0.75) = -0.75
    (0.5, 1.0, 0.5),     # below 1 - eps with A > 0: unclipped r A is the min
])
def test_clipped_surrogate_inside_and_outside_clip(ratio, adv, expected):
    loss, _ = clipped_surrogate(torch.tensor([math.log(ratio)]), torch.tensor([0.0]), torch.tensor([adv]), 0.25)
    assert float(loss) == pytest.approx(-expected, rel=1e-6)


def test_q_target_terminal_zeroes_and_timeout_bootstraps():
    r, v = torch.tensor([1.0, 1.0, 1.0]), torch.tensor([10.0, 10.0, 10.0])
    terminal = torch.tensor([1.0, 0.0, 0.0])  # row 1 is a time-limit truncation, row 2 a mid-episode step
    out = q_target(r, terminal, v, 0.99)
    assert out.tolist() == pytest.approx([1.0, 10.9, 10.9])


def test_value_loss_bootstraps_truncations_and_not_terminals():
    torch.manual_seed(0)
    value = IQLValue(ValueConfig(q_hidden=[16], v_hidden=[16], gamma=0.9))
    n = 6
    batch = {"observations": torch.randn(n, 290), "actions": torch.randn(n, 12), "rewards": torch.ones(n),
             "next_observations": torch.randn(n, 290),
             "terminals": torch.tensor([1.0, 0, 0, 1.0, 0, 0]), "timeouts": torch.tensor([0, 1.0, 0, 0, 1.0, 0])}
    q_loss, _, _ = value.losses(batch)
    with torch.no_grad():
        v_next = value.v(batch["next_observations"])
        target = 1.0 + 0.9 * (1 - batch["terminals"]) * v_next  # timeouts keep gamma V(s')
        assert torch.all(v_next[[1, 4]].abs() > 1e-4)  # the bootstrap term is really there
        q = value.q(batch["observations"], batch["actions"])
        expected = (q - target).pow(2).mean(-1).sum()
    assert float(q_loss.detach()) == pytest.approx(float(expected), rel=1e-6)


def _kl_1d_numeric(m0, m1, s=1.0):
    x = np.linspace(-15, 20, 200001)
    p0 = np.exp(-0.5 * ((x - m0) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    p1 = np.exp(-0.5 * ((x - m1) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    mix = 0.5 * (p0 + p1)
    return np.trapezoid(p0 * (np.log(p0 + 1e-300) - np.log(mix + 1e-300)), x)


def test_kl_to_mixture_matches_numeric_integral_and_is_bounded():
    mean = torch.tensor([0.0, 3.0]).view(2, 1, 1)
    std = torch.ones(2, 1, 1)
    kl = kl_to_mixture(mean, std, num_samples=200_000, generator=torch.Generator().manual_seed(0))
    assert float(kl[0, 0]) == pytest.approx(_kl_1d_numeric(0.0, 3.0), abs=5e-3)
    assert float(kl[1, 0]) == pytest.approx(_kl_1d_numeric(3.0, 0.0), abs=5e-3)
    far = kl_to_mixture(torch.tensor([0.0, 1e3]).view(2, 1, 1), std, 100)
    assert torch.all(far <= math.log(2) + 1e-5)  # KL to a mixture containing pi_i is at most log K
    same = kl_to_mixture(torch.zeros(2, 3, 4), torch.ones(2, 3, 4), 10)
    assert torch.allclose(same, torch.zeros(2, 3))


def test_bc_loss_by_hand_for_alpha_zero():
    actor = GaussianActor(hidden=(8,), ensemble_size=2)
    obs, act = torch.randn(5, 290), torch.randn(5, 12)
    loss, _ = bc_loss(actor, obs, act, alpha=0.0)
    with torch.no_grad():
        dist = actor.distribution(obs)
        by_hand = -gaussian_log_prob(act, dist.mean, dist.stddev).mean(-1).sum()
    assert float(loss.detach()) == pytest.approx(float(by_hand), rel=1e-6)


def test_alpha_zero_is_exactly_plain_bc():
    torch.manual_seed(0)
    actor = GaussianActor(hidden=(32, 32), ensemble_size=3)
    obs, act = torch.randn(64, 290), torch.randn(64, 12)
    loss, _ = bc_loss(actor, obs, act, alpha=0.0)
    grads = torch.autograd.grad(loss, list(actor.parameters()))
    plain = -actor.log_prob(obs, act).mean(-1).sum()  # each member: its own mean NLL
    ref = torch.autograd.grad(plain, list(actor.parameters()))
    for g, r in zip(grads, ref):
        assert torch.allclose(g, r, atol=1e-6)


def test_disagreement_gradient_pushes_members_apart():
    """A gradient step on -KL(pi_i || pi_mix) moves each member's mean away from the other's."""
    mean = torch.tensor([[[0.0, 0.0]], [[0.5, -0.3]]], requires_grad=True)  # (K=2, B=1, A=2)
    std = torch.ones(2, 1, 2)
    loss = -kl_to_mixture(mean, std, num_samples=20_000, generator=torch.Generator().manual_seed(1)).sum()
    (grad,) = torch.autograd.grad(loss, mean)
    away0 = (mean[0] - mean[1]).detach()
    assert float((-grad[0] * away0).sum()) > 0  # descent direction of member 0 points away from member 1
    assert float((-grad[1] * -away0).sum()) > 0
    # the public code's detached "heuristic" term, evaluated on dataset actions, is only a rescale of grad log pi_i
    a = torch.tensor([[0.2, 0.1]])
    lp = gaussian_log_prob(a, mean, std)  # (K, B)
    heuristic = -(lp + 0.1 * (lp - lp.detach().mean(0, keepdim=True))).sum()
    plain = -lp.sum()
    (g_h,) = torch.autograd.grad(heuristic, mean, retain_graph=True)
    (g_p,) = torch.autograd.grad(plain, mean)
    assert torch.allclose(g_h, 1.1 * g_p)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _train_members(alpha: float, steps: int = 300) -> float:
    torch.manual_seed(0)  # same initial members for both alphas
    tr = make_synthetic(num_episodes=6, steps=60, seed=3, action_noise=0.05)
    data = TorchData(tr)
    actor = GaussianActor(hidden=(64, 64), ensemble_size=4)
    actor.normalizer.set_stats(*tr.obs_stats())
    bc = EnsembleBC(actor, BCConfig(alpha=alpha, lr=1e-3))
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        bc.update(data.sample(128, g), g)
    return member_disagreement(actor, data["observations"])["action_std"]


def test_trained_members_disagree_more_with_alpha():
    d0, d1 = _train_members(0.0), _train_members(0.1)
    assert d1 > 1.2 * d0, (d0, d1)
