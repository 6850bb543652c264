"""Compiled (numba) sums of a Sparse projection; see :mod:`.sparse`.

``scatter(s, cptr, crow, cval, out)`` adds, for every sample ``b`` and every
non-zero input ``s[b, j]``, ``cval[k] * s[b, j]`` to ``out[b, crow[k]]`` for
``k`` in ``cptr[j]:cptr[j + 1]``.  ``out`` is int64, or int32 when the caller
has proven that no sum can leave int32 (then the accumulator needs half the
cache).  Batches of at least :data:`.fast.PARALLEL_MIN_BATCH` split the
samples over the threads; smaller batches split each sample's inputs into one
block per thread, each adding into its own buffer, and the buffers are summed
(integer addition: the same result in any order).
"""

from __future__ import annotations

import numpy as np

from .fast import PARALLEL_MIN_BATCH, _jit, _nb

__all__ = ["scatter"]


def _scatter_py(s, cptr, crow, cval, out):
    B, n_in = s.shape
    for b in _nb.prange(B):
        for j in range(n_in):
            x = s[b, j]
            if x != 0:
                for k in range(cptr[j], cptr[j + 1]):
                    out[b, crow[k]] += cval[k] * x


def _blocks_py(s_row, cptr, crow, cval, parts):
    P = parts.shape[0]
    n_in = s_row.shape[0]
    chunk = (n_in + P - 1) // P
    for p in _nb.prange(P):
        buf = parts[p]
        buf[:] = 0
        for j in range(p * chunk, min(n_in, (p + 1) * chunk)):
            x = s_row[j]
            if x != 0:
                for k in range(cptr[j], cptr[j + 1]):
                    buf[crow[k]] += cval[k] * x


def _reduce_py(parts, out):
    P, n = parts.shape
    for i in _nb.prange(n):
        acc = out[i]
        for p in range(P):
            acc += parts[p, i]
        out[i] = acc


_serial = _jit()(_scatter_py)
_parallel = _jit(parallel=True)(_scatter_py)
_blocks = _jit(parallel=True)(_blocks_py)
_reduce = _jit(parallel=True)(_reduce_py)


def scatter(s, cptr, crow, cval, out, parts=None) -> None:
    """Add the weighted input ``s`` (B, n_in) to ``out`` (B, n_rows), in place.

    ``parts``: an optional ``(P, n_rows)`` scratch array of ``out``'s dtype with
    ``P >= 2``; for a single sample the inputs are then split over ``P`` threads.
    """
    if s.shape[0] >= PARALLEL_MIN_BATCH:
        _parallel(s, cptr, crow, cval, out)
    elif parts is not None and s.shape[0] == 1:
        _blocks(s[0], cptr, crow, cval, parts)
        _reduce(parts, out[0])
    else:
        _serial(s, cptr, crow, cval, out)
