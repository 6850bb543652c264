"""Sparse projections (:class:`~neurohw.ir.Sparse`) in the emulator.

Same integers as a :class:`~neurohw.ir.Dense` with the same matrix (and as
Lava's ``Sparse`` / ``DelaySparse`` fixed_pt models): effective mantissas
(clip and truncate per sign mode), sums in int64, ``weight_exp`` applied to
the sum (left shift, or an arithmetic right shift rounding toward -inf),
int32 wrap of what is sent (and of the delay buffer).

The weights are kept column-wise (CSC: for every input, the outputs it
reaches and the weights), so a step costs time in proportion to the synapses
of the inputs that spiked, not to all synapses.  A delay ``k`` moves a
synapse's output row to ``k * n_out + row``: one stacked sum gives every
delay slot at once.

* numpy engine: gather the columns of the active inputs and sum with
  ``np.bincount`` in float64, exact while the bound ``sum |w| * payload`` of
  every output stays below 2**53 (checked once); beyond that, or when most
  inputs are active, scipy's int64 sparse product.
* numba engine: one compiled scatter-add kernel per sample, int64.
"""

from __future__ import annotations

import weakref
from typing import Optional

import numpy as np

from ..fixedpoint import effective_weights
from .steps import apply_exp, loihi1_synapse_weights, wrap32

__all__ = ["SparseProj"]

_EXACT_F64 = 2**53


def _sparse_weights(node, profile):
    """``(CSR with the integer weights applied as int64, exponent)``, the sparse
    counterpart of ``engine._synapse_weights`` (same rules, stored entries only)."""
    w = node.weight.copy()
    vals = effective_weights(w.data, node.sign_mode, node.num_weight_bits, profile.weight_bits)
    exp = int(node.weight_exp)
    if profile.semantics == "loihi1":
        vals = loihi1_synapse_weights(vals, node.sign_mode, node.num_weight_bits,
                                      profile.weight_bits, node.weight_exp)
        exp = 0
    w.data = np.asarray(vals, dtype=np.int64)
    return w, exp


class _Prepared:
    """The column-wise integers of one Sparse node for one profile's rules (never written
    after construction: every run shares them)."""

    def __init__(self, node, profile):
        import scipy.sparse as sp

        w, self.exp = _sparse_weights(node, profile)
        n_out, n_in = w.shape
        self.n_out = n_out
        self.graded = node.num_message_bits > 0
        payload = (1 << node.num_message_bits) - 1 if self.graded else 1
        rows = np.repeat(np.arange(n_out, dtype=np.int64), np.diff(w.indptr))
        # row sums of |w| (each <= 2**31 * 2**15 entries' worth) are exact in float64
        row_abs = np.bincount(rows, weights=np.abs(w.data).astype(np.float64), minlength=n_out)
        bound = int(row_abs.max(initial=0)) * payload
        self.needs_wrap = (bound << max(self.exp, 0)) >= (1 << 31)
        self.exact_f64 = bound < _EXACT_F64
        # every partial sum of the compiled kernel fits int32 when the bound does
        self.acc_dtype = np.int32 if bound < (1 << 31) else np.int64
        if node.delay is None:
            self.max_delay = 0
        else:
            d = np.asarray(node.delay.data, dtype=np.int64)
            self.max_delay = int(d.max(initial=0))
            rows += d * n_out  # delay slot k holds rows k*n_out .. (k+1)*n_out-1
            del d
        self.n_rows = (self.max_delay + 1) * n_out
        # column-wise: for input j, entries cptr[j]:cptr[j+1] of (crow, cval)
        csc = sp.coo_matrix((w.data, (rows, w.indices)), shape=(self.n_rows, n_in)).tocsc()
        del rows, w
        idx_t = np.int32 if self.n_rows < (1 << 31) else np.int64
        self.cptr = csc.indptr.astype(np.int64)
        self.crow = csc.indices.astype(idx_t, copy=False)
        big = int(np.abs(csc.data).max(initial=0))
        self.cval = csc.data.astype(np.int16 if big < (1 << 15) else np.int32)
        self.nnz = int(csc.nnz)
        del csc
        self.csr_rows = None  # the row-wise int64 matrix for scipy's products, made on use


