"""neurohw's float-side neuron extension: ``metadata["neurohw"]`` on a NIR ``LIF``/``CubaLIF``.

Other NIR tools ignore node metadata; neurohw reads these optional keys
(``docs/neuron-models.md`` derives each model):

* ``refractory_s`` (seconds, ``>= 0``): after a spike, ``round(refractory_s / dt)``
  silent steps during which ``v`` is held at ``v_reset`` (the synaptic current
  of a ``CubaLIF`` keeps integrating) and no spike is possible; one number for
  every neuron, or an array of the population's shape (or its size, row-major)
  giving each neuron its own;
* ``lower_bound`` (volts, ``<= v_reset``): ``v`` is clipped from below after
  each integration (synapticflow's ``lower_bound``);
* ``trace``: ``{"tau_s": > 0, "mode": "additive" | "multiplicative", "scale": > 0}``,
  a spike trace per neuron (``NEURON_MODELS.md``);
* ``model: "elif"`` with ``delta_t > 0`` and ``theta_rh`` (both in units of
  ``v_threshold``): the exponential LIF, ``tau dv/dt = (v_leak - v) +
  Delta_T exp((v - theta_RH) / Delta_T) + r x`` with ``Delta_T = delta_t *
  v_threshold`` and ``theta_RH = theta_rh * v_threshold``.

:func:`neuron_ext` parses and validates them; errors are one line naming the
file, the node, the parameter, the value and the allowed range.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from .errors import ValidationError

__all__ = ["NeuronExt", "TraceSpec", "neuron_ext", "neuron_shape", "EXT_KEYS", "TRACE_MODES",
           "ELIF_EXP_CAP"]

EXT_KEYS = ("refractory_s", "lower_bound", "trace", "model", "delta_t", "theta_rh")
TRACE_MODES = ("additive", "multiplicative")
MODELS = ("lif", "elif")
EXT_NODE_TYPES = ("LIF", "CubaLIF")
ELIF_EXP_CAP = 20.0
"""The exponent ``(v - theta_RH) / Delta_T`` is capped here (``exp(20) ~ 4.9e8``): far
above threshold the neuron spikes that step whatever the exact value."""


@dataclass(frozen=True)
class TraceSpec:
    """A float spike trace: ``x = x exp(-dt/tau_s) + scale s`` (additive) or ``x = scale`` on a spike."""

    tau_s: float
    mode: str
    scale: float


@dataclass(frozen=True, eq=False)
class NeuronExt:
    """The extension keys of one node (``None``/defaults: not set).

    ``refractory_s`` is a float (seconds, every neuron) or, when neurons differ, a
    read-only float64 array of the population's shape (seconds, per neuron).
    """

    refractory_s: Union[float, np.ndarray] = 0.0
    lower_bound: Optional[float] = None
    trace: Optional[TraceSpec] = None
    model: str = "lif"
    delta_t: Optional[float] = None
    theta_rh: Optional[float] = None

    @property
    def is_elif(self) -> bool:
        return self.model == "elif"

    @property
    def has_refractory(self) -> bool:
        """True when some neuron has ``refractory_s > 0``."""
        return bool(np.any(np.asarray(self.refractory_s) > 0))

    @property
    def per_neuron_refractory(self) -> bool:
        """True when ``refractory_s`` is an array (neurons differ)."""
        return isinstance(self.refractory_s, np.ndarray)

    @property
    def empty(self) -> bool:
        return (not self.has_refractory and self.lower_bound is None and self.trace is None
                and not self.is_elif)

    def refractory_steps(self, dt: float) -> Union[int, np.ndarray]:
        """Silent steps after a spike: ``round(refractory_s / dt)`` (half to even); an int,
        or an int64 array of the population's shape when ``refractory_s`` is per neuron."""
        steps = np.rint(np.asarray(self.refractory_s, dtype=np.float64) / float(dt))
        return steps.astype(np.int64) if self.per_neuron_refractory else int(steps)


