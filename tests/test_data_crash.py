"""Crash safety of the episode writer: kill -9 of a real writer process, disk full, read-only folder."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from go1o4.data.log_format import STATUS_COMPLETE, STATUS_CRASHED, STATUS_OPEN, LogWriteError
from go1o4.data.reader import open_dataset
from go1o4.data.writer import SessionWriter

REPO = Path(__file__).resolve().parents[1]

# A real writer: step i has obs = i + column/100, time = i * 0.02. Flushes every 10 steps and
# reports each flushed count; waits for a line on stdin after FLUSHES_BEFORE_PAUSE flushes.
WRITER = r"""
import sys, json
import numpy as np
from go1o4.data.writer import SessionWriter
root, pause_after = sys.argv[1], int(sys.argv[2])
w = SessionWriter(root, {"terrain": "test", "operator_note": "kill -9 test"}, session_id="s",
                  flush_every_steps=10, flush_every_s=60.0)
ep = w.start_episode({"k": 1})
flushes = 0
i = 0
while True:
    ep.append({"time": i * 0.02, "tick": i, "obs": i + np.arange(58) / 100.0, "action": np.full(12, i % 7),
               "reward": float(i), "safety_state": 0})
    i += 1
    if i % 10 == 0:
        flushes += 1
        print(json.dumps({"flushed": ep.num_steps}), flush=True)
        if flushes == pause_after:
            sys.stdin.readline()
"""


def _expected(n):
    i = np.arange(n)
    return i[:, None] + np.arange(58)[None, :] / 100.0


def _start_writer(root, pause_after):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(pause_after)], cwd=str(REPO), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_flushed(proc, count):
    last = 0
    for _ in range(count):
        line = proc.stdout.readline()
        assert line, "writer died early: %s" % proc.stderr.read()
        last = json.loads(line)["flushed"]
    return last


def test_kill9_mid_episode_keeps_every_flushed_step(tmp_path):
    proc = _start_writer(tmp_path, pause_after=5)
    try:
        flushed = _read_flushed(proc, 5)  # writer now blocked right after its 5th flush
        assert flushed == 50
        # a live writer: readable through SWMR, flagged open (not crashed)
        live = open_dataset(tmp_path).episodes[0].load()
        assert live.status == STATUS_OPEN and live.num_steps == 50
        proc.stdin.write("go\n")
        proc.stdin.flush()
        flushed = _read_flushed(proc, 7)  # it keeps writing; kill it between flushes
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        proc.stdin.close()
    assert proc.returncode == -signal.SIGKILL
    ds = open_dataset(tmp_path)
    ep = ds.episodes[0].load()
    assert ep.status == STATUS_CRASHED and ep.reason == "crashed" and ep.end == "truncation"
    assert ep.num_steps >= flushed  # nothing up to the last reported flush is lost
    assert ep.num_steps % 10 == 0
    np.testing.assert_allclose(ep["obs"], _expected(ep.num_steps), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ep["tick"], np.arange(ep.num_steps))
    assert np.all(np.diff(ep["time"]) > 0)
    report = ds.validate()
    assert report.ok, report.format()
    assert report.crashed == 1
    assert any("crashed" in w.problem for w in report.warnings)
    # reading never modifies the file: reading again gives the same
    again = open_dataset(tmp_path).episodes[0].load()
    np.testing.assert_array_equal(again["obs"], ep["obs"])


# Writes a complete episode 0, then episode 1 until the file-size limit (RLIMIT_FSIZE) stops it.
# argv[2] == "raw": the writer's free-space guard is switched off, so HDF5 itself hits EFBIG.
DISK_FULL = r"""
import json, resource, signal, sys
import numpy as np
from go1o4.data.log_format import LogWriteError
from go1o4.data.writer import EpisodeWriter, SessionWriter
root, mode = sys.argv[1], sys.argv[2]
if mode == "raw":
    EpisodeWriter._check_space = lambda self, n: None
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
w = SessionWriter(root, {"terrain": "test"}, session_id="s", flush_every_steps=25, compression=0)
ep = w.start_episode()
for i in range(100):
    ep.append({"time": i * 0.02, "obs": np.r_[0.0, 0.0, -1.0, np.full(55, i)].astype(np.float32), "action": np.zeros(12)})
