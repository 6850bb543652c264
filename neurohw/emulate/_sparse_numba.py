"""Compiled (numba) sums of a Sparse projection; see :mod:`.sparse`.

``scatter(s, cptr, crow, cval, out)`` adds, for every sample ``b`` and every
non-zero input ``s[b, j]``, ``cval[k] * s[b, j]`` to ``out[b, crow[k]]`` for
``k`` in ``cptr[j]:cptr[j + 1]``, in int64 (exact: the engine's bounds keep
every sum far below 2**63).  Samples run in parallel for batches of at least
:data:`.fast.PARALLEL_MIN_BATCH`.
"""

from __future__ import annotations

import numpy as np

from .fast import PARALLEL_MIN_BATCH, _jit, _nb

__all__ = ["scatter"]


def _scatter_py(s, cptr, crow, cval, out):
    B, n_in = s.shape
    for b in _nb.prange(B):
        for j in range(n_in):
            x = np.int64(s[b, j])
            if x != 0:
                for k in range(cptr[j], cptr[j + 1]):
                    out[b, crow[k]] += np.int64(cval[k]) * x


_serial = _jit()(_scatter_py)
_parallel = _jit(parallel=True)(_scatter_py)


def scatter(s, cptr, crow, cval, out) -> None:
    """Add the weighted input ``s`` (B, n_in) to ``out`` (B, n_rows) int64, in place."""
    (_parallel if s.shape[0] >= PARALLEL_MIN_BATCH else _serial)(s, cptr, crow, cval, out)
