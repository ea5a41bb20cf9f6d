"""Dead-man takeover (issue 14.2): SIGKILL of a walking runtime -> first damping command, and torque decay.

Each trial: ``go1o4 session`` (real time, real SDK over UDP on 127.0.0.1) walks the simulated Go1 at 0.4 m/s;
~1 s into walking the runtime gets SIGKILL. Measured per trial: the dead-man's first damping command after the
kill (its events file, CLOCK_MONOTONIC like ours) and when the simulated robot applies Kp 0 (its control
channel, polled every ~2 ms: an upper bound). The first trial also records the robot's joint torques (ground
truth) for 1.5 s after the kill. Writes ``benchmarks/results/deadman.json`` and ``deadman_torques.png``.

    .venv/bin/python benchmarks/bench_deadman.py [--trials 20] [--deadman-timeout 0.1]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
RESULTS = REPO / "benchmarks" / "results"
WALK = ("actions:\n  - {t: 0.05, do: calibrate}\n  - {t: 1.5, do: run}\n  - {t: 1.6, do: velocity, vx: 0.4}\n"
        "  - {t: 3.0, do: run}\n")


def _events(path):
    try:
        with open(path) as f:
            return [json.loads(x) for x in f if x.strip()]
    except OSError:
        return []


def _wait(pred, timeout, step=0.002):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def trial(robot, policy, folder, deadman_timeout, record=False):
    from go1o4.robot_runtime.deadman import stop_previous

    robot.reset("standing")
    logs = Path(folder) / ("logs_%d" % time.monotonic_ns())
    script = Path(folder) / "walk.yaml"
    script.write_text(WALK)
    cmd = [sys.executable, "-m", "go1o4.cli", "session", "--policy", policy, "--sim-port", str(robot.port), "--quiet",
           "--log", "--log-dir", str(logs), "--duration", "60", "--no-t265", "--script", str(script),
           "--set", "runtime.settle_s=0.2", "--set", "safety.deadman_timeout=%g" % deadman_timeout]
    if not 0.05 <= deadman_timeout <= 0.2:
        cmd += ["--unsafe-override", "safety.deadman_timeout"]
    out = open(os.path.join(folder, "session.out"), "a")
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT)
    res = {"ok": False}
    try:
        if not _wait(lambda: list(logs.glob("*/episode_00000.h5")), 90, 0.05):
            res["error"] = "the policy never ran"
            return res
        time.sleep(1.0)
        ev_path = str(next(logs.glob("*/deadman.jsonl")))
        if any(e["event"] == "takeover" for e in _events(ev_path)):
            res["error"] = "takeover before the kill (runtime stalled > %g s)" % deadman_timeout
            return res
        gt0 = robot.call("ground_truth")
        t_kill = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        t_sim = _wait(lambda: time.monotonic() if max(robot.call("ground_truth")["kp"]) == 0.0 else None, 3.0, 0.0)
        trace = []
        if record:
            while time.monotonic() - t_kill < 1.5:
                g = robot.call("ground_truth")
                trace.append([time.monotonic() - t_kill] + g["tau"])
                time.sleep(0.005)
        take = _wait(lambda: [e for e in _events(ev_path) if e["event"] == "takeover"], 3.0, 0.01)
        if not take:
            res["error"] = "no takeover"
            return res
        res = {"ok": True, "cause": take[0]["cause"], "kill_to_first_damping_ms": 1e3 * (take[0]["first_damping"] - t_kill),
               "kill_to_detect_ms": 1e3 * (take[0]["detected"] - t_kill),
               "kill_to_robot_kp0_ms": None if t_sim is None else 1e3 * (t_sim - t_kill),
               "tau_abs_max_before": float(np.abs(gt0["tau"]).max()), "kp_before": gt0["kp"][0]}
        if record:
            res["trace"] = trace
        return res
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        stop_previous("127.0.0.1", robot.port)
        out.close()


def pct(x, q):
    return float(np.percentile(np.asarray(x, dtype=np.float64), q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--deadman-timeout", type=float, default=0.1)
    ap.add_argument("--out", default=str(RESULTS / "deadman.json"))
    a = ap.parse_args()
    from runtime_helpers import export_random_policy, realtime_sim, session_config

    folder = tempfile.mkdtemp(prefix="go1o4_bench_dm_")
    policy = os.path.join(REPO, "sim_pretrain", "policies", "go1_flat.onnx")
    if not os.path.exists(policy):
        policy = export_random_policy(folder)
    robot = realtime_sim(session_config(folder, "T265_BDM_%d" % os.getpid()), start_pose="standing")
    trials = []
    try:
        for i in range(a.trials):
            r = trial(robot, policy, folder, a.deadman_timeout, record=(i == 0))
            trials.append(r)
            print("trial %2d: %s" % (i, "kill -> first damping %.2f ms (robot Kp 0 after %s ms), %s" % (
                r["kill_to_first_damping_ms"], "%.1f" % r["kill_to_robot_kp0_ms"] if r["kill_to_robot_kp0_ms"] else "-",
                r["cause"]) if r["ok"] else "FAILED: " + r.get("error", "")), flush=True)
    finally:
        robot.close()
    ok = [t for t in trials if t["ok"]]
    first = [t["kill_to_first_damping_ms"] for t in ok]
    kp0 = [t["kill_to_robot_kp0_ms"] for t in ok if t["kill_to_robot_kp0_ms"] is not None]
    summary = {"trials": len(trials), "ok": len(ok), "deadman_timeout_s": a.deadman_timeout,
               "kill_to_first_damping_ms": {"p50": pct(first, 50), "p99": pct(first, 99), "max": max(first)} if first else {},
               "kill_to_robot_kp0_ms": {"p50": pct(kp0, 50), "p99": pct(kp0, 99), "max": max(kp0)} if kp0 else {},
               "causes": sorted(set(t["cause"] for t in ok)),
               "failures": [t.get("error") for t in trials if not t["ok"]],
               "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()}}
    trace = ok[0].get("trace") if ok else None
    doc = dict(summary, per_trial=[{k: v for k, v in t.items() if k != "trace"} for t in trials],
               torque_trace={"columns": ["t_since_kill_s"] + ["tau_%d" % j for j in range(12)], "rows": trace})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(json.dumps(summary, indent=1))
    if trace:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        t = np.asarray(trace)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(t[:, 0] * 1e3, np.abs(t[:, 1:]), lw=0.8)
        ax.axvline(ok[0]["kill_to_first_damping_ms"], color="k", ls="--", lw=0.8, label="first damping command")
        ax.set_xlabel("ms since SIGKILL of the runtime")
        ax.set_ylabel("|joint torque| (N m)")
        ax.set_title("Simulated Go1: walking torques decay under the dead-man's damping")
        ax.legend()
        fig.tight_layout()
        fig.savefig(str(Path(a.out).with_name("deadman_torques.png")), dpi=110)
    return 0 if len(ok) == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
