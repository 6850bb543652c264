"""Spike codes: turn values in [0, 1] into spike trains and back.

Three classic codes (Gerstner et al., *Neuronal Dynamics*, ch. 7; Thorpe et
al. 2001 for time-to-first-spike), all in whole time steps, all vectorized:
values ``x`` of shape ``(..., n)`` become int8 spike arrays ``(..., T, n)`` --
the ``(B, T, n)`` layout ``neurohw emulate`` and :func:`neurohw.emulate.run`
take.

* **rate**: a neuron spikes on average ``x * max_rate`` times per step.
  ``method="bernoulli"`` draws each step independently (Poisson-like, seeded);
  ``method="regular"`` places ``floor(T * x * max_rate)`` or one more spikes
  evenly: a spike at step ``t`` when ``floor((t + 1) r) > floor(t r)``.
  Decoding: spikes per step divided by ``max_rate``.
* **time to first spike (latency)**: one spike at step
  ``t = round((1 - x) (T - 1))`` -- larger values fire earlier; ``x <= x_min``
  gives no spike.  Decoding: ``x = 1 - t / (T - 1)``, 0 without a spike.
  Resolution ``1 / (T - 1)``.
* **inter-spike interval**: a regular train starting at step 0 with interval
  ``d = round(isi_max - x (isi_max - isi_min))`` steps -- larger values fire
  more often; ``x <= x_min`` gives no spike.  Decoding: the mean interval
  ``d`` gives ``x = (isi_max - d) / (isi_max - isi_min)``; fewer than two
  spikes decode to 0.

Rounding is to nearest (``np.rint``, ties to even) everywhere.  Bad input
(NaN, values outside [0, 1], a non-positive number of steps) raises
:class:`~neurohw.errors.ValidationError` naming the parameter and value.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .errors import ValidationError

__all__ = ["rate_encode", "rate_decode", "ttfs_encode", "ttfs_decode", "isi_encode", "isi_decode"]


def _values(x, name: str = "x") -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}: not a real-valued array") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValidationError(f"{name}{list(np.argwhere(bad)[0])}={arr[bad][0]} is not finite")
    out = (arr < 0) | (arr > 1)
    if out.any():
        raise ValidationError(f"{name}{list(np.argwhere(out)[0])}={arr[out][0]:g} is outside [0, 1]")
    return arr


def _steps(num_steps, name: str = "num_steps", lo: int = 1) -> int:
    try:
        t = int(num_steps)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={num_steps!r} is not an integer number of steps") from None
    if t != num_steps or t < lo:
        raise ValidationError(f"{name}={num_steps!r} must be an integer >= {lo} (steps)")
    return t


def _spikes(s, name: str = "spikes") -> np.ndarray:
    arr = np.asarray(s)
    if arr.ndim < 2:
        raise ValidationError(f"{name}: shape {arr.shape}, expected (..., T, n)")
    if arr.dtype.kind not in "biuf" or np.any((arr != 0) & (arr != 1)):
        raise ValidationError(f"{name}: values must be 0 or 1")
    return arr != 0


def rate_encode(x, num_steps: int, max_rate: float = 1.0, method: str = "bernoulli",
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Rate code: ``(..., n)`` values in [0, 1] -> ``(..., T, n)`` int8 spikes.

    ``max_rate`` is spikes per step at ``x = 1`` (0 < max_rate <= 1);
    ``method`` is ``"bernoulli"`` (random, ``rng`` or a fresh seeded-by-zero
    generator) or ``"regular"`` (deterministic, evenly spaced).
    """
    x = _values(x)
    T = _steps(num_steps)
    if not 0 < max_rate <= 1:
        raise ValidationError(f"max_rate={max_rate} must be in (0, 1] spikes per step")
    p = x * max_rate
    shape = x.shape[:-1] + (T, x.shape[-1])
    if method == "bernoulli":
        rng = np.random.default_rng(0) if rng is None else rng
        return (rng.random(shape) < p[..., None, :]).astype(np.int8)
    if method == "regular":
        t = np.arange(T, dtype=np.float64).reshape((T, 1))
        r = p[..., None, :]
        # exact for rates that are multiples of 1/T, floor-based otherwise
        return (np.floor((t + 1) * r + 1e-9) > np.floor(t * r + 1e-9)).astype(np.int8)
    raise ValidationError(f"method={method!r}: use 'bernoulli' or 'regular'")


def rate_decode(spikes, max_rate: float = 1.0) -> np.ndarray:
    """Rate code back to values: spikes per step over ``axis -2``, divided by ``max_rate``."""
    s = _spikes(spikes)
    return s.mean(axis=-2) / max_rate


def ttfs_encode(x, num_steps: int, x_min: float = 0.0) -> np.ndarray:
    """Time-to-first-spike code: one spike at ``round((1 - x) (T - 1))``, none for ``x <= x_min``."""
    x = _values(x)
    T = _steps(num_steps, lo=2)
    t = np.rint((1.0 - x) * (T - 1)).astype(np.int64)
    out = np.zeros(x.shape[:-1] + (T, x.shape[-1]), np.int8)
    fire = x > x_min
    idx = np.nonzero(fire)
    out[idx[:-1] + (t[fire],) + (idx[-1],)] = 1
    return out


def ttfs_decode(spikes) -> np.ndarray:
    """First spike step ``t`` of each neuron -> ``1 - t / (T - 1)``; 0 where none fired."""
    s = _spikes(spikes)
    T = s.shape[-2]
    if T < 2:
        raise ValidationError("spikes: time-to-first-spike needs at least 2 steps")
    any_ = s.any(axis=-2)
    first = s.argmax(axis=-2)
    return np.where(any_, 1.0 - first / (T - 1), 0.0)


def isi_encode(x, num_steps: int, isi_min: int = 1, isi_max: int = 20,
               x_min: float = 0.0) -> np.ndarray:
    """Inter-spike-interval code: a train from step 0 every
    ``round(isi_max - x (isi_max - isi_min))`` steps; no spikes for ``x <= x_min``."""
    x = _values(x)
    T = _steps(num_steps)
    isi_min = _steps(isi_min, "isi_min")
    isi_max = _steps(isi_max, "isi_max")
    if isi_max <= isi_min:
        raise ValidationError(f"isi_max={isi_max} must exceed isi_min={isi_min} (steps)")
    d = np.rint(isi_max - x * (isi_max - isi_min)).astype(np.int64)
    t = np.arange(T).reshape((T, 1))
    out = (t % d[..., None, :] == 0) & (x > x_min)[..., None, :]
    return out.astype(np.int8)


def isi_decode(spikes, isi_min: int = 1, isi_max: int = 20) -> np.ndarray:
    """Mean inter-spike interval ``d`` -> ``(isi_max - d) / (isi_max - isi_min)``, clipped to
    [0, 1]; neurons with fewer than two spikes decode to 0."""
    s = _spikes(spikes)
    isi_min = _steps(isi_min, "isi_min")
    isi_max = _steps(isi_max, "isi_max")
    if isi_max <= isi_min:
        raise ValidationError(f"isi_max={isi_max} must exceed isi_min={isi_min} (steps)")
    T = s.shape[-2]
    n = s.sum(axis=-2)
    first = np.where(s.any(axis=-2), s.argmax(axis=-2), 0)
    last = np.where(s.any(axis=-2), (T - 1) - s[..., ::-1, :].argmax(axis=-2), 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (last - first) / (n - 1)
        val = (isi_max - d) / (isi_max - isi_min)
    return np.where(n >= 2, np.clip(val, 0.0, 1.0), 0.0)
