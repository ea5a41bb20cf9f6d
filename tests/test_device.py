"""--device for every trainer: resolution, clear errors, and each stage run with an explicit device="cpu"
through the code path CUDA takes (tensors, generators and modules placed by the device helper)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from go1o4.offline_finetune.config import OfflineConfig
from go1o4.offline_finetune.synthetic import make_synthetic
from go1o4.offline_finetune.train import OfflineRun

from go1o4.config import ConfigError, load_config
from go1o4.rl.device import DeviceError, make_generator, on_cpu, resolve_device
from go1o4.rl.networks import Critic, GaussianActor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.path.join(REPO, "offline_finetune", "configs", "quick.yaml")
TINY = ["bc.steps=20", "bc.eval_every=10", "value.steps=20", "value.eval_every=10", "value.q_hidden=[32,32]",
        "value.v_hidden=[32,32]", "dynamics.hidden=[32,32]", "dynamics.weight_decay=[2.5e-5,5e-5,1e-4]",
        "dynamics.ensemble_size=3", "dynamics.num_elites=2", "dynamics.epoch_steps=10", "dynamics.max_epochs=2",
        "improve.steps=20", "improve.ope_every=10", "ope.num_starts=8", "ope.horizon=4", "checkpoint_every=10",
        "log_every=5", "torch_threads=1", "bc.batch_size=32", "value.batch_size=32", "improve.batch_size=32",
        "dynamics.batch_size=32"]
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is absent")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="device must be"):
        resolve_device("gpu0")
    g = make_generator("cpu", 7)
    assert torch.equal(torch.randint(0, 100, (5,), generator=g),
                       torch.randint(0, 100, (5,), generator=torch.Generator().manual_seed(7)))


@no_cuda
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda:0")


@no_cuda
@pytest.mark.parametrize("argv", [
    ["offline", "--dataset", "nowhere.h5", "--out", "{tmp}/o"],
    ["online", "--out", "{tmp}/n", "--dataset", "nowhere.h5"],
    ["pipeline", "--quick", "--out", "{tmp}/p"],
    ["offline-evidence", "--out", "{tmp}/e"],
    ["pretrain", "--config", "sim_pretrain/configs/flat.yaml", "--out", "{tmp}/t"],
])
def test_every_trainer_refuses_cuda_without_cuda(tmp_path, argv):
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--device", "cuda"]
    r = subprocess.run([sys.executable, "-m", "go1o4.cli"] + argv, cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert "no CUDA GPU" in r.stderr and "Traceback" not in r.stderr


def test_bad_device_key_is_a_config_error():
    with pytest.raises(ConfigError, match="device"):
        load_config(OfflineConfig, QUICK, ["device=tpu"])


def _devices(run: OfflineRun):
    tensors = list(run.train.t.values()) + [run.ope_starts]
    for m in (run.actor, run.dynamics, run.value.q, run.value.v, run.value.q_target):
        tensors += list(m.state_dict().values())
    return {t.device.type for t in tensors}


def test_offline_stages_on_explicit_cpu_device_match_the_default(tmp_path):
    tr = make_synthetic(num_episodes=4, steps=30, seed=3)
    runs = {}
    for dev in ("cpu", "auto"):
        cfg = load_config(OfflineConfig, QUICK, TINY + ["device=%s" % dev])
        run = OfflineRun(cfg, tr, str(tmp_path / dev), progress=False)
        runs[dev] = (run, run.run())
    run, summary = runs["cpu"]
    assert run.device == torch.device("cpu") and _devices(run) == {"cpu"}
    if not torch.cuda.is_available():  # auto is the CPU here: the same numbers
        assert summary["ope_best_scores"] == runs["auto"][1]["ope_best_scores"]
        assert summary["bc_val_log_likelihood"] == runs["auto"][1]["bc_val_log_likelihood"]
    ck = torch.load(os.path.join(str(tmp_path / "cpu"), "checkpoint.pt"), map_location="cpu", weights_only=True)
    assert ck["completed"] == ["bc", "value", "dynamics", "improve", "export"]
    assert np.isfinite(summary["onnx_torch_max_abs_diff"]) and summary["onnx_torch_max_abs_diff"] < 1e-4


def test_resume_on_explicit_cpu_device(tmp_path):
    """A checkpoint (written from CPU copies) resumes into device-placed modules and generators."""
    tr = make_synthetic(num_episodes=4, steps=30, seed=4)
    cfg = load_config(OfflineConfig, QUICK, TINY + ["device=cpu"])
    first = OfflineRun(cfg, tr, str(tmp_path / "r"), progress=False)
    first.stage_bc()
    again = OfflineRun(cfg, tr, str(tmp_path / "r"), progress=False)
    assert again.completed == ["bc"]
    for (k, a), b in zip(first.actor.state_dict().items(), again.actor.state_dict().values()):
        assert torch.equal(a, b), k


def test_on_cpu_copies_nested_state():
    sd = {"a": torch.ones(2), "b": [torch.zeros(1), 3], "c": {"d": torch.arange(3)}}
    out = on_cpu(sd)
    assert out["b"][1] == 3 and torch.equal(out["c"]["d"], sd["c"]["d"])


def test_online_update_storage_follows_the_critic_device():
    from go1o4.online_finetune.trainer import fill_storage

    n = 12
    rng = np.random.default_rng(0)
    batch = {"obs": rng.normal(size=(n, 290)).astype(np.float32), "final_obs": rng.normal(size=(n, 290)).astype(
        np.float32), "actions": rng.normal(size=(n, 12)).astype(np.float32), "log_probs": np.zeros(n, np.float32),
        "rewards": np.ones(n, np.float32), "terminals": np.zeros(n, np.float32), "timeouts": np.zeros(n, np.float32)}
    critic = Critic(hidden=[16]).to(resolve_device("cpu"))
    st = fill_storage(batch, critic, 1.0, 0.99, 0.95)
    assert st.device == torch.device("cpu") and st.returns.device.type == "cpu"
    assert torch.isfinite(st.returns).all()


def test_pretrain_runner_on_explicit_cpu_device(tmp_path):
    from go1o4.sim_pretrain.runner import OnPolicyRunner, PretrainConfig

    cfg = load_config(PretrainConfig, os.path.join(REPO, "sim_pretrain", "configs", "flat.yaml"),
                      ["env.num_envs=2", "env.num_workers=0", "runner.num_steps_per_env=4", "runner.bc_prior_steps=0",
                       "ppo.num_minibatches=2", "runner.device=cpu", "runner.max_iterations=1"])
    runner = OnPolicyRunner(cfg, str(tmp_path))
    try:
        stats = runner.learn(1, progress=False)
    finally:
        runner.close()
    assert runner.storage.device == torch.device("cpu") and np.isfinite(stats["loss/value"])
    ck = torch.load(os.path.join(str(tmp_path), "model_last.pt"), map_location="cpu", weights_only=True)
    actor = GaussianActor()
    actor.load_state_dict(ck["ppo"]["actor"])
