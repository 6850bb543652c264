"""Pure integer step functions, vectorized over a leading batch axis.

Each function takes arrays and parameters and returns new arrays; nothing is
mutated and nothing depends on Lava.  Arithmetic is ``int64``; where Lava's
bit-accurate models compute in ``int32`` and let numpy wrap silently, the
result is wrapped to 32 bits explicitly (:func:`wrap32`) at the same point,
so the emulator reproduces those wraps instead of hiding them.  ``xp`` is the
array module (numpy by default; any module with numpy's API, such as CuPy,
runs the same code).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import numpy as np

from ..ir import conv_output_hw

__all__ = ["LIFParams", "LIFState", "wrap32", "wrap_bits", "lif_step", "dense_accumulate",
           "apply_exp", "conv_gather_index", "conv_accumulate", "TraceParams", "trace_step",
           "loihi1_synapse_weights", "round_half_even_shift", "ShiftedConv"]

_U_HALF = 1 << 23  # 2**(24-1): Lava's max_uv_val


class LIFParams(NamedTuple):
    """Integer LIF parameters as used per step: Python ints or int64 arrays of shape ``(n,)``.

    ``decay_u = 2**decay_bits - (du + 1)``, ``decay_v = 2**decay_bits - dv``,
    ``bias = bias_mant << bias_exp`` (floor shift when negative),
    ``vth_scaled = vth << vth_shift``; ``act_shift`` aligns the input;
    ``half`` is ``2**(state_bits - 1)``; ``decay_bits`` is the right shift
    that ends each decay.  ``decay_u``, ``decay_v`` and ``vth_scaled`` are
    scalars when every neuron shares them, else per neuron; ``bias`` is per
    neuron.  Defaults are Lava's (Loihi) widths.

    ``vmin``/``vmax`` clip ``v`` (``None``: ``-(half - 1)``/``half - 1``);
    ``refract`` is ``refract_delay`` per neuron (int64 ``(n,)``) or ``None``
    (no refractory period: the state carries no counter); ``loihi1`` selects
    the Loihi 1 rules (:func:`lif_step`); ``dendrite_bits`` is the width the
    shifted input is wrapped to (32 in Lava, 22 on Loihi 1).
    """

    decay_u: np.ndarray
    decay_v: np.ndarray
    bias: np.ndarray
    vth_scaled: np.ndarray
    act_shift: int = 6
    half: int = _U_HALF
    decay_bits: int = 12
    vmin: Optional[int] = None
    vmax: Optional[int] = None
    refract: Optional[np.ndarray] = None
    loihi1: bool = False
    dendrite_bits: int = 32
    elif_lut: Optional[np.ndarray] = None  # int64 (N,): ELIF table (docs/neuron-models.md)
    elif_lo: int = 0
    elif_shift: int = 0

    @property
    def extended(self) -> bool:
        """True when a rule beyond Lava's plain ``PyLifModelBitAcc`` applies."""
        return (self.loihi1 or self.refract is not None or self.dendrite_bits != 32
                or self.vmin is not None or self.vmax is not None or self.elif_lut is not None)

class LIFState(NamedTuple):
    """``u`` and ``v``, int64 arrays of shape ``(B, n)``; ``ref`` the refractory
    counter (int64 ``(B, n)``, steps left) when the parameters have ``refract``."""

    u: np.ndarray
    v: np.ndarray
    ref: Optional[np.ndarray] = None


