"""Data-layer benchmark on the full real Uni-O4 log set (154,010 steps, 170 files).

Measures: raw logs -> training-ready dataset (import + reward + history stacking + stats; target
< 30 s), peak memory, writing the logs in our episode format (size on disk vs the original HDF5),
reading them back, the dataset file, and the on-robot writer's per-step / per-flush cost.
Prints the numbers and writes ``benchmarks/results/data.json``.

    python benchmarks/bench_data.py [--logs shared/data/uni_o4_go1_mattress_2023_08]
"""
import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from go1o4.data.dataset import BuildConfig, TransitionDataset, build_dataset  # noqa: E402
from go1o4.data.import_uni_o4 import find_uni_o4_files, import_uni_o4, iter_uni_o4_episodes  # noqa: E402
from go1o4.data.reader import open_dataset  # noqa: E402
from go1o4.data.writer import SessionWriter  # noqa: E402

DEFAULT_LOGS = REPO.parent / "shared" / "data" / "uni_o4_go1_mattress_2023_08"
TARGET_S = 30.0


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path, followlinks=True) for f in fs
               if f.endswith((".h5", ".hdf5")))


def runtime_step(rng: np.random.Generator, i: int) -> dict:
    """Every field the runtime logs at a policy step (random values)."""
    v = lambda n: rng.normal(size=n)  # noqa: E731
    return {"time": i * 0.02, "tick": 2 * i, "q": v(12), "dq": v(12), "tau_est": v(12), "imu_quat": v(4),
            "imu_gyro": v(3), "imu_acc": v(3), "imu_rpy": v(3), "foot_force": v(4), "obs": v(58),
            "policy_input": v(290), "action": v(12), "q_des": v(12), "command": v(15), "t265_position": v(3),
            "t265_velocity_world": v(3), "t265_velocity_body": v(3), "t265_angular_velocity": v(3),
            "t265_confidence": 3, "reward": 0.01, "safety_state": 0, "log_prob": -3.0, "value": 1.0}


def bench_writer(tmp: str, steps: int = 1500, fsync: bool = True) -> dict:
    rng = np.random.default_rng(0)
    data = [runtime_step(rng, i) for i in range(steps)]
    w = SessionWriter(tmp, {"terrain": "bench"}, session_id="writer_bench", flush_every_steps=50,
                      flush_every_s=1e9, fsync=fsync)
    ep = w.start_episode()
    append_t, flush_t = [], []
    for i, s in enumerate(data):
        t0 = time.perf_counter()
        if (i + 1) % 50:
            ep.append(s)
            append_t.append(time.perf_counter() - t0)
        else:
            ep.append(s)  # this append triggers the flush (data, fsync, counter, fsync)
            flush_t.append(time.perf_counter() - t0)
    ep.close()
    return {"steps": steps, "fields": len(data[0]), "fsync": fsync,
            "append_us_median": float(np.median(append_t) * 1e6),
            "flush_ms_median": float(np.median(flush_t) * 1e3), "flush_ms_max": float(np.max(flush_t) * 1e3),
            "mean_us_per_step": float((np.sum(append_t) + np.sum(flush_t)) / steps * 1e6),
            "bytes_per_step": os.path.getsize(ep.path) / steps}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--logs", default=str(DEFAULT_LOGS))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "data.json"))
    args = p.parse_args()
    files = find_uni_o4_files(args.logs)
    res = {"files": len(files), "original_bytes": folder_bytes(args.logs)}

    tracemalloc.start()
    t0 = time.perf_counter()
    episodes = list(iter_uni_o4_episodes(args.logs))
    t1 = time.perf_counter()
    ds = build_dataset(episodes, BuildConfig())
    t2 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    res.update({"steps": int(sum(e.num_steps for e in episodes)), "transitions": len(ds),
                "import_s": t1 - t0, "build_s": t2 - t1, "import_plus_build_s": t2 - t0,
                "target_s": TARGET_S, "peak_traced_mb": peak / 2**20})
    del episodes

    tmp = tempfile.mkdtemp(prefix="go1o4_bench_")
    try:
        t0 = time.perf_counter()
        ds2 = build_dataset(args.logs)  # straight from the paths (reads files lazily)
        res["build_from_paths_s"] = time.perf_counter() - t0
        del ds2
        t0 = time.perf_counter()
        import_uni_o4(args.logs, os.path.join(tmp, "logs"), progress=False)
        res["write_our_format_s"] = time.perf_counter() - t0
        res["our_format_bytes"] = folder_bytes(os.path.join(tmp, "logs"))
        res["our_format_vs_original"] = res["our_format_bytes"] / res["original_bytes"]
        t0 = time.perf_counter()
        eps, errors = open_dataset(os.path.join(tmp, "logs")).load_all()
        res["read_our_format_s"] = time.perf_counter() - t0
        assert not errors and sum(e.num_steps for e in eps) == res["steps"]
        del eps
        t0 = time.perf_counter()
        ds.save(os.path.join(tmp, "ds.h5"))
        res["dataset_save_s"] = time.perf_counter() - t0
        res["dataset_bytes"] = os.path.getsize(os.path.join(tmp, "ds.h5"))
        t0 = time.perf_counter()
        TransitionDataset.load(os.path.join(tmp, "ds.h5"))
        res["dataset_load_s"] = time.perf_counter() - t0
        res["writer_fsync"] = bench_writer(os.path.join(tmp, "w1"), fsync=True)
        res["writer_no_fsync"] = bench_writer(os.path.join(tmp, "w2"), fsync=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    res["meets_target"] = res["import_plus_build_s"] < TARGET_S

    for k, v in res.items():
        print("%-26s %s" % (k, ("%.3f" % v) if isinstance(v, float) else v))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
