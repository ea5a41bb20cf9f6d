"""`go1o4 data` end to end on a few real log sessions: import, ls/info, validate, build, split/merge, plot, export
(Minari, LeRobot and the rerun viewer: tests/test_data_ecosystem.py)."""
import os

import h5py
import numpy as np
from go1o4.data.dataset import TransitionDataset

from go1o4.cli import main

SESSIONS = ("20230807-170045", "20230808-215007")


def test_data_command_end_to_end(real_logs_dir, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for s in SESSIONS:
        os.symlink(real_logs_dir / s, src / s)
    logs, ds_path = str(tmp_path / "logs"), str(tmp_path / "ds.h5")

    assert main(["data", "import", str(src), logs]) == 0
    assert "imported 3 episode(s), 6239 steps, 1 fall(s) into 2 session(s)" in capsys.readouterr().out
    assert main(["data", "ls", logs]) == 0
    out = capsys.readouterr().out
    assert "latex_mattress" in out and "total: 2 session(s), 3 episode(s), 6239 steps" in out
    assert main(["data", "info", logs, str(src / SESSIONS[1])]) == 0
    out = capsys.readouterr().out
    assert "terminal" in out and "fall" in out and "total: 2 session(s), 4 episode(s)" in out

    assert main(["data", "validate", logs]) == 0
    capsys.readouterr()
    bad = os.path.join(logs, SESSIONS[0], "episode_00001.h5")
    with open(bad, "r+b") as f:  # damage one file: validate fails, naming it; the rest still reads
        f.truncate(os.path.getsize(bad) // 3)
    assert main(["data", "validate", logs]) == 1
    out = capsys.readouterr().out
    assert "episode_00001.h5: file is truncated" in out and "3 episode(s), 2 readable" in out

    assert main(["data", "build", logs, "-o", ds_path, "--reward", "uni_o4_body"]) == 1  # built, one skipped
    captured = capsys.readouterr()
    assert "SKIPPED" in captured.err and "episode_00001.h5" in captured.err
    ds = TransitionDataset.load(ds_path)
    assert ds.meta["reward"] == "uni_o4_body" and ds.num_episodes == 2 and ds.terminals.sum() == 1

    assert main(["data", "split", ds_path, "--val-fraction", "0.5", "--seed", "1"]) == 0
    train, val = (TransitionDataset.load(str(tmp_path / ("ds.%s.h5" % p))) for p in ("train", "val"))
    assert train.num_episodes == 1 and val.num_episodes == 1 and len(train) + len(val) == len(ds)
    assert main(["data", "merge", str(tmp_path / "ds.train.h5"), str(tmp_path / "ds.val.h5"),
                 "-o", str(tmp_path / "m.h5")]) == 0
    assert len(TransitionDataset.load(str(tmp_path / "m.h5"))) == len(ds)

    for target, kind in ((str(tmp_path / "ep.png"), logs), (str(tmp_path / "hist.png"), ds_path)):
        args = ["data", "plot", kind, "-o", target] + (["--episode", "20230808-215007/episode_00000"]
                                                        if kind == logs else [])
        assert main(args) == 0
        assert open(target, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(target) > 20000

    d4rl = str(tmp_path / "d4rl.hdf5")
    assert main(["data", "export", ds_path, "--format", "d4rl", "-o", d4rl]) == 0
    with h5py.File(d4rl, "r") as f:
        for k in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations"):
            assert len(f[k]) == len(ds), k
        assert f["terminals"].dtype == bool and f["terminals"][()].sum() == 1
        np.testing.assert_array_equal(f["next_observations"][()], ds.next_observations)

    import d3rlpy  # the D4RL export as d3rlpy's own MDPDataset

    with h5py.File(d4rl, "r") as f:
        mdp = d3rlpy.dataset.MDPDataset(f["observations"][()], f["actions"][()], f["rewards"][()],
                                        f["terminals"][()], timeouts=f["timeouts"][()],
                                        action_space=d3rlpy.constants.ActionSpace.CONTINUOUS)
    assert len(mdp.episodes) == ds.num_episodes and sum(e.size() for e in mdp.episodes) == len(ds)
    assert sum(bool(e.terminated) for e in mdp.episodes) == 1 and mdp.dataset_info.action_size == 12

    assert main(["data", "ls", str(tmp_path / "nowhere")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_data_package_imports_without_mujoco_torch_or_matplotlib():
    import subprocess
    import sys

    code = ("import sys, go1o4.data.cli, go1o4.data.dataset, go1o4.data.reader, go1o4.data.writer, "
            "go1o4.data.export, go1o4.data.rewards, go1o4.data.import_uni_o4, go1o4.data.validate, go1o4.data.plots, "
            "go1o4.data.export_lerobot, go1o4.data.view, go1o4.data.series; "
            "bad = [m for m in ('mujoco', 'torch', 'matplotlib') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 0, r.stdout + r.stderr