def wrap32(x, xp=np):
    """Two's-complement wrap of an int64 array to int32 range (kept as int64)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap_bits(x, bits: int, xp=np):
    """Two's-complement wrap of an int64 array to ``bits`` bits (Lava's ``signed_clamp``)."""
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


def _decay(x, factor, shift: int = 12, xp=np):
    # x * factor in int64, then >> shift rounding toward zero (|x| shifted, sign restored);
    # |x| < 2**32 and factor <= 2**shift with shift <= 30 keep the product inside int64
    prod = x * factor
    return xp.sign(prod) * (xp.abs(prod) >> shift)


def lif_step(state: LIFState, a_in, p: LIFParams, xp=np, events: bool = False):
    """One step of Lava's ``PyLifModelBitAcc`` for a batch.

    Phases, in Lava's order (``a_in`` is the summed synaptic input, int64;
    ``D = decay_bits``, ``H = 2**(state_bits - 1)``; Lava's Loihi widths are
    ``D = 12``, ``H = 2**23``, ``act_shift = vth_shift = 6``):

    1. ``u = wrap32(trunc(u * decay_u / 2**D) + wrap32(a_in << act_shift))``
    2. wrap, once: ``u -= 2H`` if ``u > H``; ``u += 2H`` if ``u <= -H``
    3. ``v = clip(wrap32(trunc(v * decay_v / 2**D) + u + bias), -(H - 1), H - 1)``
    4. ``s = v > vth_scaled``; ``v = 0`` where ``s`` (``u`` is kept)

    ``trunc`` rounds toward zero.  Every parameter may be a scalar or per
    neuron (shape ``(n,)``, broadcast over the batch).

    With ``p.loihi1`` (Loihi 1 as nengo-loihi 1.1.0's emulator computes it,
    ``docs/loihi1.md``) phases 1-3 are instead

    1. ``q = wrap(a_in << act_shift, dendrite_bits)`` (two's complement, 22 bits)
    2. ``u = wrap(trunc(u * decay_u / 2**D) + q, state_bits)`` (two's complement)
    3. ``v = clip(trunc(v * decay_v / 2**D) + wrap(u + bias, state_bits), vmin, vmax)``

    and in both rule sets ``v`` is clipped to ``[vmin, vmax]``.  With
    ``p.refract`` (refractory delays), after phase 3 ``v = 0`` where the
    counter ``ref > 0``; after phase 4 ``ref = refract`` where ``s``, then
    ``ref = max(ref - 1, 0)`` (nengo-loihi's order: ``refract_delay = r``
    gives ``r - 1`` silent steps, during which ``u`` integrates as usual).

    Returns ``(new_state, spikes)`` with ``spikes`` a bool array; with
    ``events`` also ``(u_wrapped, v_clipped)``, boolean masks of the neurons
    whose ``u`` (or, Loihi 1, ``u + bias``) wrapped and whose ``v`` saturated
    this step.
    """
    if p.extended:
        return _lif_step_ext(state, a_in, p, xp, events)
    half = p.half
    # the low 32 bits of an int64 left shift are exact even when the shift carries bits
    # out of 64 (a shift, shift < 64, is modulo 2**64), so wrap32 gives Lava's int32 value
    act = wrap32(a_in << p.act_shift, xp)
    u = wrap32(_decay(state.u, p.decay_u, p.decay_bits, xp) + act, xp)
    u_wrapped = (u > half) | (u <= -half)
    u = xp.where(u > half, u - 2 * half, xp.where(u <= -half, u + 2 * half, u))
    v_raw = wrap32(_decay(state.v, p.decay_v, p.decay_bits, xp) + u + p.bias, xp)
    v = xp.clip(v_raw, -(half - 1), half - 1)
    s = v > p.vth_scaled
    if events:
        v_clipped = v != v_raw
    v = xp.where(s, 0, v)
    if events:
        return LIFState(u, v), s, (u_wrapped, v_clipped)
    return LIFState(u, v), s


def elif_term(v, lut, lo: int, shift: int, xp=np):
    """The ELIF table's value for the step's starting ``v`` (int64): ``0`` where
    ``v < lo``, else ``lut[min((v - lo) >> shift, N - 1)]`` (floor shift)."""
    k = (v - lo) >> shift
    e = lut[xp.clip(k, 0, lut.shape[0] - 1)]
    return xp.where(k < 0, 0, e)


def _lif_step_ext(state: LIFState, a_in, p: LIFParams, xp=np, events: bool = False):
    """:func:`lif_step` with the Loihi 1 rules, [vmin, vmax], refractory delays and the
    ELIF table (``p.elif_lut``: :func:`elif_term` of the starting ``v`` is added to the
    sum that makes ``v``, inside Lava's int32 wrap)."""
    half = p.half
    e = 0 if p.elif_lut is None else elif_term(state.v, p.elif_lut, p.elif_lo, p.elif_shift, xp)
    vmin = -(half - 1) if p.vmin is None else p.vmin
    vmax = half - 1 if p.vmax is None else p.vmax
    q = wrap_bits(a_in << p.act_shift, p.dendrite_bits, xp)
    if p.loihi1:
        state_bits = (2 * half).bit_length() - 1
        u_raw = _decay(state.u, p.decay_u, p.decay_bits, xp) + q
        u = wrap_bits(u_raw, state_bits, xp)
        u2_raw = u + p.bias
        u2 = wrap_bits(u2_raw, state_bits, xp)
        u_wrapped = (u != u_raw) | (u2 != u2_raw)
        v_raw = _decay(state.v, p.decay_v, p.decay_bits, xp) + u2 + e
    else:
        u = wrap32(_decay(state.u, p.decay_u, p.decay_bits, xp) + q, xp)
        u_wrapped = (u > half) | (u <= -half)
        u = xp.where(u > half, u - 2 * half, xp.where(u <= -half, u + 2 * half, u))
        v_raw = wrap32(_decay(state.v, p.decay_v, p.decay_bits, xp) + u + p.bias + e, xp)
    v = xp.clip(v_raw, vmin, vmax)
    v_clipped = v != v_raw
    ref = state.ref
    if p.refract is not None:
        if ref is None:
            ref = xp.zeros_like(v)
        v = xp.where(ref > 0, 0, v)
    s = v > p.vth_scaled
    v = xp.where(s, 0, v)
    if p.refract is not None:
        ref = xp.maximum(xp.where(s, p.refract, ref) - 1, 0)
    new = LIFState(u, v, ref)
    if events:
        return new, s, (u_wrapped, v_clipped)
    return new, s


class TraceParams(NamedTuple):
    """Integer spike-trace parameters of one population (``docs/fixed-point.md``).

    ``decay`` (``0..2**decay_bits - 1``) makes the factor ``2**decay_bits - decay``;
    ``impulse`` (``1..2**bits - 1``) is added on a spike (``set``: the trace
    becomes ``impulse``); ``bits`` is the unsigned trace width.
    """

    decay: int
    impulse: int
    bits: int = 7
    decay_bits: int = 12
    set_mode: bool = False


def trace_step(x, s, p: TraceParams, xp=np):
    """One step of an integer spike trace, int64 ``(B, n)``; ``s`` the spikes of this step.

    ``x = (x * (2**decay_bits - decay)) >> decay_bits`` (``x >= 0``: floor,
    deterministic, where Loihi's learning engine rounds stochastically), then
    where ``s``: ``x = min(x + impulse, 2**bits - 1)`` (additive) or
    ``x = impulse`` (set).  The decay comes first, as in Lava's
    ``LearningConnectionModelBitApproximate._compute_trace_histories``, so a
    spike at step ``t`` shows as ``impulse`` (plus the decayed past) in row ``t``.
    """
    x = (x * ((1 << p.decay_bits) - p.decay)) >> p.decay_bits
    top = (1 << p.bits) - 1
    hit = p.impulse if p.set_mode else xp.minimum(x + p.impulse, top)
    return xp.where(s, hit, x)


def round_half_even_shift(m, k: int, xp=np):
    """``round(m / 2**k)`` with ties to even (numpy's ``np.round``), exact in int64, ``k >= 1``."""
    q = m >> k  # floor
    rem = m - (q << k)  # 0 .. 2**k - 1
    half = 1 << (k - 1)
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1))).astype(xp.int64)


