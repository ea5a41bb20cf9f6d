"""Crash-safe episode logging for the on-robot runtime (50 Hz steps, flushed at least every second).

    session = SessionWriter("logs", {"policy_hash": h, "terrain": "mattress", "operator_note": "..."})
    ep = session.start_episode({"command": [0.5, 0, 0]})
    ep.append({"time": t, "obs": obs, "action": a, ...})   # every policy step
    ep.close("terminal", "fall")                          # or ("truncation", "time_limit")

Steps are buffered in memory and written every ``flush_every_steps`` steps or ``flush_every_s``
seconds: data, HDF5 flush, fsync, then the ``flushed_steps`` counter, flush, fsync. The file is made
at the first step (under a temporary name, renamed into place once complete) and is in HDF5 SWMR
mode from then on, so a ``kill -9`` or a power cut leaves a readable file holding every step up to
the last flush, possibly none (:mod:`data.reader` recovers it and flags it ``crashed``).
Disk full / unwritable folder raise :class:`LogWriteError`; earlier episodes are separate files
and stay untouched. Python 3.8 syntax (the robot imports this).
"""
import datetime
import json
import os
import socket
import time
from typing import Any, Dict, List, Optional

import h5py
import numpy as np
import yaml
from go1o4.data.disk import NoSpace, check_space, chunk_rows, detach_and_close
from go1o4.data.log_format import (
    ENDS,
    FORMAT_NAME,
    PROFILE_RUNTIME,
    RATE_HZ,
    SCHEMA_VERSION,
    SESSION_FILE,
    STATUS_COMPLETE,
    STATUS_CRASHED,
    STATUS_OPEN,
    FieldSpec,
    LogWriteError,
    allowed_shapes,
    atomic_write_json,
    atomic_write_text,
    episode_filename,
    spec_for,
    status_path,
    to_jsonable,
)

from go1o4 import __version__

SESSION_KEYS = ("policy_hash", "contract", "config", "terrain", "operator_note")


def _now_iso() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")


def _fill_value(dtype: str) -> Any:
    return np.nan if np.dtype(dtype).kind == "f" else -1


