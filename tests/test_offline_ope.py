"""The OPE gate and the critic it relies on, checked against values computed by hand (issue 17 review).

AM-Q on a tiny deterministic model / Q / policy (alive mask, falls), IQL's Q and V at r / (1 - gamma) on a
constant-reward chain, FQE recovering known policy values, the gate rejecting a policy worse by construction,
the bootstrap margin, the behaviour-std init of the A.4 members, the critic check and the clip schedule.
"""
import numpy as np
import pytest
import torch
from go1o4.data.dataset import TransitionDataset
from go1o4.offline_finetune.config import (
    DynamicsConfig,
    FQEConfig,
    ImproveConfig,
    OfflineConfig,
    OPEConfig,
    ValueConfig,
)
from go1o4.offline_finetune.critic_check import critic_check, discounted_returns, spearman
from go1o4.offline_finetune.fqe import FQE
from go1o4.offline_finetune.ope import am_q, am_q_per_start, model_return_per_start
from go1o4.offline_finetune.ope_gate import OPEGate, paired_bootstrap_std
from go1o4.offline_finetune.pretrained import behaviour_std, set_std
from go1o4.offline_finetune.synthetic import make_synthetic
from go1o4.offline_finetune.train import OfflineRun
from go1o4.offline_finetune.uni_o4 import MultiStepPPO
from go1o4.offline_finetune.value import IQLValue

from go1o4.config import load_config
from go1o4.rl.networks import EnsembleLinear, GaussianActor

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# ---------------------------------------------------------------- a hand-checkable world for AM-Q
class ConstantPolicy:
    """Member k always takes action c_k (1-D); states are 1-D (x = time since start, plus the start offset)."""

    def __init__(self, *c):
        self.c, self.ensemble_size = torch.tensor(c, dtype=torch.float32), len(c)

    def __call__(self, obs):
        if obs.dim() == 2:
            return self.c[0].expand(obs.shape[0], 1).clone()
        return self.c.view(-1, 1, 1).expand(obs.shape[0], obs.shape[1], 1).clone()


class TickModel:
    """x' = x + 1; a transition with action > 0.5 that lands on x' >= 2 is a fall."""

    elites = torch.tensor([0])

    def step(self, obs, act, g, members, sample):
        nxt = obs + 1.0
        return nxt, torch.zeros(obs.shape[0]), (act[:, 0] > 0.5) & (nxt[:, 0] >= 2.0)


class LinearQ:
    """Q(x, a) = 5 - x + a: later states are worth less; the risky action earns 1 more per step."""

    def min_q(self, obs, act):
        return 5.0 - obs[:, 0] + act[:, 0]


STARTS = torch.tensor([[0.0], [1.0]])
# member 0 (a = 0, never falls): start 0 visits x = 0, 1, 2 (Q 5, 4, 3); start 1 visits 1, 2, 3 (Q 4, 3, 2)
SAFE = (5 + 4 + 3 + 4 + 3 + 2) / 6.0
# member 1 (a = 1): start 0: Q 6 at x = 0, Q 5 at x = 1, then falls (x' = 2); start 1: Q 5 at x = 1, falls at once
RISKY_ALIVE_ONLY = (6 + 5 + 5) / 3.0  # the paper's rule: only alive states count -> the faller scores higher
RISKY_FALL_ZERO = (6 + 5 + 0 + 5 + 0 + 0) / 6.0  # each step after a fall counts with the terminal value 0


def test_am_q_by_hand_alive_mask_and_falls():
    pol, model, q = ConstantPolicy(0.0, 1.0), TickModel(), LinearQ()
    faithful = am_q(pol, model, q, STARTS, horizon=3)
    np.testing.assert_allclose(faithful, [SAFE, RISKY_ALIVE_ONLY], rtol=1e-6)
    assert faithful[1] > faithful[0]  # the defect the review found: falling early raises the score
    fixed = am_q(pol, model, q, STARTS, horizon=3, fall_value=0.0)
    np.testing.assert_allclose(fixed, [SAFE, RISKY_FALL_ZERO], rtol=1e-6)
    total, count = am_q_per_start(pol, model, q, STARTS, horizon=3, fall_value=-1.0)
    np.testing.assert_allclose(total, [[12, 9], [6 + 5 - 1, 5 - 2]])
    np.testing.assert_allclose(count, [[3, 3], [3, 3]])
    # a single policy (K = 1) goes through the same code path
    np.testing.assert_allclose(am_q(ConstantPolicy(1.0), model, q, STARTS, horizon=3, fall_value=0.0),
                               [RISKY_FALL_ZERO], rtol=1e-6)


