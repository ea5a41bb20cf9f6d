"""Data that is not what it claims (issue 14.5): symlink loops, an unreadable 48-byte episode, rate_hz 0, and the
accounting `go1o4 data build` prints. Real HDF5 through the real writer."""
import os

import h5py
import numpy as np
from go1o4.data.reader import open_dataset
from go1o4.data.writer import SessionWriter

from go1o4 import contract as C


def _session(root, n_eps=2, steps=30):
    w = SessionWriter(str(root), {"terrain": "test"}, session_id="s", fsync=False, flush_every_steps=10)
    for k in range(n_eps):
        ep = w.start_episode()
        for i in range(steps):
            obs = np.zeros(C.OBS_DIM)
            obs[0:3] = (0.0, 0.0, -1.0)
            obs[3:] = 0.01 * i + k
            ep.append({"time": i * 0.02, "obs": obs, "action": np.full(12, 0.1 * k), "reward": 1.0})
        ep.close("truncation", "time_limit")
    return w


def test_symlink_loop_lists_each_episode_once(tmp_path):
    _session(tmp_path / "logs")
    os.symlink("..", str(tmp_path / "logs" / "s" / "loop"))  # logs/s/loop -> logs (a loop)
    os.symlink(str(tmp_path / "logs" / "s"), str(tmp_path / "logs" / "again"))
    ds = open_dataset(str(tmp_path / "logs"))
    assert len(ds) == 2, [r.path for r in ds.episodes]


def test_unreadable_and_bad_rate_episodes_are_reported_and_skipped(tmp_path, capsys):
    from go1o4.cli import main
    _session(tmp_path / "logs", n_eps=3)
    folder = tmp_path / "logs" / "s"
    (folder / "episode_00003.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)  # 48 bytes: a crash at once
    with h5py.File(str(folder / "episode_00001.h5"), "a") as f:
        f.attrs["rate_hz"] = 0.0
    assert main(["data", "validate", str(tmp_path / "logs")]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "episode_00003.h5" in text and "rate_hz is 0.0" in text and "Traceback" not in text
    assert main(["data", "build", str(tmp_path / "logs"), "-o", str(tmp_path / "ds.h5"), "--reward", "logged"]) == 1
    out = capsys.readouterr()
    assert "SKIPPED" in out.err and "rate_hz" in out.err and "episode_00003.h5" in out.err
    assert "from 2 episode(s)" in out.out and "accounting: 60 steps read" in out.out and "2 episode(s) unreadable" in out.out
