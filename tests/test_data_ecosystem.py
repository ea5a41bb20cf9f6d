"""Exports loaded by the ecosystem's own libraries (Minari, LeRobot's on-disk format) and the rerun log viewer."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from go1o4.data.dataset import BuildConfig, build_dataset
from go1o4.data.log_format import END_TERMINAL, Episode
from go1o4.data.reader import open_dataset

from go1o4 import contract as C
from go1o4.cli import main

LEROBOT_PY = Path(__file__).resolve().parents[1] / ".venv-lerobot" / "bin" / "python"
SESSION = "20230808-215007"  # one episode, 914 steps, ends in a fall


def test_minari_export_loads_with_minari(real_logs_dir, tmp_path, monkeypatch, capsys):
    minari = pytest.importorskip("minari")  # in the [loaders] extra that `make venv` installs
    root = str(tmp_path / "minari_root")
    assert main(["data", "export", str(real_logs_dir / SESSION), "--format", "minari", "-o", root,
                 "--reward", "uni_o4_body"]) == 0
    assert "minari.load_dataset('go1o4/mattress-v0')" in capsys.readouterr().out
    monkeypatch.setenv("MINARI_DATASETS_PATH", root)
    d = minari.load_dataset("go1o4/mattress-v0")
    ref = build_dataset([str(real_logs_dir / SESSION)], BuildConfig(reward="uni_o4_body"))
    assert d.total_episodes == 1 and d.total_steps == len(ref) == 914
    ep = next(d.iterate_episodes())
    assert ep.observations.shape == (915, ref.observations.shape[1]) and ep.actions.shape == (914, C.NUM_ACTIONS)
    np.testing.assert_allclose(ep.rewards, ref.rewards, rtol=1e-6)
    np.testing.assert_allclose(ep.observations[:-1], ref.observations)
    assert ep.terminations[-1] and ep.terminations.sum() == 1 and not ep.truncations.any()
    # a second export under the same id is refused by minari, reported in one line
    assert main(["data", "export", str(real_logs_dir / SESSION), "--format", "minari", "-o", root]) == 2
    assert "already exists" in capsys.readouterr().err


def test_lerobot_export_matches_the_logs(real_logs_dir, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    out = str(tmp_path / "lerobot")
    sessions = [str(real_logs_dir / s) for s in (SESSION, "20230807-170045")]
    assert main(["data", "export"] + sessions + ["--format", "lerobot", "-o", out]) == 0
    info = json.load(open(os.path.join(out, "meta", "info.json")))
    assert info["codebase_version"] == "v3.0" and info["fps"] == 50 and info["total_episodes"] == 3
    feats = info["features"]
    for k in ("observation.state", "observation.t265_velocity", "observation.command", "action", "next.reward",
              "next.done", "next.truncated", "episode_index", "frame_index", "timestamp", "index", "task_index"):
        assert k in feats, k
    data = pq.read_table(os.path.join(out, info["data_path"].format(chunk_index=0, file_index=0))).to_pydict()
    eps = pq.read_table(os.path.join(out, "meta", "episodes", "chunk-000", "file-000.parquet")).to_pydict()
    assert len(data["index"]) == info["total_frames"] == sum(eps["length"]) == 915 + 5172 + 152
    logs = [ref.load() for ref in open_dataset(sessions).episodes]
    for i, ep in enumerate(logs):
        a, b = eps["dataset_from_index"][i], eps["dataset_to_index"][i]
        assert b - a == ep.num_steps and set(data["episode_index"][a:b]) == {i}
        np.testing.assert_allclose(np.array(data["observation.state"][a:b]), ep.steps["obs"], rtol=1e-6)
        np.testing.assert_allclose(np.array(data["action"][a:b]), ep.steps["action"], rtol=1e-6)
        np.testing.assert_allclose(np.array(data["next.reward"][a:b]), ep.steps["reward"], rtol=1e-6)
        assert data["next.done"][b - 1] == ep.terminal and data["next.truncated"][b - 1] == (not ep.terminal)
        assert not any(data["next.done"][a:b - 1]) and data["frame_index"][a:b] == list(range(ep.num_steps))
        assert np.isfinite(np.array(data["observation.t265_velocity"][a:b])).all()
    stats = json.load(open(os.path.join(out, "meta", "stats.json")))
    assert len(stats["action"]["mean"]) == C.NUM_ACTIONS and np.isfinite(stats["observation.roll_pitch"]["max"]).all()
    assert main(["data", "export", sessions[0], "--format", "lerobot", "-o", out]) == 2  # never over an old one
    assert "already exists" in capsys.readouterr().err


def test_lerobot_export_loads_in_lerobot_dataset(real_logs_dir, tmp_path):
    """LeRobot's own LeRobotDataset reads our export. lerobot needs torch<2.11 + torchvision, which cannot sit beside
    the project's torch, so it lives in its own venv (`make lerobot-venv`, built by .ci/run) and runs in a subprocess."""
    if not LEROBOT_PY.exists():
        pytest.skip("%s not found: run `make lerobot-venv` (lerobot 0.4.4 needs torch<2.11 and torchvision, which "
                    "do not install beside the project's torch, so it gets its own venv)" % LEROBOT_PY)
    from go1o4.data.export_lerobot import features

    out = tmp_path / "lerobot"
    sessions = [str(real_logs_dir / s) for s in (SESSION, "20230807-170045")]
    assert main(["data", "export"] + sessions + ["--format", "lerobot", "-o", str(out)]) == 0
    logs = [ref.load() for ref in open_dataset(sessions).episodes]
    lengths = [ep.num_steps for ep in logs]
    starts = np.cumsum([0] + lengths)
    frames = [0, lengths[0] - 1, int(starts[2]) + 7]  # first, episode 0's last (a fall), inside episode 2
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    r = subprocess.run([str(LEROBOT_PY), str(Path(__file__).with_name("lerobot_load.py")), str(out),
                        "go1o4/mattress-v0", ",".join(map(str, frames))],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["fps"] == 50 and got["num_episodes"] == 3 and got["num_frames"] == got["len"] == sum(lengths)
    assert got["episode_lengths"] == lengths
    assert set(got["features"]) == set(features()) and set(features()) <= set(got["item_keys"])
    for f, item in zip(frames, got["items"]):
        e = int(np.searchsorted(starts, f, side="right")) - 1
        i = f - int(starts[e])
        ep = logs[e]
        assert item["episode_index"] == e and item["frame_index"] == i and item["index"] == f
        assert len(item["observation.state"]) == C.OBS_DIM
        np.testing.assert_allclose(item["observation.state"], ep.steps["obs"][i], rtol=1e-6)
        np.testing.assert_allclose(item["action"], ep.steps["action"][i], rtol=1e-6)
        np.testing.assert_allclose(item["next.reward"], ep.steps["reward"][i], rtol=1e-6)
        assert bool(item["next.done"]) == (ep.terminal and i == ep.num_steps - 1)
        assert item["timestamp"] == pytest.approx(i / 50.0, abs=1e-4)


def synthetic_episode(seconds: float = 100.0) -> Episode:
    """A runtime-profile episode with safety state changes (calibrating -> running -> paused -> running -> damping)."""
    n = int(seconds * 50)
    rng = np.random.default_rng(0)
    t = np.arange(n) / 50.0
    safety = np.full(n, 2, np.int16)
    safety[:100], safety[n // 3:n // 3 + 100], safety[-20:] = 1, 3, 0
    q = np.tile(C.DEFAULT_Q, (n, 1)) + 0.2 * np.sin(2 * np.pi * 2 * t)[:, None]
    steps = {
        "time": t, "obs": rng.normal(size=(n, C.OBS_DIM)).astype(np.float32),
        "action": rng.normal(size=(n, 12)).astype(np.float32), "q": q.astype(np.float32),
        "q_des": (q + 0.05 * rng.normal(size=q.shape)).astype(np.float32),
        "command": np.tile([0.5, 0.0, 0.2], (n, 1)).astype(np.float32),
        "t265_velocity_body": (np.tile([0.45, 0.0, 0.0], (n, 1)) + 0.05 * rng.normal(size=(n, 3))).astype(np.float32),
        "imu_gyro": np.tile([0.0, 0.0, 0.2], (n, 1)).astype(np.float32),
        "imu_rpy": np.stack([0.02 * np.sin(t), np.linspace(0, 1.2, n), np.zeros(n)], 1).astype(np.float32),
        "foot_force": np.abs(rng.normal(50, 20, size=(n, 4))).astype(np.float32),
        "reward": rng.uniform(0, 0.05, n).astype(np.float32), "safety_state": safety,
    }
    return Episode(steps, END_TERMINAL, "fall", name="synthetic/episode_00000")


def test_view_writes_an_rrd_that_rerun_reads_back(tmp_path):
    rr_chunk = pytest.importorskip("rerun.chunk")
    from go1o4.data.view import write_rrd

    ep = synthetic_episode(20.0)
    path = str(tmp_path / "ep.rrd")
    info = write_rrd(ep, path)
    rows, texts = {}, []
    for chunk in rr_chunk.RrdReader(path).store().stream():
        rows[chunk.entity_path] = rows.get(chunk.entity_path, 0) + chunk.num_rows
        if chunk.entity_path == "/events":
            batch = chunk.to_record_batch()
            col = [c for c in batch.schema.names if c.endswith("TextLog:text")][0]
            texts += [str(x) for v in batch.column(col).to_pylist() for x in (v or [])]
    for entity in ("joints/FL_thigh/q", "joints/FL_thigh/q_des", "velocity/vx/cmd", "velocity/vx/measured",
                   "velocity/yaw_rate/measured", "attitude/roll", "attitude/pitch", "feet/RR", "reward",
                   "safety/state"):
        assert rows.get("/" + entity) == ep.num_steps, entity
    assert info["events"] == 6 and any("running -> paused" in x for x in texts), texts
    assert any("end: terminal (fall)" in x for x in texts)


def test_view_and_plot_cli(real_logs_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("rerun")
    monkeypatch.delenv("DISPLAY", raising=False)
    out = str(tmp_path / "v.rrd")
    assert main(["data", "view", str(real_logs_dir / SESSION), "-o", out]) == 0
    assert "open it with: rerun " + out in capsys.readouterr().out and os.path.getsize(out) > 10000

    from go1o4.data.plots import plot_episode

    png = str(tmp_path / "long.png")  # 100 s with safety changes: drawn as envelopes, states by name
    plot_episode(synthetic_episode(100.0), png)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert main(["data", "plot", str(real_logs_dir / SESSION), "-o", str(tmp_path / "z.png"),
                 "--window", "5:9"]) == 0
    assert main(["data", "plot", str(real_logs_dir / SESSION), "-o", str(tmp_path / "z.png"),
                 "--window", "500:600"]) == 2
    assert "holds no step" in capsys.readouterr().err