class EpisodeWriter:
    """Appends the steps of one episode to ``episode_XXXXX.h5``. Fields are fixed by the first step."""

    def __init__(self, path: str, session_id: str, index: int, meta: Optional[Dict[str, Any]] = None,
                 profile: str = PROFILE_RUNTIME, flush_every_steps: int = 50, flush_every_s: float = 1.0,
                 fsync: bool = True, compression: int = 4, min_free_bytes: int = 16 << 20):
        if flush_every_steps < 1 or flush_every_s <= 0:
            raise ValueError("flush_every_steps must be >= 1 and flush_every_s > 0")
        self.path, self.session_id, self.index = path, session_id, index
        self.meta = dict(meta or {})
        self.profile, self.fsync, self.compression = profile, fsync, compression
        self.min_free_bytes = int(min_free_bytes)
        self._ds: Dict[str, Any] = {}
        self._chunk_bytes: Optional[int] = None
        self.flush_every_steps, self.flush_every_s = int(flush_every_steps), float(flush_every_s)
        self._specs: Optional[List[FieldSpec]] = None
        self._buf: Dict[str, np.ndarray] = {}
        self._n_buf = 0
        self._n_written = 0
        self._file: Optional[h5py.File] = None
        self._closed = False
        self._last_flush = time.monotonic()
        self._started = _now_iso()
        self._status(STATUS_OPEN)

    # ------------------------------------------------------------------ public API
    @property
    def num_steps(self) -> int:
        return self._n_written + self._n_buf

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, step: Dict[str, Any]) -> None:
        """Add one policy step (field name -> value). Missing fields are filled with NaN / -1."""
        self._check_open()
        if self._specs is None:
            self._init_fields({k: np.shape(v) for k, v in step.items()})
            self._write_block({}, 0)  # the (empty) file exists from the first step: readable after a crash
        unknown = set(step) - set(self._buf)
        if unknown:
            raise ValueError("episode %s: field(s) %s not in the first step; the fields of an episode are fixed "
                             "by its first step (%s)" % (self.path, sorted(unknown), ", ".join(sorted(self._buf))))
        i = self._n_buf
        for spec in self._specs:
            buf = self._buf[spec.name]
            if spec.name not in step:
                buf[i] = _fill_value(spec.dtype)
                continue
            value = np.asarray(step[spec.name])
            if value.shape != spec.shape:
                raise ValueError("episode %s: field %r has shape %s, expected %s"
                                 % (self.path, spec.name, value.shape, spec.shape))
            try:
                buf[i] = value
            except (TypeError, ValueError) as e:
                raise ValueError("episode %s: field %r value %r cannot be stored as %s: %s"
                                 % (self.path, spec.name, step[spec.name], spec.dtype, e))
        self._n_buf += 1
        if self._n_buf >= self.flush_every_steps or time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def append_many(self, steps: Dict[str, Any]) -> None:
        """Add many steps at once: field name -> (T, ...) array (importers, tests); written immediately."""
        self._check_open()
        arrays = {k: np.asarray(v) for k, v in steps.items()}
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError("episode %s: append_many arrays differ in length: %s" % (self.path, lengths))
        if self._specs is None:
            self._init_fields({k: v.shape[1:] for k, v in arrays.items()})
        n = next(iter(lengths.values()), 0)
        block = {}
        for spec in self._specs:
            if spec.name not in arrays:
                block[spec.name] = np.full((n,) + spec.shape, _fill_value(spec.dtype), dtype=spec.dtype)
                continue
            if arrays[spec.name].shape[1:] != spec.shape:
                raise ValueError("episode %s: field %r has per-step shape %s, expected %s"
                                 % (self.path, spec.name, arrays[spec.name].shape[1:], spec.shape))
            block[spec.name] = arrays.pop(spec.name)
        if arrays:
            raise ValueError("episode %s: field(s) %s not in the episode's fields (%s)"
                             % (self.path, sorted(arrays), ", ".join(sorted(self._buf))))
        self.flush()
        self._write_block(block, n)

    def flush(self) -> None:
        """Write the buffered steps and make them durable (HDF5 flush + fsync)."""
        self._check_open()
        if self._specs is None:
            return
        self._write_block({k: v[:self._n_buf] for k, v in self._buf.items()}, self._n_buf)
        self._n_buf = 0

    def _write_block(self, block: Dict[str, np.ndarray], n: int) -> None:
        try:
            self._check_space(sum(int(v.nbytes) for v in block.values()))
            if self._file is None:
                self._create_file()
            if n:
                n0, n1 = self._n_written, self._n_written + n
                for spec in self._specs:
                    ds = self._ds[spec.name]
                    ds.resize(n1, axis=0)
                    ds[n0:n1] = block[spec.name]
                self._sync()
                self._ds["flushed_steps"][0] = n1  # only once the data are on disk
                self._sync()
                self._n_written = n1
            self._last_flush = time.monotonic()
        except NoSpace as e:
            self._n_buf = 0
            self._stop_cleanly(str(e))
        except (OSError, RuntimeError, ValueError) as e:
            self._n_buf = 0
            self._fail(e)

    def _stop_cleanly(self, why: str) -> None:
        """Out of space before writing: close the file with what it holds, then raise LogWriteError."""
        self._closed = True
        try:
            if self._file is not None:
                self._set_end_attrs("truncation", "disk_full")
                self._ds = {}
                self._file.close()
                self._file = None
            self._status(STATUS_COMPLETE, end="truncation", reason="disk_full", error=why)
        except (OSError, RuntimeError) as e:
            self._closed = False
            self._fail(e)
        raise LogWriteError("stopped logging %s after %d steps: %s" % (self.path, self._n_written, why))

    def close(self, end: str = "truncation", reason: str = "operator_stop") -> None:
        """Flush, record how the episode ended (``terminal``/``truncation`` + reason) and close."""
        if end not in ENDS:
            raise ValueError("episode end must be one of %s, got %r" % (ENDS, end))
        if self._closed:
            return
        if self._specs is None:  # no step at all: still leave a (valid, empty) file
            self._init_fields({})
        self.flush()
        try:
            self._set_end_attrs(end, reason)
            self._ds = {}
            self._file.close()
            self._file = None
            self._closed = True
            self._status(STATUS_COMPLETE, end=end, reason=reason)
        except (OSError, RuntimeError) as e:
            self._fail(e)

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._closed:
            return
        if exc_type is None:
            self.close()
        elif not issubclass(exc_type, LogWriteError):
            self.close("truncation", "exception")

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise LogWriteError("episode log %s is already closed" % self.path)

    def _init_fields(self, shapes: Dict[str, Any]) -> None:
        specs = []
        for name, shape in shapes.items():
            spec = spec_for(name, tuple(shape))
            shapes_ok = allowed_shapes(name) or (spec.shape,)
            if tuple(shape) not in shapes_ok:
                raise ValueError("episode %s: field %r has shape %s, expected %s"
                                 % (self.path, name, tuple(shape), " or ".join(str(s) for s in shapes_ok)))
            specs.append(spec)
        self._specs = specs
        self._buf = {s.name: np.zeros((self.flush_every_steps,) + s.shape, dtype=s.dtype) for s in specs}

    def _create_file(self) -> None:
        """Make the file under a hidden temporary name, then rename it into place and reopen it in SWMR
        mode: a crash while HDF5 creates it leaves no half-made (unreadable) ``episode_XXXXX.h5``."""
        tmp = os.path.join(os.path.dirname(self.path), ".%s.part" % os.path.basename(self.path))
        f = h5py.File(tmp, "w", libver="latest")
        try:
            self._fill_new_file(f)
            f.flush()
            if self.fsync:
                os.fsync(f.id.get_vfd_handle())
        finally:
            f.close()
        os.replace(tmp, self.path)
        if self.fsync:
            _fsync_dir(os.path.dirname(self.path))
        f = h5py.File(self.path, "r+", libver="latest")
        self._file = f
        self._ds = {s.name: f["steps"][s.name] for s in self._specs}
        self._ds["flushed_steps"] = f["flushed_steps"]
        f.swmr_mode = True

    def _fill_new_file(self, f: h5py.File) -> None:
        f.attrs.update({
            "format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "rate_hz": RATE_HZ,
            "profile": self.profile, "session_id": self.session_id, "episode_index": self.index,
            "created": self._started, "software_version": __version__,
            "meta_json": json.dumps(to_jsonable(self.meta), sort_keys=True),
            # placeholders, overwritten at close (attributes are created before SWMR starts)
            "end": " " * 16, "reason": " " * 64, "closed": False, "n_steps": -1,
        })
        steps = f.create_group("steps")
        for s in self._specs:
            rows = self._chunk_rows(s)
            ds = steps.create_dataset(s.name, shape=(0,) + s.shape, maxshape=(None,) + s.shape, dtype=s.dtype,
                                      chunks=(rows,) + s.shape, compression="gzip" if self.compression else None,
                                      compression_opts=self.compression or None, shuffle=bool(self.compression),
                                      fletcher32=True)
            ds.attrs.update({"unit": s.unit, "frame": s.frame, "description": s.description})
        f.create_dataset("flushed_steps", data=np.zeros(1, dtype=np.int64))

    def _chunk_rows(self, spec: FieldSpec) -> int:
        return chunk_rows(self.flush_every_steps, spec.shape, spec.dtype)

    def _check_space(self, block_bytes: int) -> None:
        """A flush needs at most the block plus one (rewritten) chunk per field: refuse it if that may not fit."""
        if self._chunk_bytes is None:
            self._chunk_bytes = sum(self._chunk_rows(s) * max(1, int(np.prod(s.shape, dtype=np.int64)))
                                    * np.dtype(s.dtype).itemsize for s in self._specs or [])
        check_space(self.path, block_bytes + self._chunk_bytes, self.min_free_bytes)

    def _sync(self) -> None:
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.id.get_vfd_handle())

    def _set_end_attrs(self, end: str, reason: str) -> None:
        values = {"end": end, "reason": str(reason), "closed": True, "n_steps": self._n_written,
                  "ended": _now_iso()}
        try:
            self._file.attrs.update(values)  # HDF5 >= 1.14 accepts attribute writes under SWMR
        except (OSError, RuntimeError, KeyError):
            self._ds = {}
            self._file.close()  # older HDF5: reopen without SWMR for this last write
            self._file = h5py.File(self.path, "r+", libver="latest")
            self._file.attrs.update(values)

    def _status(self, status: str, **extra: Any) -> None:
        doc = {"status": status, "episode": os.path.basename(self.path), "session_id": self.session_id,
               "pid": os.getpid(), "host": socket.gethostname(), "started": self._started,
               "steps": self.num_steps, "schema_version": SCHEMA_VERSION}
        if status != STATUS_OPEN:
            doc["ended"] = _now_iso()
        doc.update(extra)
        try:
            atomic_write_json(status_path(self.path), doc)
        except OSError as e:
            self._closed = True
            raise LogWriteError("cannot write episode status %s: %s" % (status_path(self.path), e))

    def _fail(self, exc: BaseException) -> None:
        """Stop this episode after a write error; keep whatever is already on disk."""
        self._closed = True
        if self._file is not None:
            detach_and_close(self._file, self._ds)
        self._file = None
        try:
            self._status(STATUS_CRASHED, error=str(exc), end="truncation", reason="log_write_error")
        except LogWriteError:
            pass
        raise LogWriteError("cannot write episode log %s (%d steps on disk): %s" % (self.path, self._n_written, exc))


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)


