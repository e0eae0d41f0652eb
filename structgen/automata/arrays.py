"""Tables that grow ahead of use without paying for the rows they have not reached.

``np.zeros`` of a large table is not free in a long-running process: once it has freed
large arrays, glibc serves big requests from its heap and clears them byte by byte, so
every page is written (and, in a worker forked from a warmed parent, copied) before the
first row is used. Measured on this project's host: 800 KB cost 251 page faults and
0.68 ms in a forked worker, against 11 faults and 0.08 ms on fresh anonymous pages. Large
tables here are mapped afresh instead: the kernel zeroes a page when it is first touched.
"""

from __future__ import annotations

import mmap

import numpy as np

FRESH_PAGES_FROM = 1 << 16  # bytes: smaller tables come from np.zeros


def zeroed(shape: int | tuple[int, ...], dtype) -> np.ndarray:
    """A zero-filled array; large ones on fresh pages (see the module docstring)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < FRESH_PAGES_FROM:
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(shape)


def grown(rows: np.ndarray, n: int, used: int) -> np.ndarray:
    """``rows`` with ``n`` rows, its first ``used`` copied and the rest zeros (as ``rows``'
    own rows past ``used`` must be): a table grown ahead of use costs memory as rows are
    written, not when it grows."""
    out = zeroed((n,) + rows.shape[1:], rows.dtype)
    out[:used] = rows[:used]
    return out