def loihi1_synapse_weights(w_eff, sign_mode: str, num_weight_bits: int, weight_bits: int,
                           weight_exp: int, xp=np):
    """Per-synapse integers a Loihi 1 synapse adds (before ``act_shift``), as int64.

    ``w_eff`` are the weight mantissas after Lava's clip and truncation
    (:func:`neurohw.fixedpoint.effective_weights`), multiples of ``2**sb``
    with ``sb = weight_bits - num_weight_bits (+1 in mixed mode)``, nengo-loihi's
    ``SynapseConfig.shift_bits``.  As nengo-loihi 1.1.0's ``discretize_weights``
    (``lossy_shift``): ``m = clip(w_eff / 2**sb, +-(2**(weight_bits - sb) - 1))``
    (so -256 in mixed mode becomes -254: Loihi 1 has sign + 7 bits);
    ``s2 = sb + weight_exp``; for ``s2 >= 0`` the result is ``m << s2`` (equal to
    Lava's ``w_eff << weight_exp``); for ``s2 < 0`` each synapse is rounded on its
    own: ``clip(round_half_even(m / 2**-s2) << -s2, +-mmax) >> -s2`` (floor), where
    Lava floors the sum once.
    """
    sb = weight_bits - int(num_weight_bits) + (1 if sign_mode == "mixed" else 0)
    mmax = (1 << (weight_bits - sb)) - 1
    m = xp.clip(xp.asarray(w_eff, dtype=xp.int64) >> sb, -mmax, mmax)
    s2 = sb + int(weight_exp)
    if s2 >= 0:
        return m << s2
    k = -s2
    r = xp.clip(round_half_even_shift(m, k, xp) << k, -mmax, mmax)
    return r >> k


