"""YAML policy contract: a matching policy loads, a mismatching one is refused naming the field."""
import copy

import numpy as np
import pytest
import torch

from go1o4.policy_contract import (
    ContractMismatch,
    check_contract,
    check_onnx_shapes,
    load_contract,
    make_contract,
    save_contract,
)
from go1o4.rl.export import export_onnx
from go1o4.rl.networks import GaussianActor


def test_runtime_contract_round_trip(tmp_path):
    c = make_contract()
    save_contract(str(tmp_path / "p.yaml"), c)
    loaded = load_contract(str(tmp_path / "p.yaml"))
    check_contract(loaded, "p.yaml")


@pytest.mark.parametrize("mutate,expected", [
    (lambda c: c["observation"].__setitem__("history", 3), "contract.observation.history: expected 5, got 3"),
    (lambda c: c["action"].__setitem__("scale", 0.5), "contract.action.scale"),
    (lambda c: c["joint_order"].reverse(), "contract.joint_order[0]"),
    (lambda c: c["control"].__setitem__("kp", 40.0), "contract.control.kp"),
    (lambda c: c["observation"]["per_step"][3].__setitem__("scale", 1.0), "per_step[3].scale"),
    (lambda c: c.pop("action"), "contract.action: missing"),
])
def test_mismatch_names_the_field(mutate, expected):
    c = copy.deepcopy(make_contract())
    mutate(c)
    with pytest.raises(ContractMismatch) as e:
        check_contract(c, "bad.yaml")
    assert expected in str(e.value)
    assert "bad.yaml" in str(e.value)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="policy contract"):
        load_contract(str(tmp_path / "nope.yaml"))
    (tmp_path / "bad.yaml").write_text("a: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_contract(str(tmp_path / "bad.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_contract(str(tmp_path / "list.yaml"))


def test_onnx_shape_check_refuses_wrong_shapes(tmp_path):
    import onnxruntime as ort
    path = str(tmp_path / "good.onnx")
    diff = export_onnx(GaussianActor(), path)
    assert diff < 1e-5
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    contract = load_contract(str(tmp_path / "good.yaml"))
    check_contract(contract)
    check_onnx_shapes(sess, contract)
    y = sess.run(None, {"obs": np.zeros((1, 290), np.float32)})[0]
    assert y.shape == (1, 12)

    # a policy with a different input size (e.g. history 3) is refused with the dimension named
    bad = torch.nn.Linear(174, 12)
    bad_path = str(tmp_path / "bad.onnx")
    torch.onnx.export(bad, (torch.zeros(1, 174),), bad_path, input_names=["obs"], output_names=["action"],
                      dynamic_axes={"obs": {0: "b"}}, dynamo=False)
    sess = ort.InferenceSession(bad_path, providers=["CPUExecutionProvider"])
    with pytest.raises(ContractMismatch, match="input 'obs' last dim: expected 290, got 174"):
        check_onnx_shapes(sess, contract, "bad.onnx")
