"""Disk-space guard and failure handling for the episode writer.

HDF5 does not survive a failed write: after one, later calls (even closing) can crash the whole
process. So the writer checks before each flush that it fits (free disk space, RLIMIT_FSIZE), and
when a write fails anyway it points the file's descriptor at /dev/null before closing, so the
close completes while the file on disk keeps its last complete flush. Python 3.8 syntax.
"""
import os
from typing import Any

import numpy as np

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

METADATA_ALLOWANCE = 256 << 10  # bytes of HDF5 metadata a flush may add
RLIMIT_MARGIN = 64 << 10


class NoSpace(Exception):
    """A flush might not fit on the disk / under the file size limit."""


def chunk_rows(flush_every_steps: int, shape: Any, dtype: str) -> int:
    """Rows per chunk so that one flush fills whole chunks (a partly filled compressed chunk is
    rewritten at a new place on every flush, bloating the file), split to stay <= 1 MiB."""
    row_bytes = max(1, int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    pieces = -(-flush_every_steps * row_bytes // (1 << 20))
    return max(1, -(-flush_every_steps // pieces))


def check_space(path: str, need: int, min_free_bytes: int) -> None:
    """Raise NoSpace unless ``need`` bytes (+ metadata) fit with ``min_free_bytes`` left free."""
    need = need + METADATA_ALLOWANCE
    folder = os.path.dirname(os.path.abspath(path))
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    if free < need + min_free_bytes:
        raise NoSpace("disk full: %d bytes free in %s, a flush needs up to %d plus %d kept free"
                      % (free, folder, need, min_free_bytes))
    if resource is not None:
        soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        size = os.path.getsize(path) if os.path.exists(path) else 0
        if soft != resource.RLIM_INFINITY and size + need + RLIMIT_MARGIN > soft:
            raise NoSpace("file size limit reached: %s is %d bytes, RLIMIT_FSIZE %d, a flush needs up to %d"
                          % (path, size, soft, need))


def detach_and_close(h5file: Any, handles: Any = None) -> None:
    """Close an HDF5 file whose writes fail, without touching what is on disk (best effort).

    ``handles`` (a dict of open dataset objects) is cleared only once writes go to /dev/null.
    """
    try:
        fd = h5file.id.get_vfd_handle()
        nul = os.open(os.devnull, os.O_RDWR)
        os.dup2(nul, fd)
        os.close(nul)
    except Exception:  # noqa: BLE001 - best effort; the original error is what matters
        pass
    if handles is not None:
        handles.clear()
    try:
        h5file.close()
    except Exception:  # noqa: BLE001
        pass