#: Prepared integers per node (weakly held: they go with the node) and profile rules, so
#: repeated runs of a big network skip the conversion (~5 s at 100M synapses).
_PREPARED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _prepared(node, profile) -> _Prepared:
    key = (profile.weight_bits, profile.semantics)
    per_node = _PREPARED.setdefault(node, {})
    if key not in per_node:
        per_node[key] = _Prepared(node, profile)
    return per_node[key]


class SparseProj:
    """Precomputed data and delay buffer of one Sparse projection (one step of latency)."""

    def __init__(self, node, profile, batch: int, use_numba: bool = False):
        prep = _prepared(node, profile)
        self.prep = prep
        for f in ("exp", "n_out", "graded", "needs_wrap", "exact_f64", "acc_dtype", "max_delay",
                  "n_rows", "cptr", "crow", "cval", "nnz"):
            setattr(self, f, getattr(prep, f))
        n_out = self.n_out
        self.buf = np.zeros((batch, self.max_delay + 1, n_out), dtype=np.int64)
        self.head = self.buf[:, 0]
        self.kernel = None
        self.parts = None  # per-thread buffers of the single-sample kernel
        self.threads = 1
        if use_numba:
            import numba

            self.threads = int(numba.get_num_threads())
            from . import _sparse_numba

            self.kernel = _sparse_numba

    def deliver(self) -> np.ndarray:
        """What the projection sends this step (its buffer head), int64 (B, n_out)."""
        return self.head

    # -- sums --------------------------------------------------------------
    def _matrix(self):
        """The stacked weights as a scipy CSR (int64), for scipy's exact products."""
        if self.prep.csr_rows is None:
            import scipy.sparse as sp

            csc = sp.csc_matrix((self.cval.astype(np.int64), self.crow, self.cptr),
                                shape=(self.n_rows, self.cptr.size - 1))
            self.prep.csr_rows = csc.tocsr()
        return self.prep.csr_rows

    def sums(self, s_in: np.ndarray) -> np.ndarray:
        """int64 ``(B, n_rows)``: the weighted sums of this step's input ``s_in`` (B, n_in)."""
        B = s_in.shape[0]
        if self.kernel is not None:
            out = np.zeros((B, self.n_rows), self.acc_dtype)
            if B == 1 and self.parts is None and self.threads > 1:
                self.parts = np.zeros((self.threads, self.n_rows), self.acc_dtype)
            self.kernel.scatter(np.ascontiguousarray(s_in), self.cptr, self.crow, self.cval, out,
                                self.parts if B == 1 else None)
            return out.astype(np.int64) if self.acc_dtype != np.int64 else out
        out = np.zeros((B, self.n_rows), np.int64)
        for b in range(B):
            x = s_in[b]
            idx = np.flatnonzero(x)
            if idx.size == 0:
                continue
            starts = self.cptr[idx]
            lens = self.cptr[idx + 1] - starts
            total = int(lens.sum())
            if not self.exact_f64 or total > self.nnz // 4:
                out[b] = self._matrix() @ x.astype(np.int64)
                continue
            # positions of every entry of the active columns, without a Python loop
            pos = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
            vals = self.cval[pos].astype(np.float64)
            if self.graded:
                vals *= np.repeat(x[idx].astype(np.float64), lens)
            out[b] = np.bincount(self.crow[pos], weights=vals, minlength=self.n_rows)
        return out

    def accumulate(self, s_in: np.ndarray, nnz: Optional[int] = None) -> None:
        """Shift the buffer one step and add this step's weighted input (Lava's order)."""
        a = apply_exp(self.sums(s_in), self.exp) if self.exp else self.sums(s_in)
        if self.max_delay == 0:
            self.head = wrap32(a) if self.needs_wrap else a
            return
        B = s_in.shape[0]
        a = a.reshape(B, self.max_delay + 1, self.n_out)
        buf = np.roll(self.buf, -1, axis=1)
        buf[:, -1] = 0
        self.buf = wrap32(buf + a)  # Lava's DelaySparse keeps its buffer in int32
        self.head = self.buf[:, 0]
