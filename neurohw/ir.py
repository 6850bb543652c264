"""The integer network IR: what a chip runs.

A :class:`Network` is a directed graph (cycles allowed, for recurrence) of
named nodes:

* :class:`InputNode` -- where spikes enter, shape ``shape``;
* :class:`LIFPopulation` -- integer CUBA LIF neurons (Lava ``LIF`` parameters);
* :class:`Dense` -- a fully connected projection with integer weight
  mantissas, a shared exponent and optional per-synapse delays;
* :class:`Sparse` -- a projection like :class:`Dense` whose weights are a
  ``scipy.sparse`` matrix (Lava ``Sparse`` / ``DelaySparse``);
* :class:`Conv2d` -- a 2-D convolution, weights in NIR/PyTorch layout
  ``(out_channels, in_channels // groups, kh, kw)`` over ``(C, H, W)`` inputs;
* :class:`SumPool2d` -- unweighted integer sum pooling;
* :class:`Flatten` -- a reshape;
* :class:`OutputNode` -- a readout of whatever feeds it.

Integer arrays are ``np.int32`` and read-only.  A :class:`Network` is checked
against its :class:`~neurohw.profiles.HardwareProfile` when it is built, so
an invalid network cannot exist; errors name the node, the parameter, the
offending value and the allowed range.

Semantics (what the numbers mean) are those of Lava's bit-accurate models;
see ``docs/fixed-point.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import ValidationError
from .fixedpoint import as_int, as_int_array
from .profiles import HardwareProfile, get_profile

__all__ = [
    "Node",
    "InputNode",
    "OutputNode",
    "LIFPopulation",
    "Dense",
    "Sparse",
    "Conv2d",
    "SumPool2d",
    "Flatten",
    "Network",
    "SIGN_MODES",
    "NEURON_PARAMS",
    "TRACE_MODES",
    "conv_output_hw",
]

NEURON_PARAMS = ("du", "dv", "vth", "bias_mant", "bias_exp")
"""The five integer parameters of a :class:`LIFPopulation`, each scalar or per neuron."""

TRACE_MODES = ("additive", "set")
"""How a spike changes a population's trace: add the impulse, or set the trace to it."""

SIGN_MODES = ("mixed", "excitatory", "inhibitory")
"""Weight sign modes, as Lava's ``SignMode`` (MIXED=1, EXCITATORY=2, INHIBITORY=3)."""


_LOIHI1_VMAX = tuple(2 ** (9 + 2 * j) - 1 for j in range(8))


def _shape(value: Iterable[int], where: str, param: str) -> Tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in np.asarray(value).reshape(-1))
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: {param}={value!r} is not a shape") from None
    if not shape or any(s < 1 for s in shape):
        raise ValidationError(f"{where}: {param}={shape} must be non-empty with sizes >= 1")
    return shape


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, copy=True)
    arr.setflags(write=False)
    return arr


def _pair(value, where: str, param: str, lo: int) -> Tuple[int, int]:
    arr = as_int_array(value, where, param, lo=lo, dtype=np.int64)
    if arr.ndim == 0:
        return (int(arr), int(arr))
    if arr.shape != (2,):
        raise ValidationError(f"{where}: {param} must be an int or a pair, got shape {arr.shape}")
    return (int(arr[0]), int(arr[1]))


@dataclass(frozen=True, eq=False)
class Node:
    """Base of all IR nodes: a unique ``name``; subclasses give shapes."""

    name: str

    @property
    def where(self) -> str:
        return f"node '{self.name}'"

    @property
    def in_shape(self) -> Tuple[int, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def out_shape(self) -> Tuple[int, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def kind(self) -> str:
        return type(self).__name__

    def check(self, profile: HardwareProfile) -> None:
        """Raise :class:`ValidationError` if the node does not fit ``profile``."""


@dataclass(frozen=True, eq=False)
class _Terminal(Node):
    """A graph end (Input or Output): one shape, passed through unchanged."""

    shape: Tuple[int, ...] = (1,)

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape, self.where, "shape"))

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape


@dataclass(frozen=True, eq=False)
class InputNode(_Terminal):
    """Spike source; ``shape`` excludes batch and time axes."""


@dataclass(frozen=True, eq=False)
class OutputNode(_Terminal):
    """Readout; ``shape`` is the shape of what feeds it."""