@pytest.mark.parametrize("falls, rejects", [("terminal", True), ("alive_only", False)])
def test_am_q_gate_rejects_a_policy_that_falls(falls, rejects):
    """The risky policy falls (worse by construction); only the fall-aware AM-Q gate keeps the safe one."""
    cfg = OPEConfig(horizon=3, falls=falls, fall_value=0.0)
    gate = OPEGate(cfg, 0.99, TickModel(), LinearQ(), STARTS)
    safe, risky = GaussianActor(obs_dim=1, act_dim=1, hidden=(4,)), GaussianActor(obs_dim=1, act_dim=1, hidden=(4,))
    _constant(safe, 0.0)
    _constant(risky, 1.0)
    ppo = MultiStepPPO(safe, None, ImproveConfig())
    assert ppo.evaluate(gate.score, gate.margin)["improved"].all()  # first call records the start
    gate.commit(np.array([True]))
    ppo.actor.load_state_dict(risky.state_dict())
    ev = ppo.evaluate(gate.score, gate.margin)
    assert bool(ev["accepted"][0]) is (not rejects)


class RewardTickModel:
    """x' = x + 1 with two elites; reward a + member (elite 1 is one more optimistic); falls as TickModel."""

    elites = torch.tensor([0, 1])

    def step(self, obs, act, g, members, sample):
        nxt = obs + 1.0
        return nxt, act[:, 0] + members.float(), (act[:, 0] > 0.5) & (nxt[:, 0] >= 2.0)


def test_model_return_by_hand_pessimism_and_falls():
    """gamma 0.5, H 3. Safe (a = 0): elite 0 earns 0, elite 1 earns 1 + .5 + .25 = 1.75 -> mean .875, std .875.
    Risky (a = 1) from x = 0: elites earn (1 + .5, 2 + 1) then fall (tail gamma^2 at the fall value); from x = 1
    they earn (1, 2) and fall at once (tail gamma + gamma^2)."""
    pol, model = ConstantPolicy(0.0, 1.0), RewardTickModel()
    plain = model_return_per_start(pol, model, STARTS, horizon=3, gamma=0.5, pessimism=0.0)
    np.testing.assert_allclose(plain, [[0.875, 0.875], [2.25, 1.5]], rtol=1e-6)
    pess = model_return_per_start(pol, model, STARTS, horizon=3, gamma=0.5, pessimism=1.0)
    np.testing.assert_allclose(pess, [[0.0, 0.0], [2.25 - 0.75, 1.5 - 0.5]], rtol=1e-6)
    falls = model_return_per_start(pol, model, STARTS, horizon=3, gamma=0.5, pessimism=0.0, fall_value=-4.0)
    np.testing.assert_allclose(falls[1], [(0.5 + 2.0) / 2, (-2.0 - 1.0) / 2], rtol=1e-6)
    np.testing.assert_allclose(model_return_per_start(ConstantPolicy(1.0), model, STARTS, 3, 0.5, pessimism=0.0),
                               [[2.25, 1.5]], rtol=1e-6)  # K = 1 goes through the same path


def test_model_return_gate_never_reads_the_critic_and_rejects_a_worse_policy():
    """The Q-free gate is built without a critic (value None): a policy that falls into a -4 terminal value
    scores below the safe start and is rejected; a better-rewarded one is accepted."""
    cfg = OPEConfig(horizon=3, method="model_return", pessimism=1.0, fall_value=-4.0)
    gate = OPEGate(cfg, 0.5, RewardTickModel(), None, STARTS)
    start, risky, better = (GaussianActor(obs_dim=1, act_dim=1, hidden=(4,)) for _ in range(3))
    _constant(start, 0.0)
    _constant(risky, 1.0)
    _constant(better, 0.4)  # more reward per step, never falls (a <= 0.5)
    ppo = MultiStepPPO(start, None, ImproveConfig())
    assert ppo.evaluate(gate.score, gate.margin)["improved"].all()
    gate.commit(np.array([True]))
    ppo.actor.load_state_dict(risky.state_dict())
    assert not ppo.evaluate(gate.score, gate.margin)["accepted"][0]
    ppo.actor.load_state_dict(better.state_dict())
    assert ppo.evaluate(gate.score, gate.margin)["accepted"][0]
    with pytest.raises(ValueError, match="pessimism"):
        OPEConfig(pessimism=-1.0).validate()


