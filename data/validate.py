"""Check episode logs: missing fields, wrong shapes/dtypes, truncated or damaged files, NaNs,
non-monotonic time, crashed episodes. Reports every problem per file; never modifies a file."""
from dataclasses import dataclass, field
from typing import Any, List

import numpy as np
from go1o4.data.log_format import (
    CORE_FIELDS,
    ENDS,
    FIELD_SPECS,
    PROFILE_FIELDS,
    STATUS_CRASHED,
    STATUS_OPEN,
    Episode,
    LogReadError,
    allowed_shapes,
)

ERROR, WARNING = "error", "warning"
#: Fields whose NaNs make a step unusable (elsewhere NaN means "sensor missing": a warning).
NAN_IS_ERROR = ("time", "obs", "action")

#: Physical ranges per column (issue 14.5; documented in data/README.md). A step outside them is not what the
#: log claims (zeroed rows from a logger glitch, 1e30 garbage): ``validate`` reports it, ``build`` quarantines it.
#: obs: every entry |x| <= OBS_ABS_MAX (scaled observations are O(1): 1e30 or 1e6 are garbage) and the projected
#: gravity block (a unit vector) not zero: a zeroed row is no robot (the fall detector read it as a fall).
#: action: |a| <= ACTION_ABS_MAX (the policy's raw outputs; the contract clips at +-CLIP_ACTIONS).
OBS_ABS_MAX = 1e4  # no scaled observation of a Go1 comes near it (|x| < 100); 1e30 garbage does
ACTION_ABS_MAX = 1e3  # raw policy outputs stay O(1-10)


def physical_ok(name: str, arr: Any) -> Any:
    """Boolean per step: inside the physical range of field ``name`` (None: no range defined for it)."""
    from go1o4 import contract as C

    a = np.asarray(arr, dtype=np.float64)
    if a.ndim != 2 or not len(a):
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        if name == "obs" and a.shape[1] == C.OBS_DIM:
            g = a[:, C.OBS_SLICES["projected_gravity"]]
            norm = np.sqrt(np.sum(g * g, axis=1))
            return (np.abs(a) <= OBS_ABS_MAX).all(axis=1) & (norm > 0.0)
        if name == "action":
            return (np.abs(a) <= ACTION_ABS_MAX).all(axis=1)
    return None


@dataclass
class Issue:
    path: str
    severity: str
    problem: str

    def __str__(self) -> str:
        return "%-7s %s: %s" % (self.severity.upper(), self.path, self.problem)


