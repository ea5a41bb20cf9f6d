"""Importer for the real Uni-O4 Go1 logs: exact step counts, field mapping, falls, bad files."""
import glob
import os

import h5py
import numpy as np
import pytest
from go1o4.data.import_uni_o4 import find_uni_o4_files, import_uni_o4, load_uni_o4_file
from go1o4.data.log_format import LogReadError
from go1o4.data.reader import open_dataset

from go1o4 import contract as C


def test_every_real_file_keeps_its_exact_step_count(real_logs_dir):
    files = find_uni_o4_files(str(real_logs_dir))
    assert len(files) == 170
    total, per_day, falls = 0, {"20230807": 0, "20230808": 0}, []
    for path in files:
        with h5py.File(path, "r") as f:
            n_file = f["states"].shape[0]
        ep = load_uni_o4_file(path)
        assert ep.num_steps == n_file, path
        assert all(len(v) == n_file for v in ep.steps.values()), path
        total += n_file
        per_day[os.path.basename(path)[:8]] += n_file
        if ep.terminal:
            falls.append((ep.name, ep.num_steps, ep.reason))
    assert total == 154010
    assert per_day == {"20230807": 72101, "20230808": 81909}  # shared/data README
    # the only fall in the logs is at the very last step of this file
    assert falls == [("20230808-215007/20230808-215007", 915, "fall")]


def test_field_mapping_from_state_columns(real_logs_dir):
    path = str(real_logs_dir / "20230807-170045" / "20230807-170319.hdf5")
    with h5py.File(path, "r") as f:
        s, a = f["states"][()], f["actions"][()]
    ep = load_uni_o4_file(path)
    np.testing.assert_array_equal(ep["obs"], s[:, :58].astype(np.float32))
    np.testing.assert_array_equal(ep["action"], a)
    np.testing.assert_allclose(ep["q"], s[:, 18:30] + C.DEFAULT_Q, atol=1e-6)
    np.testing.assert_allclose(ep["dq"], s[:, 30:42] / 0.05, atol=1e-5)
    np.testing.assert_allclose(ep["command"][:, :3], s[:, 3:6] / [2.0, 2.0, 0.25], atol=1e-6)
    np.testing.assert_allclose(ep["q_des"], C.action_to_q_des(a), atol=1e-6)
    np.testing.assert_array_equal(ep["t265_velocity_world"], s[:, 61:64].astype(np.float32))
    np.testing.assert_array_equal(ep["t265_angular_velocity"], s[:, 70:73].astype(np.float32))
    np.testing.assert_array_equal(ep["t265_rpy"], s[:, 67:70].astype(np.float32))
    np.testing.assert_allclose(np.diff(ep["time"]), 0.02)
    # files started after a recalibration begin with one stale row of the robot lying
    assert ep.meta["stale_start_steps"] == 1 and ep.end == "truncation" and ep.reason == "end_of_file"
    assert load_uni_o4_file(str(real_logs_dir / "20230807-165204" / "20230807-165204.hdf5")).meta[
        "stale_start_steps"] == 0


def _raw(path, states, actions):
    with h5py.File(path, "w") as f:
        f["states"] = states
        f["actions"] = actions


def _upright_states(n):
    s = np.zeros((n, 76))
    s[:, 2] = -1.0  # gravity straight down: upright
    return s


def test_fall_is_terminal_and_cut_there(tmp_path):
    s = _upright_states(20)
    s[12:, 0:3] = [0.0, -0.5, 0.866]  # rolled 150 deg (> 1.6 rad) from step 12 on
    _raw(tmp_path / "a.hdf5", s, np.zeros((20, 12), np.float32))
    ep = load_uni_o4_file(str(tmp_path / "a.hdf5"))
    assert ep.terminal and ep.reason == "fall" and ep.num_steps == 13
    assert ep.meta["cut_after_fall"] == 7 and ep.meta["steps_in_file"] == 20
    s2 = _upright_states(20)
    s2[0, 0:3] = [0.0, -0.7, 0.7]  # a stale first row (lying) is not a fall
    _raw(tmp_path / "b.hdf5", s2, np.zeros((20, 12), np.float32))
    ep2 = load_uni_o4_file(str(tmp_path / "b.hdf5"))
    assert not ep2.terminal and ep2.num_steps == 20 and ep2.meta["stale_start_steps"] == 1


@pytest.mark.parametrize("states,actions,problem", [
    (np.zeros((5, 75)), np.zeros((5, 12), np.float32), "dataset 'states' has shape (5, 75), expected (T, 76)"),
    (np.zeros((5, 76)), np.zeros((4, 12), np.float32), "states has 5 rows but actions has 4"),
    (np.zeros((0, 76)), np.zeros((0, 12), np.float32), "no steps"),
    (np.full((3, 76), np.nan), np.zeros((3, 12), np.float32), "NaN/inf"),
])
def test_bad_raw_files_give_precise_errors(tmp_path, states, actions, problem):
    p = tmp_path / "x.hdf5"
    _raw(p, states, actions)
    with pytest.raises(LogReadError) as e:
        load_uni_o4_file(str(p))
    assert problem in e.value.problem and e.value.path == str(p)


def test_import_writes_our_format_identically_and_skips_bad_files(real_logs_dir, tmp_path):
    src = tmp_path / "src"
    for folder in ("20230807-170045", "20230808-215007"):
        os.makedirs(src / folder)
        for f in glob.glob(str(real_logs_dir / folder / "*.hdf5")):
            os.symlink(f, src / folder / os.path.basename(f))
    with h5py.File(src / "20230807-170045" / "zz_broken.hdf5", "w") as f:
        f["actions"] = np.zeros((3, 12), np.float32)
    summary = import_uni_o4(str(src), str(tmp_path / "dst"), progress=False)
    assert summary["episodes"] == 3 and summary["falls"] == 1 and len(summary["skipped"]) == 1
    assert "dataset 'states' missing" in summary["skipped"][0]
    ours = open_dataset(str(tmp_path / "dst"))
    assert sorted(s.id for s in ours.sessions) == ["20230807-170045", "20230808-215007"]
    for ref in ours.episodes:
        ep = ref.load()
        orig = load_uni_o4_file(str(real_logs_dir / ep.meta["source_file"]))
        assert ep.num_steps == orig.num_steps and (ep.end, ep.reason) == (orig.end, orig.reason)
        for k, v in orig.steps.items():
            np.testing.assert_array_equal(ep[k], v, err_msg=k)
        assert ep.session["terrain"] == "latex_mattress" and ep.profile == "uni_o4_import"
    assert ours.validate().ok
