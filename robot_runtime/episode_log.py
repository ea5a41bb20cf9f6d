"""Glue from the runtime to :mod:`data.writer`: episodes, per-step records, the session event log.

    log = EpisodeLog("logs", metadata, backend="process")   # or "direct" (lock-step, tests)
    log.start_episode({"command": [0.5, 0, 0]}); log.append(step); log.end_episode("terminal", "fall")
    log.event({"cause": "state_lost", ...}); log.close()

HDF5 writing holds Python's GIL for milliseconds at every flush (measured up to ~10 ms), which
would stall the 500 Hz link loop. The ``process`` backend therefore writes in a child process
(``python -m go1o4.robot_runtime.episode_log``) fed through a pipe: length-prefixed frames, steps as raw
float64 bytes (no pickle). The pipe is non-blocking: the control loops never wait for the disk.
Any write problem (disk full, unwritable folder, logger died) stops logging with a message; control
goes on, and earlier episodes are separate files that stay intact. Events go to
``<session>/events.jsonl``, one JSON object per line. Python 3.8 syntax.
"""
import fcntl
import json
import os
import struct
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from go1o4.data.log_format import LogWriteError, episode_filename, to_jsonable

EVENTS_FILE = "events.jsonl"
_HEAD = struct.Struct("<cI")  # frame kind, payload length
_F_SETPIPE_SZ = 1031
Layout = List[Tuple[str, Tuple[int, ...]]]


# ----------------------------------------------------------------------------- step records (pure)
def pack_step(step: Dict[str, Any], layout: Layout) -> bytes:
    return b"".join(np.asarray(step[name], dtype="<f8").reshape(-1).tobytes() for name, _ in layout)


def unpack_step(buf: bytes, layout: Layout) -> Dict[str, Any]:
    flat, out, i = np.frombuffer(buf, dtype="<f8"), {}, 0
    want = sum(int(np.prod(shape, dtype=np.int64)) if shape else 1 for _, shape in layout)
    if want != len(flat):
        raise ValueError("step record has %d values, layout expects %d" % (len(flat), want))
    for name, shape in layout:
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        out[name] = flat[i:i + n].reshape(shape) if shape else flat[i]
        i += n
    return out


def frame(kind: bytes, payload: bytes) -> bytes:
    return _HEAD.pack(kind, len(payload)) + payload


def _jframe(kind: bytes, obj: Any) -> bytes:
    return frame(kind, json.dumps(to_jsonable(obj)).encode("utf-8"))


