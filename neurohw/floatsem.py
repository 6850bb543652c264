"""The float semantics of NIR's stateless nodes, in one place.

The float reference simulator (:mod:`neurohw.reference`), the quantizer's
graph analysis (:mod:`neurohw.quantize.graph`) and its calibration
(:mod:`neurohw.quantize.calibrate`) all build their Affine, Linear, Scale,
Conv1d, Conv2d, SumPool2d, AvgPool2d and Flatten nodes here, so the three can
never disagree on what a node computes or which parameters it accepts.

Every op maps a batch ``x`` of shape ``(B, *in_shape)`` (float64) to
``(B, *out_shape)``; shapes are NIR's, batch excluded:

* ``Affine``: ``W x + b``; ``Linear``: ``W x`` (``W`` is ``(n_out, n_in)``; the
  input must be ``(n_in,)``, up to leading 1s -- a multi-dimensional input
  needs a Flatten, as in PyTorch where ``Linear`` acts on the last axis).
* ``Scale``: ``s * x`` (``s`` a scalar or shaped like the input).
* ``Conv1d``/``Conv2d``: PyTorch's cross-correlation (``weight`` is
  ``(C_out, C_in/groups, k...)``), integer or ``"same"``/``"valid"`` zero
  padding (``"same"``: stride 1, the odd extra pad at the end, as PyTorch),
  stride, dilation, groups, plus ``bias`` per output channel.
* ``SumPool2d``: window sums over zero padding (stride defaults to the
  kernel); ``AvgPool2d``: the same sums divided by the window area
  (PyTorch's default ``count_include_pad=True``).
* ``Flatten``: ``start_dim``/``end_dim`` index the unbatched shape (NIR's
  convention; negative values count from the end).
* ``Input``, ``Output``, ``Identity`` and ``Delay``: the identity (a Delay's
  timing is the caller's business: the reference shifts in time, the
  quantizer turns it into synaptic delays).

Errors are :class:`~neurohw.errors.ValidationError` with one line that
starts with the caller's ``where`` (e.g. ``"node 'fc' (Affine)"``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .errors import ValidationError
from .ir import conv_output_len

__all__ = ["Op", "Dense", "Scale", "Conv", "Flatten", "Identity", "stateless_op", "param",
           "positive", "correlate2d", "strip", "STATELESS_TYPES"]

STATELESS_TYPES = ("Input", "Output", "Identity", "Affine", "Linear", "Scale", "Conv1d", "Conv2d",
                   "SumPool2d", "AvgPool2d", "Flatten", "Delay")

Shape = Tuple[int, ...]


def _type(node) -> str:
    return type(node).__name__


def _at(shape, flat: int) -> str:
    """``[i, j, ...]``: the multi-index of flat element ``flat`` of an array of ``shape``."""
    return "[" + ", ".join(str(int(v)) for v in np.unravel_index(flat, shape or (1,))) + "]"


def param(where: str, node, key: str, required: bool = True, default=None) -> Optional[np.ndarray]:
    """Node parameter ``key`` as a finite float64 array (raises naming ``where`` and ``key``)."""
    value = getattr(node, key, None)
    if value is None:
        if required and default is None:
            raise ValidationError(f"{where}: parameter {key} is missing")
        if default is None:
            return None
        value = default
    if hasattr(value, "detach"):  # a torch tensor left in a graph built in memory
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: parameter {key} is not numeric "
                              f"({type(value).__name__})") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValidationError(f"{where}: parameter {key} has a non-finite value "
                              f"({arr.reshape(-1)[i]} at index {_at(arr.shape, i)}); every "
                              f"value must be finite")
    return arr


def positive(where: str, node, key: str) -> np.ndarray:
    """Parameter ``key`` as float64, every element ``> 0``."""
    arr = param(where, node, key)
    if (arr <= 0).any():
        i = int(np.flatnonzero((arr <= 0).reshape(-1))[0])
        raise ValidationError(f"{where}: {key} must be > 0 "
                              f"({key}{_at(arr.shape, i)}={arr.reshape(-1)[i]:g})")
    return arr


def int_tuple(where: str, key: str, value, n: int, minimum: int) -> Tuple[int, ...]:
    """An int-or-sequence geometry parameter as ``n`` ints ``>= minimum``."""
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n or arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)) \
            or not np.all(arr == np.round(arr)):
        raise ValidationError(f"{where}: {key}={value!r} must be an integer or {n} integers")
    out = tuple(int(v) for v in arr)
    if min(out) < minimum:
        raise ValidationError(f"{where}: {key}={out} must be >= {minimum}")
    return out


def strip(shape: Sequence[int]) -> Shape:
    """Shape without leading 1s (so ``(1, 64)`` and ``(64,)`` agree)."""
    shape = tuple(int(s) for s in shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def correlate2d(x: np.ndarray, w: np.ndarray, stride, pads, dilation, groups: int) -> np.ndarray:
    """PyTorch-style 2-D cross-correlation in float64.

    ``x`` is ``(B, C, H, W)``, ``w`` is ``(C_out, C/groups, kh, kw)``, ``pads``
    is ``(top, bottom, left, right)`` zeros, ``stride`` and ``dilation`` are
    ``(h, w)`` pairs.  Returns ``(B, C_out, H_out, W_out)``.
    """
    B, C, H, W = x.shape
    co, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    Hp, Wp = xp.shape[2:]
    ho = conv_output_len(Hp, kh, sh, 0, 0, dh)
    wo = conv_output_len(Wp, kw, sw, 0, 0, dw)
    xg = xp.reshape(B, groups, cg, Hp, Wp)
    wg = w.reshape(groups, co // groups, cg, kh, kw)
    out = np.zeros((B, groups, co // groups, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = xg[:, :, :, i * dh: i * dh + sh * (ho - 1) + 1: sh,
                       j * dw: j * dw + sw * (wo - 1) + 1: sw]
            out += np.einsum("bgchw,goc->bgohw", patch, wg[:, :, :, i, j], optimize=True)
    return out.reshape(B, co, ho, wo)


class Op:
    """A stateless node: ``kind``, ``in_shape``, ``out_shape`` and :meth:`apply`."""

    def __init__(self, where: str, node, in_shape: Optional[Shape]):
        self.where = where
        self.kind = _type(node)
        self.in_shape: Optional[Shape] = None if in_shape is None else tuple(int(s) for s in in_shape)
        self.out_shape: Optional[Shape] = self.in_shape

    def apply(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """``(B, *in_shape)`` -> ``(B, *out_shape)``, float64."""
        raise NotImplementedError


class Identity(Op):
    """Input, Output, Identity, Delay (no change of value)."""

    def apply(self, x):
        return x


class Dense(Op):
    """Affine / Linear: ``weight`` ``(n_out, n_in)`` as :attr:`weight`, ``bias`` ``(n_out,)``."""

    def __init__(self, where, node, in_shape):
        super().__init__(where, node, in_shape)
        w = param(where, node, "weight")
        if w.ndim != 2:
            raise ValidationError(f"{where}: weight must be 2-D (n_out, n_in), got shape {w.shape}")
        if strip(self.in_shape) != (w.shape[1],):
            raise ValidationError(f"{where}: input shape {self.in_shape} does not match "
                                  f"weight shape {w.shape} (needs ({w.shape[1]},); "
                                  f"add a Flatten before it)")
        self.weight = w
        self.wt = np.ascontiguousarray(w.T)
        self.bias = np.zeros(w.shape[0])
        if self.kind == "Affine":
            b = param(where, node, "bias")
            if b.size != 1 and b.shape != (w.shape[0],):
                raise ValidationError(f"{where}: bias shape {b.shape} does not match "
                                      f"weight rows {w.shape[0]}")
            self.bias = np.broadcast_to(b.reshape(-1), (w.shape[0],)).copy()
        self.out_shape = (w.shape[0],)

    def apply(self, x):
        y = x.reshape(x.shape[0], -1) @ self.wt
        return y + self.bias if self.kind == "Affine" else y


class Scale(Op):
    """``s * x``; ``s`` a scalar or shaped like the input (up to leading 1s).

    With ``in_shape=None`` (a node reached only by a back edge) the shape of
    ``s`` gives the shape.
    """

    def __init__(self, where, node, in_shape):
        super().__init__(where, node, in_shape)
        s = param(where, node, "scale")
        if self.in_shape is None:
            self.in_shape = self.out_shape = tuple(s.shape) or (1,)
        n = int(np.prod(self.in_shape))
        if s.size == 1:
            self.s = s.reshape(())
        elif s.shape == self.in_shape or strip(s.shape) == strip(self.in_shape):
            self.s = s.reshape(self.in_shape)
        else:
            raise ValidationError(f"{where}: parameter scale has shape {s.shape} ({s.size} entries), "
                                  f"input has shape {self.in_shape} ({n} values)")

    def apply(self, x):
        return x * self.s


def _same_padding(k: int, dilation: int) -> Tuple[int, int]:
    total = dilation * (k - 1)
    return total // 2, total - total // 2


class Conv(Op):
    """Conv1d / Conv2d / SumPool2d / AvgPool2d as one 2-D cross-correlation.

    Attributes: ``weight`` ``(C_out, C_in/groups, kh, kw)`` (a Conv1d has
    ``kh = 1``; a pool has one ``1/area`` or ``1`` kernel per channel with
    ``groups = C``), ``stride``, ``dilation`` (pairs), ``pads``
    ``(top, bottom, left, right)``, ``groups``, ``bias`` ``(C_out,)`` (zeros
    for pools), ``in_shape3`` the input as ``(C, H, W)`` (``(C, 1, N)`` for
    Conv1d), ``out_shape`` in NIR's shape (``(C_out, N_out)`` for Conv1d).
    """

    def __init__(self, where, node, in_shape):
        super().__init__(where, node, in_shape)
        if self.kind in ("SumPool2d", "AvgPool2d"):
            self._pool(node)
        else:
            self._conv(node)

    def _conv(self, node):
        where, in_shape = self.where, self.in_shape
        nd = 1 if self.kind == "Conv1d" else 2
        w = param(where, node, "weight")
        if w.ndim != nd + 2:
            raise ValidationError(f"{where}: weight must be {nd + 2}-D "
                                  f"(C_out, C_in/groups, k...), got shape {w.shape}")
        groups = getattr(node, "groups", 1)
        groups = int_tuple(where, "groups", 1 if groups is None else groups, 1, 1)[0]
        stride = int_tuple(where, "stride", node.stride, nd, 1)
        dilation = int_tuple(where, "dilation", node.dilation, nd, 1)
        co, cg = w.shape[:2]
        if len(in_shape) != nd + 1 or in_shape[0] != cg * groups or co % groups:
            raise ValidationError(f"{where}: input shape {in_shape} does not fit weight "
                                  f"shape {w.shape} with groups={groups} (needs "
                                  f"({cg * groups}, {'N' if nd == 1 else 'H, W'}))")
        ks = w.shape[2:]
        padding = node.padding
        if isinstance(padding, bytes):
            padding = padding.decode("utf8")
        if isinstance(padding, str):
            if padding == "valid":
                pads = [(0, 0)] * nd
            elif padding == "same":
                if max(stride) != 1:
                    raise ValidationError(f"{where}: padding='same' needs stride 1 "
                                          f"(stride={stride}), as in PyTorch")
                pads = [_same_padding(k, d) for k, d in zip(ks, dilation)]
            else:
                raise ValidationError(f"{where}: padding={padding!r}; use integers, 'same' or 'valid'")
        else:
            pads = [(p, p) for p in int_tuple(where, "padding", padding, nd, 0)]
        bias = getattr(node, "bias", None)
        b = np.zeros(co) if bias is None else param(where, node, "bias")
        if b.size == 1:
            b = np.full(co, float(b.reshape(-1)[0]))
        if b.shape != (co,):
            raise ValidationError(f"{where}: bias shape {b.shape}, expected ({co},)")
        if nd == 1:
            w = w[:, :, None, :]
            stride, dilation, pads = (1,) + stride, (1,) + dilation, [(0, 0)] + pads
            self.in_shape3 = (in_shape[0], 1, in_shape[1])
        else:
            self.in_shape3 = tuple(in_shape)
        self.weight, self.bias, self.groups = w, b, groups
        self.stride, self.dilation = tuple(stride), tuple(dilation)
        self.pads = (pads[0][0], pads[0][1], pads[1][0], pads[1][1])
        outs = []
        for size, (lo, hi), k, s, d in zip(self.in_shape3[1:], pads, w.shape[2:], stride, dilation):
            o = conv_output_len(size, k, s, lo, hi, d)
            if o < 1:
                raise ValidationError(f"{where}: kernel {tuple(ks)} with dilation "
                                      f"{tuple(dilation)[-nd:]} does not fit input {in_shape}")
            outs.append(o)
        self.out_shape3 = (co,) + tuple(outs)
        self.out_shape = (co,) + tuple(outs[-nd:])

    def _pool(self, node):
        where, in_shape = self.where, self.in_shape
        if len(in_shape) != 3:
            raise ValidationError(f"{where}: input shape {in_shape} must be (C, H, W)")
        k = int_tuple(where, "kernel_size", node.kernel_size, 2, 1)
        stride = node.stride if getattr(node, "stride", None) is not None else node.kernel_size
        stride = int_tuple(where, "stride", stride, 2, 1)
        pad = node.padding if getattr(node, "padding", None) is not None else 0
        p = int_tuple(where, "padding", pad, 2, 0)
        c, h, w = in_shape
        outs = [conv_output_len(n, kk, s, pp, pp, 1) for n, kk, s, pp in zip((h, w), k, stride, p)]
        if min(outs) < 1:
            raise ValidationError(f"{where}: kernel_size {k} does not fit input {in_shape} "
                                  f"with padding {p}")
        scale = 1.0 / (k[0] * k[1]) if self.kind == "AvgPool2d" else 1.0
        self.weight = np.full((c, 1) + k, scale)
        self.bias = np.zeros(c)
        self.groups = c
        self.stride, self.dilation = stride, (1, 1)
        self.pads = (p[0], p[0], p[1], p[1])
        self.in_shape3 = tuple(in_shape)
        self.out_shape3 = self.out_shape = (c,) + tuple(outs)

    @property
    def symmetric_padding(self) -> Optional[Tuple[int, int]]:
        """``(pad_h, pad_w)`` when top = bottom and left = right (a chip Conv can take it)."""
        t, b, l, r = self.pads
        return (t, l) if (t == b and l == r) else None

    def correlate(self, x: np.ndarray, weight: Optional[np.ndarray] = None) -> np.ndarray:
        """Cross-correlation without bias: ``(B, *in_shape)`` -> ``(B, C_out, H_out, W_out)``.

        ``weight`` replaces the node's kernel (same shape), e.g. ``|W|`` for bounds.
        """
        x4 = x.reshape((x.shape[0],) + self.in_shape3)
        w = self.weight if weight is None else weight
        return correlate2d(x4, w, self.stride, self.pads, self.dilation, self.groups)

    def apply(self, x):
        y = self.correlate(x) + self.bias[None, :, None, None]
        return y.reshape((x.shape[0],) + self.out_shape)


class Flatten(Op):
    """Merge axes ``start_dim..end_dim`` of the unbatched shape."""

    def __init__(self, where, node, in_shape):
        super().__init__(where, node, in_shape)
        nd = len(self.in_shape)
        start, end = int(node.start_dim), int(node.end_dim)
        s, e = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
        if not (0 <= s < nd and 0 <= e < nd and s <= e):
            raise ValidationError(f"{where}: start_dim={start}, end_dim={end} do not fit "
                                  f"input shape {self.in_shape} (dims index the unbatched shape)")
        shape = self.in_shape
        self.out_shape = shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:]

    def apply(self, x):
        return x.reshape((x.shape[0],) + self.out_shape)


_OPS = {"Input": Identity, "Output": Identity, "Identity": Identity, "Delay": Identity,
        "Affine": Dense, "Linear": Dense, "Scale": Scale, "Conv1d": Conv, "Conv2d": Conv,
        "SumPool2d": Conv, "AvgPool2d": Conv, "Flatten": Flatten}


def stateless_op(where: str, node, in_shape: Optional[Sequence[int]]) -> Op:
    """Build the op of a stateless NIR node for input shape ``in_shape`` (see module docstring).

    ``where`` starts every error message (e.g. ``"model.nir: node 'fc'"``).
    """
    kind = _type(node)
    if kind not in _OPS:
        raise ValidationError(f"{where}: NIR node type {kind} is not a stateless node "
                              f"({', '.join(STATELESS_TYPES)})")
    if in_shape is None and kind != "Scale":
        raise ValidationError(f"{where}: its input shape cannot be determined")
    return _OPS[kind](where, node, in_shape)
