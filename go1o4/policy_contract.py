"""The YAML policy contract: what a policy file expects and produces.

Every exported ONNX policy ships with ``<name>.yaml`` describing its observation layout, action
mapping and gains. The runtime builds the contract it *can* serve from :mod:`go1o4.contract` and
refuses a policy whose contract differs, naming each mismatch.
"""
import hashlib
import os
from typing import Any, Dict, List, Optional

import numpy as np
import yaml

from go1o4 import contract as C

CONTRACT_VERSION = 1


class ContractMismatch(ValueError):
    """A policy does not fit the robot/runtime it is loaded into. ``problems`` lists each field."""

    def __init__(self, source: str, problems: List[str]):
        self.source, self.problems = source, problems
        super().__init__("policy %s does not match the Go1 contract:\n  - %s" % (source, "\n  - ".join(problems)))


def runtime_contract(spec: C.RobotSpec = C.GO1) -> Dict[str, Any]:
    """The contract this code base implements for robot ``spec`` (observation layout, action mapping, gains,
    timing)."""
    return {
        "contract_version": CONTRACT_VERSION,
        "robot": spec.name,
        "joint_order": list(spec.joint_names_sim),
        "observation": {
            "per_step": [{"name": b.name, "size": b.size, "scale": b.scale} for b in C.OBS_BLOCKS],
            "obs_dim": C.OBS_DIM,
            "history": C.HISTORY_LEN,
            "input_dim": C.POLICY_INPUT_DIM,
            "history_order": "oldest_first",
            "command_names": list(C.COMMAND_NAMES),
            "command_scales": [float(x) for x in C.COMMAND_SCALES],
        },
        "action": {
            "dim": spec.num_joints,
            "scale": spec.action_scale,
            "hip_scale_reduction": spec.hip_scale_reduction,
            "clip": spec.clip_actions,
            "default_q": [float(x) for x in spec.default_q],
        },
        "control": {"kp": spec.kp, "kd": spec.kd, "policy_dt": spec.policy_dt},
    }


def make_contract(onnx_input: str = "obs", onnx_output: str = "action", **extra: Any) -> Dict[str, Any]:
    """Contract for a newly exported policy: the runtime contract plus the ONNX tensor names and notes."""
    c = runtime_contract()
    c["onnx"] = {"input": onnx_input, "output": onnx_output}
    c.update(extra)
    return c


def save_contract(path: str, contract: Dict[str, Any]) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(contract, f, sort_keys=False)


def load_contract(path: str) -> Dict[str, Any]:
    if not os.path.exists(path):
        raise FileNotFoundError("policy contract %s not found (every ONNX policy needs its .yaml beside it)" % path)
    with open(path) as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError("policy contract %s is not valid YAML: %s" % (path, e))
    if not isinstance(data, dict):
        raise ValueError("policy contract %s must be a YAML mapping, got %s" % (path, type(data).__name__))
    return data


def _diff(expected: Any, actual: Any, path: str, out: List[str]) -> None:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            out.append("%s: expected a mapping, got %r" % (path, actual))
            return
        for k, v in expected.items():
            if k not in actual:
                out.append("%s.%s: missing" % (path, k))
            else:
                _diff(v, actual[k], "%s.%s" % (path, k), out)
    elif isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            out.append("%s: expected %r, got %r" % (path, expected, actual))
            return
        for i, (e, a) in enumerate(zip(expected, actual)):
            _diff(e, a, "%s[%d]" % (path, i), out)
    elif isinstance(expected, float) or isinstance(actual, float):
        try:
            ok = bool(np.isclose(float(expected), float(actual), rtol=1e-6, atol=1e-9))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            out.append("%s: expected %r, got %r" % (path, expected, actual))
    elif expected != actual:
        out.append("%s: expected %r, got %r" % (path, expected, actual))


def check_contract(policy_contract: Dict[str, Any], source: str = "<contract>", spec: C.RobotSpec = C.GO1) -> None:
    """Raise :class:`ContractMismatch` listing every field where the policy differs from the runtime (robot
    ``spec``)."""
    problems: List[str] = []
    _diff(runtime_contract(spec), policy_contract, "contract", problems)
    if "onnx" not in policy_contract:
        problems.append("contract.onnx: missing (input/output tensor names)")
    if problems:
        raise ContractMismatch(source, problems)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def contract_path_for(onnx_path: str) -> str:
    return os.path.splitext(onnx_path)[0] + ".yaml"


def check_onnx_shapes(session: Any, contract: Dict[str, Any], source: str = "<policy>") -> Optional[str]:
    """Check an onnxruntime InferenceSession against the contract; raise ContractMismatch on a difference."""
    problems = []
    inputs, outputs = session.get_inputs(), session.get_outputs()
    names = contract.get("onnx", {})
    if len(inputs) != 1:
        problems.append("onnx inputs: expected 1, got %d" % len(inputs))
    if len(outputs) < 1:
        problems.append("onnx outputs: expected at least 1, got 0")
    if not problems:
        i, o = inputs[0], outputs[0]
        if names.get("input") and i.name != names["input"]:
            problems.append("onnx input name: contract says %r, model has %r" % (names["input"], i.name))
        if names.get("output") and o.name != names["output"]:
            problems.append("onnx output name: contract says %r, model has %r" % (names["output"], o.name))
        if i.shape[-1] != C.POLICY_INPUT_DIM:
            problems.append("onnx input %r last dim: expected %d, got %r" % (i.name, C.POLICY_INPUT_DIM, i.shape[-1]))
        if o.shape[-1] != C.NUM_ACTIONS:
            problems.append("onnx output %r last dim: expected %d, got %r" % (o.name, C.NUM_ACTIONS, o.shape[-1]))
    if problems:
        raise ContractMismatch(source, problems)
    return None
