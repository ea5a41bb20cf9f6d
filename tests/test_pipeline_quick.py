"""A tiny ``go1o4 pipeline`` end to end (a few hundred steps per stage) on the simulated Go1, then a re-run.

Real parts throughout: the simulated Go1 (lock-step, mattress) over the real SDK on 127.0.0.1, the runtime
logging HDF5 episodes, the data layer's dataset builder, offline Uni-O4 / IQL, online PPO and the IQL online
baseline, ONNX export and evaluation. The pretrained policy is a (random) actor through the real exporter.
"""
import json
import os

import numpy as np
import pytest
import yaml
from go1o4.data.reader import load_episode
from go1o4.online_finetune.rollouts import episode_keys
from runtime_helpers import export_random_policy

from go1o4.cli import main
from go1o4.experiments.report import LABELS
from go1o4.policy_contract import load_contract

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = [
    "collect.steps=300", "collect.episode_steps=100",
    "offline_overrides={value.steps: 20, value.eval_every: 10, dynamics.max_epochs: 1, dynamics.epoch_steps: 20, "
    "improve.steps: 10, improve.ope_every: 5, ope.num_starts: 16, ope.horizon: 5, log_every: 5}",
    "iql_overrides={value.steps: 20, value.eval_every: 10, dynamics.max_epochs: 1, dynamics.epoch_steps: 20, "
    "iql.steps: 20, iql.eval_every: 10, ope.num_starts: 16, ope.horizon: 5, log_every: 5}",
    "online.total_steps=200", "online.steps_per_update=100", "online.episode_steps=100", "online.minibatch_size=50",
    "online.ppo.epochs=2", "online.curve={at_steps: [0], episodes: 1, episode_steps: 40}",
    "online.eval={speeds: [0.5, 1.5], episodes: 1, episode_steps: 40, warmup_steps: 5}",
    "online.robot.session_overrides=[runtime.settle_s=0.1]",
    "iql_online.updates_per_step=0.05", "eval={speeds: [0.4, 1.2], episodes: 1, episode_steps: 60, warmup_steps: 10}",
]


def _argv(out, pretrained):
    argv = ["pipeline", "--quick", "--no-progress", "--out", out, "--pretrained", pretrained]
    for o in TINY:
        argv += ["--set", o]
    return argv


def test_tiny_pipeline_end_to_end_then_rerun_skips_finished_stages(tmp_path, capsys):
    out = str(tmp_path / "pipe")
    pretrained = export_random_policy(str(tmp_path))
    assert main(_argv(out, pretrained)) == 0
    text = open(os.path.join(out, "report.md")).read()
    for m in ("pretrained", "uni_o4_offline", "uni_o4_online", "iql_offline", "iql_online", "ppo_online"):
        assert LABELS[m] in text
    for png in ("learning_curves.png", "results.png"):
        assert os.path.getsize(os.path.join(out, png)) > 10_000
    with open(os.path.join(out, "results.json")) as f:
        res = json.load(f)
    for m, t in res["table"].items():
        assert np.isfinite(t["return_all"]["mean"]) and np.isfinite(t["tracking_error_all"]["mean"]), m
        assert 0.0 <= t["fall_all"]["mean"] <= 1.0
    assert set(res["curves"]) == {"uni_o4_online", "ppo_online", "iql_online"}
    assert all(len(c["0"]) >= 2 and c["0"][0]["steps"] == 0 for c in res["curves"].values())
    for m, per_seed in res["training_falls"].items():  # counted from the training episodes' logs
        n = per_seed["0"]
        assert n["episodes"] == len(episode_keys(os.path.join(out, "seed_0", m, "logs"))) >= 1, m
        assert 0 <= n["falls"] <= n["episodes"] and n["steps"] >= 200, m
    assert "Falls while training online" in text

    data = json.load(open(os.path.join(out, "data", "done.json")))
    assert data["steps"] >= 300 and data["transitions"] > 250
    seed = os.path.join(out, "seed_0")
    off = load_contract(os.path.join(seed, "uni_o4_offline", "policy.yaml"))
    assert off["policy"]["offline"]["init"] == "pretrained" and off["policy"]["offline"]["algo"] == "uni_o4"
    online = json.load(open(os.path.join(seed, "uni_o4_online", "summary.json")))
    assert online["info"]["source"] == "offline" and online["updates"] >= 1 and online["steps"] >= 200
    logs = os.path.join(seed, "uni_o4_online", "logs")
    keys = episode_keys(logs)
    ep = load_episode(os.path.join(logs, keys[-1]))  # online steps are logged episodes: a later offline round can use them
    assert ep.meta["online_update"] >= 1 and np.isfinite(ep.steps["log_prob"]).all()
    with open(os.path.join(logs, keys[-1].split("/")[0], "session.yaml")) as f:
        assert yaml.safe_load(f)["terrain"] == "mattress"
    assert json.load(open(os.path.join(seed, "ppo_online", "summary.json")))["info"]["source"] == "pretrained"
    assert json.load(open(os.path.join(seed, "iql_online", "summary.json")))["grad_steps"] >= 5
    # every offline policy judged on the held-out episodes, in the report
    for algo in ("uni_o4", "iql"):
        j = json.load(open(os.path.join(seed, algo + "_offline", "judgement.json")))
        assert j["algo"] == algo and j["val_episodes"] >= 1 and j["contract"].endswith("policy.yaml")
        for k in ("log_likelihood", "am_q", "fqe"):
            assert np.isfinite([j[k]["start"], j[k]["trained"]]).all(), (algo, k)
        assert len(j["action_change"]["per_joint"]) == 12 and j["action_change"]["in_start_std"] >= 0
    assert "judged without a robot" in text and "uni_o4_offline seed 0" in text

    capsys.readouterr()
    assert main(_argv(out, pretrained)) == 0  # every stage done: nothing runs again
    assert episode_keys(logs) == keys
    assert "pipeline done" in capsys.readouterr().out

    # every evaluator on the finished policies vs the pipeline's own evaluation (issue 17, item 2)
    assert main(["ope-recipe", "--run", out, "--fqe-steps", "10", "--no-progress"]) == 0
    with open(os.path.join(out, "ope_recipe.json")) as f:
        ope = json.load(f)
    pol = ope["seeds"][0]["policies"]
    assert pol[0]["method"] == "pretrained" and {p["method"] for p in pol} >= {"uni_o4_offline", "ppo_online"}
    for name, score in ope["seeds"][0]["scores"].items():  # one pooled score per policy
        assert np.asarray(score).shape == (len(pol),) and np.isfinite(score).all(), name
    n = len(pol) - 1  # each trained policy vs the start
    for key, row in ope["table"].items():
        assert row["decisions"] == n and row["resolved"] + row["within_noise"] == n, key
    accept_all = ope["table"]["accept_all|0"]
    assert accept_all["accepted"] == n and ope["table"]["reject_all|0"]["accepted"] == 0
    assert "model_return_pessimistic" in open(os.path.join(out, "OPE_RECIPE.md")).read()
    assert main(["ope-recipe", "--run", str(tmp_path)]) == 2  # not a pipeline folder: one clear line
    assert "no seed with a finished uni_o4_offline" in capsys.readouterr().err
    os.remove(os.path.join(seed, "iql_online", "policy.onnx"))  # an evaluated policy deleted since
    assert main(["ope-recipe", "--run", out, "--fqe-steps", "10", "--no-progress"]) == 2
    assert "iql_online.json evaluated" in capsys.readouterr().err