def dense_accumulate(s_in, w_eff, w_eff_t_float=None, xp=np):
    """``a[b, i] = sum_j w_eff[i, j] * s_in[b, j]`` exactly, as int64 ``(B, n_out)``.

    ``w_eff_t_float`` (``w_eff.T`` as float32 or float64) enables the BLAS
    fast path; the caller passes float32 only when
    ``max_j |s| * sum_j |w_eff[i, j]| < 2**24`` and float64 only below
    ``2**53`` for every row: then every partial sum is an exact integer in
    that format, whatever order BLAS adds in, and the conversion back to
    int64 is exact.
    """
    if w_eff_t_float is not None:
        return (s_in.astype(w_eff_t_float.dtype) @ w_eff_t_float).astype(xp.int64)
    return s_in.astype(xp.int64) @ w_eff.T.astype(xp.int64)


def apply_exp(a, weight_exp: int, xp=np):
    """Scale an accumulated input by the weight exponent: ``a << e``, or ``a >> -e`` (floor)."""
    if weight_exp >= 0:
        return a << weight_exp
    return a >> (-weight_exp)


def conv_gather_index(in_shape, kernel, stride, padding, dilation, groups: int) -> np.ndarray:
    """Index array for an exact im2col of a 2-D cross-correlation (NIR/PyTorch semantics).

    ``in_shape`` is ``(C, H, W)``; ``kernel`` ``(kh, kw)``; stride, padding
    and dilation are ``(h, w)`` pairs.  Returns int64 ``idx`` of shape
    ``(groups, OH*OW, (C//groups)*kh*kw)``: entry ``[g, p, k]`` is the flat
    (row-major ``C, H, W``) input index that kernel tap ``k`` of group ``g``
    reads at output position ``p``, or ``C*H*W`` for a zero-padding tap
    (the caller appends one zero column to the input).
    """
    c, h, w = (int(v) for v in in_shape)
    kh, kw = (int(v) for v in kernel)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = conv_output_hw((h, w), (kh, kw), stride, padding, dilation)
    cg = c // groups
    ih = np.arange(oh)[:, None] * sh - ph + np.arange(kh)[None, :] * dh  # (oh, kh)
    iw = np.arange(ow)[:, None] * sw - pw + np.arange(kw)[None, :] * dw  # (ow, kw)
    ch = np.arange(groups)[:, None] * cg + np.arange(cg)[None, :]  # (groups, cg)
    # broadcast to (groups, oh, ow, cg, kh, kw)
    IH = ih[None, :, None, None, :, None]
    IW = iw[None, None, :, None, None, :]
    CH = ch[:, None, None, :, None, None]
    flat = (CH * h + IH) * w + IW
    inside = (IH >= 0) & (IH < h) & (IW >= 0) & (IW < w)
    idx = np.where(inside, flat, c * h * w)
    return idx.reshape(groups, oh * ow, cg * kh * kw).astype(np.int64)


