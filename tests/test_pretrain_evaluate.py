"""The shipped policy (sim_pretrain/policies/go1_flat.onnx) walks in MuJoCo at vx = 0.5 m/s (short check)."""
import json
import os

import pytest

from go1o4.cli import main

POLICY = os.path.join(os.path.dirname(__file__), "..", "sim_pretrain", "policies", "go1_flat.onnx")


def test_shipped_policy_walks_without_falling(tmp_path, capsys):
    out = tmp_path / "eval.json"
    rc = main(["evaluate", POLICY, "--vx", "0.5", "--episodes", "2", "--steps", "250", "--workers", "0",
               "--json", str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "|vx err|" in table
    row = json.loads(out.read_text())["rows"][0]
    assert row["falls"] == 0 and row["length"] == 250
    assert row["vx_err_steady"] < 0.2  # it moves at the commanded speed after the first 2 s
    assert row["return"] > 0


def test_evaluate_reports_a_bad_policy_path(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.onnx"), "--episodes", "1", "--steps", "2"]) == 2
    assert "not found" in capsys.readouterr().err


def test_evaluate_refuses_a_policy_without_contract(tmp_path, capsys):
    p = tmp_path / "p.onnx"
    p.write_bytes(open(POLICY, "rb").read())
    with pytest.raises(FileNotFoundError, match="contract"):
        from go1o4.sim_pretrain.cli_evaluate import load_policy
        load_policy(str(p))
