"""The bit-exact emulator: runs an integer :class:`~neurohw.ir.Network` for T steps.

Timing is Lava's (``docs/fixed-point.md``): input row ``t`` is emitted at
step ``t``; a projection delivers at step ``t + 1 + delay`` what it
accumulated from its source's output of step ``t``; a population integrates
what is delivered at step ``t``.  Output row ``t`` of every recorded array
equals index ``t`` of a Lava ``Monitor`` for the same input.

Supported nodes: Input, Dense (with delays and graded input payloads),
Conv2d, SumPool2d, Flatten, LIFPopulation (any topology, recurrence
included), Output.  All activity is kept flat, ``(B, n)`` per node, in the
row-major order of the node's IR shape (``C, H, W`` for convolutions), so
Flatten costs nothing.

Synaptic output widths follow Lava: a Dense sends int32 (wraps at 32 bits),
a Conv (and a SumPool2d, which Lava runs as a Conv with unit weights) wraps
its output to 24 bits (Lava's ``signed_clamp``, a modulo despite its name).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

from .. import ir
from ..errors import ValidationError
from ..fixedpoint import as_int_array, effective_weights, scaled_bias
from .steps import (LIFParams, LIFState, ShiftedConv, TraceParams, apply_exp,
                    conv_accumulate, conv_gather_index, dense_accumulate, lif_step,
                    loihi1_synapse_weights, trace_step, wrap32, wrap_bits)

__all__ = ["EmulatorRun", "run", "prepare_input", "RECORDABLE", "RECORDABLE_ALL"]

RECORDABLE = ("spikes", "v", "u")
"""The state Lava also records (what ``verify`` compares)."""
RECORDABLE_ALL = RECORDABLE + ("trace",)
"""What :func:`run` can record: :data:`RECORDABLE` plus integer spike traces."""
_EXACT_F64 = 2**53
_EXACT_F32 = 2**24
#: per-step conv multiply-adds above which a serial-kernel run leaves BLAS its threads
_BLAS_THREADS_MIN_MACS = 4_000_000


@dataclass
class EmulatorRun:
    """Recorded arrays per population ``NAME``, each of shape ``(B, T, n)``.

    ``spikes`` are ``np.int8`` (0/1); ``v``, ``u`` and ``trace`` are ``np.int32``
    (``trace`` only for populations with a spike trace, ``trace_impulse > 0``).
    :meth:`to_npz_dict` gives the ``NAME.spikes`` / ``NAME.v`` / ``NAME.u`` /
    ``NAME.trace`` layout of the emulator-output contract.
    """

    num_steps: int
    batch_size: int
    spikes: Dict[str, np.ndarray] = field(default_factory=dict)
    v: Dict[str, np.ndarray] = field(default_factory=dict)
    u: Dict[str, np.ndarray] = field(default_factory=dict)
    trace: Dict[str, np.ndarray] = field(default_factory=dict)
    events: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    """With ``count_events``: per population, ``u_wrap`` and ``v_clip`` counts per sample ``(B,)``."""

    def to_npz_dict(self) -> Dict[str, np.ndarray]:
        out: Dict[str, np.ndarray] = {}
        for var in RECORDABLE_ALL:
            for name, arr in getattr(self, var).items():
                out[f"{name}.{var}"] = arr
        return out


def prepare_input(net: ir.Network, x, source: str = "input") -> Dict[str, np.ndarray]:
    """Check and normalize inputs to ``{input_name: integer array (B, T, n)}``.

    The result is int8 for binary inputs and int32 for graded payloads.

    ``x`` is ``(T, n)`` or ``(B, T, n)`` for a network with one Input node,
    or a dict by Input name.  Values must be 0/1, or fit the payload width of
    the graded projections the input feeds.
    """
    in_nodes = net.of_type(ir.InputNode)
    if not isinstance(x, Mapping):
        if len(in_nodes) != 1:
            raise ValidationError(
                f"{source}: network has {len(in_nodes)} Input nodes; give inputs by name")
        x = {next(iter(in_nodes)): x}
    unknown = sorted(set(x) - set(in_nodes))
    if unknown:
        raise ValidationError(f"{source}: no Input node named {', '.join(unknown)}")
    out: Dict[str, np.ndarray] = {}
    shapes = set()
    for name, node in in_nodes.items():
        if name not in x:
            raise ValidationError(f"{source}: input for node '{name}' is missing")
        arr = np.asarray(x[name])
        n = int(np.prod(node.shape))
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[2] != n or arr.shape[1] < 1 or arr.shape[0] < 1:
            raise ValidationError(
                f"{source}: input for node '{name}' has shape {np.asarray(x[name]).shape}, "
                f"expected (T, {n}) or (B, T, {n})")
        bits = input_payload_bits(net, name)
        hi = 1 if bits == 0 else 2**bits - 1
        what = "binary spikes" if bits == 0 else f"{bits}-bit graded payload"
        # binary spikes stay int8 and payloads int32 (< 2**24): a quarter or an eighth of
        # the memory traffic of int64; integer arrays in range skip the detailed checks
        small = np.int8 if hi == 1 else np.int32
        if hi == 1 and arr.dtype.itemsize == 1 and arr.dtype.kind in "iub" and arr.size and (
                arr.dtype == np.bool_ or arr.view(np.uint8).max() <= 1):
            # one pass: as uint8, int8 values below 0 read as 128 or more
            out[name] = arr.view(np.int8)
        elif arr.dtype.kind in "iub" and arr.size and 0 <= arr.min() and arr.max() <= hi:
            out[name] = arr.astype(small, copy=False)
        else:
            out[name] = as_int_array(arr, f"{source}: input for node '{name}'", "x", 0, hi, what,
                                     dtype=small)
        shapes.add(arr.shape[:2])
    if len(shapes) > 1:
        raise ValidationError(f"{source}: inputs differ in batch size or length: {sorted(shapes)}")
    return out


def input_payload_bits(net: ir.Network, name: str) -> int:
    """Widest ``num_message_bits`` among the projections reading node ``name`` (0: binary)."""
    readers = [k for k, n in net.nodes.items()
               if isinstance(n, (ir.Dense, ir.Sparse, ir.Conv2d)) and net.spike_source(k) == name]
    return max((net.nodes[k].num_message_bits for k in readers), default=0)


def _synapse_weights(node, profile) -> Tuple[np.ndarray, int]:
    """``(integer weights, exponent)`` a projection applies for ``profile``.

    Lava rules: the effective mantissas and the layer's ``weight_exp`` (applied
    to the sum).  Loihi 1 rules: each synapse's integer with the exponent
    folded in and rounded per synapse (:func:`.steps.loihi1_synapse_weights`),
    exponent 0.  The later wraps of a Dense (32 bits) or Conv (24 bits) sum are
    no-ops modulo the 22-bit dendritic wrap after ``<< 6``.
    """
    w = effective_weights(node.weight, node.sign_mode, node.num_weight_bits, profile.weight_bits)
    if profile.semantics == "loihi1":
        return loihi1_synapse_weights(w, node.sign_mode, node.num_weight_bits,
                                      profile.weight_bits, node.weight_exp), 0
    return w, int(node.weight_exp)


def _sparse_proj(node, profile, batch: int, use_numba: bool):
    """A :class:`.sparse.SparseProj` (scipy loads only for networks with Sparse nodes)."""
    from .sparse import SparseProj

    return SparseProj(node, profile, batch, use_numba)


def _payload_max(node) -> int:
    bits = getattr(node, "num_message_bits", 0)
    return 1 if bits == 0 else (1 << bits) - 1


class _ConvProj:
    """Precomputed data of one Conv2d or SumPool2d (Lava: ``Conv``), one step of latency.

    With ``use_numba`` a step whose spikes are few enough (cost model
    :meth:`.conv.ConvScatter.prefer`) scatters them instead of the dense products.
    """

    def __init__(self, node, profile, batch: int, use_numba: bool = False):
        if isinstance(node, ir.SumPool2d):
            c = node.input_shape[0]
            w = np.ones((c, 1) + tuple(node.kernel_size), np.int64)
            groups, stride, padding, dilation, exp = c, node.stride, node.padding, (1, 1), 0
        else:
            w, exp = _synapse_weights(node, profile)
            groups, stride, padding, dilation = node.groups, node.stride, node.padding, node.dilation
        self.exp = exp
        c_out, cg, kh, kw = w.shape
        self.n_out = int(np.prod(node.out_shape))
        self.buf = np.zeros((batch, self.n_out), np.int64)
        # a product per kernel tap over contiguous slices of the padded input's stride
        # phases, no im2col (stride 1: ~7x faster; strided convs and SumPool2d: see
        # docs/performance.md); the gather path below stays as the reference
        self.shifted = ShiftedConv(node.input_shape, w, padding, dilation, groups, batch,
                                   _payload_max(node), stride=stride)
        self.scatter = None
        if self.shifted is not None:
            # |a << exp| < 2**23: the shift is exact and the 24-bit wrap a no-op
            self.plain = exp == 0 and self.shifted.bound < (1 << 23)
            if use_numba:
                from .conv import ConvScatter, worth_scattering

                if worth_scattering(self.shifted, batch):
                    self.scatter = ConvScatter(node.input_shape, w, stride, padding, dilation,
                                               groups, batch, dense=self.shifted)
            return
        self.idx = conv_gather_index(node.input_shape, (kh, kw), stride, padding, dilation, groups)
        # (groups, K, C_out/groups) with K in (c, i, j) order, as the gather index
        self.w = np.ascontiguousarray(
            w.reshape(groups, c_out // groups, cg * kh * kw).transpose(0, 2, 1))
        bound = int(np.abs(self.w).sum(axis=1).max(initial=0)) * _payload_max(node)
        self.wf = self.w.astype(np.float64) if bound < _EXACT_F64 else None
        self.n_out = int(np.prod(node.out_shape))
        self.buf = np.zeros((batch, self.n_out), np.int64)

    def deliver(self) -> np.ndarray:
        return self.buf

    def accumulate(self, s_in: np.ndarray) -> None:
        if self.shifted is not None:
            sc = self.scatter
            if sc is not None and sc.prefer(int(np.count_nonzero(s_in)), s_in.shape[0]):
                a = sc(s_in)
            else:
                a = self.shifted(s_in)
            if self.plain:
                self.buf = a
                return
        else:
            a = conv_accumulate(s_in, self.idx, self.w, self.wf)
        self.buf = wrap_bits(apply_exp(a, self.exp), 24)


class _Proj:
    """Precomputed, read-only data of one Dense projection."""

    def __init__(self, node: ir.Dense, profile, batch: int):
        self.node = node
        w, self.exp = _synapse_weights(node, profile)
        n_out, n_in = w.shape
        self.n_out = n_out
        bound = int(np.abs(w).sum(axis=1).max(initial=0)) * _payload_max(node)
        # |a| <= bound << exp: when that stays inside int32, Lava's wrap is a no-op
        self.needs_wrap = (bound << max(self.exp, 0)) >= (1 << 31)
        self.bound = bound
        if node.delay is None:
            self.w = w
            # float32 sums are exact below 2**24, float64 below 2**53
            self._float = (np.float32 if bound < _EXACT_F32 else
                           np.float64 if bound < _EXACT_F64 else None)
            self.max_delay = 0
        else:
            d = node.delay.astype(np.int64)
            self.max_delay = int(d.max(initial=0))
            # one weight matrix per delay value k, stacked: (K+1) * n_out rows
            stack = np.concatenate([np.where(d == k, w, 0) for k in range(self.max_delay + 1)])
            self.w = stack
            self._float = np.float64 if bound < _EXACT_F64 else None
        # ring buffer: column k is delivered k steps after the next one
        self.buf = np.zeros((batch, self.max_delay + 1, n_out), dtype=np.int64)
        self.head = self.buf[:, 0]
        self.fast = None  # the numba module when the compiled engine runs
        self.threads = None  # its fast.Threads (serial or parallel kernels)
        self.summer = None
        self._wt_f = None
        self.binary = node.num_message_bits == 0

    def finish(self, a: np.ndarray) -> np.ndarray:
        """What a delay-free Dense sends for sums ``a``: scaled by the exponent, wrapped
        to int32 where the bound does not rule the wrap out."""
        if self.exp:
            a = apply_exp(a, self.exp)
        return wrap32(a) if self.needs_wrap else a

    @property
    def wt_f(self) -> Optional[np.ndarray]:
        """``w.T`` as float32/float64 for the exact BLAS path (made on first use), or None."""
        if self._wt_f is None and self._float is not None:
            self._wt_f = np.ascontiguousarray(self.w.T, dtype=self._float)
        return self._wt_f

    def deliver(self) -> np.ndarray:
        """What the projection sends this step (its buffer head), int64 (B, n_out)."""
        return self.head

    def accumulate(self, s_in: np.ndarray, nnz: Optional[int] = None) -> None:
        """Shift the buffer one step and add this step's weighted input.

        ``nnz`` (the number of non-zero inputs, if known) spares a count.
        """
        if self.fast is not None and self.binary and self.fast.prefer_spike_sum(
                int(np.count_nonzero(s_in)) if nnz is None else nnz, s_in.shape[0],
                s_in.shape[1], self.w.shape[0]):
            if self.summer is None:
                self.summer = self.fast.SpikeSum(self.w.T, s_in.shape[0], self.bound < (1 << 31),
                                                 threads=self.threads)
            a = self.summer(s_in)
        else:
            a = dense_accumulate(s_in, self.w, self.wt_f)
        if self.exp and a.dtype != np.int64:
            a = a.astype(np.int64)  # shifts must not overflow a narrow accumulator
        if self.max_delay == 0:  # plain Dense: the buffer is just last step's sum
            self.head = self.finish(a)
            return
        a = apply_exp(a, self.exp)
        B = s_in.shape[0]
        a = a.reshape(B, self.max_delay + 1, self.n_out)
        buf = np.roll(self.buf, -1, axis=1)
        buf[:, -1] = 0
        # Lava keeps the buffer in int32 (DelayDense) / sends int32 (Dense)
        self.buf = wrap32(buf + a)
        self.head = self.buf[:, 0]


class _InputDrive:
    """A Dense fed directly by an Input, without delays: its sums for a block of
    steps come from one matrix product over (steps x samples), which BLAS runs
    far faster than one small product per step.  Same integers as :class:`_Proj`."""

    _BLOCK_BYTES = 32 << 20

    def __init__(self, proj: "_Proj", x: np.ndarray):
        self.proj = proj
        B, T, n_in = x.shape
        self.x = x
        self.block = max(1, min(T, self._BLOCK_BYTES // max(1, 8 * B * proj.n_out)))
        self.t0 = -1
        self.pre = None
        self.head = proj.head

    def deliver(self) -> np.ndarray:
        return self.head

    def step(self, t: int) -> None:
        """Make the sum of input row ``t`` the value delivered next step."""
        if self.pre is None or not (self.t0 <= t < self.t0 + self.pre.shape[0]):
            p = self.proj
            xb = self.x[:, t:t + self.block]  # (B, Tb, n_in)
            B, Tb, n_in = xb.shape
            dt = p.wt_f.dtype if p.wt_f is not None else np.int64
            flat = np.ascontiguousarray(xb.transpose(1, 0, 2), dtype=dt).reshape(Tb * B, n_in)
            a = p.finish(dense_accumulate(flat, p.w, p.wt_f))
            self.pre = a.reshape(Tb, B, p.n_out)
            self.t0 = t
        self.head = self.pre[t - self.t0]


def _per_neuron_or_scalar(arr: np.ndarray):
    """A Python int when every element is equal, else the flat int64 array."""
    flat = np.asarray(arr, dtype=np.int64).reshape(-1)
    return int(flat[0]) if bool(np.all(flat == flat[0])) else flat


def _lif_params(pop: ir.LIFPopulation, profile) -> LIFParams:
    """Per-step integers of ``pop`` for ``profile``'s widths (``docs/fixed-point.md``)."""
    unity = 1 << profile.decay_bits
    du = pop.du.astype(np.int64)
    dv = pop.dv.astype(np.int64)
    vmin, vmax = pop.v_limits(profile)
    full = (1 << (profile.state_bits - 1)) - 1
    return LIFParams(
        vmin=None if vmin == -full else vmin,
        vmax=None if vmax == full else vmax,
        refract=pop.refract_delay.astype(np.int64).reshape(-1) if pop.has_refractory else None,
        loihi1=profile.semantics == "loihi1",
        dendrite_bits=profile.dendrite_bits,
        decay_u=_per_neuron_or_scalar(unity - (du + 1)),
        decay_v=_per_neuron_or_scalar(unity - dv),
        bias=scaled_bias(pop.bias_mant, pop.bias_exp).reshape(-1),
        vth_scaled=_per_neuron_or_scalar(pop.vth.astype(np.int64) << profile.vth_shift),
        act_shift=profile.act_shift,
        half=1 << (profile.state_bits - 1),
        decay_bits=profile.decay_bits,
        elif_lut=None if pop.elif_lut is None else pop.elif_lut.astype(np.int64),
        elif_lo=int(pop.elif_lut_lo),
        elif_shift=int(pop.elif_lut_shift),
    )


