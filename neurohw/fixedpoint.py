"""Integer helpers shared by the IR, the quantizer and the emulator.

Every function names its dtype and its rounding.  Arithmetic is done in
``np.int64``; results are narrowed only after a range check, so numpy never
overflows silently.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from .errors import ValidationError

__all__ = ["as_int_array", "as_int", "wrap_signed", "clip_signed", "shift_round_toward_zero"]


def _fmt_index(idx: Tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]" if idx else ""


def as_int_array(
    values: Any,
    where: str,
    param: str,
    lo: int | None = None,
    hi: int | None = None,
    what: str = "",
    dtype: Any = np.int32,
    shape: Tuple[int, ...] | None = None,
) -> np.ndarray:
    """Convert ``values`` to an integer array of ``dtype``, checking it exactly.

    Raises :class:`ValidationError` naming ``where`` (e.g. ``"node 'hidden'"``),
    ``param``, the first offending element and the allowed range when a value
    is NaN/inf, not an integer, or outside ``[lo, hi]``.  With ``shape`` set,
    a scalar is broadcast to it and any other shape is an error.
    """
    try:
        arr = np.asarray(values)
    except Exception as exc:  # ragged lists and the like
        raise ValidationError(f"{where}: {param} is not an array ({exc})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValidationError(f"{where}: {param} has non-numeric dtype {arr.dtype}")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = tuple(np.argwhere(bad)[0])
            raise ValidationError(
                f"{where}: {param}{_fmt_index(idx)}={arr[idx]!r} is not finite"
            )
        frac = arr != np.round(arr)
        if frac.any():
            idx = tuple(np.argwhere(frac)[0])
            raise ValidationError(
                f"{where}: {param}{_fmt_index(idx)}={arr[idx]!r} is not an integer"
            )
        if arr.size and (arr.max() > 2**62 or arr.min() < -(2**62)):
            raise ValidationError(f"{where}: {param} has values beyond 64-bit range")
    arr64 = arr.astype(np.int64)
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValidationError(f"{where}: {param} has values beyond 64-bit range")
    rng = ""
    if lo is not None or hi is not None:
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        rng = f"[{lo_s}, {hi_s}]" + (f" ({what})" if what else "")
    if lo is not None and arr64.size and arr64.min() < lo:
        idx = tuple(np.argwhere(arr64 < lo)[0])
        raise ValidationError(
            f"{where}: {param}{_fmt_index(idx)}={int(arr64[idx])} below allowed range {rng}"
        )
    if hi is not None and arr64.size and arr64.max() > hi:
        idx = tuple(np.argwhere(arr64 > hi)[0])
        raise ValidationError(
            f"{where}: {param}{_fmt_index(idx)}={int(arr64[idx])} above allowed range {rng}"
        )
    info = np.iinfo(dtype)
    if arr64.size and (arr64.min() < info.min or arr64.max() > info.max):
        raise ValidationError(
            f"{where}: {param} does not fit {np.dtype(dtype).name} "
            f"[{info.min}, {info.max}]"
        )
    if shape is not None and arr64.shape != tuple(shape):
        if arr64.ndim == 0:
            arr64 = np.full(shape, int(arr64), dtype=np.int64)
        else:
            raise ValidationError(
                f"{where}: {param} has shape {arr64.shape}, expected {tuple(shape)} or a scalar"
            )
    return arr64.astype(dtype)


def as_int(value: Any, where: str, param: str, lo: int | None = None, hi: int | None = None,
           what: str = "") -> int:
    """Like :func:`as_int_array` for a scalar; returns a Python ``int``."""
    arr = as_int_array(value, where, param, lo, hi, what, dtype=np.int64)
    if arr.ndim != 0:
        if arr.size == 1:
            return int(arr.reshape(()))
        raise ValidationError(f"{where}: {param} must be a scalar, got shape {arr.shape}")
    return int(arr)


def wrap_signed(x: np.ndarray, bits: int) -> Tuple[np.ndarray, np.ndarray]:
    """Two's-complement wrap of int64 ``x`` into ``bits`` signed bits.

    Returns ``(wrapped, overflowed)``: ``wrapped`` as ``np.int64`` in
    ``[-2**(bits-1), 2**(bits-1) - 1]`` and a boolean mask of the elements
    that were outside that range.
    """
    x = np.asarray(x, dtype=np.int64)
    half = np.int64(1) << np.int64(bits - 1)
    wrapped = ((x + half) & ((half << np.int64(1)) - 1)) - half
    return wrapped, wrapped != x


def clip_signed(x: np.ndarray, bits: int, symmetric: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Saturate int64 ``x`` to ``bits`` signed bits.

    With ``symmetric`` the lower bound is ``-(2**(bits-1) - 1)`` (as Lava
    clips ``v``).  Returns ``(clipped, saturated_mask)``.
    """
    x = np.asarray(x, dtype=np.int64)
    hi = (1 << (bits - 1)) - 1
    lo = -hi if symmetric else -(1 << (bits - 1))
    clipped = np.clip(x, lo, hi)
    return clipped, clipped != x


def shift_round_toward_zero(x: np.ndarray, shift: int) -> np.ndarray:
    """``sign(x) * (|x| >> shift)`` in int64: a right shift rounding toward zero."""
    x = np.asarray(x, dtype=np.int64)
    return np.sign(x) * (np.abs(x) >> np.int64(shift))


def effective_weights(weight: np.ndarray, sign_mode: str, num_weight_bits: int,
                      weight_bits: int = 8) -> np.ndarray:
    """The weight mantissas a Lava ``Dense``/``Conv`` actually uses, as ``np.int64``.

    Two steps, both as in Lava's ``clip_weights`` then ``truncate_weights``:

    1. clip to the sign mode's range (mixed ``[-2**b, 2**b - 1]``, excitatory
       ``[0, 2**b - 1]``, inhibitory ``[-(2**b - 1), 0]`` with ``b = weight_bits``);
    2. drop ``t = weight_bits - num_weight_bits (+1 in mixed mode)`` low bits
       with an arithmetic shift (``(w >> t) << t``: floor toward -inf; for
       inhibitory weights the shift is applied to ``-w``, i.e. toward zero).

    So with the default 8 bits in mixed mode the least significant bit is
    dropped: 255 becomes 254 and -3 becomes -4.
    """
    w = np.asarray(weight, dtype=np.int64)
    if sign_mode == "inhibitory":
        w = -w
    top = (1 << weight_bits) - 1
    lo = -(1 << weight_bits) if sign_mode == "mixed" else 0
    w = np.clip(w, lo, top)
    t = weight_bits - int(num_weight_bits) + (1 if sign_mode == "mixed" else 0)
    if t > 0:
        w = (w >> np.int64(t)) << np.int64(t)
    if sign_mode == "inhibitory":
        w = -w
    return w


def scaled_bias(bias_mant: np.ndarray, bias_exp: np.ndarray) -> np.ndarray:
    """``bias_mant << bias_exp`` in int64; a negative exponent is an arithmetic
    right shift (floor toward -inf), as Lava's ``scale_bias``."""
    m = np.asarray(bias_mant, dtype=np.int64)
    e = np.asarray(bias_exp, dtype=np.int64)
    return np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))
