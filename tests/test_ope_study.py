"""``go1o4 ope-study``: the replayed gate, its decision statistics (hand-computed), and one tiny study end to end
on the simulated mattress (real training, real ONNX snapshots, real runtime evaluation)."""
import json
import math

import numpy as np
import pytest

from go1o4.experiments import ope_study_metrics as M


def _per_start(means, b=4, spread=0.0):
    """(total, count) whose pooled score is ``means`` (one row per policy), optional per-start spread."""
    offs = np.linspace(-spread, spread, b)
    total = np.asarray(means, dtype=np.float64)[:, None] + offs[None, :]
    return total, np.ones_like(total)


def test_replay_gate_follows_the_best_so_far():
    # policy 0 = start; member order 0 -> 1 -> 2 -> 3; scores 1, 2, 1.5, 3
    total, count = _per_start([1.0, 2.0, 1.5, 3.0])
    dec = M.replay_gate(total, count, [0, 1, 2, 3])
    assert dec == [(0, 1, True), (1, 2, False), (1, 3, True)]  # 2 is compared with the accepted 1, not with 0
    assert M.final_policy(dec, 0) == 3


def test_margin_rejects_a_gain_inside_the_evaluators_own_noise():
    # candidate 1 beats the start by 0.01 on average, with per-start values that disagree a lot
    rng = np.random.default_rng(0)
    start = rng.normal(0.0, 1.0, 64)
    cand = start + 0.01 + rng.normal(0.0, 1.0, 64)
    total = np.stack([start, cand + (0.01 - (cand.mean() - start.mean()))])
    count = np.ones_like(total)
    assert M.replay_gate(total, count, [0, 1], margin=0.0) == [(0, 1, True)]
    assert M.replay_gate(total, count, [0, 1], margin=2.0) == [(0, 1, False)]
    # a clear gain (10 std) passes the same margin
    total[1] = start + 5.0
    assert M.replay_gate(total, count, [0, 1], margin=2.0) == [(0, 1, True)]


def test_decision_stats_counts_by_hand():
    J = [10.0, 11.0, 9.0, 10.5, 10.0005]
    # accept 1 (right: 11 > 10), accept 2 (wrong: 9 < 11), reject 3 (wrong: 10.5 > 9 with ref 2), 4 within noise
    dec = [(0, 1, True), (1, 2, True), (2, 3, False), (0, 4, True)]
    s = M.decision_stats(dec, J, noise=0.001)
    assert (s["decisions"], s["resolved"], s["within_noise"], s["correct"]) == (4, 3, 1, 1)
    assert s["accuracy"] == pytest.approx(1 / 3)
    assert (s["accepted"], s["accepted_worse"], s["rejected_better"]) == (3, 1, 1)
    # within 25 %: |9 - 11| = 2 <= 2.75 and |10.5 - 9| = 1.5 <= 2.25 forgiven, the within-noise one counts right
    assert s["accuracy_within_25pct"] == 1.0
    assert M.decision_stats([(0, 1, False)], [10.0, 20.0], 0.0)["accuracy_within_25pct"] == 0.0  # 10 > 2.5
    merged = M.merge_stats([s, M.decision_stats([(0, 1, True)], [1.0, 2.0], 0.0)])
    assert (merged["resolved"], merged["correct"]) == (4, 2) and merged["accuracy"] == 0.5
    assert merged["accuracy_within_25pct"] == 1.0


def test_base_rate_gates():
    assert M.constant_gate([0, 5, 6], True) == [(0, 5, True), (5, 6, True)]
    assert M.constant_gate([0, 5, 6], False) == [(0, 5, False), (0, 6, False)]
    assert math.isnan(M.spearman([1.0, 2.0], [1.0, 2.0]))
    assert M.spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


def test_config_refuses_bad_values():
    from go1o4.config import ConfigError, load_config
    from go1o4.experiments.ope_study import REPO_CONFIG, OPEStudyConfig

    cfg = load_config(OPEStudyConfig, REPO_CONFIG, [])
    assert set(cfg.arms) and cfg.evaluators["am_q_paper"]["falls"] == "alive_only"
    for bad in ("margins=[-1]", "evaluators={x: {method: mc}}", "seeds=[]", "noise_episodes=1", "max_seeds={nope: 1}",
                "mixed_with=[\"\"]"):
        with pytest.raises(ConfigError):
            load_config(OPEStudyConfig, REPO_CONFIG, [bad])


