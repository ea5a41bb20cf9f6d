"""The policy the runtime runs: an ONNX file checked against its YAML contract, on ONNX Runtime.

    policy = OnnxPolicy.load("sim_pretrain/policies/go1_flat.onnx")   # ContractMismatch if it does not fit
    mean = policy.act(policy_input)                                    # (290,) -> (12,) raw action

Online PPO needs stochastic actions: :class:`GaussianExploration` draws a ~ N(mean, exp(log_std)^2)
and returns log pi(a|s) (the PPO ratio's behaviour log-probability, paper Eq. 1/4). Any object with
``act(policy_input) -> action`` (e.g. a torch actor wrapped by the trainer) can replace the ONNX policy.
Python 3.8 syntax.
"""
import math
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from go1o4 import contract as C
from go1o4.policy_contract import (
    ContractMismatch,
    check_contract,
    check_onnx_shapes,
    contract_path_for,
    file_sha256,
    load_contract,
)


class PolicyLoadError(ValueError):
    """The policy file cannot be used (missing, not ONNX, contract unreadable). Names the file."""


class OnnxPolicy:
    """One deterministic ONNX policy: input ``obs`` (B, 290) -> output ``action`` (B, 12)."""

    def __init__(self, path: str, session: Any, contract: Dict[str, Any], sha256: str):
        self.path, self.session, self.contract, self.sha256 = path, session, contract, sha256
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self._x = np.zeros((1, C.POLICY_INPUT_DIM), dtype=np.float32)

    @classmethod
    def load(cls, path: str, contract_path: Optional[str] = None, threads: int = 1) -> "OnnxPolicy":
        """Load and check ``path`` and its contract (default: ``<path without .onnx>.yaml``).

        Raises :class:`PolicyLoadError` (file problems) or :class:`ContractMismatch` (wrong layout or shapes).
        """
        if not os.path.isfile(path):
            raise PolicyLoadError("policy %s not found" % path)
        cpath = contract_path or contract_path_for(path)
        try:
            contract = load_contract(cpath)
        except (FileNotFoundError, ValueError) as e:
            raise PolicyLoadError(str(e))
        check_contract(contract, cpath)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise PolicyLoadError("onnxruntime is missing (pip install '.[robot]'): %s" % e)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types (InvalidGraph, Fail...)
            raise PolicyLoadError("policy %s is not a loadable ONNX model: %s" % (path, str(e).splitlines()[0][:300]))
        check_onnx_shapes(session, contract, path)
        policy = cls(path, session, contract, file_sha256(path))
        policy.smoke_test()
        return policy

    def smoke_test(self) -> np.ndarray:
        """Run once on the neutral input (standing still, zero command): a model that declares 290 -> 12 but
        fails when called, or answers NaN, is refused at load, before the robot is calibrated."""
        try:
            out = np.asarray(self.act(neutral_policy_input()))
        except Exception as e:  # onnxruntime's own exception types
            raise PolicyLoadError("policy %s fails when run on a neutral input: %s"
                                  % (self.path, str(e).splitlines()[0][:300] if str(e) else type(e).__name__))
        if out.shape != (C.NUM_ACTIONS,) or not np.all(np.isfinite(out)):
            raise PolicyLoadError("policy %s answers a neutral input with %s (expected %d finite values)"
                                  % (self.path, np.array2string(out, precision=3, threshold=20), C.NUM_ACTIONS))
        return out

    def act(self, policy_input: np.ndarray) -> np.ndarray:
        """The deterministic (mean) raw action for one 290-float policy input."""
        self._x[0] = policy_input
        return self.session.run([self.output_name], {self.input_name: self._x})[0][0].astype(np.float64)

    def contract_log_std(self) -> Optional[np.ndarray]:
        """The exported actor's log-std (contract ``policy.log_std``), if the exporter recorded it."""
        v = (self.contract.get("policy") or {}).get("log_std")
        if v is None or len(v) != C.NUM_ACTIONS:
            return None
        return np.asarray(v, dtype=np.float64)

    def describe(self) -> Dict[str, Any]:
        return {"path": os.path.abspath(self.path), "sha256": self.sha256, "input": self.input_name,
                "output": self.output_name}


def neutral_policy_input() -> np.ndarray:
    """The 290-float input of a robot standing level in the default pose with a zero command (5 equal frames)."""
    obs = C.build_observation(np.array([1.0, 0.0, 0.0, 0.0]), C.DEFAULT_Q, np.zeros(C.NUM_JOINTS),
                              C.command_vector(0.0, 0.0, 0.0), np.zeros(C.NUM_ACTIONS), 0.0)
    return C.ObservationHistory().reset(obs)


def gaussian_log_prob(action: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> float:
    """log N(a; mean, diag(exp(log_std)^2)) summed over the action dimensions."""
    z = (np.asarray(action) - mean) / np.exp(log_std)
    return float(np.sum(-0.5 * z * z - log_std - 0.5 * math.log(2.0 * math.pi)))


class GaussianExploration:
    """a = mean + exp(log_std) * eps, eps ~ N(0, I); returns (a, log pi(a|s)) for online PPO."""

    def __init__(self, log_std: Sequence[float], seed: Optional[int] = None):
        ls = np.broadcast_to(np.asarray(log_std, dtype=np.float64), (C.NUM_ACTIONS,)).copy()
        if not np.all(np.isfinite(ls)):
            raise ValueError("log_std must be finite, got %r" % (ls.tolist(),))
        self.log_std, self.std = ls, np.exp(ls)
        self.rng = np.random.default_rng(seed)

    def sample(self, mean: np.ndarray):
        a = mean + self.std * self.rng.standard_normal(C.NUM_ACTIONS)
        return a, gaussian_log_prob(a, mean, self.log_std)


__all__ = ["ContractMismatch", "GaussianExploration", "OnnxPolicy", "PolicyLoadError", "gaussian_log_prob"]