def conv_accumulate(s_in, idx, w_g, w_g_float=None, xp=np):
    """Exact grouped convolution of flat inputs, int64 ``(B, C_out*OH*OW)`` (``C, H, W`` order).

    ``s_in`` is ``(B, C*H*W)``; ``idx`` from :func:`conv_gather_index`;
    ``w_g`` is the weight as ``(groups, K, C_out//groups)`` int64 with
    ``K = (C//groups)*kh*kw`` in ``(c, i, j)`` order.  ``w_g_float`` (the
    same as float64) enables the BLAS path; the caller passes it only when
    the bound ``max|s| * max_o sum_k |w[k, o]| < 2**53`` makes every float64
    partial sum an exact integer.
    """
    B = s_in.shape[0]
    padded = xp.concatenate([s_in, xp.zeros((B, 1), dtype=s_in.dtype)], axis=1)
    cols = padded[:, idx]  # (B, groups, P, K)
    if w_g_float is not None:
        out = xp.rint(cols.astype(xp.float64) @ w_g_float).astype(xp.int64)
    else:
        out = cols.astype(xp.int64) @ w_g
    # (B, groups, P, C_out_g) -> (B, groups, C_out_g, P) -> flat C, H, W
    return xp.ascontiguousarray(out.transpose(0, 1, 3, 2)).reshape(B, -1)


_STACK_MAX_CG = 16  # ShiftedConv stacks the taps into one product up to this C/groups


