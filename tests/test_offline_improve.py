"""OPE-gated multi-step PPO: acceptance rule, one-step baseline, batched = per-member, selection by OPE only."""
import numpy as np
import pytest
import torch
from go1o4.offline_finetune.config import ImproveConfig, ValueConfig
from go1o4.offline_finetune.uni_o4 import MultiStepPPO, acceptance, copy_member
from go1o4.offline_finetune.value import IQLValue

from go1o4.rl.networks import GaussianActor

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _setup(mode="uni_o4", k=3, alpha=0.0):
    torch.manual_seed(0)
    actor = GaussianActor(hidden=(32, 32), ensemble_size=k)
    value = IQLValue(ValueConfig(q_hidden=[32], v_hidden=[32]))
    ppo = MultiStepPPO(actor, value, ImproveConfig(steps=100, lr=1e-3), mode=mode, alpha=alpha)
    return ppo


def _params(actor, i):
    return torch.cat([p[i].reshape(-1) for p in actor.parameters()])


def _train(ppo, steps=5):
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        ppo.update({"observations": torch.randn(64, 290, generator=g)}, g)


def test_acceptance_rule_is_strict_improvement():
    assert acceptance([1.0, 2.0, 3.0], [1.0, 1.5, 4.0]).tolist() == [False, True, False]
    assert acceptance([0.0], [-np.inf]).tolist() == [True]


def test_pi_old_replaced_only_when_ope_improves():
    ppo = _setup()
    ppo.evaluate(lambda actor: np.array([1.0, 1.0, 1.0]))  # starting scores, no decision counted
    assert ppo.accepts.sum() == 0 and ppo.rejects.sum() == 0
    old_before = [_params(ppo.old, i).clone() for i in range(3)]
    _train(ppo)
    for i in range(3):
        assert not torch.allclose(_params(ppo.actor, i), old_before[i])  # the members really moved
    out = ppo.evaluate(lambda actor: np.array([1.5, 0.5, 1.0]))  # better, worse, equal
    assert out["accepted"].tolist() == [True, False, False]
    assert torch.equal(_params(ppo.old, 0), _params(ppo.actor, 0))  # pi_old <- pi
    assert torch.equal(_params(ppo.old, 1), old_before[1])
    assert torch.equal(_params(ppo.old, 2), old_before[2])
    assert ppo.accepts.tolist() == [1, 0, 0] and ppo.rejects.tolist() == [0, 1, 1]
    assert ppo.best_score.tolist() == [1.5, 1.0, 1.0]


def test_one_step_baseline_never_replaces_pi_old_but_keeps_best():
    ppo = _setup(mode="one_step")
    ppo.evaluate(lambda actor: np.zeros(3))
    old_before = [_params(ppo.old, i).clone() for i in range(3)]
    _train(ppo)
    ppo.evaluate(lambda actor: np.ones(3))
    for i in range(3):
        assert torch.equal(_params(ppo.old, i), old_before[i])
        assert torch.equal(_params(ppo.best, i), _params(ppo.actor, i))


def test_selection_is_the_best_ope_score():
    ppo = _setup()
    ppo.evaluate(lambda actor: np.array([0.1, 0.3, 0.2]))
    _train(ppo, 2)
    ppo.evaluate(lambda actor: np.array([0.5, 0.2, 0.1]))
    assert ppo.selected() == 0  # member 0's best (0.5) beats member 1's best (0.3)


def test_batched_update_equals_per_member_loop():
    """One batched ensemble step gives each member the gradient it would get on its own."""
    ppo = _setup(k=3)
    obs = torch.randn(32, 290)
    loss, _ = ppo.loss(obs, 0.25, torch.Generator().manual_seed(5))
    grads = torch.autograd.grad(loss, list(ppo.actor.parameters()))
    for i in range(3):
        single = MultiStepPPO(ppo.actor.member(i), ppo.value, ppo.cfg)
        single.old = ppo.old.member(i)
        # the same old-policy action noise as member i got in the batched call
        gi = torch.Generator().manual_seed(5)
        eps = torch.randn((3, 32, 12), generator=gi)[i:i + 1]
        with torch.no_grad():
            dist_old = single.old.distribution(obs)
            actions = (dist_old.mean + dist_old.stddev * eps[0]).unsqueeze(0)
        loss_i = _member_loss(single, obs, actions, 0.25)
        gi_grads = torch.autograd.grad(loss_i, list(single.actor.parameters()))
        for gb, gs in zip(grads, gi_grads):
            assert torch.allclose(gb[i], gs[0], atol=1e-5, rtol=1e-4)


def _member_loss(ppo, obs, actions, clip):
    from go1o4.offline_finetune.uni_o4 import ensemble_advantage, normalize_per_member

    from go1o4.rl.losses import clipped_surrogate
    with torch.no_grad():
        old_logp = ppo.old.distribution(obs).log_prob(actions).sum(-1)
        adv = normalize_per_member(ensemble_advantage(ppo.value, obs, actions))
    logp = ppo.actor.distribution(obs).log_prob(actions).sum(-1)
    return clipped_surrogate(logp, old_logp, adv, clip)[0]


def test_eq25_disagreement_term_separates_identical_members():
    """Pretrained-init recipe: members start identical; the Eq. 25 term drives them apart."""
    torch.manual_seed(0)
    single = GaussianActor(hidden=(32, 32))
    value = IQLValue(ValueConfig(q_hidden=[32], v_hidden=[32]))
    spreads = {}
    for alpha in (0.0, 1.0):
        actor = GaussianActor.stack([single] * 3)
        ppo = MultiStepPPO(actor, value, ImproveConfig(steps=100, lr=1e-3), alpha=alpha)
        _train(ppo, 20)
        with torch.no_grad():
            obs = torch.randn(256, 290, generator=torch.Generator().manual_seed(9))
            spreads[alpha] = float(actor(obs).std(0).mean())
    assert spreads[1.0] > spreads[0.0]


def test_copy_member_touches_only_that_member():
    a, b = GaussianActor(hidden=(8,), ensemble_size=3), GaussianActor(hidden=(8,), ensemble_size=3)
    before = [_params(a, i).clone() for i in range(3)]
    copy_member(a, b, 1)
    assert torch.equal(_params(a, 1), _params(b, 1))
    assert torch.equal(_params(a, 0), before[0]) and torch.equal(_params(a, 2), before[2])
