"""Simulated Go1 throughput in lock-step mode, driven by Unitree's real SDK client, vs bare MuJoCo.

For each terrain: (1) bare ``mujoco.mj_step`` rate of the very model the simulator uses;
(2) the simulator's own packet path in-process (decode, PD terms, physics, LowState encode; no UDP);
(3) end to end: ``go1o4 sim-robot --mode lockstep`` in its own process (one core, single-threaded)
answering the SDK client (this process), ramping to and holding the default pose.
Real-time factor = simulated time / wall time; target >= 10x in lock-step. Writes
``benchmarks/results/simulator.json``.

    python benchmarks/bench_simulator.py [--seconds 10] [--physics-hz 1000]
"""
import argparse
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Optional, Tuple

import mujoco
import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from go1o4.robot_runtime import wire  # noqa: E402
from go1o4.robot_runtime.sdk_link import SdkLink  # noqa: E402
from go1o4.robot_runtime.simulated_go1 import codec  # noqa: E402
from go1o4.robot_runtime.simulated_go1.cli import launch, terminate  # noqa: E402
from go1o4.robot_runtime.simulated_go1.config import SimRobotConfig  # noqa: E402
from go1o4.robot_runtime.simulated_go1.server import SimulatedGo1  # noqa: E402
from go1o4.sim_pretrain.model.terrain import TerrainConfig  # noqa: E402
from go1o4.sim_pretrain.physics import Go1Physics  # noqa: E402

from go1o4 import contract as C  # noqa: E402

TARGET_RTF = 10.0


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (Linux /proc), to separate our cost from the machine's load."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_mj_step(terrain: str, physics_hz: float, seconds: float) -> dict:
    p = Go1Physics(TerrainConfig(kind=terrain), timestep=1.0 / physics_hz)
    p.reset(pose="standing")
    m, d = p.model, p.data
    n = int(seconds * physics_hz)
    t = time.perf_counter()
    for _ in range(n):
        mujoco.mj_step(m, d)
    wall = time.perf_counter() - t
    return {"steps_per_s": n / wall, "rtf": n / physics_hz / wall}


def server_only(terrain: str, physics_hz: float, seconds: float) -> dict:
    cfg = SimRobotConfig(mode="lockstep", port=0, start_pose="standing", physics_hz=physics_hz,
                         terrain=TerrainConfig(kind=terrain))
    with SimulatedGo1(cfg) as sim:
        rec = wire.new_low_cmd()
        m = rec["motorCmd"]
        m["mode"][:12], m["q"][:12] = C.MODE_SERVO, C.sim_to_sdk(C.DEFAULT_Q)
        m["Kp"][:12], m["Kd"][:12] = wire.to_i16(C.KP, wire.KP_SCALE), wire.to_i16(C.KD, wire.KD_SCALE)
        packet = codec.encode(rec)
        sink_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # replies land here, unread
        sink_sock.bind(("127.0.0.1", 0))
        sink = sink_sock.getsockname()
        n = int(seconds / C.LINK_DT)
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            sim.handle_packet(packet, sink)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        sink_sock.close()
    return {"link_periods_per_s": n / wall, "physics_steps_per_s": n * cfg.steps_per_link / wall,
            "rtf": n * C.LINK_DT / wall, "rtf_cpu": n * C.LINK_DT / cpu, "us_per_packet": wall / n * 1e6}


def _physics_seconds(printed: str) -> float:
    """The simulator's own count of wall seconds spent inside MuJoCo (its exit line: ``physics_s=...``)."""
    for part in printed.replace(",", " ").split():
        if part.startswith("physics_s="):
            return float(part.split("=", 1)[1])
    return float("nan")