def _trace_params(pop: ir.LIFPopulation, profile) -> Optional[TraceParams]:
    """The spike-trace integers of ``pop``, or None when it keeps no trace."""
    if not pop.has_trace:
        return None
    return TraceParams(decay=int(pop.trace_decay), impulse=int(pop.trace_impulse),
                       bits=profile.trace_bits, decay_bits=profile.trace_decay_bits,
                       set_mode=pop.trace_mode == "set")


def numba_available() -> bool:
    """True when numba can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


#: Cost model of :func:`choose_engine` in seconds, fitted on the 2-core VM of
#: docs/performance.md (100-100-10 net, batches 1 and 256): loading numba and the
#: cached kernels in a fresh process (~0.15 s import + ~0.3 s cache loads), the same
#: when the kernels are already loaded, and per step: numpy ~18 us per population and
#: ~7 us per projection plus ~13 ns per neuron-sample; the compiled kernels ~2 us per
#: node plus ~3.5 ns per neuron-sample.  Dense synapses: numpy reads every weight
#: each step (~0.5 ns per synapse, memory-bound, plus ~0.05 ns per synapse-sample of
#: BLAS work); the compiled engine adds the rows of the inputs that spiked (~0.15 ns
#: per added weight, ~0.015 ns per synapse-sample at the 10 % rates it is fitted on).
_NUMBA_LOAD_S, _NUMBA_WARM_S = 0.45, 0.05
_CHAIN_MAX_NEURONS = 2048  # the fused single-sample chain loop runs up to this many neurons


def _kernels_loaded() -> bool:
    """True when this process has already compiled or loaded the compiled kernels (a
    second run in the same process pays nothing to use them)."""
    import sys

    fast = sys.modules.get("neurohw.emulate.fast")
    return bool(fast is not None and fast.available() and fast.loaded())


def choose_engine(net: ir.Network, batch: int, steps: int) -> str:
    """The engine ``engine="auto"`` runs: ``"numba"`` when it is installed and its
    estimated time, loading numba and the kernels included, is below the numpy
    engine's; else ``"numpy"`` (tiny networks and short runs start faster without
    compiled kernels).  Both give the same integers."""
    import sys

    if not numba_available():
        return "numpy"
    pops = net.populations
    n_proj = len(net.of_type((ir.Dense, ir.Sparse, ir.Conv2d, ir.SumPool2d)))
    neurons = sum(p.size for p in pops.values())
    work = float(batch) * neurons
    syn = float(sum(n.weight.size for n in net.of_type(ir.Dense).values()))
    numpy_s = steps * (18e-6 * len(pops) + 7e-6 * n_proj + 13e-9 * work
                       + syn * (0.5e-9 + 0.05e-9 * batch))
    load = (0.0 if _kernels_loaded() else
            _NUMBA_WARM_S if "neurohw.emulate.fast" in sys.modules else _NUMBA_LOAD_S)
    numba_s = load + steps * (2e-6 * (len(pops) + n_proj) + 3.5e-9 * work
                              + 0.015e-9 * syn * batch)
    return "numba" if numba_s < numpy_s else "numpy"


def check_run_options(record: Iterable[str], engine: str) -> Tuple[str, ...]:
    """``record`` as a tuple, after checking it and ``engine`` as :func:`run` takes them
    (one-line :class:`ValidationError` naming the bad value and the allowed ones)."""
    record = tuple(record)
    bad = sorted(set(record) - set(RECORDABLE_ALL))
    if bad:
        raise ValidationError(
            f"record: unknown variable(s) {', '.join(bad)}; use {', '.join(RECORDABLE_ALL)}")
    if engine not in ("auto", "numpy", "numba"):
        raise ValidationError(f"engine={engine!r}: use auto, numpy or numba")
    return record


def run(net: ir.Network, x, record: Iterable[str] = ("spikes",), progress: bool = False,
        source: str = "input", count_events: bool = False, engine: str = "auto",
        threads: Optional[int] = None, spill_dir=None, chain: bool = True) -> EmulatorRun:
    """Emulate ``net`` bit-exactly on input ``x`` (see :func:`prepare_input`).

    ``record`` is any of ``"spikes"``, ``"v"``, ``"u"``, ``"trace"`` (the
    last for populations with ``trace_impulse > 0``; others are skipped).  Returns an
    :class:`EmulatorRun` with arrays of shape ``(B, T, n)`` per population.
    ``progress`` shows a progress bar (tqdm) over the steps.
    ``count_events`` counts, per population and sample, the neuron-steps in
    which ``u`` wrapped at 24 bits and ``v`` saturated (``EmulatorRun.events``).
    ``engine``: ``"numpy"`` runs the pure step functions of :mod:`.steps`;
    ``"numba"`` the fused, multi-threaded LIF kernel of :mod:`.fast` (same
    integers); ``"auto"`` picks numba when it is installed and the run is long
    enough to repay loading it (:func:`choose_engine`).
    ``threads`` caps the threads of the compiled kernels (default: the free cores,
    re-measured during the run, see :class:`.fast.Threads`).
    ``chain``: with the compiled engine and one sample, run a network that is a plain chain
    ``Input -> (Dense -> LIF) x L`` (delay-free binary projections, LIF without
    Loihi 1 rules, limits, refractory periods or traces, no spill) as one compiled
    loop (:class:`.fast.ChainRunner`); False forces the per-step loop (same integers).
    ``spill_dir`` (a directory): the recordings are written to ``.npy`` files there
    in blocks of steps (~8 MiB each) instead of kept in memory, so a long run or a big
    batch is recorded in bounded memory; the returned arrays are read-only
    memory-mapped views of those files (keep the directory until they are written,
    e.g. by :func:`.runfile.write_run`, which reads them back a block at a time).
    """
    record = check_run_options(record, engine)
    if engine == "numba" and not numba_available():
        from ..errors import MissingDependencyError

        raise MissingDependencyError("engine='numba' needs numba: pip install numba")
    inputs = prepare_input(net, x, source)
    B, T = next(iter(inputs.values())).shape[:2]
    use_fast = engine == "numba" or (engine == "auto" and choose_engine(net, B, T) == "numba")
    fast = None
    if use_fast:  # numba (and its kernels) load only when they run: ~0.3-0.5 s
        from . import fast
    profile = net.profile
    projs = {k: (_Proj(n, profile, B) if isinstance(n, ir.Dense) else
                 _sparse_proj(n, profile, B, use_fast) if isinstance(n, ir.Sparse) else
                 _ConvProj(n, profile, B, use_fast))
             for k, n in net.of_type((ir.Dense, ir.Sparse, ir.Conv2d, ir.SumPool2d)).items()}
    proj_src = {k: net.spike_source(k) for k in projs}
    # a binary projection (num_message_bits = 0) sees any non-zero payload as a spike, as
    # Lava's Dense/Conv do (s_in.astype(bool)); only inputs can carry payloads > 1
    graded_src = {k for k in inputs if input_payload_bits(net, k) > 0}
    binarize = {k for k, n in net.of_type((ir.Dense, ir.Sparse, ir.Conv2d, ir.SumPool2d)).items()
                if getattr(n, "num_message_bits", 0) == 0 and proj_src[k] in graded_src}
    # Dense projections reading an Input directly (no delays): precompute by blocks
    for k, p in list(projs.items()):
        if isinstance(p, _Proj) and p.max_delay == 0 and proj_src[k] in inputs:
            x_in = inputs[proj_src[k]]
            if use_fast and p.binary and fast.prefer_spike_sum(
                    int(np.count_nonzero(x_in[:, :64])) // min(64, x_in.shape[1]), x_in.shape[0],
                    x_in.shape[2], p.n_out):
                continue  # sparse per-step sums beat the block product here
            projs[k] = _InputDrive(p, (x_in != 0).view(np.int8) if k in binarize else x_in)
    pops = net.populations
    params = {k: _lif_params(p, profile) for k, p in pops.items()}
    if use_fast:
        for p in projs.values():
            if isinstance(p, _Proj):
                p.fast = fast
            elif isinstance(p, _InputDrive):
                p.proj.fast = fast
    state = {k: LIFState(np.zeros((B, p.size), np.int64), np.zeros((B, p.size), np.int64),
                         np.zeros((B, p.size), np.int64) if params[k].refract is not None
                         else None)
             for k, p in pops.items()}
    traces = {k: _trace_params(p, profile) for k, p in pops.items()}
    traces = {k: t for k, t in traces.items() if t is not None}
    trace_x = {k: np.zeros((B, pops[k].size), np.int64) for k in traces}
    # what feeds each population: projections (delivered) or inputs (same step),
    # looking through Flatten nodes (a reshape of the flat activity)
    feeds = {k: [net.through_flatten(s) for s in net.predecessors(k)] for k in pops}
    result = EmulatorRun(num_steps=T, batch_size=B)
    if count_events:
        result.events = {k: {"u_wrap": np.zeros(B, np.int64), "v_clip": np.zeros(B, np.int64)}
                         for k in pops}
    # the fused kernel updates u, v and its spike buffer in place: projections read
    # the spikes in the same step and recording copies them, so one buffer suffices
    threads = fast.Threads(B, T, threads=threads) if use_fast else None
    # serial kernels beside big stride-1 conv products (>= 4M multiply-adds a step, e.g.
    # 32x128x128 -> 32x128x128, 3x3): BLAS's own threads halve the products' time
    conv_macs = B * sum(p.shifted.macs for p in projs.values()
                        if isinstance(p, _ConvProj) and p.shifted is not None)
    if threads is not None and threads.n < 2 and conv_macs >= _BLAS_THREADS_MIN_MACS \
            and fast.free_cores() >= 2:
        threads.limit_blas = False
    steppers = {k: fast.LIFStepper(params[k], state[k].u, state[k].v, state[k].ref,
                                   threads=threads)
                for k in pops} if use_fast else {}
    for p in projs.values():
        pr = p.proj if isinstance(p, _InputDrive) else p
        if isinstance(pr, _Proj):
            pr.threads = threads
    steps = range(T)
    if progress:
        steps = _progress(steps, T)
    # spikes per step of each input, for the sparse-or-dense choice of its readers
    # (estimated once from the first steps: counting every step of a long input costs
    # more than the choice saves)
    in_nnz = {k: int(np.count_nonzero(v[:, :64])) // min(64, v.shape[1])
              for k, v in inputs.items()} if use_fast else {}
    # single samples of small networks only: per step the fused chain loop took 2.7 us
    # against 7.6 us (100-100-10), where per-step dispatch dominates; for batches and
    # large populations the per-population kernels (vectorised over neurons, int32 sums)
    # were as fast or faster: 430 vs 200 steps/s on 1000-5000-5000 (docs/performance.md)
    small = sum(p.size for p in pops.values()) <= _CHAIN_MAX_NEURONS
    layers = (_chain_plan(net, projs, params, traces, inputs, record)
              if use_fast and chain and small else None)
    if layers is not None:  # one compiled loop for the whole chain
        return _run_chain(layers, fast, inputs, B, T, record, threads, progress, result,
                          count_events, list(pops), spill_dir)
    # recording buffers are (T, B, n) so each step writes one contiguous block; the
    # results are (B, T, n) transposed views of them (indexing and np.savez work as usual)
    rec_buf = {var: {k: _record_buffer((T, B, p.size), np.int8 if var == "spikes" else np.int32,
                                       spill_dir, f"{var}.{j}")
                     for j, (k, p) in enumerate(pops.items()) if var != "trace" or k in traces}
               for var in record}
    limit = threads if use_fast else contextlib.nullcontext()
    with limit:
        for t in steps:
            if threads is not None:
                threads.tick(t)
            outputs: Dict[str, np.ndarray] = {k: v[:, t] for k, v in inputs.items()}
            for k, pop in pops.items():
                srcs = feeds[k]
                a = projs[srcs[0]].deliver() if srcs and srcs[0] in projs else None
                if a is None or len(srcs) > 1:
                    a = np.zeros((B, pop.size), np.int64)
                    for src in srcs:
                        a = a + (projs[src].deliver() if src in projs else outputs[src])
                if use_fast:
                    st = state[k]
                    s = steppers[k](a)
                elif count_events:
                    st, s, (uw, vc) = lif_step(state[k], a, params[k], events=True)
                    ev = result.events[k]
                    ev["u_wrap"] += uw.sum(axis=1)
                    ev["v_clip"] += vc.sum(axis=1)
                else:
                    st, s = lif_step(state[k], a, params[k])
                state[k] = st
                outputs[k] = s
                if k in traces:
                    trace_x[k] = trace_step(trace_x[k], s, traces[k])
                    if "trace" in record:
                        rec_buf["trace"][k][t] = trace_x[k]
                if "spikes" in record:
                    rec_buf["spikes"][k][t] = s
                if "v" in record:
                    rec_buf["v"][k][t] = st.v
                if "u" in record:
                    rec_buf["u"][k][t] = st.u
            for k, proj in projs.items():
                if isinstance(proj, _InputDrive):
                    proj.step(t)
                else:
                    src = proj_src[k]
                    s_in = outputs[src] != 0 if k in binarize else outputs[src]
                    if isinstance(proj, _Proj):
                        proj.accumulate(s_in, in_nnz.get(src))
                    else:
                        proj.accumulate(s_in)
    if use_fast and count_events:
        for k, st in steppers.items():
            result.events[k]["u_wrap"] += st.counts[0]
            result.events[k]["v_clip"] += st.counts[1]
    for var, bufs in rec_buf.items():
        for k, buf in bufs.items():
            if isinstance(buf, _SpillRecorder):
                buf = buf.finish()
            getattr(result, var)[k] = buf.transpose(1, 0, 2)  # a (B, T, n) view, no copy
    return result


def _chain_plan(net, projs, params, traces, inputs, record):
    """``[(pop, w, exp, needs_wrap, params)]`` in order when ``net`` is a plain chain
    ``Input -> (Dense -> LIF) x L`` the fused loop runs exactly, else None."""
    if traces or set(record) - {"spikes", "v", "u"} or len(inputs) != 1:
        return None
    if any(not isinstance(n, (ir.InputNode, ir.Dense, ir.LIFPopulation, ir.OutputNode))
           for n in net.nodes.values()):
        return None
    (src,) = inputs
    if inputs[src].dtype != np.int8 or any(p.extended for p in params.values()):
        return None
    pops = net.populations
    layers, seen = [], set()
    while True:
        readers = [k for k in projs if net.spike_source(k) == src]
        if not readers:
            break
        if len(readers) != 1 or readers[0] in seen:
            return None
        d = readers[0]
        seen.add(d)
        pr = projs[d].proj if isinstance(projs[d], _InputDrive) else projs[d]
        succ = net.successors(d)
        if (not isinstance(pr, _Proj) or pr.max_delay or not pr.binary or len(succ) != 1
                or succ[0] not in pops or net.predecessors(succ[0]) != [d]):
            return None
        src = succ[0]
        layers.append((src, pr.w, pr.exp, pr.needs_wrap, params[src]))
    if len(layers) != len(pops) or len(seen) != len(projs):
        return None
    return layers


def _run_chain(layers, fast, inputs, B, T, record, threads, progress, result, count_events,
               order, spill_dir=None):
    """Run a chain planned by :func:`_chain_plan` with :class:`.fast.ChainRunner`.

    With ``spill_dir`` the kernel records a block of steps at a time into a small
    ``(block, B, N)`` buffer that is handed to one :class:`_SpillRecorder` per
    population and variable, so the recording never sits in memory whole."""
    runner = fast.ChainRunner([lay[1:] for lay in layers], B, threads)
    x = np.ascontiguousarray(next(iter(inputs.values())))
    N = runner.N
    dtypes = {var: np.int8 if var == "spikes" else np.int32 for var in record}
    rows = T if spill_dir is None else runner.BLOCK
    # np.empty, not np.zeros: the kernels write every element of each row they record,
    # and numpy backs large np.empty arrays with transparent huge pages (madvise) where
    # the calloc behind np.zeros faults in 4 KiB pages (a 56 MB recording: ~20 ms of
    # page faults against ~3 ms here)
    rec = {var: np.empty((rows, B, N), dt) for var, dt in dtypes.items()}
    pos = {k: j for j, (k, *_rest) in enumerate(layers)}
    spans = {k: (int(runner.noff[j]), int(runner.nout[j])) for k, j in pos.items()}
    spill = {var: {k: _record_buffer((T, B, spans[k][1]), dt, spill_dir, f"{var}.{i}")
                   for i, k in enumerate(order)}
             for var, dt in dtypes.items()} if spill_dir is not None else None
    bar = _progress(range(T), T) if progress else None
    with threads:
        probe = _LoopProbe(runner, T)
        if threads.adaptive or probe.active:  # load the kernels (zero steps) before timing
            # (serial and parallel run the same compiled loop: ChainRunner.run)
            keep_c = runner.use_chunks
            for chunks in (False, True) if probe.active else (keep_c,):
                runner.use_chunks = chunks
                runner.run(x, 0, 0, rec.get("spikes"), rec.get("v"), rec.get("u"))
            runner.use_chunks = keep_c
            if threads.adaptive:
                threads.loaded()
        t0 = 0
        while t0 < T:
            threads.tick(t0)
            t1 = probe.block_end(t0, min(T, threads.block_end(t0, runner.BLOCK)))
            tb = time.perf_counter()
            runner.run(x, t0, t1, rec.get("spikes"), rec.get("v"), rec.get("u"),
                       rec_base=0 if spill is None else t0)
            probe.done(t0, t1, time.perf_counter() - tb)
            if spill is not None:
                for var, bufs in spill.items():
                    for k, sp in bufs.items():
                        o, n = spans[k]
                        sp.put(t0, rec[var][:t1 - t0, :, o:o + n])
            if bar is not None and hasattr(bar, "update"):
                bar.update(t1 - t0)
            t0 = t1
    if bar is not None and hasattr(bar, "close"):
        bar.close()
    for k in order:  # the network's population order, as the step loop gives
        j = pos[k]
        o, n = spans[k]
        for var, buf in rec.items():
            if spill is not None:
                getattr(result, var)[k] = spill[var][k].finish().transpose(1, 0, 2)
            else:
                getattr(result, var)[k] = buf[:, :, o:o + n].transpose(1, 0, 2)
        if count_events:
            result.events[k]["u_wrap"] += runner.counts[0, j]
            result.events[k]["v_clip"] += runner.counts[1, j]
    return result


class _LoopProbe:
    """Chooses, during a run, between a :class:`.fast.ChainRunner`'s two loops for a
    batch (one sample per thread, or chunks with BLAS products for dense steps) by
    timing them: two :attr:`WINDOW`-step blocks at the start, one in each loop, then
    every :attr:`PERIOD` steps one block in the loop not in use, keeping the loop with
    the lower time per step (activity can change during a run; chunks must win by
    :attr:`MARGIN`, and a switch is confirmed by a second probe at once).  Both loops keep the
    state in the same arrays, so switching between blocks keeps every integer."""

    WINDOW = 16
    PERIOD = 1024
    #: the chunks must be this much faster per step (est_chunks < MARGIN * est_rows):
    #: the per-sample loop was the faster one at every input rate on the bench net
    #: (docs/performance.md), so a near tie keeps it
    MARGIN = 0.9
    #: probe only chains with a layer this many 512-bit vectors wide (its row of sums):
    #: the products won only on wide layers (63 int32 vectors, >80 % active), never on
    #: the bench net (4 and 1); not probing saves loading the chunk kernel (~0.14 s of
    #: a whole `neurohw emulate` process) and the probe blocks
    MIN_VECTORS = 16

    def __init__(self, runner, steps: int):
        self.runner = runner
        self.active = (runner.chunk is not None and steps >= 8 * self.WINDOW
                       and runner.max_vectors >= self.MIN_VECTORS)
        self.est = {False: None, True: None}  # seconds per step of each loop
        self.next = 0
        self.probing = False
        self.switches = []  # (step, use_chunks) of every decision, for tests
        self.current = False  # the loop between probes (per-sample rows first)
        self.confirming = False
        self.steps = {False: 0, True: 0}  # steps run in each loop

    def block_end(self, t0: int, t1: int) -> int:
        """The end of the block starting at ``t0`` (at most ``t1``); sets the loop."""
        if not self.active or t0 < self.next:
            self.probing = False
            return t1
        r = self.runner
        if self.est[False] is None:
            r.use_chunks = False
        elif self.est[True] is None:
            r.use_chunks = True
        else:
            r.use_chunks = not r.use_chunks
        self.probing = True
        return min(t1, t0 + self.WINDOW)

    def done(self, t0: int, t1: int, seconds: float) -> None:
        """A block ran: update the estimate of its loop and decide after a probe."""
        if not self.active or t1 <= t0:
            return
        r = self.runner
        self.est[r.use_chunks] = seconds / (t1 - t0)
        self.steps[r.use_chunks] += t1 - t0
        if not self.probing:
            return
        if self.est[False] is None or self.est[True] is None:
            self.next = t1  # the other loop is timed next
            return
        want = self.est[True] < self.MARGIN * self.est[False]
        if want != self.current and not self.confirming:
            # confirm a switch with a second probe at once (one window is noisy)
            self.confirming, r.use_chunks, self.next = True, self.current, t1
            return
        self.confirming = False
        self.current = r.use_chunks = want
        self.switches.append((t1, want))
        self.next = t1 + self.PERIOD


class _SpillRecorder:
    """A ``(T, B, n)`` recording written to a ``(B, T, n)`` ``.npy`` file in blocks of steps.

    ``rec[t] = row`` fills an in-memory block of about :attr:`BLOCK_BYTES`; a full
    block is written to the file with one positioned write per sample (``os.pwrite``,
    no memory map), so the recording never occupies more than one block of memory
    however long the run, and the file is already in the run file's sample-major
    order.  :meth:`finish` returns a ``(T, B, n)`` view of the file mapped read-only.
    Steps are recorded in order, each once, as the emulator loop does."""

    BLOCK_BYTES = 8 << 20

    def __init__(self, path: str, shape, dtype):
        import os

        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)
        T, B, n = self.shape
        rows = self.BLOCK_BYTES // max(1, B * n * self.dtype.itemsize)
        self.block = np.zeros((max(1, min(T, rows)), B, n), self.dtype)
        self.t0 = 0
        with open(path, "wb") as f:
            np.lib.format.write_array_header_2_0(
                f, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                    "shape": (B, T, n)})
            self.offset = f.tell()
            f.truncate(self.offset + B * T * n * self.dtype.itemsize)
        self.fd = os.open(path, os.O_WRONLY)

    def __setitem__(self, t: int, row) -> None:
        self.put(t, np.asarray(row)[None])

    def put(self, t: int, rows) -> None:
        """Steps ``t .. t + len(rows) - 1`` (``rows`` ``(k, B, n)``), the next ones in order."""
        i, k, cap = 0, rows.shape[0], self.block.shape[0]
        while i < k:
            j = t + i - self.t0
            if j >= cap:
                self._flush(cap)
                j = t + i - self.t0
            m = min(k - i, cap - j)
            self.block[j:j + m] = rows[i:i + m]
            i += m

    def _flush(self, rows: int) -> None:
        import os

        T, B, n = self.shape
        size = self.dtype.itemsize
        for b in range(B):
            data = np.ascontiguousarray(self.block[:rows, b]).tobytes()
            os.pwrite(self.fd, data, self.offset + (b * T + self.t0) * n * size)
        self.t0 += rows

    def finish(self) -> np.ndarray:
        import os

        self._flush(self.shape[0] - self.t0)
        os.close(self.fd)
        return np.load(self.path, mmap_mode="r").transpose(1, 0, 2)


def _record_buffer(shape, dtype, spill_dir, name: str):
    """A zeroed ``(T, B, n)`` recording buffer in memory, or with ``spill_dir`` a
    :class:`_SpillRecorder` writing ``NAME.npy`` there block by block."""
    if spill_dir is None:
        return np.zeros(shape, dtype)
    import os

    return _SpillRecorder(os.path.join(os.fspath(spill_dir), f"{name}.npy"), shape, dtype)


def _progress(it, total):
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are optional
        return it
    return tqdm(it, total=total, unit="step", desc="emulate", leave=False)
