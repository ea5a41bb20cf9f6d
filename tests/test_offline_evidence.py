"""The pure parts of ``go1o4 offline-evidence``: AM-Q pair ordering, decision accuracy, the mean ± std table."""
import math

import numpy as np
import pytest

from go1o4.config import ConfigError, load_config
from go1o4.experiments.evidence import EvidenceConfig
from go1o4.experiments.evidence_report import (
    decision_accuracy,
    eval_row,
    mean_std_table,
    ope_quality,
    pair_ordering,
    repeat_spread,
)


def test_pair_ordering_concordant_reversed_and_partial():
    r = [1.0, 2.0, 3.0, 4.0]
    assert pair_ordering([10, 20, 30, 40], r)["accuracy"] == 1.0
    assert pair_ordering([40, 30, 20, 10], r)["accuracy"] == 0.0
    out = pair_ordering([10, 30, 20, 40], r)  # one of 6 pairs swapped
    assert out["pairs"] == 6 and out["accuracy"] == pytest.approx(5 / 6)


def test_pair_ordering_ties_and_noise():
    # a score tie counts one half
    assert pair_ordering([1.0, 1.0], [0.0, 5.0])["accuracy"] == 0.5
    # a return difference within the noise leaves the pair out of accuracy and reports it apart
    out = pair_ordering([1.0, 2.0, 3.0], [0.0, 0.05, 1.0], noise=0.1)
    assert out["pairs"] == 2 and out["accuracy"] == 1.0
    assert out["within_noise_pairs"] == 1 and out["within_noise_accuracy"] == 1.0
    out = pair_ordering([2.0, 1.0, 3.0], [0.0, 0.05, 1.0], noise=0.1)  # the within-noise pair is reversed
    assert out["accuracy"] == 1.0 and out["within_noise_accuracy"] == 0.0
    assert out["accuracy_all_pairs"] == pytest.approx(2 / 3)
    # nothing resolvable -> nan, not a division error
    assert math.isnan(pair_ordering([1.0, 2.0], [3.0, 3.0], noise=0.1)["accuracy"])


def test_pair_ordering_only_within_groups():
    # seed 0 ordered right, seed 1 ordered right; across seeds the scores would disagree, but are not compared
    out = pair_ordering([1.0, 2.0, 100.0, 200.0], [10.0, 20.0, 1.0, 2.0], groups=[0, 0, 1, 1])
    assert out["pairs"] == 2 and out["accuracy"] == 1.0


def test_decision_accuracy_follows_the_acceptance_rule():
    # scores: accept at 1 (right: return up), reject at 2 (right: return below the accepted one's),
    # accept at 3 (wrong: return below the best-so-far policy's)
    d = decision_accuracy([0.0, 1.0, 0.5, 2.0], [10.0, 12.0, 11.0, 11.5])
    assert d == {"correct": 2, "decisions": 3, "within_noise": 0}
    d = decision_accuracy([0.0, 1.0], [10.0, 10.01], noise=0.1)
    assert d == {"correct": 0, "decisions": 0, "within_noise": 1}


def test_ope_quality_skips_duplicate_policies_for_pairs_but_not_decisions():
    pts = [{"seed": 0, "member": m, "step": 0, "score": 1.0, "true_return": 5.0, "duplicate": m > 0} for m in range(2)]
    pts += [{"seed": 0, "member": 0, "step": 10, "score": 2.0, "true_return": 6.0},
            {"seed": 0, "member": 1, "step": 10, "score": 0.5, "true_return": 4.0}]
    q = ope_quality(pts, noise=0.0)
    assert q["policies"] == 3 and q["pooled"]["pairs"] == 3 and q["pooled"]["accuracy"] == 1.0
    assert q["decisions"] == {"correct": 2, "decisions": 2, "within_noise": 0, "accuracy": 1.0}


