"""PPO runner: a few updates with finite losses, checkpoint/resume round trip, ONNX export, the CLI."""
import json
import os

import numpy as np
import pytest
import torch
from go1o4.sim_pretrain.runner import OnPolicyRunner, PretrainConfig, actor_from_checkpoint

from go1o4 import contract as C
from go1o4.config import load_config
from go1o4.policy_contract import check_contract, load_contract

TINY = ["env.num_envs=4", "env.num_workers=0", "runner.num_steps_per_env=8", "runner.max_iterations=3",
        "runner.save_interval=2", "runner.actor_hidden=[512, 256, 128]", "runner.critic_hidden=[32]",
        "ppo.num_minibatches=2", "ppo.epochs=2", "runner.bc_prior_steps=6", "runner.bc_epochs=2",
        "runner.critic_warmup_iterations=1"]
CONFIG = os.path.join(os.path.dirname(__file__), "..", "sim_pretrain", "configs", "flat.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    cfg = load_config(PretrainConfig, CONFIG, overrides=TINY)
    r = OnPolicyRunner(cfg, out)
    try:
        stats = r.learn(progress=False)
    finally:
        r.close()
    return out, cfg, stats, r


def test_updates_have_finite_losses_and_logs(trained):
    out, cfg, stats, r = trained
    for k in ("loss/policy", "loss/value", "ppo/approx_kl", "ppo/std", "perf/fps"):
        assert np.isfinite(stats[k]), k
    assert r.iteration == 3 and r.samples == 3 * 4 * 8
    rows = [json.loads(line) for line in open(os.path.join(out, "progress.jsonl"))]
    assert [row["iteration"] for row in rows] == [1, 2, 3]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(out))
    assert os.path.exists(os.path.join(out, "model_2.pt")) and os.path.exists(os.path.join(out, "model_3.pt"))
    # the running observation statistics reached the actor's normaliser
    assert not torch.allclose(r.actor.normalizer.std, torch.ones_like(r.actor.normalizer.std))


def test_behaviour_cloning_fits_the_trot_prior(tmp_path):
    from go1o4.sim_pretrain.env.trot_prior import trot_actions
    cfg = load_config(PretrainConfig, CONFIG, overrides=TINY + ["runner.bc_prior_steps=20", "runner.bc_epochs=60",
                                                                "runner.bc_noise=0.0"])
    r = OnPolicyRunner(cfg, str(tmp_path))
    try:
        cmds = np.tile(C.command_vector(1.0, 0.0, 0.0), (50, 1))
        target = trot_actions(np.linspace(0.0, 1.0, 50), cmds, **cfg.runner.bc_prior_params)
        mse0 = float(np.mean(target ** 2))  # the initial actor outputs ~0 (output gain 0.01)
        mse = r.behaviour_clone_prior(progress=False)
        assert mse < 0.2 * mse0
    finally:
        r.close()


def test_critic_warmup_keeps_the_actor(tmp_path):
    cfg = load_config(PretrainConfig, CONFIG, overrides=TINY + ["runner.bc_prior_steps=0",
                                                                "runner.critic_warmup_iterations=1"])
    r = OnPolicyRunner(cfg, str(tmp_path))
    try:
        before = [p.detach().clone() for p in r.actor.mu.parameters()]
        critic_before = [p.detach().clone() for p in r.critic.net.parameters()]
        r.learn(1, progress=False)
        assert all(torch.equal(a, b) for a, b in zip(before, r.actor.mu.parameters()))
        assert not all(torch.equal(a, b) for a, b in zip(critic_before, r.critic.net.parameters()))
        r.learn(1, progress=False)
        assert not all(torch.equal(a, b) for a, b in zip(before, r.actor.mu.parameters()))
    finally:
        r.close()


def test_checkpoint_resume_round_trip(trained, tmp_path):
    out, cfg, _, r = trained
    ckpt = os.path.join(out, "model_3.pt")
    r2 = OnPolicyRunner(cfg, str(tmp_path))
    try:
        r2.load(ckpt)
        assert r2.iteration == 3 and r2.samples == r.samples
        for a, b in zip(r.actor.state_dict().values(), r2.actor.state_dict().values()):
            assert torch.equal(a, b)
        for a, b in zip(r.critic.state_dict().values(), r2.critic.state_dict().values()):
            assert torch.equal(a, b)
        np.testing.assert_array_equal(r2.obs_rms.mean, r.obs_rms.mean)
        s1, s2 = r.ppo.actor_opt.state_dict()["state"], r2.ppo.actor_opt.state_dict()["state"]
        assert all(torch.equal(s1[k]["exp_avg"], s2[k]["exp_avg"]) for k in s1)
        assert r2.ppo.lr_scale == r.ppo.lr_scale
        r2.learn(1, progress=False)  # continues from iteration 3
        assert r2.iteration == 4
    finally:
        r2.close()
    actor = actor_from_checkpoint(ckpt)
    x = torch.randn(5, 290)
    with torch.no_grad():
        assert torch.allclose(actor(x), r.actor.eval()(x))


def test_export_cli_writes_onnx_and_contract(trained, tmp_path, capsys):
    from go1o4.cli import main
    out, *_ = trained
    onnx_path = str(tmp_path / "p.onnx")
    assert main(["export", os.path.join(out, "model_3.pt"), "--out", onnx_path]) == 0
    printed = capsys.readouterr().out
    diff = float(printed.strip().split("max abs diff")[-1])
    assert diff < 1e-5
    contract = load_contract(str(tmp_path / "p.yaml"))
    check_contract(contract, onnx_path)
    assert contract["policy"]["iteration"] == 3


def test_cli_errors_are_clear(tmp_path, capsys):
    from go1o4.cli import main
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("env:\n  num_envs: many\n")
    assert main(["pretrain", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "env.num_envs" in capsys.readouterr().err
