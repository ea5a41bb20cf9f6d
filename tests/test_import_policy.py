"""``go1o4 import-policy`` on the Uni-O4 authors' real checkpoint: faithful conversion (torch, ONNX Runtime,
the real logs it collected), clear refusals, and the imported policy running in evaluate, the runtime
session (real SDK) and as the offline/pipeline starting point."""
import glob
import os

import h5py
import numpy as np
import pytest
import torch
import yaml
from go1o4.sim_pretrain.cli_import_policy import import_policy

from go1o4 import contract as C
from go1o4.cli import main as cli_main
from go1o4.rl.wtw_import import ImportPolicyError, actor_from_wtw, read_state_dict, reference_actor


@pytest.fixture(scope="module")
def imported(tmp_path_factory, authors_policy_ckpt):
    out = tmp_path_factory.mktemp("ac300")
    rep = import_policy(str(authors_policy_ckpt), str(out), samples=128)
    return rep


def test_import_matches_the_checkpoint_and_writes_a_valid_contract(imported, authors_policy_ckpt):
    from go1o4.policy_contract import check_contract, load_contract

    assert imported["torch_vs_reference"] <= 1e-6
    assert imported["onnx_vs_torch"] <= 1e-4 and imported["onnx_vs_reference"] <= 1e-4
    contract = load_contract(imported["contract"])
    check_contract(contract, imported["onnx"])
    sd = torch.load(str(authors_policy_ckpt), map_location="cpu", weights_only=True)
    np.testing.assert_allclose(contract["policy"]["std"], sd["std"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.exp(contract["policy"]["log_std"]), sd["std"].numpy(), rtol=1e-5)
    assert contract["policy"]["hidden"] == [512, 256, 128] and contract["policy"]["activation"] == "elu"


def test_logged_actions_are_the_imported_mean_plus_its_std_noise(imported, real_logs_dir):
    """The real logs were collected with a ~ mu(history) + std N(0, 1): the imported policy explains them."""
    from go1o4.robot_runtime.policy import OnnxPolicy

    policy = OnnxPolicy.load(imported["onnx"])
    std = np.asarray(yaml.safe_load(open(imported["contract"]))["policy"]["std"])
    np.testing.assert_allclose(np.exp(policy.contract_log_std()), std, rtol=1e-5)  # the pipeline's collect std
    zs = []
    for f in sorted(glob.glob(os.path.join(str(real_logs_dir), "*", "*.hdf5")))[:6]:
        with h5py.File(f, "r") as h:
            obs, act = h["states"][:, :C.OBS_DIM], h["actions"][:]
        hist = np.stack([obs[i - 4:i + 1].reshape(-1) for i in range(4, len(obs))])
        mean = np.stack([policy.act(x) for x in hist[:400]])
        zs.append((act[4:4 + len(mean)] - mean) / std)
    z = np.concatenate(zs)
    assert len(z) > 1000
    assert np.all(np.abs(z.std(0) - 1.0) < 0.25), z.std(0)
    assert np.all(np.abs(z.mean(0)) < 0.7), z.mean(0)


def _altered(tmp_path, authors_policy_ckpt, edit):
    sd = torch.load(str(authors_policy_ckpt), map_location="cpu", weights_only=True)
    edit(sd)
    path = str(tmp_path / "altered.pt")
    torch.save(sd, path)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.update({"actor_body.6.weight": sd["actor_body.6.weight"][:11],
                           "actor_body.6.bias": sd["actor_body.6.bias"][:11]}), "expected 12 actions, got 11"),
    (lambda sd: sd.update({"actor_body.0.weight": sd["actor_body.0.weight"][:, :280]}),
     "actor_body.0.weight: expected (*, 290), got (512, 280)"),
    (lambda sd: sd.pop("std"), "std: missing"),
    (lambda sd: sd.update({"std": -sd["std"]}), "std: must be finite and > 0"),
    (lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("actor_body")], "no walk-these-ways actor"),
])
def test_refuses_checkpoints_that_do_not_fit(tmp_path, authors_policy_ckpt, capsys, edit, message):
    path = _altered(tmp_path, authors_policy_ckpt, edit)
    with pytest.raises(ImportPolicyError) as e:
        actor_from_wtw(read_state_dict(path), path)
    assert message in str(e.value)
    assert cli_main(["import-policy", path, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / "out" / "policy.onnx"))


