"""Dynamics ensemble for OPE: history shift, known entries (commands, last action, clock), fit, falls, AM-Q."""
import numpy as np
import pytest
import torch
from go1o4.offline_finetune.config import DynamicsConfig, ValueConfig
from go1o4.offline_finetune.dataset import TorchData, as_transitions, load_dataset
from go1o4.offline_finetune.dynamics import (
    PREDICTED,
    DynamicsTrainer,
    EnsembleDynamics,
    assemble_next_step,
    fell,
    model_targets,
    next_clock,
    shift_history,
)
from go1o4.offline_finetune.ope import am_q, start_states
from go1o4.offline_finetune.synthetic import make_synthetic
from go1o4.offline_finetune.value import IQLValue

from go1o4 import contract as C
from go1o4.rl.networks import GaussianActor

S = C.OBS_SLICES


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(num_episodes=10, steps=80, seed=1)


def _not_padded(obs: np.ndarray) -> np.ndarray:
    """Rows whose two newest steps differ (not an episode start, where the history repeats)."""
    return np.abs(obs[:, -C.OBS_DIM:] - obs[:, -2 * C.OBS_DIM:-C.OBS_DIM]).max(1) > 0


def test_shift_history_drops_oldest_and_appends_newest():
    obs, new = torch.randn(4, C.POLICY_INPUT_DIM), torch.randn(4, C.OBS_DIM)
    nxt = shift_history(obs, new)
    assert nxt.shape == (4, C.POLICY_INPUT_DIM)
    assert torch.equal(nxt[:, :-C.OBS_DIM], obs[:, C.OBS_DIM:])
    assert torch.equal(nxt[:, -C.OBS_DIM:], new)


def test_true_delta_reproduces_dataset_next_observation(synthetic):
    """With the true change of the predicted entries, the known entries (commands, last action, clock)
    and the history shift give exactly the dataset's next 290 input."""
    rows = _not_padded(synthetic.observations)
    obs = torch.as_tensor(synthetic.observations[rows])
    nxt = torch.as_tensor(synthetic.next_observations[rows])
    act = torch.as_tensor(synthetic.actions[rows])
    delta = model_targets(obs, nxt, torch.zeros(len(obs)))[:, :-1]
    rebuilt = shift_history(obs, assemble_next_step(obs, act, delta))
    assert torch.allclose(rebuilt, nxt, atol=1e-5)


def test_next_clock_advances_the_gait_clock(synthetic):
    """The clock two readings determine is advanced with contract.advance_gait_index / clock_inputs."""
    rows = _not_padded(synthetic.observations)
    obs, nxt = synthetic.observations[rows], synthetic.next_observations[rows]
    clk = next_clock(obs[:, -C.OBS_DIM:][:, S["clock"]], obs[:, -2 * C.OBS_DIM:-C.OBS_DIM][:, S["clock"]],
                     obs[:, -C.OBS_DIM:][:, S["commands"]])
    np.testing.assert_allclose(clk, nxt[:, -C.OBS_DIM:][:, S["clock"]], atol=1e-5)
    # by hand for one gait index: g = 0.3 at a 2 Hz trot
    cmd = C.command_vector(0.5, 0.0, 0.0, {"gait_frequency": 2.0}) * C.COMMAND_SCALES
    g0, g1 = 0.3, float(C.advance_gait_index(0.3, cmd / C.COMMAND_SCALES))
    c0, c1 = C.clock_inputs(g0, cmd / C.COMMAND_SCALES), C.clock_inputs(g1, cmd / C.COMMAND_SCALES)
    np.testing.assert_allclose(next_clock(c1, c0, cmd), C.clock_inputs(g1 + 2.0 * C.POLICY_DT, cmd / C.COMMAND_SCALES),
                               atol=1e-9)


def test_known_entries_on_real_logs(real_logs_dir):
    """On real Go1 logs: last_action is the action just taken and the clock follows in almost every step
    (it stalls in a few). The joystick commands do change within a log; the model holds them (they are the
    operator's input, not the robot's response), so they are left out here."""
    ds = as_transitions(load_dataset("uni_o4_real", progress=False, max_files=4))
    rows = _not_padded(ds.observations)
    obs, nxt = torch.as_tensor(ds.observations[rows]), torch.as_tensor(ds.next_observations[rows])
    act = torch.as_tensor(ds.actions[rows])
    delta = model_targets(obs, nxt, torch.zeros(len(obs)))[:, :-1]
    new = assemble_next_step(obs, act, delta)
    truth = nxt[:, -C.OBS_DIM:]
    assert torch.allclose(new[:, S["last_action"]], truth[:, S["last_action"]], atol=1e-6)
    keep = torch.ones(C.OBS_DIM, dtype=torch.bool)
    keep[S["commands"]] = False
    match = (new - truth)[:, keep].abs().max(1).values < 1e-3  # the frequency command drifts by ~1e-3 Hz
    assert float(match.float().mean()) > 0.99, float(match.float().mean())