class ShiftedConv:
    """Exact grouped convolution as one product per kernel tap over contiguous slices (no im2col).

    The input is zero-padded to ``(C, Hp, Wp) = (C, H + 2*ph, W + 2*pw)`` and
    split into its ``sh x sw`` stride phases: phase ``(a, b)`` holds the padded
    pixels ``(yq*sh + a, xq*sw + b)`` on a grid ``Wq`` wide.  Kernel tap
    ``(i, j)`` reads, for output ``(y, x)``, the padded pixel
    ``(y*sh + i*dh, x*sw + j*dw)``, which is pixel ``(y + i*dh//sh, x + j*dw//sw)``
    of phase ``(i*dh % sh, j*dw % sw)``: for all outputs at once that is one
    contiguous slice of that phase's flattened rows, starting at
    ``(i*dh//sh)*Wq + j*dw//sw``, with output ``(y, x)`` at ``y*Wq + x`` (the last
    ``Wq - OW`` columns of the grid are computed and dropped).  For stride 1
    there is one phase, the padded input itself.  The samples of a batch lie one
    after another in each channel's row (``Hq*Wq`` apart), so each tap is one
    product ``W_tap (C_out/g x C/g) @ slice`` over batch x positions; ``kh*kw``
    products in all, memory ``O(B*C*H*W)``.  Only the phases some tap reads are
    filled.

    ``w`` is the integer weight ``(C_out, C/groups, kh, kw)``; ``payload_max``
    the largest input value (1 for binary spikes); ``stride``, ``padding``,
    ``dilation`` are ``(h, w)`` pairs (pixels).  With ``C/groups > 1`` the
    products are BLAS GEMMs in float32 when
    ``payload_max * max_o sum |w[o]| < 2**24`` and in float64 below ``2**53``:
    every partial sum (whatever order BLAS adds in) is then an integer the format
    holds exactly, so the int64 result equals the integer sum; above both bounds
    they run in int64 (numpy, exact, slow).  With ``C/groups == 1`` (depthwise
    convolutions, ``SumPool2d``) each tap is an elementwise multiply-add (an add
    when every weight is 1) in the narrowest of int16/int32/int64 that holds the
    bound.  :meth:`__call__` takes ``(B, C*H*W)`` with ``B <= batch`` and returns
    int64 ``(B, C_out*OH*OW)`` in ``C, H, W`` order, the same integers as
    :func:`conv_accumulate`.  With few input channels per group (``C/groups <=
    16`` and ``kh*kw*C/groups <= 4*C_out/groups``; ``stack`` True/False forces
    the choice) the taps' slices are first stacked into one
    ``(kh*kw*C/g, positions)`` operand and multiplied once: thin per-tap
    products are bound by writing and adding their outputs.
    """

    def __init__(self, in_shape, w, padding, dilation, groups: int, batch: int,
                 payload_max: int = 1, stride=(1, 1), stack=None):
        c, h, wd = (int(v) for v in in_shape)
        w = np.asarray(w, dtype=np.int64)
        c_out, cg, kh, kw = w.shape
        (sh, sw), (ph, pw), (dh, dw) = ((int(a), int(b)) for a, b in (stride, padding, dilation))
        self.c, self.h, self.w_in, self.groups, self.cg = c, h, wd, int(groups), cg
        self.sh, self.sw, self.ph, self.pw = sh, sw, ph, pw
        self.oh, self.ow = conv_output_hw((h, wd), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
        self.bound = int(np.abs(w).reshape(c_out, -1).sum(axis=1).max(initial=0)) * int(payload_max)
        self.elementwise = cg == 1
        if self.elementwise:
            self.dtype = (np.int16 if self.bound < 2**15 else np.int32 if self.bound < 2**31
                          else np.int64)
        else:
            self.dtype = (np.float32 if self.bound < 2**24 else np.float64 if self.bound < 2**53
                          else np.int64)
        self.og = c_out // self.groups
        self.c_out = c_out
        # tap (i, j) -> (phase, offset) on the phase grid (hq x wq per sample)
        rows = [(i * dh % sh, i * dh // sh) for i in range(kh)]
        cols = [(j * dw % sw, j * dw // sw) for j in range(kw)]
        self.hq = self.oh + max(r for _, r in rows)
        self.wq = self.ow + max(q for _, q in cols)
        self.seg = self.hq * self.wq  # one sample's phase grid per channel
        phases = sorted({(a, b) for a, _ in rows for b, _ in cols})
        self.phases = phases
        where = {p: n for n, p in enumerate(phases)}
        self.tap_src = [(where[(a, b)], r * self.wq + q) for a, r in rows for b, q in cols]
        self.offsets = [off for _, off in self.tap_src]
        self.length = self.oh * self.wq  # grid positions computed per tap and sample
        # the zero tail lets the last tap's slice run the last sample's full grid
        self.tail = max(0, max(self.offsets, default=0) + self.length - self.seg)
        # (taps, groups, C_out/g, C/g)
        self.taps = np.ascontiguousarray(
            w.reshape(self.groups, self.og, cg, kh * kw).transpose(3, 0, 1, 2)).astype(self.dtype)
        self.ones = self.elementwise and self.og == 1 and bool((w == 1).all())
        # few input channels per group (a first layer): each tap's product would be a
        # thin GEMM bound by writing and adding its output, so the taps' slices are
        # stacked (a copy of kh*kw*C/g rows, at most 4x the per-tap scratch) and
        # multiplied once with K = kh*kw*C/g (2-2.5x faster for C/g <= 8)
        k_stack = len(self.tap_src) * cg
        self.stacked = (not self.elementwise and cg <= _STACK_MAX_CG
                        and k_stack <= 4 * self.og) if stack is None else \
            (bool(stack) and not self.elementwise)
        self.w_stack = np.ascontiguousarray(
            self.taps.transpose(1, 2, 0, 3).reshape(self.groups, self.og, -1))
        self.batch = int(batch)
        self.pad = np.zeros((len(phases), c, self.batch * self.seg + self.tail), self.dtype)
        # per phase: (first phase row, first input row, rows, same for columns)
        self.fill = []
        for a, b in phases:
            ry0, y0, ny = self._span(a, sh, ph, h, self.hq)
            rx0, x0, nx = self._span(b, sw, pw, wd, self.wq)
            if ny and nx:  # else the phase holds padding only and stays zero
                self.fill.append((where[(a, b)], ry0, y0, ny, rx0, x0, nx))
        self._out = {}  # batch size -> (acc, tmp)
        #: multiply-adds per sample and step of the tap products (grid columns included)
        self.work = len(self.offsets) * c_out * cg * self.length
        #: the part of :attr:`work` BLAS does (0 for the elementwise taps)
        self.macs = 0 if self.elementwise else self.work

    @staticmethod
    def _span(a, s, p, n, nq):
        """Phase ``a`` of stride ``s``, padding ``p`` over ``n`` input pixels on a grid of
        ``nq``: ``(first grid index, first input index, count)`` of the input it holds."""
        q0 = max(0, -(-(p - a) // s))  # first q with q*s + a - p >= 0
        q1 = min(nq, -(-(n + p - a) // s))  # past the last q with q*s + a - p < n
        return q0, q0 * s + a - p, max(0, q1 - q0)

    def __call__(self, s_in) -> np.ndarray:
        B = s_in.shape[0]
        n = (B - 1) * self.seg + self.length  # columns of each tap's product
        if B not in self._out:
            self._out[B] = (np.empty((self.groups, self.og, n), self.dtype),
                            np.empty((self.groups, len(self.tap_src) * self.cg, n)
                                     if self.stacked else (self.groups, self.og, n),
                                     self.dtype))
        acc, tmp = self._out[B]
        if s_in.dtype == np.bool_:  # numpy's bool -> float cast branches per element
            s_in = s_in.view(np.uint8)
        src = s_in.reshape(B, self.c, self.h, self.w_in).transpose(1, 0, 2, 3)
        for k, ry0, y0, ny, rx0, x0, nx in self.fill:
            inner = self.pad[k, :, :B * self.seg].reshape(self.c, B, self.hq, self.wq)
            inner[:, :, ry0:ry0 + ny, rx0:rx0 + nx] = \
                src[:, :, y0:y0 + (ny - 1) * self.sh + 1:self.sh,
                    x0:x0 + (nx - 1) * self.sw + 1:self.sw]
        for k, (ph_k, off) in enumerate(self.tap_src):
            x = self.pad[ph_k].reshape(self.groups, self.cg, -1)[..., off:off + n]
            if self.stacked:  # tmp holds the stacked slices, (tap, channel) order
                tmp[:, k * self.cg:(k + 1) * self.cg] = x
            elif self.ones:
                if k == 0:
                    acc[...] = x
                else:
                    acc += x
            elif self.elementwise:
                np.multiply(self.taps[k], x, out=acc if k == 0 else tmp)
                if k:
                    acc += tmp
            elif k == 0:
                np.matmul(self.taps[k], x, out=acc)
            else:
                np.matmul(self.taps[k], x, out=tmp)
                acc += tmp
        if self.stacked:
            np.matmul(self.w_stack, tmp, out=acc)
        # (o, b, y, x) sits at o*n + b*seg + y*Wq + x of the contiguous products
        it = acc.itemsize
        grid = np.lib.stride_tricks.as_strided(
            acc, shape=(self.c_out, B, self.oh, self.ow),
            strides=(n * it, self.seg * it, self.wq * it, it), writeable=False)
        return grid.transpose(1, 0, 2, 3).astype(np.int64).reshape(B, -1)