ep.close("terminal", "fall")
resource.setrlimit(resource.RLIMIT_FSIZE, (1000000, 1000000))
ep = w.start_episode()
result = {"error": None}
try:
    for i in range(100000):
        ep.append({"time": i * 0.02, "obs": np.random.default_rng(i).normal(size=58), "action": np.zeros(12)})
except LogWriteError as e:
    result = {"error": str(e), "steps_attempted": i + 1}
print(json.dumps(result))
"""


@pytest.mark.parametrize("mode", ["guarded", "raw"])
def test_disk_full_raises_logwriteerror_and_keeps_earlier_episodes(tmp_path, mode):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", DISK_FULL, str(tmp_path), mode], cwd=str(REPO), env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr  # no crash of the writing process
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["error"] and "episode_00001.h5" in result["error"], result
    ds = open_dataset(tmp_path)
    first = ds.episodes[0].load()
    assert first.status == STATUS_COMPLETE and first.end == "terminal" and first.num_steps == 100
    np.testing.assert_array_equal(first["obs"][:, 3], np.arange(100))
    second = ds.episodes[1].load()
    assert 0 < second.num_steps <= result["steps_attempted"]
    assert second.num_steps % 25 == 0  # exactly the flushed steps
    for i in (0, second.num_steps - 1):
        np.testing.assert_allclose(second["obs"][i], np.random.default_rng(i).normal(size=58), rtol=1e-6)
    status = json.loads((tmp_path / "s" / "episode_00001.status.json").read_text())
    assert "error" in status
    if mode == "guarded":  # stopped before HDF5 could fail: a clean, complete file
        assert "file size limit" in result["error"]
        assert second.status == STATUS_COMPLETE and second.reason == "disk_full"
    else:  # HDF5 failed mid-flush: recovered up to the last complete flush
        assert second.status == STATUS_CRASHED and status["status"] == STATUS_CRASHED
    assert ds.validate().ok


def _as_unprivileged(fn):
    """Run fn() where permission bits apply: in-process, or (as root) in a forked child as 'nobody'."""
    if os.geteuid() != 0:
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.setgid(65534)
            os.setuid(65534)
            out = fn()
        except BaseException as e:  # noqa: BLE001 - report anything to the parent
            out, code = "%s: %s" % (type(e).__name__, e), 1
        os.write(w, json.dumps(out).encode())
        os._exit(code)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    out = json.loads(data.decode())
    if os.WEXITSTATUS(status):
        raise AssertionError("unprivileged child failed: %s" % out)
    return out


def test_read_only_folder_raises_logwriteerror():
    base = tempfile.mkdtemp(prefix="go1o4_ro_", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        ro = os.path.join(base, "logs")
        os.mkdir(ro)
        SessionWriter(ro, {"terrain": "x"}, session_id="existing")  # a session written before
        os.chmod(ro, 0o555)
        os.chmod(os.path.join(ro, "existing"), 0o555)

        def attempt():
            out = {}
            for name, make in (("new_session", lambda: SessionWriter(ro, {"terrain": "x"})),
                               ("existing_session", lambda: SessionWriter(ro, {}, session_id="existing"))):
                try:
                    make()
                    out[name] = "no error"
                except LogWriteError as e:
                    out[name] = "LogWriteError: %s" % e
            return out

        out = _as_unprivileged(attempt)
        assert out["new_session"].startswith("LogWriteError") and ro in out["new_session"], out
        assert out["existing_session"].startswith("LogWriteError"), out
        assert os.path.exists(os.path.join(ro, "existing", "session.yaml"))
    finally:
        for root, dirs, _ in os.walk(base):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        import shutil

        shutil.rmtree(base)


def test_episode_write_error_in_read_only_session_folder(tmp_path):
    base = tempfile.mkdtemp(prefix="go1o4_ro_", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        w = SessionWriter(base, {"terrain": "x"}, session_id="s", fsync=False)
        ep = w.start_episode()
        ep.append({"time": 0.0, "obs": np.zeros(58), "action": np.zeros(12)})
        ep.close()
        os.chmod(w.path, 0o555)

        def attempt():
            try:
                w.start_episode()
            except LogWriteError as e:
                return "LogWriteError: %s" % e
            return "no error"

        out = _as_unprivileged(attempt)
        assert out.startswith("LogWriteError") and "episode_00001" in out, out
        first = open_dataset(w.path).episodes[0].load()
        assert first.status == STATUS_COMPLETE and first.num_steps == 1
    finally:
        os.chmod(os.path.join(base, "s"), 0o755)
        import shutil

        shutil.rmtree(base)


def test_unknown_field_and_bad_shape_are_clear_errors(tmp_path):
    w = SessionWriter(tmp_path, {}, session_id="s", fsync=False)
    ep = w.start_episode()
    with pytest.raises(ValueError, match="unknown log field 'velocity'"):
        ep.append({"time": 0.0, "velocity": np.zeros(3)})
    ep.append({"time": 0.0, "obs": np.zeros(58), "action": np.zeros(12)})
    with pytest.raises(ValueError, match=r"field 'obs' has shape \(57,\), expected \(58,\)"):
        ep.append({"time": 0.02, "obs": np.zeros(57), "action": np.zeros(12)})
    with pytest.raises(ValueError, match="not in the first step"):
        ep.append({"time": 0.02, "obs": np.zeros(58), "action": np.zeros(12), "reward": 1.0})
    with pytest.raises(ValueError, match="episode end must be one of"):
        ep.close("fell", "fall")
    ep.close("terminal", "fall")
    with pytest.raises(LogWriteError, match="already closed"):
        ep.append({"time": 0.04, "obs": np.zeros(58), "action": np.zeros(12)})


def test_flush_at_least_every_flush_every_s(tmp_path):
    w = SessionWriter(tmp_path, {}, session_id="s", flush_every_steps=1000, flush_every_s=0.05, fsync=False)
    ep = w.start_episode()
    ep.append({"time": 0.0, "obs": np.zeros(58), "action": np.zeros(12)})
    # the file exists (readable, empty) from the first step; the step itself is buffered: a crash
    # now would lose < flush_every_s of steps
    early = open_dataset(tmp_path).episodes[0].load()
    assert early.status == STATUS_OPEN and early.num_steps == 0
    time.sleep(0.06)
    ep.append({"time": 0.02, "obs": np.ones(58), "action": np.zeros(12)})  # over 0.05 s: flushed
    ep.append({"time": 0.04, "obs": np.ones(58), "action": np.zeros(12)})  # buffered again
    live = open_dataset(tmp_path).episodes[0].load()
    assert live.status == STATUS_OPEN and live.num_steps == 2
    ep.close()
    assert open_dataset(tmp_path).episodes[0].load().num_steps == 3


# A real writer killed (SIGKILL) at the start of an episode: "first_step" right after its first step,
# "creating" while HDF5 is creating the episode file at the first flush (its first dataset is being made).
EARLY_KILL = r"""
import os, signal, sys
import h5py
import numpy as np
from go1o4.data.writer import SessionWriter
root, when = sys.argv[1], sys.argv[2]
if when == "creating":
    def _die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    h5py.Group.create_dataset = _die
