"""Run-directory files: atomic torch checkpoints, the one-trainer-per-directory lock, waiting for a log to close."""
import fcntl
import os
import time
from typing import Any

import torch


class RunDirBusy(ValueError):
    """Another process holds the run directory's lock."""


def atomic_torch_save(obj: Any, path: str) -> None:
    """torch.save to a temp file in the same folder, fsync, rename over ``path``, fsync the folder."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_dir(folder: str):
    """Hold ``<folder>/.lock`` (flock) for this process's lifetime: one trainer per run directory."""
    f = open(os.path.join(folder, ".lock"), "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise RunDirBusy("another trainer is running in %s (it holds %s/.lock)" % (folder, folder))
    return f


def wait_closed(path: str, timeout: float = 30.0) -> bool:
    """Wait until the runtime's logger has closed an episode file (the process backend writes asynchronously)."""
    from go1o4.data.reader import read_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc, _ = read_status(path)
        if doc is not None and doc.get("status") != "open":
            return True
        time.sleep(0.05)
    return False
