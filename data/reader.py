"""Read episode logs lazily: our runtime logs and the raw Uni-O4 Go1 files, through one API.

    ds = open_dataset("logs/")            # a root, a session folder, files, or a list of them
    for ref in ds.episodes:               # nothing is read until .load()
        ep = ref.load()                   # -> data.log_format.Episode, or LogReadError
    report = ds.validate()                # every problem, per file; never raises on bad files

Files are only ever opened read-only. A file left open by a killed writer (SWMR) is read up to
its last flushed step and flagged ``crashed``. Python 3.8 syntax, no mujoco/torch.
"""
import json
import os
import socket
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import h5py
import numpy as np
import yaml
from go1o4.data.h5file import _short, explain_read_error, open_h5, read_status
from go1o4.data.log_format import (
    END_TRUNCATION,
    FORMAT_NAME,
    PROFILE_RUNTIME,
    RATE_HZ,
    SCHEMA_VERSION,
    SESSION_FILE,
    STATUS_COMPLETE,
    STATUS_CRASHED,
    STATUS_OPEN,
    Episode,
    LogReadError,
)

PathLike = Union[str, "os.PathLike[str]"]
KIND_GO1O4 = "go1o4"
KIND_UNI_O4 = "uni_o4_raw"


def _attr_str(attrs: Any, name: str, default: str = "") -> str:
    v = attrs.get(name, default)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        v = v.tolist()
    return str(v).strip()


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (TypeError, ValueError, OSError):
        return False
    return True


def _status_from(closed: bool, doc: Optional[Dict[str, Any]]) -> str:
    if closed:
        return STATUS_COMPLETE
    if doc is None:
        return STATUS_CRASHED
    if doc.get("status") == STATUS_OPEN and doc.get("host") == socket.gethostname() and _pid_alive(doc.get("pid")):
        return STATUS_OPEN
    return STATUS_CRASHED


# ----------------------------------------------------------------------------- our episode files
def load_episode(path: PathLike, session: Optional[Dict[str, Any]] = None, name: str = "") -> Episode:
    """Load one ``episode_XXXXX.h5``; crashed files give the steps up to the last flush."""
    path = os.fspath(path)
    f = open_h5(path)
    try:
        return _load_open(f, path, session or {}, name)
    except LogReadError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged file must give a named error, never a traceback
        raise LogReadError(path, "damaged file: %s" % explain_read_error(str(e)))
    finally:
        try:
            f.close()
        except Exception:  # noqa: BLE001
            pass