@pytest.mark.parametrize("name", ["ope_study.yaml", "ope_study_gates.yaml", "ope_study_budget.yaml"])
def test_every_shipped_study_config_builds_valid_offline_configs(name):
    """Each arm's overrides (on the common ones) make a valid offline config, as ``train_arm`` builds it."""
    import os

    from go1o4.offline_finetune.cli import preset_path
    from go1o4.offline_finetune.config import OfflineConfig

    from go1o4.config import load_config
    from go1o4.experiments.ope_study import REPO_CONFIG, OPEStudyConfig

    cfg = load_config(OPEStudyConfig, os.path.join(os.path.dirname(REPO_CONFIG), name), [])
    for arm, over in cfg.arms.items():
        merged = ["%s=%s" % kv for kv in dict(cfg.common, **over).items()]
        off = load_config(OfflineConfig, preset_path(cfg.offline_preset), ["algo=uni_o4", "init=pretrained",
                                                                           "pretrained=start.onnx"] + merged)
        assert off.ope.method in ("am_q", "fqe", "model_return"), arm



def test_mixed_set_by_hand():
    """Union of 5 policies: start (J 10), two better (11, 12), two worse (9, 8); members' sequences [0, 1, 2] and
    [0, 3, 4]. A good evaluator (score = J) is right on every decision; accept-all on the better half only."""
    from go1o4.experiments.ope_study_mixed import analyse, summary_lines

    J = [10.0, 11.0, 12.0, 9.0, 8.0]
    good = np.repeat(np.asarray(J)[:, None], 4, axis=1)  # (N, B) per-start totals, count 1
    bad = -good
    seed = {"seed": 0, "paths": ["p%d" % i for i in range(5)], "true_return": J,
            "sources": [{"study": "this", "arm": "a", "order": {0: [0, 1, 2]}},
                        {"study": "other", "arm": "b", "order": {0: [0, 3, 4]}}],
            "scores": {"good": [good.tolist(), np.ones_like(good).tolist()],
                       "bad": [bad.tolist(), np.ones_like(bad).tolist()]}}
    t = analyse(["good", "bad"], [0.0], [seed], noise=0.1)
    assert t["mixed|good|0"]["accuracy"] == 1.0 and t["mixed|good|0"]["accepted"] == 2
    assert t["mixed|good|0"]["end_gain_mean"] == pytest.approx(1.0)  # +2 for member a, 0 (stays at start) for b
    assert t["mixed|accept_all|0"]["correct"] == 2 and t["mixed|accept_all|0"]["resolved"] == 4
    assert t["mixed|reject_all|0"]["accuracy"] == 0.5
    assert t["mixed|bad|0"]["accuracy"] == 0.0 and t["mixed|bad|0"]["pairs"]["accuracy"] == 0.0
    assert t["mixed_vs_start|good|0"]["decisions"] == 4 and t["mixed_vs_start|good|0"]["accuracy"] == 1.0
    assert t["mixed_vs_start|good|0"]["pairs"]["accuracy"] == 1.0 and t["mixed_vs_start|good|0"]["spearman"] == pytest.approx(1.0)
    assert summary_lines([seed], 0.1)[-1] == "| 0 | 5 | other/b, this/a | 2 | 2 | 0 |"


