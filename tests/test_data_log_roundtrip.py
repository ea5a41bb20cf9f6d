"""Episode log format: write -> read round trips, validation, damaged and foreign files."""
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import yaml
from go1o4.data.log_format import FIELD_SPECS, PROFILE_FIELDS, STATUS_COMPLETE, LogReadError
from go1o4.data.reader import load_episode, open_dataset
from go1o4.data.validate import validate_episode
from go1o4.data.writer import SessionWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

RUNTIME_FIELDS = PROFILE_FIELDS["runtime"] + ("policy_input", "log_prob", "value", "extra_foot_contact")


def make_steps(n, seed=0):
    """Every runtime field for n steps, random but deterministic, in each field's logged dtype."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in RUNTIME_FIELDS:
        spec = FIELD_SPECS.get(name)
        shape = spec.shape if spec else (4,)
        dtype = spec.dtype if spec else "f4"
        if np.dtype(dtype).kind == "f":
            out[name] = rng.normal(size=(n,) + shape).astype(dtype)
        else:
            out[name] = rng.integers(0, 4, size=(n,) + shape).astype(dtype)
    out["time"] = 100.0 + np.arange(n) * 0.02 + rng.uniform(0, 1e-3, n)
    out["command"] = rng.normal(size=(n, 15)).astype(np.float32)
    g = out["obs"][:, 0:3]  # the projected gravity block is a unit vector (data.validate physical ranges)
    out["obs"][:, 0:3] = g / np.linalg.norm(g, axis=1, keepdims=True)
    return out


def write_session(root, episodes, session_id="s", **kw):
    meta = {"policy_hash": "abc123", "contract": {"obs_dim": 58}, "config": {"lr": 1e-4}, "terrain": "mattress",
            "operator_note": "round trip"}
    w = SessionWriter(root, meta, session_id=session_id, fsync=False, **kw)
    for steps, end, reason in episodes:
        ep = w.start_episode({"command_source": "joystick", "seed": 3})
        n = len(steps["time"])
        for i in range(n):
            ep.append({k: v[i] for k, v in steps.items()})
        ep.close(end, reason)
    return w


def test_round_trip_every_field_identical(tmp_path):
    a, b = make_steps(137, 1), make_steps(3, 2)
    w = write_session(tmp_path, [(a, "terminal", "fall"), (b, "truncation", "time_limit")], flush_every_steps=16)
    ds = open_dataset(tmp_path)
    assert [s.id for s in ds.sessions] == ["s"] and len(ds) == 2
    ep0, ep1 = (r.load() for r in ds.episodes)
    for steps, ep in ((a, ep0), (b, ep1)):
        assert set(ep.steps) == set(steps)
        for k, v in steps.items():
            np.testing.assert_array_equal(ep[k], v, err_msg=k)
            assert ep[k].dtype == v.dtype, k
        assert ep.status == STATUS_COMPLETE and ep.meta["command_source"] == "joystick"
    assert (ep0.end, ep0.reason, ep1.end, ep1.reason) == ("terminal", "fall", "truncation", "time_limit")
    assert ep0.session["terrain"] == "mattress" and ep0.session["policy_hash"] == "abc123"
    assert ep0.session["software_version"] and ep0.session["start_time"]
    with h5py.File(w.episodes[0], "r") as f:  # self-describing
        assert f.attrs["schema_version"] == 1 and f.attrs["rate_hz"] == 50.0
        assert f["steps/q"].attrs["unit"] == "rad" and "sim joint order" in f["steps/q"].attrs["frame"]
    status = json.loads(open(w.episodes[0][:-3] + ".status.json").read())
    assert status["status"] == "complete" and status["end"] == "terminal" and status["steps"] == 137
    report = ds.validate()
    assert report.ok and not report.warnings, report.format()


def test_append_many_matches_append_and_missing_fields_fill(tmp_path):
    steps = make_steps(50, 3)
    w = SessionWriter(tmp_path, {}, session_id="s", fsync=False)
    ep = w.start_episode()
    ep.append_many(steps)
    ep.close()
    np.testing.assert_array_equal(load_episode(w.episodes[0])["obs"], steps["obs"])
    ep = w.start_episode()
    ep.append({"time": 0.0, "obs": np.zeros(58), "action": np.zeros(12), "t265_confidence": 3, "reward": 1.0})
    ep.append({"time": 0.02, "obs": np.ones(58), "action": np.ones(12)})  # T265 lost this step
    ep.close()
    e = load_episode(w.episodes[1])
    assert e["t265_confidence"].tolist() == [3, -1] and np.isnan(e["reward"][1])
    problems = [i.problem for i in validate_episode(e)]
    assert any("'reward' has NaN/inf in 1 step(s), first at step 1" in p for p in problems)


def test_validate_reports_shape_dtype_time_and_nan_problems(tmp_path):
    w = write_session(tmp_path, [(make_steps(20, 4), "truncation", "time_limit")])
    path = w.episodes[0]
    bad = str(tmp_path / "bad.h5")
    shutil.copy(path, bad)
    with h5py.File(bad, "r+") as f:  # rewrite a copy with wrong content (the original stays intact)
        del f["steps/q"]
        f["steps/q"] = np.zeros((20, 11), np.float32)
        del f["steps/tick"]
        f["steps/tick"] = np.zeros(20, np.float32)
        t = f["steps/time"][()]
        t[7] = t[3]
        f["steps/time"][...] = t
        o = f["steps/obs"][()]
        o[5, 2] = np.nan
        f["steps/obs"][...] = o
        del f["steps/imu_gyro"]
    problems = [i.problem for i in validate_episode(load_episode(bad))]
    text = "\n".join(problems)
    assert "field 'q' has shape (20, 11), expected (T, 12)" in text
    assert "field 'tick' has dtype float32, expected int64" in text
    assert "time not strictly increasing: step 6 at" in text
    assert "field 'obs' has NaN/inf in 1 step(s), first at step 5" in text
    assert "imu_gyro" in text
    assert validate_episode(load_episode(path)) == []


def test_foreign_truncated_and_empty_files_named_errors_rest_loads(tmp_path):
    w = write_session(tmp_path, [(make_steps(30, 5), "truncation", "time_limit")] * 2)
    sess = tmp_path / "s"
    with h5py.File(sess / "episode_00002.h5", "w") as f:  # someone else's HDF5
        f["images"] = np.zeros((2, 2))
    (sess / "episode_00003.h5").write_bytes(b"")
    (sess / "episode_00004.h5").write_text("not hdf5 at all")
    data = open(w.episodes[1], "rb").read()
    (sess / "episode_00005.h5").write_bytes(data[: len(data) // 2])
    (sess / "session.yaml").write_text("{broken: [yaml")
    before = {p: os.path.getmtime(p) for p in map(str, sess.iterdir())}
    ds = open_dataset(tmp_path)
    episodes, errors = ds.load_all()
    assert len(episodes) == 2 and len(errors) == 4
    msg = {os.path.basename(e.path): e.problem for e in errors}
    assert "not a go1o4 episode log" in msg["episode_00002.h5"] and "images" in msg["episode_00002.h5"]
    assert msg["episode_00003.h5"] == "file is empty (0 bytes)"
    assert "not an HDF5 file" in msg["episode_00004.h5"]
    assert "truncated" in msg["episode_00005.h5"]
    report = ds.validate()
    assert len(report.errors) == 4 and report.readable == 2
    assert any("session.yaml" in i.problem for i in report.warnings)
    assert {p: os.path.getmtime(p) for p in map(str, sess.iterdir())} == before  # nothing modified
    with pytest.raises(LogReadError, match="episode_00004.h5: not an HDF5 file"):
        ds.episodes[4].load()


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    w = write_session(root, [(make_steps(40, 6), "terminal", "fall")], flush_every_steps=16)
    return w.episodes[0], load_episode(w.episodes[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruption_gives_named_error_or_identical_data(sample_file, tmp_path, data):
    path, ref = sample_file
    raw = bytearray(open(path, "rb").read())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="keep")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="n_flips")):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    bad = tmp_path / "episode_00001.h5"
    bad.write_bytes(bytes(raw))
    try:
        ep = load_episode(str(bad))
    except LogReadError as e:
        assert e.path == str(bad) and e.problem and "episode_00001.h5" in str(e)
        return
    # corruption that HDF5's checksums cannot see must not have changed any data
    assert set(ep.steps) == set(ref.steps)
    for k in ref.steps:
        np.testing.assert_array_equal(ep[k], ref[k])


def test_session_yaml_contents(tmp_path):
    w = write_session(tmp_path, [])
    meta = yaml.safe_load(open(os.path.join(w.path, "session.yaml")))
    for key in ("policy_hash", "contract", "config", "terrain", "operator_note", "software_version", "start_time"):
        assert key in meta


def test_reopened_session_continues_and_exception_ends_episode(tmp_path):
    w = SessionWriter(tmp_path, {"terrain": "grass", "operator_note": "first"}, session_id="s", fsync=False)
    with pytest.raises(RuntimeError):
        with w.start_episode() as ep:
            ep.append({"time": 0.0, "obs": np.zeros(58), "action": np.zeros(12)})
            raise RuntimeError("policy crashed")
    w2 = SessionWriter(tmp_path, {"operator_note": "second"}, session_id="s", fsync=False)
    ep = w2.start_episode()
    assert ep.path.endswith("episode_00001.h5")
    ep.close()
    eps, errors = open_dataset(tmp_path).load_all()
    assert not errors and [(e.end, e.reason) for e in eps] == [("truncation", "exception"),
                                                                ("truncation", "operator_stop")]
    assert eps[1].session["terrain"] == "grass" and eps[1].session["operator_note"] == "second"
    assert eps[1].num_steps == 0
    assert [i.problem for i in validate_episode(eps[1])] == ["episode has no steps (closed before its first step)"]