def _load_open(f: h5py.File, path: str, session: Dict[str, Any], name: str) -> Episode:
    attrs = f.attrs
    fmt = _attr_str(attrs, "format")
    if fmt != FORMAT_NAME and "steps" in f:
        raise LogReadError(path, "episode header damaged: root attribute 'format' is %r, expected %r"
                           % (fmt or None, FORMAT_NAME))
    if fmt != FORMAT_NAME:
        raise LogReadError(path, "not a go1o4 episode log (attribute 'format' is %r; top-level objects: %s)"
                           % (fmt or None, ", ".join(sorted(f.keys())) or "none"))
    version = int(attrs.get("schema_version", -1))
    if not 1 <= version <= SCHEMA_VERSION:
        raise LogReadError(path, "schema_version %r not supported (this reader knows 1..%d)"
                           % (version, SCHEMA_VERSION))
    if "steps" not in f or not isinstance(f["steps"], h5py.Group):
        raise LogReadError(path, "group /steps missing")
    notes: List[str] = []
    arrays: Dict[str, np.ndarray] = {}
    for key, ds in f["steps"].items():
        if not isinstance(ds, h5py.Dataset):
            raise LogReadError(path, "field %r is damaged (/steps/%s is not a readable dataset)" % (key, key))
        try:
            arrays[key] = ds[()]
        except Exception as e:  # noqa: BLE001
            raise LogReadError(path, "field %r unreadable: %s" % (key, explain_read_error(str(e))))
    lengths = {k: (len(v) if v.ndim else -1) for k, v in arrays.items()}
    flushed = None
    if "flushed_steps" in f:
        flushed = int(np.asarray(f["flushed_steps"][()]).reshape(-1)[0])
    closed = bool(attrs.get("closed", False))
    doc, doc_problem = read_status(path)
    status = _status_from(closed, doc)
    n = min([v for v in lengths.values() if v >= 0] or [0])
    if status != STATUS_COMPLETE and flushed is not None and 0 <= flushed < n:
        n = flushed  # data beyond the counter may be from an unfinished flush
    if len(set(lengths.values())) > 1:
        notes.append("fields have different lengths %s; read the first %d steps" % (lengths, n))
    steps = {k: (v[:n] if v.ndim else v) for k, v in arrays.items()}
    meta = _json_attr(attrs, "meta_json", path, notes)
    if closed:
        end, reason = _attr_str(attrs, "end") or END_TRUNCATION, _attr_str(attrs, "reason")
    elif doc is not None and doc.get("status") == STATUS_CRASHED:
        end, reason = END_TRUNCATION, str(doc.get("reason") or "crashed")
    else:
        end, reason = END_TRUNCATION, "crashed" if status == STATUS_CRASHED else "in_progress"
    if doc_problem and not closed:
        notes.append(doc_problem)
    try:
        rate_hz = float(attrs.get("rate_hz", RATE_HZ))
    except (TypeError, ValueError):
        rate_hz = float("nan")
    if not (np.isfinite(rate_hz) and rate_hz > 0):  # 1 / rate_hz is every reward's dt
        raise LogReadError(path, "attribute rate_hz is %s: must be a positive number of steps per second"
                           % rate_hz)
    meta["load_notes"] = notes
    meta["flushed_steps"] = flushed
    meta["field_lengths"] = lengths
    return Episode(steps=steps, end=end, reason=reason, meta=meta, session=session, status=status,
                   name=name or os.path.splitext(os.path.basename(path))[0], source=path,
                   profile=_attr_str(attrs, "profile", PROFILE_RUNTIME),
                   rate_hz=rate_hz)


def _json_attr(attrs: Any, key: str, path: str, notes: List[str]) -> Dict[str, Any]:
    raw = _attr_str(attrs, key, "{}")
    try:
        value = json.loads(raw or "{}")
        return value if isinstance(value, dict) else {"value": value}
    except ValueError as e:
        notes.append("attribute %s is not valid JSON (%s); ignored" % (key, e))
        return {}


# ----------------------------------------------------------------------------- lazy dataset
class SessionRef:
    """A session folder; its metadata is read on first use (a broken session.yaml is reported, not fatal)."""

    def __init__(self, path: str, kind: str):
        self.path, self.kind = path, kind
        self.id = os.path.basename(os.path.normpath(path))
        self._meta: Optional[Dict[str, Any]] = None
        self.problem: Optional[str] = None

    @property
    def meta(self) -> Dict[str, Any]:
        if self._meta is None:
            self._meta = self._read_meta()
        return self._meta

    def _read_meta(self) -> Dict[str, Any]:
        yml = os.path.join(self.path, SESSION_FILE)
        if self.kind == KIND_UNI_O4 and not os.path.exists(yml):
            from go1o4.data.import_uni_o4 import session_meta

            return session_meta(self.path)
        if not os.path.exists(yml):
            self.problem = "%s: %s missing" % (self.path, SESSION_FILE)
            return {"session_id": self.id}
        try:
            with open(yml) as f:
                meta = yaml.safe_load(f)
            if not isinstance(meta, dict):
                raise ValueError("top level is %s, not a mapping" % type(meta).__name__)
            return meta
        except (OSError, ValueError, yaml.YAMLError) as e:
            self.problem = "%s: cannot read %s: %s" % (self.path, SESSION_FILE, _short(str(e)))
            return {"session_id": self.id}

    def __repr__(self) -> str:
        return "SessionRef(%r, %s)" % (self.path, self.kind)


