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

from typing import NamedTuple, Tuple

import numpy as np

from ..ir import conv_output_hw

__all__ = ["LIFParams", "LIFState", "wrap32", "wrap_bits", "lif_step", "dense_accumulate",
           "apply_exp", "conv_gather_index", "conv_accumulate"]

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
    """

    decay_u: np.ndarray
    decay_v: np.ndarray
    bias: np.ndarray
    vth_scaled: np.ndarray
    act_shift: int = 6
    half: int = _U_HALF
    decay_bits: int = 12

class LIFState(NamedTuple):
    """``u`` and ``v``, int64 arrays of shape ``(B, n)``."""

    u: np.ndarray
    v: np.ndarray


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

    Returns ``(new_state, spikes)`` with ``spikes`` a bool array; with
    ``events`` also ``(u_wrapped, v_clipped)``, boolean masks of the neurons
    whose ``u`` wrapped and whose ``v`` saturated this step.
    """
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