@pytest.mark.timeout(600)
def test_tiny_study_end_to_end(tmp_path, real_logs_dir):
    """Real logs (3 files) -> two arms of Uni-O4 with snapshots -> every snapshot run on the simulated mattress
    through the runtime -> AM-Q and FQE scored and replayed -> study.json / OPE_STUDY.md / PNG; a re-run resumes
    from the caches (no training, no evaluation); a second study mixes in the first one's candidates."""
    from go1o4.data.dataset import BuildConfig, build_dataset
    from go1o4.data.import_uni_o4 import find_uni_o4_files, load_uni_o4_file
    from go1o4.sim_pretrain.cli_import_policy import import_policy

    from go1o4.config import load_config
    from go1o4.experiments.ope_study import REPO_CONFIG, OPEStudyConfig, run_study

    files = find_uni_o4_files(str(real_logs_dir))[:3]
    ds = build_dataset([load_uni_o4_file(f, reward="uni_o4_body_si") for f in files], BuildConfig(reward="uni_o4_body_si"),
                       progress=False)
    ds.save(str(tmp_path / "data.h5"))
    from pathlib import Path
    ckpt = Path(real_logs_dir).parent / "uni_o4_go1_policies" / "ac_weights_000300.pt"
    policy = import_policy(str(ckpt), str(tmp_path / "start"))["onnx"]
    over = ["dataset=%s" % (tmp_path / "data.h5"), "pretrained=%s" % policy, "seeds=[0]", "max_seeds={}",
            "arms={a: {member_std: pretrained, value.steps: 30}, b: {member_std: behavior, value.steps: 30}}",
            "common={torch_threads: 1, value.q_hidden: [32, 32], value.v_hidden: [32, 32], value.eval_every: 30, "
            "dynamics.max_epochs: 1, dynamics.epoch_steps: 20, dynamics.hidden: [32, 32], "
            "dynamics.weight_decay: [0.0, 0.0, 0.0], improve.steps: 20, improve.ope_every: 10, ope.num_starts: 16, "
            "ope.horizon: 5, ope.fqe.mc_init_steps: 20, ope.fqe.hidden: [32, 32], checkpoint_every: 1000, "
            "log_every: 10}",
            "fqe_steps=20", "truth.episode_steps=25", "truth.warmup_steps=5", "noise_episodes=2", "truth.speeds=[0.5]"]
    out = tmp_path / "study"

    def study():
        return run_study(load_config(OPEStudyConfig, REPO_CONFIG, over), str(out), "test", progress=False,
                         say=lambda *a: None)

    study()
    doc = json.loads((out / "study.json").read_text())
    assert (out / "OPE_STUDY.md").exists() and (out / "ope_study.png").stat().st_size > 1000
    assert [r["arm"] for r in doc["runs"]] == ["a", "b"]
    for r in doc["runs"]:
        assert len(r["true_return"]) == 1 + 2 * 4  # the start + 2 checks x 4 members
        assert all(np.isfinite(r["true_return"]))
        for name in ("am_q_paper", "am_q_falls", "fqe", "model_return"):
            assert np.asarray(r["scores"][name][0]).shape == (9, 16)
    # b reused a's value and dynamics (same seed, same critic configs)
    assert json.loads((out / "runs" / "b" / "seed_0" / "metrics.json").read_text())["value"] == \
        json.loads((out / "runs" / "a" / "seed_0" / "metrics.json").read_text())["value"]
    rows = doc["table"]
    assert set(rows) == {"%s|%s|%g" % (a, e, m) for a in "ab"
                         for e in ("am_q_paper", "am_q_falls", "fqe", "model_return") for m in (0.0, 2.0)} | {"%s|%s|0" % (a, e) for a in "ab" for e in ("accept_all", "reject_all", "in_training")}
    for row in rows.values():
        assert row["decisions"] == 8 and row["members"] == 4
        assert row["resolved"] + row["within_noise"] == 8
    assert rows["a|accept_all|0"]["accepted"] == 8 and rows["a|reject_all|0"]["accepted"] == 0
    # the decisions the paper's gate made in training are the replayed paper AM-Q's (same scores, same rule)
    for key in ("accepted", "correct", "resolved"):
        assert rows["a|in_training|0"][key] == rows["a|am_q_paper|0"][key]
    cached = sorted(out.glob("eval/**/*.json")) + sorted(out.glob("runs/*/seed_0/*.npz"))
    stamps = [p.stat().st_mtime_ns for p in cached]
    again = study()  # resumes: nothing trained, scored or evaluated again
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert json.loads(json.dumps(again["table"])) == doc["table"]

    # a second study on the same data and start mixes in the first one's candidates (mixed_with)
    from go1o4.experiments.ope_study_mixed import other_runs
    over2 = over + ["arms={c: {member_std: behavior, value.steps: 40}}", "mixed_with=[%s]" % out]
    mixed = run_study(load_config(OPEStudyConfig, REPO_CONFIG, over2), str(tmp_path / "study2"), "test",
                      progress=False, say=lambda *a: None)
    m = mixed["mixed"][0]
    assert len(m["paths"]) == 9 + 2 * 8 and len(m["sources"]) == 3  # the start once; c, then the first study's a, b
    assert len(list((tmp_path / "study2" / "eval" / "mixed" / "study").glob("*/seed_0/*.json"))) == 16
    assert np.asarray(m["scores"]["fqe"][0]).shape == (25, 16)
    rows = mixed["table"]
    assert rows["mixed|accept_all|0"]["decisions"] == 3 * 8 and rows["mixed_vs_start|am_q_paper|2"]["decisions"] == 24
    assert rows["mixed|am_q_paper|0"]["pairs"]["pairs"] > 0
    assert "Mixed candidate set" in (tmp_path / "study2" / "OPE_STUDY.md").read_text()
    with pytest.raises(ValueError, match="used pretrained"):
        other_runs(load_config(OPEStudyConfig, REPO_CONFIG, over2 + ["pretrained=%s" % (tmp_path / "data.h5")]),
                   str(out), 0)
    with pytest.raises(ValueError, match="finish that study first"):
        other_runs(load_config(OPEStudyConfig, REPO_CONFIG, over2), str(tmp_path), 0)


def test_action_change_by_hand():
    import torch

    from go1o4.experiments.offline_judgement import action_change
    from go1o4.rl.networks import GaussianActor

    start = GaussianActor(obs_dim=4, act_dim=2, hidden=(8,), init_std=0.5)
    moved = GaussianActor(obs_dim=4, act_dim=2, hidden=(8,))
    moved.load_state_dict(start.state_dict())
    with torch.no_grad():
        moved.mu.net[-1].bias[..., 0] += 0.25  # joint 0 moved by 0.25 everywhere, joint 1 unchanged
    out = action_change(start, moved, torch.randn(32, 4))
    assert out["per_joint"] == pytest.approx([0.25, 0.0], abs=1e-6)
    assert out["in_start_std"] == pytest.approx((0.25 / 0.5 + 0.0) / 2, abs=1e-5)
    assert out["max_in_start_std"] == pytest.approx(0.5, abs=1e-5)
