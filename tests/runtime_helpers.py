"""Shared pieces of the runtime tests: real ONNX policies (random, NaN-emitting, wrong shapes), the
simulated Go1 in lock-step as a child process, and lock-step sessions on the real SDK."""
import os
import tempfile

import numpy as np

from go1o4 import contract as C
from go1o4.policy_contract import make_contract, save_contract

#: index of the newest observation's FL clock input sin(2 pi phase) in the 290-float policy input
NEWEST_CLOCK_FL = (C.HISTORY_LEN - 1) * C.OBS_DIM + C.OBS_SLICES["clock"].start


def world_readable_dir(prefix: str) -> str:
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


def export_random_policy(folder: str, seed: int = 0) -> str:
    """A random GaussianActor through the real exporter (ONNX + contract YAML)."""
    import torch

    from go1o4.rl.export import export_onnx
    from go1o4.rl.networks import GaussianActor

    torch.manual_seed(seed)
    path = os.path.join(folder, "random.onnx")
    export_onnx(GaussianActor(init_std=0.3), path)
    os.chmod(path, 0o644)
    os.chmod(os.path.splitext(path)[0] + ".yaml", 0o644)
    return path


def _linear_model(path: str, n_in: int, n_out: int, nan_when_clock_below=None, seed: int = 0) -> str:
    """obs (B, n_in) -> action (B, n_out) = obs W (small); optionally + 0 * sqrt(x_clock + c): NaN when the
    newest FL clock input drops below -c (a few steps after the policy starts)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.normal(size=(n_in, n_out)) * 1e-3).astype(np.float32), "W")
    nodes = [helper.make_node("MatMul", ["obs", "W"], ["lin"])]
    inits = [w]
    out = "lin"
    if nan_when_clock_below is not None:
        inits += [numpy_helper.from_array(np.array([NEWEST_CLOCK_FL], dtype=np.int64), "k"),
                  numpy_helper.from_array(np.array(-nan_when_clock_below, dtype=np.float32), "c"),
                  numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")]
        nodes += [helper.make_node("Gather", ["obs", "k"], ["xk"], axis=1),
                  helper.make_node("Add", ["xk", "c"], ["xc"]),
                  helper.make_node("Sqrt", ["xc"], ["sq"]),
                  helper.make_node("Mul", ["sq", "zero"], ["nan_or_zero"]),
                  helper.make_node("Add", ["lin", "nan_or_zero"], ["action"])]
        out = "action"
    else:
        nodes.append(helper.make_node("Identity", [out], ["action"]))
    graph = helper.make_graph(nodes, "test_policy",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", n_in])],
                              [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    save_contract(os.path.splitext(path)[0] + ".yaml", make_contract())
    for p in (path, os.path.splitext(path)[0] + ".yaml"):
        os.chmod(p, 0o644)
    return path


def nan_policy(folder: str) -> str:
    """Outputs NaN once the newest FL clock input is below -0.5 (after ~10 policy steps at 3 Hz)."""
    return _linear_model(os.path.join(folder, "nan_policy.onnx"), C.POLICY_INPUT_DIM, C.NUM_ACTIONS, -0.5)


def wrong_shape_policy(folder: str, n_in: int = 280, n_out: int = C.NUM_ACTIONS) -> str:
    return _linear_model(os.path.join(folder, "wrong_%d_%d.onnx" % (n_in, n_out)), n_in, n_out)


def session_config(log_dir: str, channel: str, *overrides: str):
    from go1o4.robot_runtime.session_config import load_session_config

    base = ["logging.log_dir=%s" % log_dir, "t265.channel=%s" % channel, "runtime.settle_s=0.2",
            "runtime.lockstep_recv_timeout_s=0.01"]
    return load_session_config(None, base + list(overrides))


def lockstep_session(cfg, robot, policy, messages=None, **kw):
    from go1o4.robot_runtime.session_cli import build_session

    sink = messages if messages is not None else []
    return build_session(cfg, policy, lockstep=True, robot=robot, on_message=sink.append, **kw)


def close_session(session) -> None:
    session.close()
    if session.t265 is not None:
        session.t265.stop()
    session.loop.link.close()


def realtime_sim(cfg, priority: int = 30, **kw):
    """A real-time simulated Go1 in its own process, at SCHED_FIFO ``priority`` when allowed: this test machine
    is shared and fully loaded, and a starved simulator would (correctly) trip the runtime's state timeout."""
    from go1o4.robot_runtime.session_cli import start_simulated_robot

    robot = start_simulated_robot(cfg, "realtime", "subprocess", **kw)
    try:
        os.sched_setscheduler(robot.proc.pid, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        pass
    return robot


def failing_policy(folder: str) -> str:
    """Declares obs (B, 290) -> action (B, 12) like a good policy, but every call fails inside ONNX Runtime
    (a Reshape of the 290 inputs into rows of 7)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = os.path.join(folder, "failing.onnx")
    inits = [numpy_helper.from_array(np.array([-1, 7], dtype=np.int64), "shape7"),
             numpy_helper.from_array(np.zeros((7, C.NUM_ACTIONS), dtype=np.float32), "W")]
    nodes = [helper.make_node("Reshape", ["obs", "shape7"], ["rows"]),
             helper.make_node("MatMul", ["rows", "W"], ["action"])]
    graph = helper.make_graph(nodes, "failing_policy",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", C.POLICY_INPUT_DIM])],
                              [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", C.NUM_ACTIONS])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    save_contract(os.path.splitext(path)[0] + ".yaml", make_contract())
    return path