@dataclass
class ValidationReport:
    issues: List[Issue] = field(default_factory=list)
    episodes: int = 0
    readable: int = 0
    steps: int = 0
    crashed: int = 0

    @property
    def errors(self) -> List[Issue]:
        return [i for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> List[Issue]:
        return [i for i in self.issues if i.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        lines = [str(i) for i in self.issues]
        lines.append("%d episode(s), %d readable, %d steps, %d crashed/recovered: %d error(s), %d warning(s)"
                     % (self.episodes, self.readable, self.steps, self.crashed, len(self.errors),
                        len(self.warnings)))
        return "\n".join(lines)


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def validate_episode(ep: Episode) -> List[Issue]:
    """Every problem of one loaded episode."""
    out: List[Issue] = []
    src = ep.source or ep.name

    def add(sev: str, msg: str) -> None:
        out.append(Issue(src, sev, msg))

    for note in ep.meta.get("load_notes", []):
        add(WARNING if ep.status != "complete" else ERROR, note)
    if not ep.steps:
        add(WARNING, "episode has no steps (closed before its first step)")
        return out
    for name in CORE_FIELDS:
        if name not in ep.steps:
            add(ERROR, "required field %r missing" % name)
    missing = [n for n in PROFILE_FIELDS.get(ep.profile, ()) if n not in ep.steps and n not in CORE_FIELDS]
    if missing:
        add(WARNING, "field(s) expected for profile %r missing: %s" % (ep.profile, ", ".join(missing)))
    for name, arr in ep.steps.items():
        _check_field(name, arr, add)
    if ep.end not in ENDS:
        add(ERROR, "episode end %r is not one of %s" % (ep.end, ENDS))
    if "time" in ep.steps and np.ndim(ep.steps["time"]) == 1 and len(ep.steps["time"]) > 1:
        t = np.asarray(ep.steps["time"], dtype=np.float64)
        d = np.diff(t)
        bad = ~(d > 0)
        if np.any(bad & np.isfinite(d)):
            i = _first(bad & np.isfinite(d))
            add(ERROR, "time not strictly increasing: step %d at %.6f s, step %d at %.6f s" % (i, t[i], i + 1, t[i + 1]))
    if ep.status == STATUS_CRASHED:
        add(WARNING, "crashed (writer killed or failed): %d steps recovered up to the last flush, "
                     "episode end recorded as truncation" % ep.num_steps)
    elif ep.status == STATUS_OPEN:
        add(WARNING, "still being written by a live process (%d steps flushed so far)" % ep.num_steps)
    if ep.num_steps == 0:
        add(WARNING, "episode has no steps")
    return out


def _check_field(name: str, arr: Any, add) -> None:
    arr = np.asarray(arr)
    if name in FIELD_SPECS:
        spec = FIELD_SPECS[name]
        if arr.ndim == 0 or tuple(arr.shape[1:]) not in allowed_shapes(name):
            add(ERROR, "field %r has shape %s, expected (T, %s)" % (
                name, arr.shape, " or ".join(",".join(map(str, s)) or "" for s in allowed_shapes(name))))
            return
        if arr.dtype.kind not in ("f", "i", "u", "b") or (np.dtype(spec.dtype).kind == "f") != (arr.dtype.kind == "f"):
            add(ERROR, "field %r has dtype %s, expected %s" % (name, arr.dtype, np.dtype(spec.dtype).name))
            return
    if arr.dtype.kind == "f" and arr.size:
        finite = np.isfinite(arr.reshape(len(arr), -1)).all(axis=1) if arr.ndim else np.isfinite(arr)
        n_bad = int(np.sum(~finite))
        if n_bad:
            add(ERROR if name in NAN_IS_ERROR else WARNING,
                "field %r has NaN/inf in %d step(s), first at step %d" % (name, n_bad, _first(~finite)))
        ok = physical_ok(name, arr)
        if ok is not None:
            out = ~ok & finite
            if out.any():
                add(ERROR, "field %r outside its physical range in %d step(s), first at step %d (%s)" % (
                    name, int(out.sum()), _first(out), "obs |x| <= %g and a non-zero gravity vector: zeroed rows fail"
                    % OBS_ABS_MAX if name == "obs" else "|a| <= %g" % ACTION_ABS_MAX))


def validate_dataset(dataset, progress: bool = False) -> ValidationReport:
    """Validate every episode of a :class:`data.reader.LogDataset`."""
    from tqdm import tqdm

    report = ValidationReport()
    for p, problem in dataset.problems:
        report.issues.append(Issue(p, ERROR, problem))
    for p, note in getattr(dataset, "notes", []):
        report.issues.append(Issue(p, WARNING, note))
    for ref in tqdm(dataset.episodes, desc="validate", unit="ep", disable=not progress):
        report.episodes += 1
        try:
            ep = ref.load()
        except LogReadError as e:
            report.issues.append(Issue(e.path, ERROR, e.problem))
            continue
        report.readable += 1
        report.steps += ep.num_steps
        report.crashed += int(ep.status == STATUS_CRASHED)
        report.issues.extend(validate_episode(ep))
    for s in dataset.sessions:
        _ = s.meta
        if s.problem:
            report.issues.append(Issue(s.path, WARNING, s.problem))
    return report