def test_refuses_truncated_and_pickled_files(tmp_path, authors_policy_ckpt):
    data = open(str(authors_policy_ckpt), "rb").read()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImportPolicyError, match="weights_only=True"):
        read_state_dict(str(trunc))
    pickled = tmp_path / "pickled.pt"
    torch.save({"actor": torch.nn.Linear(2, 2)}, str(pickled))  # a module object: not a plain state_dict
    with pytest.raises(ImportPolicyError, match="weights_only=True"):
        read_state_dict(str(pickled))
    with pytest.raises(ImportPolicyError, match="not found"):
        read_state_dict(str(tmp_path / "missing.pt"))


def test_imported_policy_loads_as_the_pipeline_start(imported, authors_policy_ckpt):
    """offline/online/pipeline take the ONNX as ``pretrained``: the loaded GaussianActor is the checkpoint's net."""
    from go1o4.offline_finetune.pretrained import load_pretrained_actor

    actor = load_pretrained_actor(imported["onnx"])
    ref = reference_actor(read_state_dict(str(authors_policy_ckpt)))
    x = torch.randn(64, C.POLICY_INPUT_DIM)
    with torch.no_grad():
        assert float(torch.max(torch.abs(actor(x) - ref(x)))) < 1e-5
    sd = torch.load(str(authors_policy_ckpt), map_location="cpu", weights_only=True)
    np.testing.assert_allclose(actor.log_std.exp().detach().reshape(-1).numpy(), sd["std"].numpy(), rtol=1e-5)


def test_imported_policy_walks_in_evaluate(imported):
    from go1o4.sim_pretrain.cli_evaluate import evaluate, evaluation_env_config, load_policy
    from go1o4.sim_pretrain.env.config import EnvConfig

    cfg = evaluation_env_config(EnvConfig(), 1, "rigid", dr=False, noise=False, workers=0, seed=1)
    rows = evaluate(load_policy(imported["onnx"]), cfg, [(0.9, 0.0, 0.0)], steps=150)
    assert rows[0]["falls"] == 0
    assert rows[0]["vx_err_steady"] < 0.45  # it walks forward (standing still would be 0.9)


def test_imported_policy_runs_unchanged_in_a_session(imported):
    """Through the real SDK on the simulated Go1, sampling with the authors' own std, as on the robot."""
    pytest.importorskip("unitree_legged_sdk.robot_interface")
    from go1o4.robot_runtime.policy import GaussianExploration, OnnxPolicy
    from go1o4.robot_runtime.session_cli import start_simulated_robot
    from runtime_helpers import close_session, lockstep_session, session_config, world_readable_dir

    channel = "T265_IMP_%d" % os.getpid()
    cfg = session_config(world_readable_dir("go1o4_imp_"), channel)
    robot = start_simulated_robot(cfg, "lockstep", "subprocess")
    try:
        s = lockstep_session(cfg, robot, OnnxPolicy.load(imported["onnx"]))
        try:
            log_std = np.asarray(yaml.safe_load(open(imported["contract"]))["policy"]["log_std"])
            r = s.run_episode(command_schedule=lambda t: (0.9, 0.0, 0.0), max_steps=150,
                              exploration=GaussianExploration(log_std, seed=0), reset_pose="standing")
        finally:
            close_session(s)
    finally:
        robot.close()
    assert (r.end, r.reason, r.steps) == ("truncation", "time_limit", 150)
    g = r.obs[:, 0:3]
    assert np.all(g[:, 2] < -0.8)  # upright throughout
    assert np.abs(r.action).mean() > 0.3  # stochastic actions, as the logs