def test_mean_std_table():
    t = mean_std_table({"a": [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": float("nan")}, {"x": 5.0}], "b": [{"x": 7.0}]})
    assert t["a"]["x"] == {"mean": 3.0, "std": pytest.approx(np.std([1, 3, 5])), "n": 3}
    assert t["a"]["y"] == {"mean": 2.0, "std": 0.0, "n": 1}  # nan and missing left out
    assert t["b"]["x"]["n"] == 1 and t["b"]["x"]["std"] == 0.0


def _ev(returns_by_speed):
    eps = [{"speed": v, "return": r} for v, rs in returns_by_speed.items() for r in rs]
    speeds = {"%.2f" % v: {"return": float(np.mean(rs)), "tracking_error": 0.1 * v} for v, rs in returns_by_speed.items()}
    return {"all": {"fall": 0.0, "return": float(np.mean([e["return"] for e in eps]))}, "speeds": speeds,
            "episodes": eps}


def test_eval_row_and_repeat_spread():
    ev = _ev({0.5: [10.0, 10.2], 1.5: [8.0, 8.0]})
    row = eval_row(ev, [0.5, 1.5])
    assert row["return_low"] == pytest.approx(10.1) and row["return_high"] == 8.0
    assert row["tracking_error_high"] == pytest.approx(0.15) and row["fall_rate"] == 0.0
    assert repeat_spread([ev, _ev({0.5: [1.0]})]) == pytest.approx(0.2)


def test_config_rejects_unknown_methods():
    with pytest.raises(ConfigError, match="methods"):
        load_config(EvidenceConfig, None, ["methods=[uni_o4,bppo]"])
    cfg = load_config(EvidenceConfig, None, ["max_seeds={one_step: 1}"])
    assert cfg.max_seeds == {"one_step": 1} and cfg.offline_overrides["improve.steps"] == 1000


@pytest.fixture(scope="module")
def tiny_data():
    from go1o4.offline_finetune.synthetic import make_synthetic
    return make_synthetic(num_episodes=10, steps=60, seed=2)


def _tiny_cfg(algo: str, *extra: str):
    from go1o4.offline_finetune.config import OfflineConfig

    from tests.test_offline_pipeline import QUICK, TINY
    return load_config(OfflineConfig, QUICK, TINY + ["algo=%s" % algo] + list(extra))


def test_snapshots_export_every_member_at_every_ope_check(tiny_data, tmp_path):
    import json
    import os

    import onnxruntime as ort
    import torch
    from go1o4.offline_finetune.train import OfflineRun

    from go1o4.experiments.evidence import snapshots
    from go1o4.policy_contract import load_contract

    torch.set_num_threads(1)
    out = str(tmp_path / "u")
    OfflineRun(_tiny_cfg("uni_o4", "improve.snapshots=true"), tiny_data, out, progress=False).run()
    snaps = snapshots(out)
    assert [(s["step"], s["member"]) for s in snaps] == [(n, i) for n in (0, 10, 20, 30) for i in range(4)]
    with open(os.path.join(out, "metrics.json")) as f:
        rows = [r for r in json.load(f)["improve"] if "ope/score" in r]
    assert [s["score"] for s in snaps] == [x for r in rows for x in r["ope/score"]]
    last = snaps[-1]
    assert load_contract(last["path"][:-5] + ".yaml")["policy"]["offline"]["ope_score"] == pytest.approx(last["score"])
    y = ort.InferenceSession(last["path"]).run(None, {"obs": np.zeros((2, 290), np.float32)})[0]
    assert y.shape == (2, 12) and np.isfinite(y).all()
    # default off: no snapshots folder
    OfflineRun(_tiny_cfg("uni_o4"), tiny_data, str(tmp_path / "n"), progress=False).run()
    assert not os.path.exists(tmp_path / "n" / "snapshots")


def test_reuse_critics_only_from_a_matching_run(tiny_data, tmp_path):
    import torch
    from go1o4.offline_finetune.train import OfflineRun

    from go1o4.experiments.common import reuse_critics

    torch.set_num_threads(1)
    src = str(tmp_path / "src")
    OfflineRun(_tiny_cfg("uni_o4"), tiny_data, src, progress=False).run()
    other = OfflineRun(_tiny_cfg("one_step", "value.expectile=0.8"), tiny_data, str(tmp_path / "o"), progress=False)
    assert not reuse_critics(other, src)  # another value config: would not be the same critics
    run = OfflineRun(_tiny_cfg("one_step"), tiny_data, str(tmp_path / "b"), progress=False)
    assert reuse_critics(run, src) and {"value", "dynamics"} <= set(run.completed)
    summary = run.run()
    ckpt_a = torch.load(src + "/checkpoint.pt", weights_only=True)["modules"]
    ckpt_b = torch.load(str(tmp_path / "b" / "checkpoint.pt"), weights_only=True)["modules"]
    for k, v in ckpt_a["value"]["q"].items():
        assert torch.equal(v, ckpt_b["value"]["q"][k])
    assert summary["selected_member"] is not None and (tmp_path / "b" / "policy.onnx").exists()


def test_evaluator_re_evaluates_a_retrained_policy_under_the_same_name(tmp_path):
    """eval/<name>.json is reused only for the same ONNX file (hash): a re-trained run's policy is evaluated again
    on the simulated Go1, and the second call for the unchanged file is served from the cache."""
    import json
    import os

    import torch
    from go1o4.online_finetune.config import EvalConfig

    from go1o4.experiments.evidence import Evaluator
    from go1o4.rl.export import export_onnx
    from go1o4.rl.networks import GaussianActor

    torch.manual_seed(0)
    path = str(tmp_path / "policy.onnx")
    export_onnx(GaussianActor(), path)
    cfg = load_config(EvidenceConfig, None, ["robot.session_overrides=[runtime.settle_s=0.1]"])
    ecfg = EvalConfig(speeds=[0.5], episodes=1, episode_steps=30, warmup_steps=5)
    os.makedirs(str(tmp_path / "out" / "eval"))
    stale = {"name": "iql_seed_2", "cache_key": "sha-of-an-older-file/1/30/0", "all": {"return": 123.0}}
    with open(str(tmp_path / "out" / "eval" / "iql_seed_2.json"), "w") as f:
        json.dump(stale, f)
    ev = Evaluator(cfg, str(tmp_path / "out"), progress=False)
    try:
        first = ev("iql_seed_2", path, ecfg)
        assert ev.runner is not None and first["cache_key"] != stale["cache_key"]
        assert first["all"]["return"] != 123.0 and np.isfinite(first["all"]["return"])
    finally:
        ev.close()
    again = Evaluator(cfg, str(tmp_path / "out"), progress=False)
    assert again("iql_seed_2", path, ecfg) == first and again.runner is None
