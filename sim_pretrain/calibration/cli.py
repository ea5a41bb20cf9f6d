"""``go1o4 calibrate``: fit the simulated mattress and motor model to the real logs with the authors' policy.

    go1o4 calibrate --out sim_pretrain/calibration/run_ac300            # default grid, resumable
    go1o4 calibrate --out DIR --motor actuator_net --stiffness 250 300 --damping 6 --friction 0.8

The policy (default: the authors' checkpoint in shared/data/uni_o4_go1_policies, imported with
``go1o4 import-policy`` into DIR) runs in each candidate world as on the robot; every candidate is
appended to ``DIR/candidates.jsonl`` (a rerun skips those already there), then the best is rerun to draw
real-vs-sim histograms and ``DIR/REPORT.md`` is written.
"""
import json
import os
import sys

import numpy as np

AUTHORS_CKPT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                             os.pardir, "shared", "data", "uni_o4_go1_policies",
                                             "ac_weights_000300.pt"))


def add_arguments(p) -> None:
    p.add_argument("--out", default="runs/calibrate", help="output folder (candidates.jsonl, REPORT.md, PNGs)")
    p.add_argument("--policy", default=AUTHORS_CKPT, help="the robot's policy: walk-these-ways .pt or .onnx (+.yaml)")
    p.add_argument("--logs", default=None, help="real logs folder (default shared/data/uni_o4_go1_mattress_2023_08)")
    p.add_argument("--motor", nargs="+", default=["actuator_net", "ideal_pd"], choices=["ideal_pd", "actuator_net"],
                   help="motor models to try (default: both)")
    p.add_argument("--stiffness", type=float, nargs="+", default=[200.0, 300.0, 450.0, 700.0], help="N/m per foot")
    p.add_argument("--damping", type=float, nargs="+", default=[6.0, 15.0], help="N s/m per foot")
    p.add_argument("--friction", type=float, nargs="+", default=[0.8, 0.5], help="mattress contact friction values")
    p.add_argument("--thickness", type=float, nargs="+", default=[0.15], help="m (contact stiffens towards it)")
    p.add_argument("--episodes", type=int, default=2, help="robots per commanded band and candidate")
    p.add_argument("--seconds", type=float, default=10.0, help="episode length (statistics after 2 s)")
    p.add_argument("--report-only", action="store_true", help="no new candidates: report on candidates.jsonl")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")


def _policy(path: str, out: str):
    """(policy fn, log_std, onnx path): a .pt checkpoint is imported into ``out`` first."""
    import yaml
    from go1o4.sim_pretrain.cli_evaluate import load_policy
    from go1o4.sim_pretrain.cli_import_policy import import_policy

    if path.endswith(".pt") or path.endswith(".pth"):
        onnx = os.path.join(out, "policy.onnx")
        if not os.path.exists(onnx):
            import_policy(path, out)
        path = onnx
    log_std = yaml.safe_load(open(os.path.splitext(path)[0] + ".yaml"))["policy"]["log_std"]
    return load_policy(path), np.asarray(log_std, dtype=np.float64), path


def run(args) -> int:
    from go1o4.sim_pretrain.calibration import real as R
    from go1o4.sim_pretrain.calibration import report as P
    from go1o4.sim_pretrain.calibration import search as Q
    from go1o4.sim_pretrain.calibration import stats as S

    from go1o4.rl.wtw_import import ImportPolicyError

    if args.episodes < 1 or args.seconds <= 2.5:
        sys.stderr.write("go1o4 calibrate: need --episodes >= 1 and --seconds > 2.5\n")
        return 2
    os.makedirs(args.out, exist_ok=True)
    try:
        policy, log_std, policy_path = _policy(args.policy, args.out)
        real_arrays = R.real_band_arrays(args.logs or R.REAL_LOGS)
    except (ImportPolicyError, FileNotFoundError, ValueError, KeyError) as e:
        sys.stderr.write("go1o4 calibrate: %s\n" % e)
        return 2
    real = {b: S.summarize(a) for b, a in real_arrays.items()}
    commands = {b: float(np.mean(a["command"])) for b, a in real_arrays.items()}
    with open(os.path.join(args.out, "real_stats.json"), "w") as f:
        json.dump({"commands": commands, "real": real}, f, indent=1)
    jsonl = os.path.join(args.out, "candidates.jsonl")
    cands = [] if args.report_only else Q.grid(args.motor, args.stiffness, args.damping, args.friction, args.thickness)
    try:
        for c in cands:
            c.terrain().validate()
    except ValueError as e:
        sys.stderr.write("go1o4 calibrate: bad candidate: %s\n" % e)
        return 2
    records = Q.run_search(cands, policy, log_std, real, commands, jsonl, args.episodes, args.seconds,
                           progress=not args.no_progress, say=print)
    if not records:
        sys.stderr.write("go1o4 calibrate: no candidates in %s\n" % jsonl)
        return 2
    best = records[0]
    cand = Q.Candidate(**best["candidate"])
    print("best: %s score %.2f; rerunning it for the histograms" % (cand.key, best["score"]))
    sim_arrays = Q.simulate(cand, policy, log_std, commands, best["episodes"], best["seconds"])
    pngs = P.histograms(real_arrays, sim_arrays, args.out)
    report = os.path.join(args.out, "REPORT.md")
    P.write_report(report, records, real, commands, pngs, os.path.relpath(policy_path, args.out))
    print("wrote %s" % report)
    return 0
