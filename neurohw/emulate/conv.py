"""Event-driven convolution for sparse spikes: each spike adds its kernel into the output.

:class:`.steps.ShiftedConv` costs the same whatever the activity (``kh*kw``
dense products over every position).  When few inputs are non-zero, adding
each one's weights into the outputs it reaches is cheaper: a spike at input
``(c, y, x)`` adds ``payload * w[o, c % cg, i, j]`` to output
``(o, (y + ph - i*dh) / sh, (x + pw - j*dw) / sw)`` for every tap ``(i, j)``
whose division is exact and lands inside the output, and every output
channel ``o`` of the spike's group.  All sums are int64, so the integers are
the dense path's whatever the bounds.  :class:`ConvScatter` runs that loop
compiled (numba, optional); :meth:`ConvScatter.prefer` is the per-step cost
model that picks it over the dense products.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ConvScatter", "scatter_available", "dense_cost_ns", "worth_scattering"]

# Cost model in ns per unit, least-squares fits (relative error) on the 2-core
# x86 development VM over 11 convolutions x batch 1 and 4, averaged over runs
# (docs/performance.md, "Convolutions at scale"; most predictions within
# 0.7-1.3x of the measured time, the worst 0.25x: a batch-4 product slowed by
# cache misses).  Dense (ShiftedConv): _NS_MAC per float32
# BLAS multiply-add (float64 and int64 cost _F64_FACTOR / _I64_FACTOR times
# that), _NS_TAP per output-grid element per tap (writing and adding each
# tap's product; all of an elementwise tap's work), _NS_STACK per stacked
# element, _NS_FILL per phase-grid element filled and _NS_OUT per output
# element converted to int64.  Scatter: _NS_NZ per input element (finding the
# spikes), _NS_SPIKE per spike, _NS_ADD per weight added and, per output
# element, _NS_ZERO (zeroing) or _NS_ZERO_CL (zeroing and transposing
# channel-last).
_NS_MAC = 0.02
_F64_FACTOR, _I64_FACTOR = 2.0, 30.0
_NS_TAP = 0.11
_NS_STACK = 0.27
_NS_FILL = 0.28
_NS_OUT = 0.16
_NS_NZ = 0.11
_NS_SPIKE = 25.0
_NS_ADD = 0.56
_NS_ZERO = 0.14
_NS_ZERO_CL = 0.36
_MIN_DENSE_NS = 50_000.0  # dense steps cheaper than this never scatter
_CHANNEL_LAST_MIN = 4  # output channels per group from which channel_last runs

_kernels = None


def scatter_available() -> bool:
    """True when numba is importable (the scatter loops are compiled with it)."""
    from . import fast

    return fast.available()


def _compiled():
    """``(planes, channel_last, drain)``: the numba scatter loops, compiled (or loaded
    from numba's cache) on first use.

    Both take ``flat`` (the non-zero inputs' indices into ``(B, C, H, W)``),
    ``vals`` (their int64 payloads), ``rows``/``cols`` (:meth:`ConvScatter._reach`
    tables), ``out`` (int64, zeroed) and the sizes.  ``planes`` adds into
    ``out`` ``(B, C_out, OH, OW)`` one output channel at a time (each pass stays
    in one ``(OH, OW)`` plane, which fits in cache; for few channels per group);
    ``channel_last`` adds each spike's ``C_out/g`` weights of a tap into
    contiguous memory of ``out`` ``(B, OH, OW, C_out)`` (for many channels per
    group; ``drain`` then transposes it into ``(B, C_out, OH, OW)`` and zeroes
    it, 3x faster than numpy's transposed copy and fill for one sample).
    ``wc`` is ``(C, og, kh, kw)`` for ``planes`` and ``(C, kh, kw, og)`` for
    ``channel_last``.
    """
    global _kernels
    if _kernels is None:
        from .fast import _jit

        @_jit(nogil=True)
        def decode(flat, c, h, w, cg, og):
            # sample, channel, row, column and group's first output channel per spike
            nz = flat.shape[0]
            d = np.empty((5, nz), np.int64)
            for n in range(nz):
                f = flat[n]
                b = f // (c * h * w)
                r = f - b * (c * h * w)
                ci = r // (h * w)
                r -= ci * (h * w)
                y = r // w
                d[0, n], d[1, n], d[2, n], d[3, n] = b, ci, y, r - y * w
                d[4, n] = (ci // cg) * og
            return d

        @_jit(nogil=True)
        def planes(flat, vals, wc, rows, cols, out, c, h, w, cg, og):
            d = decode(flat, c, h, w, cg, og)
            for o in range(og):
                for n in range(flat.shape[0]):
                    b, ci, y, x, v, oc = d[0, n], d[1, n], d[2, n], d[3, n], vals[n], d[4, n] + o
                    for t in range(rows[y, 2, 0]):
                        i, oy = rows[y, 0, t], rows[y, 1, t]
                        for u in range(cols[x, 2, 0]):
                            j, ox = cols[x, 0, u], cols[x, 1, u]
                            out[b, oc, oy, ox] += v * wc[ci, o, i, j]

        @_jit(nogil=True)
        def channel_last(flat, vals, wc, rows, cols, out, c, h, w, cg, og):
            d = decode(flat, c, h, w, cg, og)
            for n in range(flat.shape[0]):
                b, ci, y, x, v, o0 = d[0, n], d[1, n], d[2, n], d[3, n], vals[n], d[4, n]
                for t in range(rows[y, 2, 0]):
                    i, oy = rows[y, 0, t], rows[y, 1, t]
                    for u in range(cols[x, 2, 0]):
                        j, ox = cols[x, 0, u], cols[x, 1, u]
                        for o in range(og):
                            out[b, oy, ox, o0 + o] += v * wc[ci, i, j, o]

        @_jit(nogil=True)
        def drain(scratch, out):
            # out[b, o, y, x] = scratch[b, y, x, o], then scratch = 0; one scratch row
            # (W*C_out values) at a time stays in cache while its C_out output rows fill
            nb, h_out, w_out, c_out = scratch.shape
            for b in range(nb):
                for y in range(h_out):
                    for o in range(c_out):
                        for x in range(w_out):
                            out[b, o, y, x] = scratch[b, y, x, o]
                    for x in range(w_out):
                        for o in range(c_out):
                            scratch[b, y, x, o] = 0

        _kernels = (planes, channel_last, drain)
    return _kernels


def dense_cost_ns(d) -> float:
    """Modelled time of one sample through :class:`.steps.ShiftedConv` ``d``, in ns."""
    f = (1.0 if d.dtype == np.float32 else _F64_FACTOR if d.dtype == np.float64
         else _I64_FACTOR)
    taps = len(d.offsets)
    per_tap = taps * d.length * (d.c * _NS_STACK if d.stacked else d.c_out * _NS_TAP)
    return (d.macs * _NS_MAC * f + per_tap + _NS_FILL * d.c * d.seg * len(d.fill)
            + _NS_OUT * d.c_out * d.oh * d.ow)


def worth_scattering(d, batch: int) -> bool:
    """True when the dense products of ``d`` (a :class:`.steps.ShiftedConv`) are modelled
    to take at least ``_MIN_DENSE_NS`` a step for ``batch`` samples: below that, counting
    the spikes each step costs more than a scatter could save."""
    return batch * dense_cost_ns(d) >= _MIN_DENSE_NS


class ConvScatter:
    """Event-driven exact grouped convolution (NIR/PyTorch cross-correlation).

    ``in_shape`` is ``(C, H, W)``; ``w`` the integer weight
    ``(C_out, C/groups, kh, kw)``; ``stride``, ``padding``, ``dilation``
    ``(h, w)`` pairs in pixels; ``batch`` the largest batch.  ``dense`` (a
    :class:`.steps.ShiftedConv` of the same convolution) sets the cost the
    scatter is weighed against in :meth:`prefer` (without it :meth:`prefer` is
    always False).  :meth:`__call__` takes
    ``(B, C*H*W)`` and returns int64 ``(B, C_out*OH*OW)`` in ``C, H, W`` order,
    the same integers as :func:`.steps.conv_accumulate`; the returned array is
    reused by the next call.  Needs numba (:func:`scatter_available`).
    """

    def __init__(self, in_shape, w, stride, padding, dilation, groups: int, batch: int,
                 dense=None):
        from ..ir import conv_output_hw

        c, h, wd = (int(v) for v in in_shape)
        w = np.asarray(w, dtype=np.int64)
        c_out, cg, kh, kw = w.shape
        self.c, self.h, self.w_in, self.cg = c, h, wd, cg
        self.og = c_out // int(groups)
        self.geom = tuple(int(v) for v in (*stride, *padding, *dilation))
        sh, sw = self.geom[:2]
        self.oh, self.ow = conv_output_hw((h, wd), (kh, kw), stride, padding, dilation)
        # (C, C_out/g, kh, kw): input channel ci reads w[g*og + o, ci % cg] (g = ci // cg)
        wc = w.reshape(int(groups), self.og, cg, kh, kw).transpose(0, 2, 1, 3, 4) \
            .reshape(c, self.og, kh, kw)
        # many output channels per group: add them contiguously (channel-last scratch,
        # transposed after; 2-4x faster at og=32), else one output plane at a time
        self.channel_last = self.og >= _CHANNEL_LAST_MIN
        self.wc = np.ascontiguousarray(wc.transpose(0, 2, 3, 1) if self.channel_last else wc)
        ph, pw, dh, dw = self.geom[2:]
        self.rows = self._reach(h, kh, sh, ph, dh, self.oh)
        self.cols = self._reach(wd, kw, sw, pw, dw, self.ow)
        self.batch, self.c_out = int(batch), c_out
        self.out = self.scratch = None  # allocated on the first call (most never scatter)
        self.n_out = c_out * self.oh * self.ow
        # weights one spike adds, on average over its position (a stride s skips
        # all but 1/s of the taps per axis, borders skip more)
        self.adds = self.og * float(self.rows[:, 2, 0].mean()) * float(self.cols[:, 2, 0].mean())
        self.dense_ns = dense_cost_ns(dense) if dense is not None else 0.0

    @staticmethod
    def _reach(n, k, s, p, d, n_out):
        """``(n, 3, k)`` int64: for input index ``y``, the taps ``i`` that reach an
        output (``(y + p - i*d) / s`` exact and in range) in ``[y, 0, :m]``, those
        outputs in ``[y, 1, :m]``, and ``m`` in ``[y, 2, 0]``."""
        t = np.arange(n)[:, None] + p - np.arange(k)[None, :] * d
        o = t // s
        ok = (t >= 0) & (o * s == t) & (o < n_out)
        table = np.zeros((n, 3, k), np.int64)
        for y in range(n):
            (taps,) = np.nonzero(ok[y])
            table[y, 0, :len(taps)] = taps
            table[y, 1, :len(taps)] = o[y, taps]
            table[y, 2, 0] = len(taps)
        return table

    def prefer(self, nnz: int, batch: int) -> bool:
        """True when ``nnz`` non-zero inputs (over ``batch`` samples) are modelled to
        scatter faster than the dense products."""
        scatter = (batch * (_NS_NZ * self.c * self.h * self.w_in
                            + (_NS_ZERO_CL if self.channel_last else _NS_ZERO) * self.n_out)
                   + nnz * (_NS_SPIKE + _NS_ADD * self.adds))
        return scatter < batch * self.dense_ns

    def __call__(self, s_in) -> np.ndarray:
        """Scatter ``s_in`` ``(B, C*H*W)`` into the reused int64 ``(B, C_out*OH*OW)``."""
        B = s_in.shape[0]
        if self.out is None:
            self.out = np.empty((self.batch, self.c_out, self.oh, self.ow), np.int64)
            if self.channel_last:
                # kept zeroed between calls (drain zeroes what it reads)
                self.scratch = np.zeros((self.batch, self.oh, self.ow, self.c_out), np.int64)
        out = self.out[:B]
        flat = np.flatnonzero(s_in)
        vals = s_in.reshape(-1)[flat].astype(np.int64)
        planes, channel_last, drain = _compiled()
        if self.channel_last:
            acc = self.scratch[:B]
            channel_last(flat, vals, self.wc, self.rows, self.cols, acc, self.c, self.h,
                         self.w_in, self.cg, self.og)
            drain(acc, out)
        else:
            out.fill(0)
            planes(flat, vals, self.wc, self.rows, self.cols, out, self.c, self.h, self.w_in,
                   self.cg, self.og)
        return out.reshape(B, -1)