def _read_yaml(path: str) -> Dict[str, Any]:
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
        return doc if isinstance(doc, dict) else {}
    except (OSError, yaml.YAMLError):
        return {}


class SessionWriter:
    """A logging session: ``<root>/<session_id>/session.yaml`` plus one file per episode.

    ``metadata`` should hold policy_hash, contract, config, terrain, operator_note (missing ones are
    recorded as null); software_version and start_time are added.
    """

    def __init__(self, root: str, metadata: Optional[Dict[str, Any]] = None, session_id: Optional[str] = None,
                 profile: str = PROFILE_RUNTIME, flush_every_steps: int = 50, flush_every_s: float = 1.0,
                 fsync: bool = True, compression: int = 4):
        if metadata is not None and not isinstance(metadata, dict):
            raise ValueError("session metadata must be a dict, got %s" % type(metadata).__name__)
        self.root = str(root)
        self.profile = profile
        self._kw = dict(flush_every_steps=flush_every_steps, flush_every_s=flush_every_s, fsync=fsync,
                        compression=compression)
        self.session_id = session_id or self._new_id()
        self.path = os.path.join(self.root, self.session_id)
        self.metadata = {k: None for k in SESSION_KEYS}
        self.metadata.update(to_jsonable(metadata or {}))
        self.metadata.update({"session_id": self.session_id, "software_version": __version__,
                              "schema_version": SCHEMA_VERSION, "profile": profile})
        yml = os.path.join(self.path, SESSION_FILE)
        previous = _read_yaml(yml)  # reopening a session keeps what it recorded first
        for k, v in previous.items():
            if self.metadata.get(k) is None or k == "start_time":
                self.metadata[k] = v
        if self.metadata.get("start_time") is None:
            self.metadata["start_time"] = _now_iso()
        try:
            os.makedirs(self.path, exist_ok=True)
            atomic_write_text(yml, yaml.safe_dump(self.metadata, sort_keys=False))
        except OSError as e:
            raise LogWriteError("cannot create log session %s: %s" % (self.path, e))
        existing = [n for n in os.listdir(self.path) if n.startswith("episode_") and n.endswith(".h5")]
        self._next = 1 + max([int(n[8:13]) for n in existing if n[8:13].isdigit()] or [-1])
        self._current: Optional[EpisodeWriter] = None
        self.episodes: List[str] = []

    def _new_id(self) -> str:
        base = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        sid, k = base, 1
        while os.path.exists(os.path.join(self.root, sid)):
            sid, k = "%s_%d" % (base, k), k + 1
        return sid

    def start_episode(self, meta: Optional[Dict[str, Any]] = None) -> EpisodeWriter:
        """Open the next episode file; an episode still open is closed first (truncation, operator_stop)."""
        if self._current is not None and not self._current.closed:
            self._current.close("truncation", "operator_stop")
        path = os.path.join(self.path, episode_filename(self._next))
        self._current = EpisodeWriter(path, self.session_id, self._next, meta, self.profile, **self._kw)
        self._next += 1
        self.episodes.append(path)
        return self._current

    def close(self) -> None:
        if self._current is not None and not self._current.closed:
            self._current.close("truncation", "operator_stop")

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._current is not None and not self._current.closed:
            try:
                self._current.close("truncation", "operator_stop" if exc_type is None else "exception")
            except LogWriteError:
                if exc_type is None:
                    raise