@dataclass(frozen=True, eq=False)
class LIFPopulation(Node):
    """Integer current-based LIF neurons, as Lava's ``LIF`` fixed-point model.

    Parameters (ranges for the Loihi profiles; ``decay_bits`` etc. of a
    generic profile in ``docs/fixed-point.md``):

    * ``shape`` -- neuron array shape (``(n,)`` or ``(C, H, W)``);
    * ``du`` -- current decay, 12-bit unsigned ``0..4095``; ``u`` is multiplied
      by ``4096 - (du + 1)`` and shifted right by 12 (toward zero) each step;
    * ``dv`` -- voltage decay, 12-bit unsigned ``0..4095``; factor ``4096 - dv``;
    * ``vth`` -- threshold mantissa, 17-bit unsigned; a neuron spikes when
      ``v > vth << 6``;
    * ``bias_mant`` -- bias mantissa, 13-bit signed;
    * ``bias_exp`` -- bias exponent; bias is ``bias_mant << bias_exp``
      (an arithmetic right shift, i.e. floor, for a negative exponent);
    * ``refract_delay`` -- refractory delay in steps (Loihi's ``refractDelay``),
      scalar or per neuron, ``0..refract_delay_max``: after a spike at step
      ``t``, steps ``t+1 .. t+refract_delay-1`` are refractory (``u`` integrates
      as usual, ``v`` is computed and then forced to 0, so the neuron cannot
      spike); ``v`` integrates again from 0 at step ``t+refract_delay``.  So
      ``refract_delay = r`` gives ``r - 1`` silent steps; 0 and 1 both mean none;
    * ``vmin``, ``vmax`` -- ``v`` is clipped to ``[vmin, vmax]`` every step
      (``vmin <= 0 <= vmax``, in ``v`` units); ``None`` (default) means the
      full symmetric range ``+-(2**(state_bits-1) - 1)`` of the profile.  On a
      ``loihi1`` profile they are per core and must be ``-(2**k) + 1``
      (``k = 0..23``) and ``2**(9 + 2j) - 1`` (``j = 0..7``);
    * ``trace_impulse``, ``trace_decay``, ``trace_mode`` -- an integer spike
      trace (``trace_impulse = 0``: none): each step
      ``x = (x * (2**D - trace_decay)) >> D`` (``D = trace_decay_bits``, floor,
      deterministic), then on a spike ``x = min(x + trace_impulse, 2**trace_bits - 1)``
      (``"additive"``) or ``x = trace_impulse`` (``"set"``).

    Each of the five integers is given as a scalar (every neuron the same)
    or per neuron (an array of shape ``shape``); all five are stored as
    read-only ``np.int32`` arrays of shape ``shape``.  :meth:`uniform` gives
    the single value of a parameter when every neuron shares it.
    """

    shape: Tuple[int, ...] = (1,)
    du: np.ndarray = 0  # scalar or per-neuron array; stored per neuron (int32)
    dv: np.ndarray = 0
    vth: np.ndarray = 0
    bias_mant: np.ndarray = 0
    bias_exp: np.ndarray = 0
    refract_delay: np.ndarray = 0  # scalar or per neuron; stored per neuron (int32)
    vmin: Optional[int] = None
    vmax: Optional[int] = None
    trace_impulse: int = 0
    trace_decay: int = 0
    trace_mode: str = "additive"
    # ELIF exponential term (docs/neuron-models.md): None, or an int32 table added to v
    elif_lut: Optional[np.ndarray] = None
    elif_lut_lo: int = 0
    elif_lut_shift: int = 0

    def __post_init__(self):
        w = self.where
        if self.elif_lut is not None:
            lut = as_int_array(self.elif_lut, w, "elif_lut", lo=0, hi=(1 << 31) - 1)
            if lut.ndim != 1 or not 1 <= lut.size <= 1 << 16:
                raise ValidationError(f"{w}: elif_lut has shape {lut.shape}; expected 1-D with "
                                      f"1..65536 entries")
            object.__setattr__(self, "elif_lut", _frozen(lut))
            object.__setattr__(self, "elif_lut_lo", as_int(self.elif_lut_lo, w, "elif_lut_lo"))
            object.__setattr__(self, "elif_lut_shift", as_int(self.elif_lut_shift, w,
                                                              "elif_lut_shift", lo=0, hi=31))
        shape = _shape(self.shape, w, "shape")
        object.__setattr__(self, "shape", shape)
        for p in NEURON_PARAMS + ("refract_delay",):
            arr = as_int_array(getattr(self, p), w, p, shape=shape)
            object.__setattr__(self, p, _frozen(arr))
        for p in ("vmin", "vmax"):
            if getattr(self, p) is not None:
                object.__setattr__(self, p, as_int(getattr(self, p), w, p))
        for p in ("trace_impulse", "trace_decay"):
            object.__setattr__(self, p, as_int(getattr(self, p), w, p, lo=0))
        if self.trace_mode not in TRACE_MODES:
            raise ValidationError(
                f"{w}: trace_mode={self.trace_mode!r} is not one of {', '.join(TRACE_MODES)}")

    def v_limits(self, profile: HardwareProfile) -> Tuple[int, int]:
        """``(vmin, vmax)`` of this population on ``profile`` (defaults filled in), in ``v`` units."""
        full = (1 << (profile.state_bits - 1)) - 1
        return (-full if self.vmin is None else int(self.vmin),
                full if self.vmax is None else int(self.vmax))

    @property
    def has_refractory(self) -> bool:
        """True when some neuron has ``refract_delay > 1`` (at least one silent step)."""
        return bool(np.any(self.refract_delay > 1))

    @property
    def is_elif(self) -> bool:
        """True when the population adds the ELIF table ``elif_lut`` to ``v`` (docs/neuron-models.md)."""
        return self.elif_lut is not None

    @property
    def has_trace(self) -> bool:
        """True when the population keeps a spike trace (``trace_impulse > 0``)."""
        return self.trace_impulse > 0

    def uniform(self, param: str) -> Optional[int]:
        """The value of ``param`` (``du``, ``dv``, ``vth``, ``bias_mant``, ``bias_exp``)
        as a Python int when every neuron has the same one, else ``None``."""
        if param not in NEURON_PARAMS + ("refract_delay",):
            raise ValidationError(
                f"{self.where}: no neuron parameter {param!r}; use "
                f"{', '.join(NEURON_PARAMS + ('refract_delay',))}")
        arr = getattr(self, param)
        first = int(arr.flat[0])
        return first if bool(np.all(arr == first)) else None

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(np.prod(self.shape))

    def check(self, profile: HardwareProfile) -> None:
        for p in NEURON_PARAMS:
            lo, hi = profile.range_of(p)
            # du/dv/vth: name the element only when neurons differ (bias arrays as always)
            single = self.uniform(p) if p in ("du", "dv", "vth") else None
            as_int_array(getattr(self, p) if single is None else single, self.where, p, lo, hi,
                         profile.describe_range(p))
        p = "refract_delay"
        single = self.uniform(p)
        lo, hi = profile.range_of(p)
        as_int_array(self.refract_delay if single is None else single, self.where, p, lo, hi,
                     profile.describe_range(p))
        for p in ("vmin", "vmax", "trace_impulse", "trace_decay"):
            value = getattr(self, p)
            if value is not None:
                lo, hi = profile.range_of(p)
                as_int(value, self.where, p, lo, hi, profile.describe_range(p))
        if profile.semantics == "loihi1":
            vmin, vmax = self.v_limits(profile)
            k = (1 - vmin).bit_length() - 1  # vmin = -(2**k) + 1
            top = profile.state_bits - 1
            if -(1 << k) + 1 != vmin:
                raise ValidationError(
                    f"{self.where}: vmin={vmin} is not -(2**k)+1 for k in 0..{top} "
                    f"(Loihi 1 negVmLimit)")
            # vmax = 2**(9 + 2j) - 1 (or the full range, the default on any state width)
            if vmax not in _LOIHI1_VMAX and vmax != (1 << top) - 1:
                raise ValidationError(
                    f"{self.where}: vmax={vmax} is not 2**(9+2j)-1 for j in 0..7 "
                    f"(Loihi 1 posVmLimit)")