def test_rows_go_through_their_assigned_member_only():
    model = EnsembleDynamics(DynamicsConfig(hidden=[32, 32], weight_decay=[0.0, 0.0, 0.0], ensemble_size=5))
    x, members = torch.randn(50, 302), torch.randint(0, 5, (50,), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean, logvar = model.forward_assigned(x, members)
        full_mean, full_logvar = model(x)  # every row through every member
    idx = torch.arange(50)
    assert torch.allclose(mean, full_mean[members, idx], atol=1e-6)
    assert torch.allclose(logvar, full_logvar[members, idx], atol=1e-6)


def test_fall_from_gravity_vector():
    step = torch.zeros(2, C.OBS_DIM)
    step[0, S["projected_gravity"]] = torch.tensor([0.0, 0.0, -1.0])  # level
    step[1, S["projected_gravity"]] = torch.tensor([0.0, -0.9, 0.3])  # rolled over (> 1.6 rad)
    assert fell(step).tolist() == [False, True]


def _fit(tr, epochs=6):
    cfg = DynamicsConfig(hidden=[64, 64], weight_decay=[2.5e-5, 5e-5, 1e-4], ensemble_size=4, num_elites=2,
                         epoch_steps=50, max_epochs=epochs, batch_size=128)
    model = EnsembleDynamics(cfg)
    data = TorchData(tr)
    trainer = DynamicsTrainer(model, data.t, tr.episode_ids, seed=0)
    first = model.holdout_mse(trainer.x_hold, trainer.y_hold).mean()
    while not trainer.done:
        for _ in range(cfg.epoch_steps):
            trainer.update()
        trainer.end_epoch()
    return model, trainer, float(first)


def test_dynamics_fit_improves_holdout_and_picks_elites(synthetic):
    model, trainer, first = _fit(synthetic)
    final = model.holdout_mse(trainer.x_hold, trainer.y_hold)
    assert float(final.mean()) < 0.5 * first
    assert sorted(model.elites.tolist()) == sorted(torch.argsort(trainer.best)[:2].tolist())
    obs = torch.as_tensor(synthetic.observations[:16])
    act = torch.as_tensor(synthetic.actions[:16])
    nxt, r, term = model.step(obs, act, torch.Generator().manual_seed(0))
    assert nxt.shape == (16, C.POLICY_INPUT_DIM) and r.shape == (16,) and term.dtype == torch.bool
    assert torch.equal(nxt[:, :-C.OBS_DIM], obs[:, C.OBS_DIM:])  # history shifted
    assert torch.allclose(nxt[:, -C.OBS_DIM:][:, S["last_action"]], act)  # known entry, not predicted
    assert torch.equal(nxt[:, -C.OBS_DIM:][:, S["commands"]], obs[:, -C.OBS_DIM:][:, S["commands"]])
    assert torch.allclose(nxt[:, -C.OBS_DIM:][:, S["projected_gravity"]].norm(dim=-1), torch.ones(16))
    assert len(PREDICTED) == 27


def test_am_q_batched_over_members_equals_single_and_is_repeatable(synthetic):
    model, _, _ = _fit(synthetic, epochs=1)
    torch.manual_seed(0)
    value = IQLValue(ValueConfig(q_hidden=[32], v_hidden=[32]), *synthetic.obs_stats())
    actor = GaussianActor(hidden=(32,), ensemble_size=3)
    actor.normalizer.set_stats(*synthetic.obs_stats())
    starts = start_states(torch.as_tensor(synthetic.observations), 64, seed=0)
    scores = am_q(actor, model, value, starts, horizon=10, seed=3)
    assert scores.shape == (3,)
    again = am_q(actor, model, value, starts, horizon=10, seed=3)
    assert np.array_equal(scores, again)  # common random numbers: same draws every evaluation
    for i in range(3):
        single = am_q(actor.member(i), model, value, starts, horizon=10, seed=3)
        assert single[0] == pytest.approx(scores[i], rel=1e-5, abs=1e-6)