def test_pipeline_reports_a_missing_pretrained_policy(tmp_path, capsys):
    assert main(["pipeline", "--quick", "--out", str(tmp_path / "p"), "--pretrained", str(tmp_path / "nope.onnx")]) == 2
    assert "nope.onnx not found" in capsys.readouterr().err


def test_online_cli_needs_a_dataset_to_start(tmp_path, capsys):
    assert main(["online", "--out", str(tmp_path / "o"), "--offline", str(tmp_path)]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["online", "--out", str(tmp_path / "o"), "--dataset", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5 not found" in capsys.readouterr().err


def test_an_evaluation_is_reused_only_for_the_same_policy_file(tmp_path):
    from go1o4.experiments.pipeline import _eval_current
    from go1o4.policy_contract import file_sha256

    policy, ev = tmp_path / "policy.onnx", tmp_path / "iql_offline.json"
    policy.write_bytes(b"first training")
    assert not _eval_current(str(ev), str(policy))  # never evaluated
    ev.write_text(json.dumps({"policy_sha256": file_sha256(str(policy))}))
    assert _eval_current(str(ev), str(policy))
    policy.write_bytes(b"the stage was trained again")
    assert not _eval_current(str(ev), str(policy))
    ev.write_text(json.dumps({"policy": str(policy)}))  # written before evaluations recorded the hash
    assert _eval_current(str(ev), str(policy))


@pytest.mark.parametrize("name", ["quick", "medium", "full", "recipe", "recipe_v50k"])
def test_every_shipped_pipeline_config_builds_valid_stage_configs(name):
    """Each shipped pipeline config loads, and its offline / IQL overrides make valid offline configs as
    ``Pipeline.offline`` builds them (a typo in a key fails here, not hours into a run)."""
    from go1o4.offline_finetune.cli import preset_path
    from go1o4.offline_finetune.config import OfflineConfig

    from go1o4.config import load_config
    from go1o4.experiments.config import PipelineConfig, sub_overrides

    cfg = load_config(PipelineConfig, os.path.join(REPO, "online_finetune", "configs", name + ".yaml"), [])
    preset = preset_path(cfg.offline_preset) if "/" not in cfg.offline_preset else cfg.offline_preset
    uni = load_config(OfflineConfig, preset, ["algo=uni_o4", "init=pretrained", "pretrained=start.onnx"]
                      + sub_overrides("", cfg.offline_overrides))
    iql = load_config(OfflineConfig, preset, ["algo=iql", "init=data", "bc.steps=0"] + sub_overrides("", cfg.iql_overrides))
    assert uni.value.steps > 0 and iql.value.steps > 0 and cfg.online.total_steps > 0
    if name == "recipe_v50k":
        assert uni.value.steps == iql.value.steps == 50000