# ---------------------------------------------------------------- a chain with known values
def _constant(actor: GaussianActor, c: float) -> None:
    """Make every member output the constant action ``c`` (last layer: zero weights, bias c)."""
    last = [m for m in actor.mu.modules() if isinstance(m, EnsembleLinear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(c)


def _chain(n=128, obs_dim=4, reward_fn=None, seed=0, terminal=False):
    """A cyclic chain of n states with random features, uniform random actions; no timeouts, no falls."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, obs_dim, generator=g)
    act = torch.rand(n, 1, generator=g) * 2 - 1
    r = torch.ones(n) if reward_fn is None else reward_fn(act[:, 0])
    return {"observations": feats, "actions": act, "rewards": r, "next_observations": feats.roll(-1, 0),
            "terminals": torch.full((n,), float(terminal)), "timeouts": torch.zeros(n)}


@pytest.mark.parametrize("terminal, expected", [(False, 2.0), (True, 1.0)])
def test_iql_value_reaches_the_fixed_point_on_a_constant_reward_chain(terminal, expected):
    """r = 1 everywhere, gamma = 0.5: Q = V = r / (1 - gamma) = 2 (or r = 1 when every step is terminal)."""
    torch.manual_seed(0)
    data = _chain(terminal=terminal)
    cfg = ValueConfig(q_hidden=[64, 64], v_hidden=[64, 64], gamma=0.5, polyak=0.05, lr=1e-3, batch_size=64)
    value = IQLValue(cfg, obs_dim=4, act_dim=1)
    g = torch.Generator().manual_seed(1)
    for _ in range(500):
        i = torch.randint(0, 128, (64,), generator=g)
        value.update({k: v[i] for k, v in data.items()})
    with torch.no_grad():
        q = value.min_q(data["observations"], data["actions"])
        v = value.v(data["observations"])
    assert float(q.mean()) == pytest.approx(expected, abs=0.08)
    assert float(v.mean()) == pytest.approx(expected, abs=0.08)
    assert float((q - expected).abs().max()) < 0.3


def _fqe_world():
    gamma = 0.5
    data = _chain(n=512, reward_fn=lambda a: 1.0 - a ** 2, seed=2)
    good = GaussianActor(obs_dim=4, act_dim=1, hidden=(8,))
    bad = GaussianActor(obs_dim=4, act_dim=1, hidden=(8,))
    _constant(good, 0.0)  # r = 1 every step: J = 1 / (1 - 0.5) = 2
    _constant(bad, 0.8)  # r = 0.36: J = 0.72
    return gamma, data, good, bad


def test_fqe_recovers_known_policy_values():
    torch.manual_seed(0)
    gamma, data, good, bad = _fqe_world()
    both = GaussianActor.stack([good, bad])
    fqe = FQE(FQEConfig(hidden=[64, 64], lr=1e-3, batch_size=128, polyak=0.05), 2, gamma, data, obs_dim=4, act_dim=1)
    fqe.fit(both, 1500)
    v = fqe.values(both, data["observations"]).mean(-1)
    np.testing.assert_allclose(v, [2.0, 0.72], atol=0.1)


def test_fqe_gate_rejects_a_worse_policy_and_accepts_a_better_one():
    torch.manual_seed(0)
    gamma, data, good, bad = _fqe_world()
    cfg = OPEConfig(method="fqe", num_starts=64, margin=2.0,
                    fqe=FQEConfig(hidden=[64, 64], lr=1e-3, batch_size=128, polyak=0.05, mc_init_steps=0,
                                  first_steps=1500, steps=500))
    gate = OPEGate(cfg, gamma, fqe_data=data)
    ppo = MultiStepPPO(GaussianActor.stack([good]), None, ImproveConfig())
    gate.commit(ppo.evaluate(gate.score, gate.margin)["improved"])
    ppo.actor.load_state_dict(GaussianActor.stack([bad]).state_dict())
    ev = ppo.evaluate(gate.score, gate.margin)
    gate.commit(ev["improved"])
    assert not ev["accepted"][0] and ev["scores"][0] < ppo.best_score[0] - 0.5
    ppo.actor.load_state_dict(GaussianActor.stack([good]).state_dict())  # back to the good one: not better than best
    ev = ppo.evaluate(gate.score, gate.margin)
    assert not ev["accepted"][0] and ev["margin"][0] > 0  # same value within noise: the margin keeps the best


def test_fqe_gate_compares_a_candidate_with_its_reference_under_the_same_fit():
    """The first check fits FQE briefly (values far below J = 2); by the next check the fit has converged. A gate
    comparing with the score recorded at the first check would accept the very same policy as an improvement;
    re-scoring the reference with the current fit (a head per member's best, the candidate's head started
    from it) does not, and an accepted candidate's head becomes its reference's."""
    torch.manual_seed(0)
    gamma, data, good, bad = _fqe_world()
    cfg = OPEConfig(method="fqe", num_starts=64, margin=2.0,
                    fqe=FQEConfig(hidden=[64, 64], lr=1e-3, batch_size=128, polyak=0.05, mc_init_steps=0,
                                  first_steps=20, steps=1500))
    gate = OPEGate(cfg, gamma, fqe_data=data)
    ppo = MultiStepPPO(GaussianActor.stack([good]), None, ImproveConfig())

    def check():
        ev = ppo.evaluate(lambda a: gate.score(a, reference=ppo.best), gate.margin, gate.reference_scores)
        gate.commit(ev["improved"])
        return ev

    first = check()
    assert first["scores"][0] < 1.0  # an early, unconverged fit
    ev = check()  # the same policy again, now with a converged fit: the same score as its reference
    assert ev["scores"][0] > 1.5 and ppo.best_score[0] == pytest.approx(ev["scores"][0], abs=1e-5)
    assert not ev["accepted"][0]
    ppo.actor.load_state_dict(GaussianActor.stack([bad]).state_dict())
    assert not check()["accepted"][0]  # worse: rejected
    # acceptance copies the candidate's head (0) to the reference's (1)
    gate.fqe.q.net.net[0].weight.data[0].add_(1.0)
    gate.reference = np.zeros((1, 64))
    gate.last = (np.ones((1, 64)), np.ones((1, 64)))
    gate.commit(np.array([True]))
    torch.testing.assert_close(gate.fqe.q.net.net[0].weight[1], gate.fqe.q.net.net[0].weight[0])


def test_fqe_gate_scores_equal_members_equally():
    """The A.4 members start as one policy: with the FQE heads tied before the first fit, they score exactly
    the same (an untied head's own initialisation would decide which member looks best)."""
    torch.manual_seed(0)
    gamma, data, good, _ = _fqe_world()
    cfg = OPEConfig(method="fqe", num_starts=32, fqe=FQEConfig(hidden=[32, 32], batch_size=64, mc_init_steps=0,
                                                              first_steps=50, steps=10))
    gate = OPEGate(cfg, gamma, fqe_data=data)
    three = GaussianActor.stack([good, good, good])
    scores = gate.score(three, reference=three)
    assert scores[0] == scores[1] == scores[2] and gate.reference_scores()[0] == scores[0]


def test_fqe_mc_init_regresses_the_behaviour_return():
    data = _chain(n=256)  # r = 1, one 256-step episode, gamma 0.5: G = 2 except at the very end
    mc = discounted_returns(data["rewards"].numpy(), data["terminals"].numpy(), np.zeros(256, np.int64), 0.5)[0]
    fqe = FQE(FQEConfig(hidden=[32, 32], lr=1e-3, batch_size=128), 1, 0.5, data, mc_returns=mc, obs_dim=4,
              act_dim=1)
    with torch.no_grad():
        before = float((fqe.q(data["observations"], data["actions"]) - 2.0).abs().mean())
    fqe.mc_init(400)
    with torch.no_grad():
        q = fqe.q(data["observations"], data["actions"])
        q_t = fqe.q_target(data["observations"], data["actions"])
    err = (q - torch.as_tensor(mc, dtype=torch.float32)).abs()
    assert before > 1.0 and float(err[:-8].mean()) < 0.1 * before  # from an error of ~2 to a tenth of it
    torch.testing.assert_close(q, q_t)  # the target starts from the regressed Q


def test_paired_bootstrap_std_matches_the_standard_error():
    rng = np.random.default_rng(0)
    b = 400
    best = rng.normal(5.0, 3.0, (1, b))  # large spread between start states, common to both policies
    cand = best + 0.1 + rng.normal(0.0, 0.5, (1, b))  # paired difference: mean 0.1, std 0.5
    ones = np.ones((1, b))
    std = paired_bootstrap_std(cand, ones, best, ones, resamples=2000)
    assert std[0] == pytest.approx(0.5 / np.sqrt(b), rel=0.15)  # the state spread cancels (paired)
    # a shift common to all start states has no noise at all
    assert paired_bootstrap_std(best + 1.0, ones, best, ones, 200)[0] == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------- A.4 member std, critic check, clip schedule
def test_behaviour_std_recovers_the_collection_std_and_is_used_for_the_members(tmp_path):
    torch.manual_seed(0)
    pre = GaussianActor(hidden=(32,), init_std=0.47)
    obs = torch.randn(6000, 290)
    with torch.no_grad():
        acts = pre(obs) + 0.237 * torch.randn(6000, 12)
    est = behaviour_std(pre, obs, acts)
    np.testing.assert_allclose(est, 0.237, rtol=0.06)
    members = GaussianActor.stack([pre] * 3)
    set_std(members, est)
    np.testing.assert_allclose(members.log_std.exp().detach().numpy().reshape(3, 12), np.tile(est, (3, 1)), rtol=1e-5)

    path = str(tmp_path / "pre.pt")
    torch.save(pre.state_dict(), path)
    tr = make_synthetic(num_episodes=4, steps=30, seed=1)
    def cfg(**kw):  # small critic and model: only the members' init is under test
        return OfflineConfig(init="pretrained", pretrained=path, value=ValueConfig(q_hidden=[16], v_hidden=[16]),
                             dynamics=DynamicsConfig(hidden=[16], weight_decay=[1e-5, 1e-5]), **kw)

    run = OfflineRun(cfg(), tr, str(tmp_path / "b"), progress=False)
    want = behaviour_std(run.pretrained, run.train["observations"], run.train["actions"])
    np.testing.assert_allclose(run.actor.log_std.exp().detach().numpy()[0, 0], want, rtol=1e-5)
    run = OfflineRun(cfg(member_std="pretrained"), tr, str(tmp_path / "p"), progress=False)
    np.testing.assert_allclose(run.actor.log_std.exp().detach().numpy(), 0.47, rtol=1e-5)
    run = OfflineRun(cfg(behavior_std=0.2), tr, str(tmp_path / "g"), progress=False)
    np.testing.assert_allclose(run.actor.log_std.exp().detach().numpy(), 0.2, rtol=1e-5)


def test_discounted_returns_by_hand():
    r = np.array([1.0, 2.0, 3.0, 1.0, 1.0])
    term = np.array([0, 0, 1, 0, 0])
    ep = np.array([0, 0, 0, 1, 1])
    g, left, falls = discounted_returns(r, term, ep, 0.5)
    np.testing.assert_allclose(g, [1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3, 1 + 0.5 * 1, 1])
    assert left.tolist() == [2, 1, 0, 1, 0] and falls.tolist() == [True, True, True, False, False]


def test_spearman_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x, np.array([1.0, 3.0, 2.0, 4.0])) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)


def test_critic_check_on_a_converged_and_an_untrained_critic():
    torch.manual_seed(0)
    n = 400
    data = _chain(n=n)
    data["rewards"] = torch.linspace(0.5, 1.5, n)  # state-dependent rewards so the ranking means something
    ep = np.repeat(np.arange(4), n // 4)
    term = np.zeros(n)
    term[np.arange(n // 4 - 1, n, n // 4)] = 1.0  # every episode ends in a fall: every step has its full return
    tr = TransitionDataset(data["observations"].numpy(), data["actions"].numpy(), data["rewards"].numpy(),
                     data["next_observations"].numpy(), term.astype(np.float32), np.zeros(n, np.float32), ep)
    mc = discounted_returns(tr.rewards, tr.terminals, tr.episode_ids, 0.9)[0]

    class Exact:  # Q = V = the Monte-Carlo return of that state
        def min_q(self, obs, act):
            return torch.as_tensor(mc[_index(obs)], dtype=torch.float32)

        def v(self, obs):
            return self.min_q(obs, None)

    def _index(obs):
        return (obs[:, None, :] == torch.as_tensor(tr.observations)[None]).all(-1).float().argmax(1).numpy()

    exact = critic_check(Exact(), tr, 0.9)
    assert exact["critic/q_mc_ratio"] == pytest.approx(1.0) and exact["critic/q_mc_spearman"] == pytest.approx(1.0)
    assert exact["critic/states"] == n and exact["critic/mc_tail_cut"] == 0.0
    untrained_value = IQLValue(ValueConfig(q_hidden=[16], v_hidden=[16]), obs_dim=4, act_dim=1)
    untrained = critic_check(untrained_value, tr, 0.9)
    assert abs(untrained["critic/q_mc_ratio"]) < 0.5 and abs(untrained["critic/q_mc_spearman"]) < 0.5
    # time-limit truncations instead of falls: only steps with >= 29 steps left (0.9 ** 29 < 0.05) are compared
    tr.terminals[:] = 0.0
    truncated = critic_check(untrained_value, tr, 0.9)
    assert truncated["critic/states"] == 4 * (100 - 29) and truncated["critic/mc_tail_cut"] == 0.0


def test_clip_decay_until_freezes_the_clip_like_the_public_code():
    actor = GaussianActor(hidden=(8,), ensemble_size=2)
    value = IQLValue(ValueConfig(q_hidden=[8], v_hidden=[8]))
    g = torch.Generator().manual_seed(0)
    clips = {}
    for until in (0, 2):
        ppo = MultiStepPPO(actor, value, ImproveConfig(steps=10, clip=0.25, clip_decay_until=until))
        clips[until] = [ppo.update({"observations": torch.randn(16, 290, generator=g)}, g)["improve/clip"]
                        for _ in range(5)]
    np.testing.assert_allclose(clips[0], [0.25, 0.225, 0.2, 0.175, 0.15])
    np.testing.assert_allclose(clips[2], [0.25, 0.225, 0.2, 0.2, 0.2])


def test_fqe_gate_in_the_pipeline_reports_and_resumes_exactly(tmp_path, monkeypatch):
    """ope.method=fqe with a margin end to end: scores, margins and the critic check are recorded, and a run
    killed inside the improve stage resumes (FQE weights, optimiser, generator, best per-start values) to
    exactly where an uninterrupted run ends."""
    tiny = ["bc.steps=10", "bc.eval_every=10", "value.steps=10", "value.eval_every=10", "value.q_hidden=[16]",
            "value.v_hidden=[16]", "dynamics.hidden=[16]", "dynamics.weight_decay=[1e-5,1e-5]",
            "dynamics.ensemble_size=2", "dynamics.num_elites=1", "dynamics.epoch_steps=5", "dynamics.max_epochs=1",
            "improve.steps=30", "improve.ope_every=10", "checkpoint_every=20", "log_every=10", "torch_threads=1",
            "bc.batch_size=32", "value.batch_size=32", "improve.batch_size=32", "dynamics.batch_size=32",
            "ope.method=fqe", "ope.margin=1.0", "ope.num_starts=16", "ope.fqe.hidden=[16]", "ope.fqe.batch_size=32",
            "ope.fqe.mc_init_steps=5", "ope.fqe.first_steps=10", "ope.fqe.steps=5", "ope.fqe.data=train"]
    tr = make_synthetic(num_episodes=6, steps=40, seed=5)
    cfg = load_config(OfflineConfig, None, tiny)
    ref = OfflineRun(cfg, tr, str(tmp_path / "ref"), progress=False)
    summary = ref.run()
    rows = [r for r in ref.metrics["improve"] if "ope/score" in r]
    assert [r["step"] for r in rows] == [0, 10, 20, 30]
    assert all(np.isfinite(r["ope/score"]).all() for r in rows) and all(np.all(np.asarray(r["ope/margin"]) >= 0)
                                                                        for r in rows)
    assert summary["ope_method"] == "fqe" and np.isfinite(summary["critic_check"]["q_mc_spearman"])

    real_update = MultiStepPPO.update

    def crash_at_25(self, batch, generator=None):
        if self.steps == 25:
            raise RuntimeError("crash")  # a crash keeps the last periodic checkpoint (Ctrl-C would save at 25)
        return real_update(self, batch, generator)

    monkeypatch.setattr(MultiStepPPO, "update", crash_at_25)
    with pytest.raises(RuntimeError):
        OfflineRun(cfg, tr, str(tmp_path / "crash"), progress=False).run()
    monkeypatch.setattr(MultiStepPPO, "update", real_update)
    resumed = OfflineRun(cfg, tr, str(tmp_path / "crash"), progress=False)
    assert resumed.states["improve"]["steps"] == 20
    resumed.run()
    for (k, a), b in zip(ref.actor.state_dict().items(), resumed.actor.state_dict().values()):
        assert torch.equal(a, b), k
    again = [r for r in resumed.metrics["improve"] if "ope/score" in r]
    np.testing.assert_array_equal([r["ope/score"] for r in again], [r["ope/score"] for r in rows])