@dataclass(frozen=True, eq=False)
class _Weighted(Node):
    """Shared fields of weighted projections (Dense, Conv2d)."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.int32))
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: str = "mixed"
    num_message_bits: int = 0

    def _init_weighted(self, ndim: int) -> None:
        w = self.where
        arr = as_int_array(self.weight, w, "weight")
        if arr.ndim != ndim:
            raise ValidationError(f"{w}: weight must be {ndim}-D, got shape {arr.shape}")
        object.__setattr__(self, "weight", _frozen(arr))
        for p in ("weight_exp", "num_weight_bits", "num_message_bits"):
            object.__setattr__(self, p, as_int(getattr(self, p), w, p))
        if self.sign_mode not in SIGN_MODES:
            raise ValidationError(
                f"{w}: sign_mode={self.sign_mode!r} is not one of {', '.join(SIGN_MODES)}"
            )

    def check(self, profile: HardwareProfile) -> None:
        lo, hi = profile.weight_range(self.sign_mode)
        as_int_array(self.weight, self.where, "weight", lo, hi,
                     f"{profile.weight_bits}-bit {self.sign_mode} weight mantissa")
        for p in ("weight_exp", "num_weight_bits", "num_message_bits"):
            lo, hi = profile.range_of(p)
            as_int(getattr(self, p), self.where, p, lo, hi, profile.describe_range(p))

    @property
    def num_weights(self) -> int:
        """Number of stored weight mantissas (including zeros)."""
        return int(self.weight.size)


@dataclass(frozen=True, eq=False)
class Dense(_Weighted):
    """All-to-all projection: ``weight`` is ``(n_out, n_in)`` as Lava's ``Dense``.

    ``delay`` (optional, same shape, steps ``0..delay_max_steps``) makes it a
    Lava ``DelayDense``.  ``num_message_bits`` > 0 means graded input spikes.
    The input must have shape ``(n_in,)``: put a :class:`Flatten` after a
    convolution or pooling layer.
    """

    delay: Optional[np.ndarray] = None

    def __post_init__(self):
        self._init_weighted(2)
        if self.delay is not None:
            arr = as_int_array(self.delay, self.where, "delay", shape=self.weight.shape)
            object.__setattr__(self, "delay", _frozen(arr))

    @property
    def in_shape(self):
        return (int(self.weight.shape[1]),)

    @property
    def out_shape(self):
        return (int(self.weight.shape[0]),)

    @property
    def num_synapses(self) -> int:
        """Non-zero weights: the synapses a chip must store."""
        return int(np.count_nonzero(self.weight))

    def check(self, profile: HardwareProfile) -> None:
        super().check(profile)
        if self.delay is not None:
            lo, hi = profile.range_of("delay")
            as_int_array(self.delay, self.where, "delay", lo, hi, profile.describe_range("delay"))


def _csr_entries(m, where: str, param: str, lo=None, hi=None, what: str = "") -> np.ndarray:
    """Check the stored entries of CSR ``m`` exactly; return them as int32.

    Errors name the element by ``(row, column)`` like :func:`as_int_array` names
    a dense element, e.g. ``node 'w': weight[3, 7]=300 above allowed range [-256, 255]``.
    """
    d = np.asarray(m.data)

    def at(mask, text):
        k = int(np.flatnonzero(mask)[0])
        row = int(np.searchsorted(m.indptr, k, side="right") - 1)
        raise ValidationError(f"{where}: {param}[{row}, {int(m.indices[k])}]={d[k]!r} {text}")

    if d.dtype == object or d.dtype.kind not in "biuf":
        raise ValidationError(f"{where}: {param} has non-numeric dtype {d.dtype}")
    if d.dtype.kind == "f":
        bad = ~np.isfinite(d)
        if bad.any():
            at(bad, "is not finite")
        bad = d != np.round(d)
        if bad.any():
            at(bad, "is not an integer")
        if d.size and (d.max() > 2**62 or d.min() < -(2**62)):
            raise ValidationError(f"{where}: {param} has values beyond 64-bit range")
    d64 = d.astype(np.int64)
    rng = (f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
           + (f" ({what})" if what else ""))
    if lo is not None and d64.size and d64.min() < lo:
        at(d64 < lo, f"below allowed range {rng}")
    if hi is not None and d64.size and d64.max() > hi:
        at(d64 > hi, f"above allowed range {rng}")
    info = np.iinfo(np.int32)
    if d64.size and (d64.min() < info.min or d64.max() > info.max):
        raise ValidationError(f"{where}: {param} does not fit int32 [{info.min}, {info.max}]")
    return d64.astype(np.int32)


def _as_csr(value, where: str, param: str):
    """``value`` (any scipy.sparse matrix or 2-D array) as a fresh canonical CSR: int32
    entries (checked exactly), duplicates summed, sorted column indices."""
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy comes with the Lava extra
        from .errors import MissingDependencyError

        raise MissingDependencyError(f"{where}: a Sparse projection needs scipy: "
                                     f"pip install scipy") from None
    if sp.issparse(value):
        m = sp.csr_matrix(value, copy=True)
    else:
        arr = np.asarray(value)
        if arr.ndim != 2:
            raise ValidationError(
                f"{where}: {param} must be a 2-D scipy.sparse matrix (n_out, n_in), "
                f"got {type(value).__name__} of shape {arr.shape}")
        m = sp.csr_matrix(arr)
    if m.shape[0] < 1 or m.shape[1] < 1:
        raise ValidationError(f"{where}: {param} has shape {m.shape}; both sizes must be >= 1")
    if m.data.dtype.kind != "f" or np.isfinite(m.data).all():
        m.sum_duplicates()  # also sorts the column indices of every row
    m.data = _csr_entries(m, where, param)
    m.sort_indices()
    return m


def _freeze_csr(m):
    for arr in (m.data, m.indices, m.indptr):
        arr.setflags(write=False)
    return m


@dataclass(frozen=True, eq=False)
class Sparse(_Weighted):
    """A projection with sparse weights: Lava's ``Sparse`` (``DelaySparse`` with ``delay``).

    ``weight`` is a ``scipy.sparse`` matrix (or a 2-D array) of shape
    ``(n_out, n_in)``, as Lava's ``Sparse`` takes it; it is stored as a
    read-only ``scipy.sparse.csr_matrix`` with int32 entries, duplicates summed,
    explicit zeros dropped and column indices sorted.  Only the stored entries
    are synapses.  The integers mean exactly what they mean in :class:`Dense`
    (``weight_exp``, ``num_weight_bits``, ``sign_mode``, ``num_message_bits``):
    a Sparse and a Dense with the same matrix compute the same sums.

    ``delay`` (optional: an int for every synapse, or a sparse matrix / array of
    shape ``(n_out, n_in)``, steps ``0..delay_max_steps``) makes it a
    ``DelaySparse``; it is sampled at the weight's stored entries (a delay where
    there is no weight means nothing, a synapse without a stored delay has
    delay 0) and kept as a CSR with exactly the weight's structure.
    """

    delay: Optional[object] = None

    def __post_init__(self):
        w = self.where
        m = _as_csr(self.weight, w, "weight")
        m.eliminate_zeros()
        object.__setattr__(self, "weight", _freeze_csr(m))
        for p in ("weight_exp", "num_weight_bits", "num_message_bits"):
            object.__setattr__(self, p, as_int(getattr(self, p), w, p))
        if self.sign_mode not in SIGN_MODES:
            raise ValidationError(
                f"{w}: sign_mode={self.sign_mode!r} is not one of {', '.join(SIGN_MODES)}")
        if self.delay is not None:
            d = self.delay
            if np.ndim(d) == 0 and not hasattr(d, "tocsr"):
                vals = np.full(m.nnz, as_int(d, w, "delay"), np.int32)
            else:
                dm = _as_csr(d, w, "delay")
                if dm.shape != m.shape:
                    raise ValidationError(
                        f"{w}: delay has shape {dm.shape}, expected {m.shape} (the weight's)")
                rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
                vals = np.asarray(dm[rows, m.indices]).reshape(-1).astype(np.int32)
            dcsr = m.copy()
            dcsr.data = vals
            object.__setattr__(self, "delay", _freeze_csr(dcsr))

    @property
    def in_shape(self):
        return (int(self.weight.shape[1]),)

    @property
    def out_shape(self):
        return (int(self.weight.shape[0]),)

    @property
    def num_synapses(self) -> int:
        """Stored weights: the synapses a chip must store."""
        return int(self.weight.nnz)

    @property
    def num_weights(self) -> int:
        return int(self.weight.nnz)

    def dense_weight(self) -> np.ndarray:
        """The weight matrix as a dense int32 ``(n_out, n_in)`` array (a new array)."""
        return np.asarray(self.weight.toarray(), dtype=np.int32)

    def dense_delay(self) -> Optional[np.ndarray]:
        """The delays as a dense int32 ``(n_out, n_in)`` array, or None."""
        return None if self.delay is None else np.asarray(self.delay.toarray(), np.int32)

    def check(self, profile: HardwareProfile) -> None:
        lo, hi = profile.weight_range(self.sign_mode)
        _csr_entries(self.weight, self.where, "weight", lo, hi,
                     f"{profile.weight_bits}-bit {self.sign_mode} weight mantissa")
        for p in ("weight_exp", "num_weight_bits", "num_message_bits"):
            lo, hi = profile.range_of(p)
            as_int(getattr(self, p), self.where, p, lo, hi, profile.describe_range(p))
        if self.delay is not None:
            lo, hi = profile.range_of("delay")
            _csr_entries(self.delay, self.where, "delay", lo, hi, profile.describe_range("delay"))


def find_cycle(names: List[str], succ: Dict[str, List[str]], starts: Sequence[str] = ()
               ) -> Optional[List[str]]:
    """First cycle met by a depth-first search from ``starts`` (then every node), as the
    node path ``[v, ..., u]`` whose closing edge is ``u -> v``; None if acyclic.

    ``succ`` maps every name to its successors.  Iterative (no recursion limit on
    long chains); used by :meth:`Network.has_cycle` and the float reference's scheduler.
    """
    state: Dict[str, int] = {}  # 1 on the stack, 2 done
    for root in list(starts) + list(names):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                path = [n for n, _ in stack]
                return path[path.index(nxt):]
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return None


def conv_output_len(n: int, kernel: int, stride: int = 1, pad_lo: int = 0,
                    pad_hi: Optional[int] = None, dilation: int = 1) -> int:
    """Output length along one axis of a convolution or pooling window (all in elements).

    ``floor((n + pad_lo + pad_hi - dilation * (kernel - 1) - 1) / stride) + 1``
    (floor division, as PyTorch and NIR); ``pad_hi`` defaults to ``pad_lo``.
    A result below 1 means the dilated kernel is longer than the padded input;
    callers refuse it naming their node.  This is the one place neurohw computes
    it: the IR, the emulator, the float reference and the validator call it.
    """
    hi = pad_lo if pad_hi is None else pad_hi
    return (int(n) + int(pad_lo) + int(hi) - int(dilation) * (int(kernel) - 1) - 1) // int(stride) + 1


def conv_output_hw(hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                   padding: Sequence[int], dilation: Sequence[int]) -> Tuple[int, int]:
    """Output height/width of a 2-D convolution or pooling with symmetric padding."""
    out = [conv_output_len(n, k, s, p, p, d)
           for n, k, s, p, d in zip(hw, kernel, stride, padding, dilation)]
    return (out[0], out[1])


@dataclass(frozen=True, eq=False)
class Conv2d(_Weighted):
    """2-D convolution with integer weights (cross-correlation, as PyTorch/NIR).

    ``weight`` is ``(out_channels, in_channels // groups, kh, kw)``;
    ``input_shape`` is ``(C, H, W)``; stride, padding (zeros) and dilation are
    ``(h, w)`` pairs.  The Lava backend converts to Lava's ``(X, Y, C)`` layout.
    """

    input_shape: Tuple[int, ...] = (1, 1, 1)
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        w = self.where
        self._init_weighted(4)
        shape = _shape(self.input_shape, w, "input_shape")
        if len(shape) != 3:
            raise ValidationError(f"{w}: input_shape must be (C, H, W), got {shape}")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "stride", _pair(self.stride, w, "stride", 1))
        object.__setattr__(self, "padding", _pair(self.padding, w, "padding", 0))
        object.__setattr__(self, "dilation", _pair(self.dilation, w, "dilation", 1))
        object.__setattr__(self, "groups", as_int(self.groups, w, "groups", lo=1))
        c_out, c_in_g = self.weight.shape[:2]
        if shape[0] != c_in_g * self.groups or c_out % self.groups:
            raise ValidationError(
                f"{w}: weight {self.weight.shape} with groups={self.groups} does not fit "
                f"input channels {shape[0]}"
            )
        oh, ow = self.out_shape[1:]
        if oh < 1 or ow < 1:
            raise ValidationError(f"{w}: output would be empty ({oh}x{ow}) for input {shape}")

    @property
    def in_shape(self):
        return self.input_shape

    @property
    def out_shape(self):
        oh, ow = conv_output_hw(self.input_shape[1:], self.weight.shape[2:], self.stride,
                                self.padding, self.dilation)
        return (int(self.weight.shape[0]), oh, ow)

    @property
    def num_synapses(self) -> int:
        """Connections (output neuron, input neuron) with a non-zero weight, padding excluded."""
        c_out, c_in_g, kh, kw = self.weight.shape
        _, h, wdt = self.input_shape
        _, oh, ow = self.out_shape
        # how many output positions each kernel tap hits inside the input
        def taps(n, k, o, s, p, d):
            pos = np.arange(o)[:, None] * s - p + np.arange(k)[None, :] * d
            return ((pos >= 0) & (pos < n)).sum(axis=0)  # per kernel index
        th = taps(h, kh, oh, self.stride[0], self.padding[0], self.dilation[0])
        tw = taps(wdt, kw, ow, self.stride[1], self.padding[1], self.dilation[1])
        nz = (self.weight != 0).astype(np.int64)
        return int((nz * th[None, None, :, None] * tw[None, None, None, :]).sum())


@dataclass(frozen=True, eq=False)
class SumPool2d(Node):
    """Unweighted sum pooling over ``(C, H, W)``; kernel, stride, padding are pairs."""

    input_shape: Tuple[int, ...] = (1, 1, 1)
    kernel_size: Tuple[int, int] = (2, 2)
    stride: Tuple[int, int] = (2, 2)
    padding: Tuple[int, int] = (0, 0)

    def __post_init__(self):
        w = self.where
        shape = _shape(self.input_shape, w, "input_shape")
        if len(shape) != 3:
            raise ValidationError(f"{w}: input_shape must be (C, H, W), got {shape}")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "kernel_size", _pair(self.kernel_size, w, "kernel_size", 1))
        object.__setattr__(self, "stride", _pair(self.stride, w, "stride", 1))
        object.__setattr__(self, "padding", _pair(self.padding, w, "padding", 0))
        if min(self.out_shape[1:]) < 1:
            raise ValidationError(f"{w}: output would be empty for input {shape}")

    @property
    def in_shape(self):
        return self.input_shape

    @property
    def out_shape(self):
        oh, ow = conv_output_hw(self.input_shape[1:], self.kernel_size, self.stride,
                                self.padding, (1, 1))
        return (self.input_shape[0], oh, ow)


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Row-major reshape of dims ``start_dim..end_dim`` (batch excluded, as NIR)."""

    input_shape: Tuple[int, ...] = (1,)
    start_dim: int = 0
    end_dim: int = -1

    def __post_init__(self):
        w = self.where
        shape = _shape(self.input_shape, w, "input_shape")
        object.__setattr__(self, "input_shape", shape)
        n = len(shape)
        s = as_int(self.start_dim, w, "start_dim", -n, n - 1)
        e = as_int(self.end_dim, w, "end_dim", -n, n - 1)
        if (s % n) > (e % n):
            raise ValidationError(f"{w}: start_dim={s} is after end_dim={e}")
        object.__setattr__(self, "start_dim", s)
        object.__setattr__(self, "end_dim", e)

    @property
    def in_shape(self):
        return self.input_shape

    @property
    def out_shape(self):
        n = len(self.input_shape)
        s, e = self.start_dim % n, self.end_dim % n
        mid = int(np.prod(self.input_shape[s:e + 1]))
        return tuple(self.input_shape[:s]) + (mid,) + tuple(self.input_shape[e + 1:])


_PROJECTIONS = (Dense, Sparse, Conv2d)
_SYNAPTIC = (Dense, Sparse, Conv2d, SumPool2d)  # read spikes, deliver one step later
_SINGLE_INPUT = (Dense, Sparse, Conv2d, SumPool2d, Flatten, OutputNode)


@dataclass(frozen=True, eq=False)
class Network:
    """A validated integer network for one hardware profile.

    ``nodes`` maps names to nodes (the dict keys must equal ``node.name``);
    ``edges`` are ``(source, target)`` name pairs; ``dt_s`` is the wall-clock
    length of one time step in seconds (used for float views and energy).
    """

    nodes: Mapping[str, Node]
    edges: Tuple[Tuple[str, str], ...]
    profile: HardwareProfile
    dt_s: float = 1e-3

    def __post_init__(self):
        profile = get_profile(self.profile)
        object.__setattr__(self, "profile", profile)
        nodes = dict(self.nodes)
        for key, node in nodes.items():
            if not isinstance(node, Node):
                raise ValidationError(f"node '{key}': {type(node).__name__} is not a neurohw IR node")
            if key != node.name:
                raise ValidationError(f"node '{key}': dict key differs from node.name '{node.name}'")
        object.__setattr__(self, "nodes", nodes)
        edges = []
        for edge in self.edges:
            if len(edge) != 2:
                raise ValidationError(f"edge {edge!r} is not a (source, target) pair")
            edges.append((str(edge[0]), str(edge[1])))
        object.__setattr__(self, "edges", tuple(edges))
        try:
            dt = float(self.dt_s)
        except (TypeError, ValueError):
            raise ValidationError(f"network: dt_s={self.dt_s!r} is not a number") from None
        if not np.isfinite(dt) or dt <= 0:
            raise ValidationError(f"network: dt_s={self.dt_s!r} must be a positive number of seconds")
        object.__setattr__(self, "dt_s", dt)
        self._check_graph()
        for node in nodes.values():
            node.check(profile)

    # -- structure -------------------------------------------------------
    def _check_graph(self) -> None:
        seen = set()
        for src, dst in self.edges:
            for end in (src, dst):
                if end not in self.nodes:
                    raise ValidationError(f"edge {src} -> {dst}: no node named '{end}'")
            if (src, dst) in seen:
                raise ValidationError(f"edge {src} -> {dst} appears twice")
            seen.add((src, dst))
            s, d = self.nodes[src], self.nodes[dst]
            if isinstance(s, OutputNode):
                raise ValidationError(f"edge {src} -> {dst}: an Output node has no outgoing edges")
            if isinstance(d, InputNode):
                raise ValidationError(f"edge {src} -> {dst}: an Input node has no incoming edges")
            if tuple(s.out_shape) != tuple(d.in_shape):
                raise ValidationError(
                    f"edge {src} -> {dst}: shape mismatch {s.out_shape} -> {d.in_shape}"
                )
            if isinstance(d, LIFPopulation) and isinstance(s, LIFPopulation):
                raise ValidationError(
                    f"edge {src} -> {dst}: populations connect through a projection (Dense/Conv2d)"
                )
        self._check_stateless_loops()
        for name, node in self.nodes.items():
            n_in = len(self.predecessors(name))
            if isinstance(node, _SINGLE_INPUT) and n_in != 1:
                raise ValidationError(
                    f"node '{name}': {node.kind} needs exactly one incoming edge, has {n_in}"
                )
        for name, node in self.nodes.items():
            if not isinstance(node, LIFPopulation):
                continue
            for pre in self.predecessors(name):
                src = self.through_flatten(pre)
                if src != pre and isinstance(self.nodes[src], LIFPopulation):
                    raise ValidationError(
                        f"edge {pre} -> {name}: LIF population '{src}' reaches LIF population "
                        f"'{name}' through Flatten only; populations connect through a "
                        f"projection (Dense/Conv2d)"
                    )
        for name, node in self.nodes.items():
            if isinstance(node, _SYNAPTIC):
                src = self.spike_source(name)
                if not isinstance(self.nodes[src], (InputNode, LIFPopulation)):
                    raise ValidationError(
                        f"node '{name}': a {node.kind} reads spikes from an Input or a LIF "
                        f"population (optionally through Flatten), not from "
                        f"{self.nodes[src].kind} '{src}'"
                    )

    def _check_stateless_loops(self) -> None:
        """Refuse a directed cycle that passes through no LIF population.

        Such a loop holds no state (Flatten, SumPool2d, projections without a
        spike source): nothing in it ever spikes, and walking it would not end.
        Iterative depth-first search over the non-LIF nodes; the error names
        the loop's nodes in order.
        """
        stateless = {n for n, node in self.nodes.items() if not isinstance(node, LIFPopulation)}
        succ: Dict[str, List[str]] = {n: [] for n in stateless}
        for src, dst in self.edges:
            if src in stateless and dst in stateless:
                succ[src].append(dst)
        color: Dict[str, int] = {}  # 1: on the current path, 2: done
        for root in self.nodes:
            if root not in stateless or root in color:
                continue
            path = [root]
            color[root] = 1
            stack = [iter(succ[root])]
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    color[path.pop()] = 2
                elif color.get(nxt) == 1:
                    loop = path[path.index(nxt):] + [nxt]
                    raise ValidationError(
                        "nodes " + " -> ".join(f"'{n}'" for n in loop)
                        + ": a loop without a LIF population (only stateless nodes) is not allowed"
                    )
                elif nxt not in color:
                    color[nxt] = 1
                    path.append(nxt)
                    stack.append(iter(succ[nxt]))

    def through_flatten(self, name: str) -> str:
        """``name`` itself, or the first node before it that is not a Flatten.

        The one walk back through Flatten nodes (pure reshapes, no time step,
        no arithmetic) in the code base.  Raises :class:`ValidationError` if a
        Flatten on the way has no single input or the walk loops.
        """
        cur = name
        seen = set()
        while isinstance(self.nodes[cur], Flatten):
            if cur in seen:
                raise ValidationError(f"node '{name}': a loop made only of Flatten nodes")
            seen.add(cur)
            preds = self.predecessors(cur)
            if len(preds) != 1:
                raise ValidationError(
                    f"node '{cur}': Flatten needs exactly one incoming edge, has {len(preds)}")
            cur = preds[0]
        return cur

    def spike_source(self, name: str) -> str:
        """The node whose output reaches ``name``'s single input, skipping Flatten nodes.

        Flatten is a pure reshape (no time step, no arithmetic), so a Dense
        behind ``pop -> Flatten -> Dense`` reads ``pop``'s spikes directly.
        """
        preds = self.predecessors(name)
        if len(preds) != 1:
            raise ValidationError(
                f"node '{name}': {self.nodes[name].kind} needs exactly one incoming edge, "
                f"has {len(preds)}")
        return self.through_flatten(preds[0])

    def predecessors(self, name: str) -> List[str]:
        """Names of nodes with an edge into ``name``, in edge order."""
        return [s for s, d in self.edges if d == name]

    def successors(self, name: str) -> List[str]:
        """Names of nodes ``name`` has an edge to, in edge order."""
        return [d for s, d in self.edges if s == name]

    def of_type(self, cls) -> Dict[str, Node]:
        """The nodes that are instances of ``cls``, in insertion order."""
        return {k: v for k, v in self.nodes.items() if isinstance(v, cls)}

    @property
    def populations(self) -> Dict[str, LIFPopulation]:
        return self.of_type(LIFPopulation)  # type: ignore[return-value]

    @property
    def projections(self) -> Dict[str, _Weighted]:
        return self.of_type(_PROJECTIONS)  # type: ignore[return-value]

    @property
    def num_neurons(self) -> int:
        return sum(p.size for p in self.populations.values())

    @property
    def num_synapses(self) -> int:
        return sum(p.num_synapses for p in self.projections.values())

    def has_cycle(self) -> bool:
        """True when the graph has a directed cycle (recurrence)."""
        succ: Dict[str, List[str]] = {n: [] for n in self.nodes}
        for src, dst in self.edges:
            succ[src].append(dst)
        return find_cycle(list(self.nodes), succ) is not None

    def validate(self, profile: HardwareProfile | str | None = None) -> None:
        """Check every node against ``profile`` (default: the network's own)."""
        profile = self.profile if profile is None else get_profile(profile)
        for node in self.nodes.values():
            node.check(profile)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())