# ----------------------------------------------------------------------------- in-process writer
class DirectWriter:
    """The data writer in this process (lock-step runs, the logger child). Raises LogWriteError."""

    def __init__(self, root: str, metadata: Dict[str, Any], flush_every_s: float = 1.0,
                 session_id: Optional[str] = None):
        from go1o4.data.writer import SessionWriter

        self.session = SessionWriter(root, metadata, session_id=session_id, flush_every_s=flush_every_s)
        self.path = self.session.path
        self.episode = None

    def start(self, meta: Dict[str, Any]) -> str:
        self.episode = self.session.start_episode(meta)
        return self.episode.path

    def append(self, step: Dict[str, Any]) -> None:
        self.episode.append(step)

    def end(self, end: str, reason: str) -> int:
        ep, self.episode = self.episode, None
        if ep is None:
            return 0
        ep.close(end, reason)
        return ep.num_steps

    def event(self, doc: Dict[str, Any]) -> None:
        try:
            with open(os.path.join(self.path, EVENTS_FILE), "a") as f:
                f.write(json.dumps(to_jsonable(doc), sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise LogWriteError("cannot write the event log %s: %s" % (os.path.join(self.path, EVENTS_FILE), e))

    def crash_close(self) -> None:
        """The runtime vanished (kill -9, crash): close the open episode with every step that arrived,
        as a truncation with reason ``crashed``, and say so in the event log."""
        if self.episode is not None and not self.episode.closed:
            n = self.end("truncation", "crashed")
            self.event({"cause": "runtime_crashed", "detail": "the runtime process vanished; the logger closed "
                        "the episode with the %d steps it had received" % n})


# ----------------------------------------------------------------------------- the logger child
def _read_exact(f, n: int) -> Optional[bytes]:
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _normal_priority(pid: int) -> None:
    """The logger must not inherit SCHED_FIFO from a real-time parent thread (it would preempt GIL holders)."""
    try:
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    except (OSError, AttributeError):
        pass


def child_main(argv: List[str]) -> int:
    """``python -m go1o4.robot_runtime.episode_log ROOT FLUSH_S``; metadata as the first frame on stdin."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the runtime, which closes us cleanly
    root, flush_s = argv[0], float(argv[1])
    inp, out = sys.stdin.buffer, sys.stdout

    def reply(**doc):
        out.write(json.dumps(doc) + "\n")
        out.flush()

    head = _read_exact(inp, _HEAD.size)
    if head is None:
        return 1
    writer, layout, failed = None, [], False
    try:
        writer = DirectWriter(root, json.loads(_read_exact(inp, _HEAD.unpack(head)[1]).decode()), flush_s)
        reply(ok=True, session_path=writer.path)
    except LogWriteError as e:
        reply(ok=False, error=str(e))
        failed = True
    while True:
        head = _read_exact(inp, _HEAD.size)
        if head is None:  # the runtime died (kill -9): keep what arrived, reason "crashed"
            if writer is not None and not failed:
                try:
                    writer.crash_close()
                except LogWriteError:
                    pass
            return 0
        kind, n = _HEAD.unpack(head)
        payload = _read_exact(inp, n) if n else b""
        if kind == b"Q" or payload is None:
            return 0
        if failed:
            continue
        try:
            if kind == b"A":
                writer.append(unpack_step(payload, layout))
            elif kind == b"L":
                layout = [(name, tuple(shape)) for name, shape in json.loads(payload.decode())]
            elif kind == b"S":
                reply(ok=True, episode=writer.start(json.loads(payload.decode())))
            elif kind == b"E":
                doc = json.loads(payload.decode())
                reply(ok=True, closed=writer.end(doc["end"], doc["reason"]))
            elif kind == b"V":
                writer.event(json.loads(payload.decode()))
        except (LogWriteError, ValueError) as e:
            reply(ok=False, error=str(e))
            failed = True


# ----------------------------------------------------------------------------- what the session uses
class EpisodeLog:
    """Logging for one runtime session; never raises into the control loops (see ``error``)."""

    def __init__(self, root: str, metadata: Dict[str, Any], flush_every_s: float = 1.0, backend: str = "process",
                 on_message: Optional[Callable[[str], None]] = None, max_pending: int = 8 << 20):
        if backend not in ("process", "direct"):
            raise ValueError("backend must be 'process' or 'direct', got %r" % backend)
        self.backend, self.on_message = backend, on_message or (lambda msg: None)
        self.error = ""  # why logging stopped ("" while it works)
        self.session_path = ""
        self.episode_path = ""
        self.episodes, self.steps = 0, 0  # episodes started / steps handed over
        self.episode_steps = 0  # steps handed over in the current (or last) episode
        self.in_episode = False
        self._layout: Optional[Layout] = None
        self._pending = b""
        self._max_pending = max_pending
        self._direct: Optional[DirectWriter] = None
        self._proc: Optional[subprocess.Popen] = None
        self._replies, self._closing = b"", False
        try:
            if backend == "direct":
                self._direct = DirectWriter(root, metadata, flush_every_s)
                self.session_path = self._direct.path
            else:
                self._spawn(root, metadata, flush_every_s)
        except LogWriteError as e:
            self._stop("logging is off: %s" % e)

    @property
    def ok(self) -> bool:
        return not self.error

    def _stop(self, message: str) -> None:
        if not self.error:
            self.error = message
            self.on_message("%s; %s" % (message, self.kept()))
            self.in_episode = False

    def steps_on_disk(self) -> int:
        """Steps of the current/last episode that are on disk: all handed over while logging works, else what
        the writer's status file says it kept before the failure (0 if it could not even write that)."""
        if not self.error:
            return self.episode_steps
        from go1o4.data.reader import read_status

        doc, _ = read_status(self.episode_path) if self.episode_path else (None, None)
        try:
            return int((doc or {}).get("steps") or 0)
        except (TypeError, ValueError):
            return 0

    def kept(self) -> str:
        """What is on disk after logging stopped, in words (for the operator)."""
        done = self.episodes - (1 if self.in_episode else 0)
        if not self.session_path:
            return "nothing was written"
        text = "kept: %d earlier episode(s) in %s" % (done, self.session_path)
        if self.in_episode:
            text += "; the current episode (%d steps handed over) only up to its last flush" % self.episode_steps
        return text

    # ------------------------------------------------------------------ process backend
    def _spawn(self, root: str, metadata: Dict[str, Any], flush_s: float) -> None:
        """Start the logger process (normal priority: it may take its time, the pipe decouples it)."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen([sys.executable, "-m", "go1o4.robot_runtime.episode_log", root, repr(flush_s)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        _normal_priority(self._proc.pid)
        fd = self._proc.stdin.fileno()
        try:
            fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass
        os.write(fd, _jframe(b"M", metadata))
        first = self._proc.stdout.readline()
        doc = json.loads(first.decode()) if first else {"ok": False, "error": "logger process exited at start"}
        if not doc.get("ok"):
            raise LogWriteError(doc.get("error", "logger failed"))
        self.session_path = doc["session_path"]
        for f in (fd, self._proc.stdout.fileno()):  # the control loops never wait for the logger
            fcntl.fcntl(f, fcntl.F_SETFL, fcntl.fcntl(f, fcntl.F_GETFL) | os.O_NONBLOCK)

    def _poll_replies(self) -> None:
        """Read the logger's replies without blocking (no reader thread: no GIL holder we do not control)."""
        try:
            data = os.read(self._proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        except OSError as e:
            data, self._replies = b"", b""
            self._stop("logging stopped: cannot read the logger's replies (%s)" % e)
        if not data:
            if not self._closing:
                self._stop("logging stopped: the logger process exited (%s)" % self._proc.poll())
            return
        self._replies += data
        *lines, self._replies = self._replies.split(b"\n")
        for line in lines:
            try:
                doc = json.loads(line.decode())
            except ValueError:
                continue
            if not doc.get("ok"):
                self._stop("logging stopped: %s" % doc.get("error"))

    def _send(self, data: bytes) -> None:
        self._poll_replies()
        if self.error:
            return
        self._pending += data
        try:
            n = os.write(self._proc.stdin.fileno(), self._pending)
            self._pending = self._pending[n:]
        except BlockingIOError:
            pass
        except OSError as e:  # broken pipe: the logger died
            self._stop("logging stopped: the logger process is gone (%s)" % e)
        if len(self._pending) > self._max_pending:
            self._stop("logging stopped: the disk is not keeping up (%d MB waiting)" % (len(self._pending) >> 20))

    # ------------------------------------------------------------------ API
    def start_episode(self, meta: Dict[str, Any]) -> bool:
        if self.error:
            return False
        self._layout = None
        try:
            if self._direct is not None:
                self.episode_path = self._direct.start(to_jsonable(meta))
            else:  # a new session folder numbers its episodes from 0 (data.writer.SessionWriter)
                self.episode_path = os.path.join(self.session_path, episode_filename(self.episodes))
                self._send(_jframe(b"S", meta))
        except LogWriteError as e:
            self._stop("logging stopped: %s" % e)
            return False
        self.in_episode, self.episodes, self.episode_steps = not self.error, self.episodes + 1, 0
        return self.in_episode

    def append(self, step: Dict[str, Any]) -> None:
        if self.error or not self.in_episode:
            return
        try:
            if self._direct is not None:
                self._direct.append(step)
            else:
                if self._layout is None:
                    self._layout = [(k, tuple(np.shape(v))) for k, v in step.items()]
                    self._send(_jframe(b"L", self._layout))
                self._send(frame(b"A", pack_step(step, self._layout)))
            self.steps += 1
            self.episode_steps += 1
        except (LogWriteError, ValueError, KeyError) as e:
            self._stop("logging stopped: %s" % e)

    def end_episode(self, end: str, reason: str) -> None:
        if self.error or not self.in_episode:
            return
        self.in_episode = False
        try:
            if self._direct is not None:
                self._direct.end(end, reason)
            else:
                self._send(_jframe(b"E", {"end": end, "reason": reason}))
        except LogWriteError as e:
            self._stop("logging stopped: %s" % e)

    def event(self, doc: Dict[str, Any]) -> None:
        if self.error:
            return
        try:
            if self._direct is not None:
                self._direct.event(doc)
            else:
                self._send(_jframe(b"V", doc))
        except LogWriteError as e:
            self._stop("logging stopped: %s" % e)

    def close(self, timeout: float = 10.0) -> None:
        """Close an open episode (operator_stop) and the logger; waits for the child to finish writing."""
        if self.in_episode:
            self.end_episode("truncation", "operator_stop")
        if self._proc is not None:
            fd = self._proc.stdin.fileno()
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            try:
                os.write(fd, self._pending + frame(b"Q", b""))
                self._proc.stdin.close()
            except OSError:
                pass
            self._pending = b""
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._stop("the logger process did not finish within %.0f s" % timeout)
            self._closing = True
            self._poll_replies()  # an error while closing the last episode
            self._proc = None


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