w = SessionWriter(root, {"terrain": "test"}, session_id="s", flush_every_steps=1 if when == "creating" else 50,
                  flush_every_s=60.0)
ep = w.start_episode({"k": 1})
ep.append({"time": 0.0, "tick": 0, "obs": np.zeros(58), "action": np.zeros(12)})
print("started", flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("when", ["first_step", "creating"])
def test_kill9_at_episode_start_leaves_readable_session(tmp_path, when):
    """Issue 14.5: a crash in the first second never leaves an unreadable episode file."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", EARLY_KILL, str(tmp_path), when], cwd=str(REPO), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if when == "first_step":
            assert proc.stdout.readline().strip() == "started", proc.stderr.read()
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    assert proc.returncode == -signal.SIGKILL
    ds = open_dataset(tmp_path)
    report = ds.validate()
    assert report.ok, report.format()
    assert not ds.problems
    if when == "first_step":  # the file exists from the first step: an empty, crashed episode
        assert len(ds.episodes) == 1
        ep = ds.episodes[0].load()
        assert ep.status == STATUS_CRASHED and ep.end == "truncation" and ep.num_steps == 0
        assert ep.meta["k"] == 1 and ep.session["terrain"] == "test"
    else:  # died while making the file: no half-made episode file, the episode is a note
        assert ds.episodes == []
        assert any("before its first flush" in why for _, why in ds.notes), ds.notes
