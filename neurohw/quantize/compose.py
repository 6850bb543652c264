"""Compose a pooling layer followed by a convolution into one strided convolution.

A SumPool2d (or AvgPool2d) with kernel ``kp``, stride ``sp`` and no padding, followed by a
Conv2d with kernel ``kc``, stride ``sc``, padding ``pc`` and dilation 1, is along each axis
exactly one convolution of the unpooled input with

* kernel ``K[o, c, j*sp + i] = Σ wConv[o, c, j] * wPool[c, i]`` (size ``(kc-1)*sp + kp``),
* stride ``sc * sp`` and padding ``pc * sp``,

because ``pooled[q] = Σ_i wPool[i] x[q*sp + i]`` and the conv reads ``pooled[y*sc - pc + j]``.
The identity needs the conv's zero padding to land on the input's zero padding: when
``pc > 0`` the pool windows must not overlap (``kp <= sp``) and must tile the input to its
end (``H == Q*sp`` with ``Q`` pooled positions).  :func:`pool_then_conv` checks those
conditions, builds the kernel, and then confirms the identity numerically on random inputs
(float64, relative 1e-9) before the quantizer uses it; anything else returns ``None`` and
the caller falls back to its dense composition.

Keeping the convolution matters on a chip: on the NIR paper's Sinabs CNN the dense form
stores 243k synapses where the convolution has 74k (``docs/deployment.md``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .. import floatsem

__all__ = ["pool_then_conv", "ENABLED"]

ENABLED = True
"""Set to False to fall back to the dense composition (tests compare both paths)."""

_POOLS = ("SumPool2d", "AvgPool2d")


def _type(node) -> str:
    return type(node).__name__


def pool_then_conv(nodes, ops: Sequence[str], in_shape: Sequence[int],
                   source: str = "graph") -> Optional[Tuple[dict, np.ndarray]]:
    """``(conv, bias)`` for a path whose stateless ops are exactly ``[pool, conv]``.

    ``conv`` is the quantizer's conv description (``weight`` float64, ``input_shape``,
    ``stride``, ``padding``, ``dilation``, ``groups``, ``out_shape``), ``bias`` the
    constant per output neuron (flat).  ``None`` when the ops are not a pool followed by a
    Conv2d, or the composition would not be exact.
    """
    if not ENABLED or len(ops) != 2 or len(in_shape) != 3:
        return None
    a_node, b_node = nodes[ops[0]], nodes[ops[1]]
    if _type(a_node) not in _POOLS or _type(b_node) != "Conv2d":
        return None
    a = floatsem.stateless_op(f"{source}: node '{ops[0]}'", a_node, tuple(in_shape))
    b = floatsem.stateless_op(f"{source}: node '{ops[1]}'", b_node, a.out_shape)
    if any(a.pads) or b.symmetric_padding is None or tuple(b.dilation) != (1, 1):
        return None
    c, h, w = (int(v) for v in in_shape)
    _, q_h, q_w = a.out_shape
    kp, sp = a.weight.shape[2:], a.stride
    pc = b.symmetric_padding
    for axis, n, q in ((0, h, q_h), (1, w, q_w)):
        if pc[axis] > 0 and (kp[axis] > sp[axis] or n != q * sp[axis]):
            return None
    wb = np.asarray(b.weight, np.float64)  # (O, C/g, kch, kcw)
    wa = np.asarray(a.weight, np.float64)[:, 0]  # (C, kph, kpw): one kernel per channel
    o, cg, kch, kcw = wb.shape
    groups = int(b.groups)
    kh = (kch - 1) * sp[0] + kp[0]
    kw = (kcw - 1) * sp[1] + kp[1]
    k = np.zeros((o, cg, kh, kw))
    og = o // groups
    for g in range(groups):
        pool_g = wa[g * cg:(g + 1) * cg]  # the pool kernels of this group's input channels
        for jy in range(kch):
            for jx in range(kcw):
                k[g * og:(g + 1) * og, :, jy * sp[0]:jy * sp[0] + kp[0],
                  jx * sp[1]:jx * sp[1] + kp[1]] += (
                    wb[g * og:(g + 1) * og, :, jy, jx][:, :, None, None] * pool_g[None])
    stride = (int(b.stride[0] * sp[0]), int(b.stride[1] * sp[1]))
    padding = (int(pc[0] * sp[0]), int(pc[1] * sp[1]))
    pads = (padding[0], padding[0], padding[1], padding[1])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, c, h, w))
    want = b.correlate(a.correlate(x))
    try:
        got = floatsem.correlate2d(x, k, stride, pads, (1, 1), groups)
    except ValueError:
        return None
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9,
                                                  atol=1e-9 * max(1.0, np.abs(want).max())):
        return None
    out_shape = tuple(int(v) for v in want.shape[1:])
    bias = (np.zeros(out_shape) + np.asarray(b.bias, np.float64)[:, None, None]).reshape(-1)
    conv = dict(weight=k, input_shape=(c, h, w), stride=stride, padding=padding,
                dilation=(1, 1), groups=groups, out_shape=out_shape)
    return conv, bias
