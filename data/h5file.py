"""Opening an HDF5 episode file read-only with precise errors, and its sidecar status document.

Below both readers of episode files (:mod:`.reader` for ours, :mod:`.import_uni_o4` for the real Uni-O4 logs),
so neither imports the other for it.
"""
import json
import os
import re
from typing import Any, Dict, Optional, Tuple

import h5py
from go1o4.data.log_format import STATUS_COMPLETE, LogReadError, status_path


def _short(msg: str) -> str:
    msg = str(msg).strip().splitlines()[-1] if str(msg).strip() else str(msg)
    return msg[:300]


def explain_read_error(msg: str) -> str:
    """Short cause of an HDF5 read failure."""
    if "filter returned failure" in msg or "fletcher32" in msg:
        return "data damaged (checksum or decompression failure)"
    if "checksum" in msg:
        return "metadata damaged (checksum mismatch)"
    return _short(msg)


def explain_open_error(msg: str, size: int) -> str:
    """Turn an HDF5 open error into a precise, short problem statement."""
    if "file signature not found" in msg:
        return "not an HDF5 file (no HDF5 signature): damaged header or a foreign file (%d bytes)" % size
    m = re.search(r"eof = (\d+).*stored_eof = (\d+)", msg)
    if "truncated file" in msg and m:
        return "file is truncated: %s of %s bytes present" % (m.group(1), m.group(2))
    if "truncated file" in msg:
        return "file is truncated (%d bytes present)" % size
    return "HDF5 cannot open it (damaged?): %s" % _short(msg)


def open_h5(path: str) -> h5py.File:
    """Open read-only; a file still marked open by a (dead or live) SWMR writer is opened in SWMR mode."""
    if not os.path.exists(path):
        raise LogReadError(path, "file not found")
    size = os.path.getsize(path)
    if size == 0:
        raise LogReadError(path, "file is empty (0 bytes)")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        msg = str(e)
        left_open = "already open for write" in msg or "consistency flags" in msg
        if left_open or ("truncated file" in msg and _writer_died(path)):
            # a file left open by a writer (killed, or failed on a full disk) is read in SWMR mode.
            # Not tried on other damage: SWMR reads retry bad checksums for a long time.
            try:
                return h5py.File(path, "r", swmr=True)
            except Exception as e2:  # noqa: BLE001 - any failure here is reported with the file name
                raise LogReadError(path, "left open by a writer and unreadable: %s" % explain_read_error(str(e2)))
        raise LogReadError(path, explain_open_error(msg, size))
    except Exception as e:  # noqa: BLE001
        raise LogReadError(path, "cannot open: %s: %s" % (type(e).__name__, _short(str(e))))


def _writer_died(path: str) -> bool:
    doc, _ = read_status(path)
    return doc is not None and doc.get("status") != STATUS_COMPLETE


def read_status(path: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The episode's sidecar status document, or (None, problem)."""
    sp = status_path(path)
    if not os.path.exists(sp):
        return None, "status file %s missing" % os.path.basename(sp)
    try:
        with open(sp) as f:
            doc = json.load(f)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return doc, None
    except (OSError, ValueError) as e:
        return None, "status file %s unreadable: %s" % (os.path.basename(sp), e)
