"""The quantizer's choice between a dense and a sparse projection.

A quantized fully connected projection becomes an :class:`~neurohw.ir.Sparse`
instead of an :class:`~neurohw.ir.Dense` when its integer weight matrix is
mostly zero and large enough for the difference to matter:

* density (non-zero mantissas / ``n_out * n_in``) below :data:`SPARSE_DENSITY`
  (25 %): CSR costs about 8 bytes per synapse (int32 value + int32 column)
  against 4 bytes per dense entry, so below 25 % it needs at most half the
  memory of the dense matrix; and
* at least :data:`SPARSE_MIN_ENTRIES` dense entries (65,536, i.e. 256 KiB as
  int32): below that the saving is negligible and every tool (netx export,
  mapping) takes the dense form.

Both forms give the same integers (``tests/test_sparse.py``); the choice is
only about memory and speed, and it is reported in the quantization notes.
"""

from __future__ import annotations

from typing import List

import numpy as np

from .. import ir

__all__ = ["SPARSE_DENSITY", "SPARSE_MIN_ENTRIES", "maybe_sparse", "csr_bytes"]

SPARSE_DENSITY = 0.25
"""Densities below this make a large projection sparse."""
SPARSE_MIN_ENTRIES = 1 << 16
"""Dense matrices with fewer entries stay Dense."""


def csr_bytes(nnz: int, n_out: int, delays: bool = False) -> int:
    """Bytes of an int32 CSR matrix: values and column indices, int64 row offsets
    (plus int32 delays per entry)."""
    return nnz * (8 + (4 if delays else 0)) + 8 * (n_out + 1)


def maybe_sparse(node: ir.Dense, notes: List[str], where: str) -> ir.Node:
    """``node`` itself, or an equal :class:`~neurohw.ir.Sparse` when that saves memory
    (module docstring); appends one report line to ``notes`` when it converts."""
    n_out, n_in = node.weight.shape
    entries = n_out * n_in
    if entries < SPARSE_MIN_ENTRIES:
        return node
    nnz = int(np.count_nonzero(node.weight))
    if nnz >= SPARSE_DENSITY * entries:
        return node
    import scipy.sparse as sp

    has_delay = node.delay is not None
    dense_b = entries * 4 * (2 if has_delay else 1)
    sparse_b = csr_bytes(nnz, n_out, has_delay)
    out = ir.Sparse(node.name, weight=sp.csr_matrix(node.weight), weight_exp=node.weight_exp,
                    num_weight_bits=node.num_weight_bits, sign_mode=node.sign_mode,
                    num_message_bits=node.num_message_bits,
                    delay=None if node.delay is None else np.asarray(node.delay))
    notes.append(f"{where}: sparse ({nnz} of {entries} weights non-zero, "
                 f"{100 * nnz / entries:.1f}% < {100 * SPARSE_DENSITY:g}%): stored as CSR, "
                 f"{sparse_b / 2**20:.2f} MiB instead of {dense_b / 2**20:.2f} MiB")
    return out