def end_to_end(terrain: str, physics_hz: float, seconds: float, cpus: Optional[Tuple[int, int]] = None) -> dict:
    """Lock-step through the SDK: the simulator in its own process, this process as the client.
    ``cpus`` = (simulator CPU, client CPU): (0, 0) puts both on one core, (0, 1) gives each its own."""
    proc, port, _ = launch(["--mode", "lockstep", "--terrain", terrain, "--port", "0", "--control-port", "-1",
                            "--physics-hz", str(physics_hz)])
    saved = os.sched_getaffinity(0)
    try:
        if cpus is not None:
            os.sched_setaffinity(proc.pid, {cpus[0]})
            os.sched_setaffinity(0, {cpus[1]})
        link = SdkLink("127.0.0.1", port, local_port=0, block_ms=500)
        link.send_damping()
        state = link.receive(timeout=2.0)
        q_ramp = state.q.copy()
        n = int(seconds / C.LINK_DT)
        missed = 0
        t, cpu_sim, cpu_client = time.perf_counter(), proc_cpu_seconds(proc.pid), time.process_time()
        for k in tqdm(range(n), desc="%s e2e" % terrain, unit="link", leave=False, mininterval=1.0):
            if k % 10 == 0:
                q_ramp = q_ramp + np.clip(C.DEFAULT_Q - q_ramp, -0.05, 0.05)
            link.send(q_ramp, 0.0, 60.0, 1.5, 0.0)
            state = link.receive(timeout=0.5)
            missed += state is None
        wall = time.perf_counter() - t
        cpu_sim, cpu_client = proc_cpu_seconds(proc.pid) - cpu_sim, time.process_time() - cpu_client
        height_ok = state is not None and abs(state.q - C.DEFAULT_Q).max() < 0.2
    finally:
        os.sched_setaffinity(0, saved)
        printed = terminate(proc)
    steps = int(round(C.LINK_DT * physics_hz))
    physics_s = _physics_seconds(printed)
    return {"cpus_sim_client": list(cpus) if cpus else "any", "link_periods_per_s": n / wall,
            "physics_steps_per_s": n * steps / wall, "rtf": n * C.LINK_DT / wall,
            "us_per_round_trip": wall / n * 1e6, "missed_replies": missed, "robot_stood": bool(height_ok),
            "sim_process_cpu_s": cpu_sim, "client_cpu_s": cpu_client,
            "rtf_sim_cpu": n * C.LINK_DT / max(cpu_sim, 1e-9),
            "sim_physics_s": physics_s, "physics_share_of_sim_cpu": physics_s / max(cpu_sim, 1e-9),
            "rtf_physics_only": n * C.LINK_DT / max(physics_s, 1e-9)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="simulated seconds per measurement")
    ap.add_argument("--physics-hz", type=float, default=1000.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "simulator.json"))
    args = ap.parse_args(argv)
    results = {"physics_hz": args.physics_hz, "sim_seconds": args.seconds, "target_rtf": TARGET_RTF,
               "machine": {"cpus": os.cpu_count(), "load_avg_before": os.getloadavg(),
                           "python": platform.python_version(), "mujoco": mujoco.__version__},
               "terrains": {}}
    two_cores = len(os.sched_getaffinity(0)) >= 2
    for terrain in ("rigid", "mattress"):
        bare = bare_mj_step(terrain, args.physics_hz, args.seconds)
        srv = server_only(terrain, args.physics_hz, args.seconds)
        one = end_to_end(terrain, args.physics_hz, args.seconds, (0, 0))
        e2e = end_to_end(terrain, args.physics_hz, args.seconds, (0, 1) if two_cores else (0, 0))
        r = {"bare_mj_step": bare, "server_only": srv, "lockstep_sdk_one_core": one, "lockstep_sdk": e2e,
             "overhead_ratio_server": bare["steps_per_s"] / srv["physics_steps_per_s"],
             "overhead_ratio_e2e": bare["steps_per_s"] / e2e["physics_steps_per_s"],
             "meets_target_wall": e2e["rtf"] >= TARGET_RTF, "meets_target_sim_cpu": e2e["rtf_sim_cpu"] >= TARGET_RTF,
             "meets_target_server_one_core": srv["rtf_cpu"] >= TARGET_RTF}
        results["terrains"][terrain] = r
        print("%-8s bare mj_step %6.0f steps/s (%4.1fx RT) | simulator alone (packet in -> LowState out, one core) "
              "%4.1fx RT (%3.0f us/packet, overhead x%.1f)"
              % (terrain, bare["steps_per_s"], bare["rtf"], srv["rtf_cpu"], srv["us_per_packet"],
                 r["overhead_ratio_server"]), flush=True)
        for name, x in (("SDK client + simulator on ONE core", one), ("simulator and SDK client on own cores", e2e)):
            print("         lock-step via the real SDK, %s: %4.1fx RT wall (%3.0f us/round trip); simulator "
                  "%4.1fx RT per CPU-second, %2.0f%% of it inside MuJoCo (stepping a moving robot: %4.1fx RT)"
                  % (name, x["rtf"], x["us_per_round_trip"], x["rtf_sim_cpu"], 100 * x["physics_share_of_sim_cpu"],
                     x["rtf_physics_only"]), flush=True)
    results["machine"]["load_avg_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print("wrote %s (load average before/after: %s / %s)" % (args.out, results["machine"]["load_avg_before"],
                                                             results["machine"]["load_avg_after"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