def _number(where: str, key: str, value, rng: str, ok) -> float:
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        x = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: metadata neurohw.{key}={value!r} must be a number "
                              f"in {rng}") from None
    if not math.isfinite(x) or not ok(x):
        raise ValidationError(f"{where}: metadata neurohw.{key}={x:g} is outside {rng}")
    return x


def _text(value) -> Optional[str]:
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return value if isinstance(value, str) else None


def neuron_shape(node) -> Optional[Tuple[int, ...]]:
    """The neuron shape of a NIR ``LIF``/``CubaLIF`` node: its ``output_type``, else the
    shape of its ``v_threshold`` (or time constant) array; None when neither says."""
    types = getattr(node, "output_type", None)
    if isinstance(types, dict) and types:
        value = next(iter(types.values()))
        if value is not None:
            arr = np.asarray(value).reshape(-1)
            if arr.size and arr.dtype.kind in "iu":
                return tuple(int(v) for v in arr)
    for p in ("v_threshold", "tau", "tau_mem"):
        a = getattr(node, p, None)
        if a is not None and np.ndim(a) > 0:
            return tuple(int(v) for v in np.shape(a))
    return None


def _index(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _refractory(node, where: str, value) -> Union[float, np.ndarray]:
    """``refractory_s``: a number, or an array of the population's shape (one per neuron).

    An array whose neurons all agree becomes that number.  Errors name the
    element: ``metadata neurohw.refractory_s[3]=-0.002 is outside [0, inf) s``.
    """
    rng = "[0, inf) s"
    try:
        scalar = np.ndim(value) == 0
    except (TypeError, ValueError):  # a ragged list
        scalar = False
    if scalar:
        return _number(where, "refractory_s", value, rng, lambda x: x >= 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy < 2 only warns on a ragged list
            arr = np.asarray(value)
        if arr.dtype.kind not in "iuf":
            raise TypeError
        arr = arr.astype(np.float64)
    except (TypeError, ValueError, Warning):
        raise ValidationError(f"{where}: metadata neurohw.refractory_s must be a number or an "
                              f"array of numbers (seconds, one per neuron) in {rng}") from None
    shape = neuron_shape(node)
    size = None if shape is None else int(np.prod(shape))
    if shape is None or not (arr.shape == shape or (arr.ndim == 1 and arr.size == size)):
        want = "a number" if shape is None else f"a number or the population's shape {shape}"
        raise ValidationError(f"{where}: metadata neurohw.refractory_s has shape {arr.shape}; "
                              f"expected {want}")
    arr = arr.reshape(shape)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise ValidationError(f"{where}: metadata neurohw.refractory_s{_index(idx)}="
                              f"{float(arr[idx]):g} is outside {rng}")
    first = float(arr.flat[0])
    if bool(np.all(arr == first)):
        return first
    arr.setflags(write=False)
    return arr


def neuron_ext(node, where: str) -> NeuronExt:
    """Parse and validate ``node.metadata["neurohw"]``; ``where`` prefixes errors (file and node).

    Returns an empty :class:`NeuronExt` when the node has no such metadata.
    Raises :class:`~neurohw.errors.ValidationError` (one line: file, node,
    parameter, value, allowed range) for an unknown key, a key on a node type
    other than ``LIF``/``CubaLIF``, or a value out of range.
    """
    meta = getattr(node, "metadata", None)
    ext = meta.get("neurohw") if isinstance(meta, dict) else None
    if ext is None:
        return NeuronExt()
    if not isinstance(ext, dict):
        raise ValidationError(f"{where}: metadata neurohw must be a dict of {', '.join(EXT_KEYS)}")
    if "vth" in ext or "du" in ext:  # a quantized file's integers (neurohw.nirio), not this
        return NeuronExt()
    unknown = sorted(str(k) for k in ext if k not in EXT_KEYS)
    if unknown:
        raise ValidationError(f"{where}: metadata neurohw.{unknown[0]} is not a neurohw neuron "
                              f"key (known: {', '.join(EXT_KEYS)})")
    kind = type(node).__name__
    if ext and kind not in EXT_NODE_TYPES:
        raise ValidationError(f"{where}: metadata neurohw.{next(iter(ext))} is only read on "
                              f"{' and '.join(EXT_NODE_TYPES)} nodes, not {kind}")
    refr: Union[float, np.ndarray] = 0.0
    if ext.get("refractory_s") is not None:
        refr = _refractory(node, where, ext["refractory_s"])
    lower = None
    if ext.get("lower_bound") is not None:
        lower = _number(where, "lower_bound", ext["lower_bound"], "(-inf, v_reset] V",
                        lambda x: True)
        v_reset = np.asarray(getattr(node, "v_reset", 0.0) if getattr(node, "v_reset", None)
                             is not None else 0.0, dtype=np.float64)
        if np.any(lower > v_reset):
            raise ValidationError(f"{where}: metadata neurohw.lower_bound={lower:g} is outside "
                                  f"(-inf, v_reset={float(v_reset.min()):g}] V")
    trace = None
    if ext.get("trace") is not None:
        tr = ext["trace"]
        if not isinstance(tr, dict):
            raise ValidationError(f"{where}: metadata neurohw.trace={tr!r} must be a dict with "
                                  f"tau_s, mode, scale")
        bad = sorted(str(k) for k in tr if k not in ("tau_s", "mode", "scale"))
        if bad:
            raise ValidationError(f"{where}: metadata neurohw.trace.{bad[0]} is not a trace key "
                                  f"(known: tau_s, mode, scale)")
        if tr.get("tau_s") is None:
            raise ValidationError(f"{where}: metadata neurohw.trace.tau_s is missing (a time "
                                  f"constant in (0, inf) s)")
        tau = _number(where, "trace.tau_s", tr["tau_s"], "(0, inf) s", lambda x: x > 0)
        mode = _text(tr.get("mode", "additive"))
        if mode not in TRACE_MODES:
            raise ValidationError(f"{where}: metadata neurohw.trace.mode={tr.get('mode')!r} is not "
                                  f"one of {', '.join(TRACE_MODES)}")
        scale = _number(where, "trace.scale", tr.get("scale", 1.0), "(0, inf)", lambda x: x > 0)
        trace = TraceSpec(tau, mode, scale)
    model = "lif"
    if ext.get("model") is not None:
        model = _text(ext["model"])
        if model is not None:
            model = model.lower()
        if model not in MODELS:
            raise ValidationError(f"{where}: metadata neurohw.model={ext['model']!r} is not one of "
                                  f"{', '.join(MODELS)}")
    delta_t = theta_rh = None
    if model == "elif":
        for key in ("delta_t", "theta_rh"):
            if ext.get(key) is None:
                raise ValidationError(f"{where}: metadata neurohw.{key} is missing (model 'elif' "
                                      f"needs delta_t in (0, 1] and theta_rh in (0, 1], units of "
                                      f"v_threshold)")
        delta_t = _number(where, "delta_t", ext["delta_t"], "(0, 1] (units of v_threshold)",
                          lambda x: 0 < x <= 1)
        theta_rh = _number(where, "theta_rh", ext["theta_rh"], "(0, 1] (units of v_threshold)",
                           lambda x: 0 < x <= 1)
        v_th = np.asarray(getattr(node, "v_threshold", 1.0), dtype=np.float64)
        if np.any(v_th <= 0):
            raise ValidationError(f"{where}: model 'elif' needs v_threshold > 0 "
                                  f"(got {float(v_th.min()):g})")
    else:
        for key in ("delta_t", "theta_rh"):
            if ext.get(key) is not None:
                raise ValidationError(f"{where}: metadata neurohw.{key} is only read with "
                                      f"model 'elif' (model is {model!r})")
    return NeuronExt(refr, lower, trace, model, delta_t, theta_rh)