class EpisodeRef:
    """One episode file, not yet read."""

    def __init__(self, path: str, session: SessionRef, kind: str):
        self.path, self.session, self.kind = path, session, kind
        self.name = "%s/%s" % (session.id, os.path.splitext(os.path.basename(path))[0])

    def load(self) -> Episode:
        if self.kind == KIND_UNI_O4:
            from go1o4.data.import_uni_o4 import load_uni_o4_file

            return load_uni_o4_file(self.path, session=self.session.meta, name=self.name)
        return load_episode(self.path, session=self.session.meta, name=self.name)

    def __repr__(self) -> str:
        return "EpisodeRef(%r)" % self.name


class LogDataset:
    """Sessions and episodes found under the given paths (listed, not read)."""

    def __init__(self, sessions: List[SessionRef], episodes: List[EpisodeRef], problems: List[Tuple[str, str]],
                 notes: Optional[List[Tuple[str, str]]] = None):
        self.sessions, self.episodes, self.problems = sessions, episodes, problems
        self.notes = notes or []  # harmless findings, e.g. an episode that died before its first flush

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[EpisodeRef]:
        return iter(self.episodes)

    def iter_episodes(self, on_error: str = "skip", errors: Optional[List[LogReadError]] = None
                      ) -> Iterator[Episode]:
        """Load episodes one by one. ``on_error``: "skip" (collect into ``errors``) or "raise"."""
        if on_error not in ("skip", "raise"):
            raise ValueError("on_error must be 'skip' or 'raise', got %r" % on_error)
        for ref in self.episodes:
            try:
                yield ref.load()
            except LogReadError as e:
                if on_error == "raise":
                    raise
                if errors is not None:
                    errors.append(e)

    def load_all(self, on_error: str = "skip") -> Tuple[List[Episode], List[LogReadError]]:
        errors: List[LogReadError] = []
        return list(self.iter_episodes(on_error, errors)), errors

    def validate(self, progress: bool = False):
        from go1o4.data.validate import validate_dataset

        return validate_dataset(self, progress=progress)


def _episode_files(folder: str, notes: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    out = []
    names = sorted(os.listdir(folder))
    for name in names:
        full = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(full):
            continue
        if name.startswith("episode_") and name.endswith(".h5"):
            out.append((full, KIND_GO1O4))
        elif name.endswith(".hdf5"):
            out.append((full, KIND_UNI_O4))
        elif name.startswith("episode_") and name.endswith(".status.json"):
            if name[:-len(".status.json")] + ".h5" not in names:
                doc, _ = read_status(full[:-len(".status.json")] + ".h5")
                notes.append((full, "no data file: the episode ended or its writer died before its first flush "
                                    "(status %r)" % (doc or {}).get("status")))
    return out


def _kind_of_file(path: str) -> str:
    return KIND_UNI_O4 if path.endswith(".hdf5") else KIND_GO1O4


def open_dataset(paths: Union[PathLike, Sequence[PathLike]]) -> LogDataset:
    """List the sessions and episodes under ``paths`` (files, session folders or roots), sorted."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    sessions: Dict[str, SessionRef] = {}
    episodes: List[EpisodeRef] = []
    problems: List[Tuple[str, str]] = []
    notes: List[Tuple[str, str]] = []
    seen, walked = set(), set()

    def add(file_path: str, kind: str) -> None:
        file_path = os.path.abspath(file_path)
        real = os.path.realpath(file_path)  # each file once, however many links lead to it
        if real in seen:
            return
        seen.add(real)
        folder = os.path.dirname(file_path)
        if folder not in sessions:
            has_yaml = os.path.exists(os.path.join(folder, SESSION_FILE))
            sessions[folder] = SessionRef(folder, KIND_GO1O4 if has_yaml or kind == KIND_GO1O4 else kind)
        episodes.append(EpisodeRef(file_path, sessions[folder], kind))

    for p in paths:
        p = os.fspath(p)
        if os.path.isfile(p):
            add(p, _kind_of_file(p))
        elif os.path.isdir(p):
            for root, dirs, _files in os.walk(p, followlinks=True):
                walked.add(os.path.realpath(root))  # a symlink loop is walked once
                dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(root, d)) not in walked)
                for full, kind in _episode_files(root, notes):
                    add(full, kind)
        else:
            problems.append((p, "no such file or folder"))
    return LogDataset(list(sessions.values()), episodes, problems, notes)
