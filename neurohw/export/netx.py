"""Export a quantized network to lava-dl netx HDF5 (``lava.lib.dl.netx.hdf5.Network``).

:func:`export_netx` writes the layout that netx 0.6.0 reads, and only what
netx reproduces *exactly*: the loaded network, run in Lava's ``fixed_pt``
simulator, gives the neurohw emulator's spikes step for step, with the same
input timing (see ``docs/export-netx.md``).  Whatever netx would change is
refused with a :class:`~neurohw.errors.ValidationError` naming the node, the
parameter and the value, before anything is written.

What netx can express is a feed-forward chain::

    Input [-> Flatten] -> (Dense -> LIF [+ self-recurrent Dense]) x N

written as HDF5 layer ``0`` of type ``input`` (shape only, no neuron, so
the network's input port feeds the first Dense directly) and one layer
``dense`` (or ``dense_rec``) per ``Dense -> LIF`` pair.

netx does not take the integers as given; it re-derives them on load.  The
differences, and how this module handles each (details in the doc):

* weights: netx recomputes ``weight_exponent``, ``num_weight_bits`` and the
  sign mode from the stored matrix (``netx.utils.optimize_weight_bits``)
  and hands Lava's ``Dense`` no sign mode at all (Lava then derives one
  from the signs).  The net effect is that a netx synapse adds the stored
  integers as they are, with no shared shift of the sum.  neurohw therefore
  stores the *effective* integers ``V = W_eff * 2**weight_exp`` (after
  neurohw's own clip and truncation); this is exact when ``V`` is an integer
  matrix and netx's pipeline, replayed here bit for bit
  (:func:`netx_dense_weights`), gives ``V`` back.  Otherwise (a negative
  exponent whose floor shift rounds, ``|V|`` beyond 8 bits, an all-zero
  matrix, an inhibitory matrix whose largest magnitude is a power of two,
  which netx clips) the export is refused.
* decays: netx passes ``du = iDecay - 1`` and ``dv = vDecay``; neurohw
  writes ``iDecay = du + 1``.
* threshold: ``vThMant`` is Lava's ``vth`` unchanged.
* per-neuron decays and thresholds: ``iDecay``, ``vDecay`` and ``vThMant``
  are scalars when the whole layer shares the value and per-neuron arrays
  (shape ``(n,)``) otherwise; netx hands either to Lava's ``LIF`` as it is
  (checked by loading and running with the real netx, tests/test_export_netx.py).
* profile: only Lava's datapath (:func:`neurohw.backends.lava.graph.check_lava_profile`).
* bias: netx fixes ``bias_exp = 6`` and takes ``bias`` as the mantissa, so
  the per-neuron bias ``bias_mant << bias_exp`` must be a multiple of 64 with
  ``bias / 64`` inside the profile's bias-mantissa range.
* delays: written as ``delay`` (netx builds a ``DelayDense`` with
  ``max_delay=62``; same semantics as neurohw's).
* recurrence: only a Dense from a population to itself (netx ``dense_rec``);
  netx optimizes its weights together with the forward ones, which is
  replayed on the concatenated matrix.  netx has no delays on such a layer.
* graded input: a first Dense with ``num_message_bits = b > 0`` needs the
  loader argument ``input_message_bits=b`` (``NetxExportReport.load_kwargs``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .. import ir
from ..errors import MissingDependencyError, ValidationError
from ..fixedpoint import effective_weights, scaled_bias

__all__ = ["export_netx", "NetxExportReport", "NetxLayer", "netx_dense_weights",
           "NETX_FORMAT", "NETX_VERSION"]

NETX_FORMAT = "neurohw.netx"
NETX_VERSION = 1

_NETX_BIAS_EXP = 6        # netx hdf5.py get_neuron_params: 'bias_exp': 6
_NETX_MAX_DELAY = 62      # netx blocks/process.py: DelayDense(max_delay=62), clamps above
_LAVA_WEIGHT_BITS = 8     # Lava clip_weights(num_bits=8), netx optimize_weight_bits
_INT32_LIMIT = 2**31

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class NetxLayer:
    """One written HDF5 layer.

    ``index`` is the HDF5 group name (``layer/<index>``); ``kind`` is netx's
    layer ``type``; ``dense``/``recurrent``/``population`` are neurohw node
    names (``None`` where absent).  For Dense layers, ``netx_weight_exponent``,
    ``netx_num_weight_bits`` and ``netx_sign_mode`` are what netx will derive
    on load, ``weight_scale_bits`` the left shift it applies to the stored
    integers (its exponent is the negative of it, so the two cancel).
    """

    index: int
    kind: str
    shape: Tuple[int, ...]
    dense: Optional[str] = None
    recurrent: Optional[str] = None
    population: Optional[str] = None
    netx_weight_exponent: Optional[int] = None
    netx_num_weight_bits: Optional[int] = None
    netx_sign_mode: Optional[str] = None
    weight_scale_bits: Optional[int] = None
    has_delay: bool = False
    has_bias: bool = False


@dataclass(frozen=True)
class NetxExportReport:
    """What :func:`export_netx` wrote.

    ``load_kwargs`` are the keyword arguments to give
    ``netx.hdf5.Network(net_config=path, **load_kwargs)`` (empty unless the
    input is graded).  ``output_population`` is the population whose spikes
    leave on the netx network's ``out`` port (the last layer); every layer's
    spikes are also at ``net.layers[i].neuron.s_out`` (``i`` counts only
    layers with a neuron, i.e. HDF5 layer ``i + 1``).  ``notes`` lists
    exact rewrites made (e.g. an all-zero recurrent Dense left out).
    """

    path: Path
    layers: Tuple[NetxLayer, ...]
    input_message_bits: int
    output_population: str
    notes: Tuple[str, ...] = ()

    @property
    def load_kwargs(self) -> Dict[str, int]:
        return {"input_message_bits": self.input_message_bits} if self.input_message_bits else {}

    @property
    def populations(self) -> Tuple[str, ...]:
        """neurohw population names in netx block order (``net.layers[i]``)."""
        return tuple(layer.population for layer in self.layers if layer.population)

    def summary(self) -> str:
        """A short human-readable table of the written layers."""
        lines = [f"netx HDF5 {self.path}: {len(self.layers)} layers"]
        for lay in self.layers:
            if lay.kind == "input":
                lines.append(f"  layer/{lay.index}: input shape={lay.shape}")
                continue
            extra = []
            if lay.recurrent:
                extra.append(f"recurrent={lay.recurrent}")
            if lay.has_delay:
                extra.append("delay")
            if lay.has_bias:
                extra.append("bias")
            lines.append(
                f"  layer/{lay.index}: {lay.kind} {lay.dense} -> {lay.population} "
                f"n={lay.shape[0]} netx weight_exponent={lay.netx_weight_exponent} "
                f"num_weight_bits={lay.netx_num_weight_bits} sign={lay.netx_sign_mode}"
                + (" " + " ".join(extra) if extra else ""))
        if self.load_kwargs:
            args = ", ".join(f"{k}={v}" for k, v in self.load_kwargs.items())
            lines.append(f"  load with netx.hdf5.Network(net_config=..., {args})")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# netx's weight pipeline, replayed
# ---------------------------------------------------------------------------
def netx_dense_weights(stored: np.ndarray, where: str = "weights",
                       split: Optional[int] = None) -> Tuple[np.ndarray, int, int, str]:
    """What netx 0.6.0 + Lava 0.10 make of a stored integer weight matrix.

    Replays, with the same numpy operations, ``lava.lib.dl.netx.utils.
    optimize_weight_bits`` (clip to ``[-256, 254]`` when mixed and out of
    range, sign mode, ``scale_bits``, precision search, ``num_weight_bits``,
    ``weight_exponent = -scale_bits``, ``weight << scale_bits``), then Lava's
    ``PyDenseModelBitAcc`` set-up (``determine_sign_mode`` on the shifted
    weights -- netx passes none --, ``clip_weights(num_bits=8)``,
    ``truncate_weights``).

    ``split`` is for a netx ``dense_rec`` layer: ``stored`` is then
    ``hstack([weight, weight_rec])``, which netx optimizes as one matrix
    (one exponent and precision), while Lava sets up the two ``Dense``
    processes (columns ``:split`` and ``split:``) each with its own sign mode.

    Returns ``(W, weight_exponent, num_weight_bits, netx_sign_mode)``: the
    int64 weights Lava's Dense multiplies with (same layout as ``stored``),
    and the exponent it shifts the per-step sum by (``sum >> -weight_exponent``,
    floor).  Raises :class:`ValidationError` (naming ``where``) for matrices
    netx cannot load: all zeros (netx divides by the largest weight), a
    negative scale (weights above 255) or a negative truncation count.
    """
    w = np.asarray(stored).astype(int)
    max_w = np.max(w)
    min_w = np.min(w)
    if max_w > 254 and min_w < 0:
        w = np.clip(w, -256, 254)
        max_w = np.max(w)
    if min_w < -256 and max_w > 0:
        w = np.clip(w, -256, 254)
        min_w = np.min(w)
    if max_w == 0 and min_w == 0:
        raise ValidationError(
            f"{where}: all weights are 0; netx cannot load an all-zero weight matrix "
            f"(optimize_weight_bits divides by the largest weight)")
    if max_w < 0:
        sign, is_signed = "inhibitory", 0
    elif min_w >= 0:
        sign, is_signed = "excitatory", 0
    else:
        sign, is_signed = "mixed", 1
    with np.errstate(divide="ignore"):
        if sign == "mixed":
            scale = np.min([127 / max_w, -128 / min_w])
        elif sign == "inhibitory":
            scale = -256 / min_w
        else:
            scale = 255 / max_w
    scale_bits = int(np.floor(np.log2(scale)) + is_signed)
    n = 8
    while n > 0:
        if np.sum(np.abs(w / (2**n) - np.round(w / (2**n)))) == 0:
            break
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    weight_exponent = -scale_bits
    if scale_bits < 0:
        raise ValidationError(
            f"{where}: weights up to {int(max_w)} exceed netx's 8-bit range "
            f"(netx would shift them by {scale_bits} bits)")
    w = np.left_shift(w.astype(np.int32), scale_bits).astype(np.int64)
    parts = [w] if split is None else [w[:, :split], w[:, split:]]
    out = [_lava_dense_setup(part, num_weight_bits, where) for part in parts]
    return np.hstack(out), weight_exponent, num_weight_bits, sign


def _lava_dense_setup(w: np.ndarray, num_weight_bits: int, where: str) -> np.ndarray:
    """Lava ``PyDenseModelBitAcc``'s first step with no sign mode given: derive it, clip, truncate."""
    if np.min(w) >= 0:
        lava_sign = "excitatory"
    elif np.max(w) <= 0:
        lava_sign = "inhibitory"
    else:
        lava_sign = "mixed"
    mixed = int(lava_sign == "mixed")
    if lava_sign == "inhibitory":
        w = -w
    w = np.clip(w, -(2**_LAVA_WEIGHT_BITS) * mixed, 2**_LAVA_WEIGHT_BITS - 1)
    t = _LAVA_WEIGHT_BITS - num_weight_bits + mixed
    if t < 0:
        raise ValidationError(
            f"{where}: netx would derive num_weight_bits={num_weight_bits} for a "
            f"{lava_sign} matrix, a negative truncation Lava does not define")
    w = (w >> t) << t
    if lava_sign == "inhibitory":
        w = -w
    return w


def _first_mismatch(a: np.ndarray, b: np.ndarray) -> Tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(a != b)[0])


def _integer_weights(node: ir.Dense, profile) -> np.ndarray:
    """``W_eff * 2**weight_exp`` as int64, or raise when it is not an integer matrix."""
    w_eff = effective_weights(node.weight, node.sign_mode, node.num_weight_bits,
                              profile.weight_bits)
    e = int(node.weight_exp)
    if e >= 0:
        return w_eff << np.int64(e)
    k = -e
    rem = w_eff % (1 << k)
    if np.any(rem):
        idx = _first_mismatch(rem, np.zeros_like(rem))
        raise ValidationError(
            f"node '{node.name}': weight_exp={e} floors each step's sum by 2^{k}, but the "
            f"effective weight{list(idx)}={int(w_eff[idx])} is not a multiple of {1 << k}; "
            f"netx adds integer weights with no shift of the sum, so this Dense has no exact "
            f"netx encoding")
    return w_eff >> np.int64(k)


def _encode_weights(stored: np.ndarray, names: str, payload_max: int,
                    split: Optional[int] = None) -> Tuple[int, int, str, int]:
    """Check that netx turns ``stored`` back into exactly ``stored``; return its choices."""
    w, wexp, nbits, sign = netx_dense_weights(stored, where=names, split=split)
    scale_bits = -wexp
    want = stored.astype(np.int64) << np.int64(scale_bits)
    if not np.array_equal(w, want):
        idx = _first_mismatch(w, want)
        raise ValidationError(
            f"{names}: effective weight{list(idx)}={int(stored[idx])} would become "
            f"{int(w[idx]) / (1 << scale_bits):g} in netx (it clips to 8 bits and derives its "
            f"own exponent, precision and sign modes); allowed: integers netx keeps, e.g. "
            f"mixed -256..254, excitatory 0..255, all non-positive with no power-of-two "
            f"minimum (docs/export-netx.md)")
    # graded payloads: Lava's weights.dot(s_in) runs in int32 before netx's right shift
    bound = int(np.abs(w).sum(axis=1).max(initial=0)) * payload_max
    if payload_max > 1 and bound >= _INT32_LIMIT:
        raise ValidationError(
            f"{names}: a graded input sum can reach {bound} (netx scales weights by "
            f"2^{scale_bits}), beyond Lava's int32 dot product; netx would wrap it")
    return wexp, nbits, sign, scale_bits


def _encode_bias(pop: ir.LIFPopulation, profile) -> Optional[np.ndarray]:
    """Per-neuron netx ``bias`` (mantissa for bias_exp 6), or None when all zero."""
    bias = scaled_bias(pop.bias_mant, pop.bias_exp).reshape(-1)
    if not np.any(bias):
        return None
    step = 1 << _NETX_BIAS_EXP
    bad = np.flatnonzero(bias % step)
    if bad.size:
        i = int(bad[0])
        raise ValidationError(
            f"node '{pop.name}': bias[{i}] = bias_mant << bias_exp = "
            f"{int(pop.bias_mant.reshape(-1)[i])} << {int(pop.bias_exp.reshape(-1)[i])} = "
            f"{int(bias[i])} is not a multiple of {step}; netx fixes bias_exp={_NETX_BIAS_EXP}")
    mant = bias // step
    lo, hi = profile.range_of("bias_mant")
    out = np.flatnonzero((mant < lo) | (mant > hi))
    if out.size:
        i = int(out[0])
        raise ValidationError(
            f"node '{pop.name}': bias[{i}]={int(bias[i])} needs netx bias mantissa "
            f"{int(mant[i])} (bias_exp {_NETX_BIAS_EXP}), outside the {profile.bias_bits}-bit "
            f"range {lo}..{hi}")
    return mant


def _neuron_field(pop: ir.LIFPopulation, param: str) -> np.ndarray:
    """A netx neuron field: an int64 scalar when every neuron shares the value, else the
    flat per-neuron int64 array (netx hands either to Lava's ``LIF`` as it is)."""
    single = pop.uniform(param)
    if single is not None:
        return np.int64(single)
    return np.asarray(getattr(pop, param), dtype=np.int64).reshape(-1)


# ---------------------------------------------------------------------------
# graph: Input [-> Flatten] -> (Dense -> LIF [+ self Dense]) x N
# ---------------------------------------------------------------------------
@dataclass
class _Stage:
    dense: ir.Dense
    pop: ir.LIFPopulation
    recurrent: Optional[ir.Dense] = None


def check_netx_structure(net: ir.Network) -> None:
    """Raise :class:`~neurohw.errors.ValidationError` (naming the node) unless ``net``
    has the layer structure netx holds: ``Input [-> Flatten] -> (Dense -> LIF
    [+ one self-recurrent Dense])+``.  Re-quantizing cannot fix a failure here
    (unlike a weight or bias netx cannot hold exactly: ``--target netx``)."""
    _chain(net)


def _chain(net: ir.Network) -> Tuple[ir.InputNode, List[_Stage]]:
    used = set()
    for name, node in net.nodes.items():
        if not isinstance(node, (ir.InputNode, ir.Dense, ir.LIFPopulation, ir.Flatten,
                                 ir.OutputNode)):
            raise ValidationError(
                f"node '{name}': {node.kind} is not supported by the netx export "
                f"(supported: Input -> (Dense -> LIF)+ chains)")
    inputs = net.of_type(ir.InputNode)
    if len(inputs) != 1:
        raise ValidationError(
            f"network has {len(inputs)} Input nodes; netx has exactly one input layer")
    (in_name, in_node), = inputs.items()
    used.add(in_name)
    stages: List[_Stage] = []
    cur = in_name
    while True:
        nxt = [s for s in net.successors(cur) if not isinstance(net.nodes[s], ir.OutputNode)]
        # follow Flatten nodes (pure reshapes); netx has no flatten of 1-D activity to do
        while len(nxt) == 1 and isinstance(net.nodes[nxt[0]], ir.Flatten):
            if cur != in_name:
                raise ValidationError(
                    f"node '{nxt[0]}': Flatten after a population is not supported by the "
                    f"netx export")
            used.add(nxt[0])
            cur = nxt[0]
            nxt = [s for s in net.successors(cur)
                   if not isinstance(net.nodes[s], ir.OutputNode)]
        if stages:
            pop = stages[-1].pop
            own = [s for s in nxt if isinstance(net.nodes[s], ir.Dense)
                   and net.successors(s) == [pop.name]]
            if len(own) > 1:
                raise ValidationError(
                    f"node '{pop.name}': {len(own)} self-recurrent Dense nodes "
                    f"({', '.join(own)}); netx has one recurrent matrix per layer")
            if own:
                stages[-1].recurrent = net.nodes[own[0]]  # type: ignore[assignment]
                used.add(own[0])
                nxt = [s for s in nxt if s != own[0]]
        if not nxt:
            break
        if len(nxt) > 1:
            raise ValidationError(
                f"node '{cur}': feeds {len(nxt)} nodes ({', '.join(nxt)}); netx layers form "
                f"a single chain")
        (d_name,) = nxt
        dense = net.nodes[d_name]
        if not isinstance(dense, ir.Dense):
            raise ValidationError(
                f"node '{d_name}': {dense.kind} after '{cur}'; netx layers are Dense followed "
                f"by a LIF population")
        targets = net.successors(d_name)
        if len(targets) != 1 or not isinstance(net.nodes[targets[0]], ir.LIFPopulation):
            raise ValidationError(
                f"node '{d_name}': must feed exactly one LIF population for the netx export, "
                f"feeds {targets}")
        pop = net.nodes[targets[0]]
        if pop.name in used:
            raise ValidationError(
                f"node '{d_name}': connects back to '{pop.name}'; netx only has "
                f"self-recurrence (a Dense from a population to itself)")
        used.update((d_name, pop.name))
        stages.append(_Stage(dense, pop))  # type: ignore[arg-type]
        cur = pop.name
    for name, node in net.nodes.items():
        if isinstance(node, ir.OutputNode):
            used.add(name)
            continue
        if name not in used:
            where = ", ".join(f"'{s}'" for s in net.predecessors(name)) or "nothing"
            raise ValidationError(
                f"node '{name}': {node.kind} (fed by {where}) is outside the single "
                f"Input -> (Dense -> LIF)+ chain netx can express")
    for st in stages:
        extra = [p for p in net.predecessors(st.pop.name)
                 if p not in (st.dense.name, getattr(st.recurrent, "name", None))]
        if extra:
            raise ValidationError(
                f"node '{st.pop.name}': also fed by '{extra[0]}'; a netx layer has one "
                f"input Dense (and one self-recurrent Dense)")
    if not stages:
        raise ValidationError("network has no Dense -> LIF layer; nothing for netx to run")
    return in_node, stages  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------
def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a core dependency
        raise MissingDependencyError("the netx export needs h5py: pip install h5py") from None
    return h5py


def _type_dataset(group, name: str, value: str) -> None:
    # netx NetDict reads 'type' as a byte string; lava-dl's own exporter writes (1,) S10
    group.create_dataset(name, (1,), "S10", [value.encode("ascii")])


def export_netx(net: ir.Network, path: PathLike) -> NetxExportReport:
    """Write ``net`` as a lava-dl netx HDF5 file at ``path`` (atomically).

    Parameters
    ----------
    net:
        A validated :class:`~neurohw.ir.Network` of the form
        ``Input [-> Flatten] -> (Dense -> LIF [+ self-recurrent Dense])+``,
        Output nodes anywhere.  Its profile must have Lava's fixed_pt datapath
        (:func:`neurohw.backends.lava.graph.check_lava_profile`: 12-bit decays,
        24-bit state, shifts of 6, 8-bit weights, ...), as ``loihi1``/``loihi2``.
        ``du``, ``dv`` and ``vth`` may differ from neuron to neuron.
    path:
        Target file (conventionally ``*.net`` or ``*.h5``); its directory
        must exist.  Written to a temporary file in the same directory and
        renamed, so ``path`` is never half-written.

    Returns
    -------
    NetxExportReport
        The layers written, what netx will derive for each, and the loader
        arguments (``report.load_kwargs``).

    Raises
    ------
    ValidationError
        If any part of ``net`` has no exact netx encoding (one line naming
        node, parameter, value and the allowed values); nothing is written.

    The written network, loaded with ``netx.hdf5.Network(net_config=path,
    **report.load_kwargs)`` and fed through its ``inp`` port by a Lava
    ``RingBuffer`` holding the same ``(n_in, T)`` spikes, gives at Monitor
    index ``t`` of ``net.layers[i].neuron.s_out`` exactly row ``t`` of the
    emulator's spikes for ``report.populations[i]``.
    """
    from ..fileio import atomic_write

    if not isinstance(net, ir.Network):
        raise ValidationError(f"export_netx: expected a neurohw Network, got {type(net).__name__}")
    from ..backends.lava.graph import check_lava_lif, check_lava_profile

    profile = net.profile
    check_lava_profile(profile)  # netx builds Lava's fixed_pt LIF and Dense
    in_node, stages = _chain(net)
    for st in stages:  # no refractory delay or v limits in Lava's fixed_pt LIF
        check_lava_lif(st.pop, profile)

    # encode everything first: refuse before writing
    plans = []
    notes: List[str] = []
    layers: List[NetxLayer] = [NetxLayer(0, "input", tuple(in_node.shape))]
    input_bits = 0
    for i, st in enumerate(stages, start=1):
        d, pop, rec = st.dense, st.pop, st.recurrent
        if i == 1:
            input_bits = int(d.num_message_bits)
        payload_max = (1 << input_bits) - 1 if (i == 1 and input_bits) else 1
        v = _integer_weights(d, profile)
        v_rec = _integer_weights(rec, profile) if rec is not None else None
        if rec is not None and not np.any(v_rec):
            notes.append(f"recurrent Dense '{rec.name}' has only zero effective weights; "
                         f"written as a plain 'dense' layer (exact: it adds nothing)")
            rec, v_rec = None, None
        if rec is not None:
            if rec.delay is not None and np.any(rec.delay):
                raise ValidationError(
                    f"node '{rec.name}': delay is set; netx has no delays on recurrent weights")
            if d.delay is not None and np.any(d.delay):
                raise ValidationError(
                    f"node '{d.name}': delay is set on a layer with recurrence "
                    f"('{rec.name}'); netx's RecurrentDense with delays drops the weight "
                    f"exponent and reuses the forward delays")
            names = f"nodes '{d.name}' + '{rec.name}' (netx optimizes them together)"
            wexp, nbits, sign, sbits = _encode_weights(np.hstack([v, v_rec]), names, payload_max,
                                                       split=v.shape[1])
        else:
            wexp, nbits, sign, sbits = _encode_weights(v, f"node '{d.name}'", payload_max)
        delay = None
        if d.delay is not None and np.any(d.delay):
            delay = np.asarray(d.delay, dtype=np.int64)
            if int(delay.max()) > _NETX_MAX_DELAY:
                raise ValidationError(
                    f"node '{d.name}': delay up to {int(delay.max())} steps; netx clamps "
                    f"delays to 0..{_NETX_MAX_DELAY}")
        bias = _encode_bias(pop, profile)
        kind = "dense_rec" if rec is not None else "dense"
        plans.append((kind, v, v_rec, delay, bias, pop))
        layers.append(NetxLayer(
            i, kind, (pop.size,), dense=d.name, recurrent=rec.name if rec is not None else None,
            population=pop.name, netx_weight_exponent=wexp, netx_num_weight_bits=nbits,
            netx_sign_mode=sign, weight_scale_bits=sbits, has_delay=delay is not None,
            has_bias=bias is not None))

    h5py = _h5py()

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["neurohw.format"] = NETX_FORMAT
            f.attrs["neurohw.version"] = NETX_VERSION
            f.attrs["neurohw.profile"] = profile.name
            f.attrs["neurohw.dt_s"] = float(net.dt_s)
            f.attrs["neurohw.input_message_bits"] = int(input_bits)
            top = f.create_group("layer")
            g = top.create_group("0")
            _type_dataset(g, "type", "input")
            g.create_dataset("shape", data=np.asarray(in_node.shape, dtype=np.int64))
            g.attrs["neurohw.node"] = in_node.name
            for lay, (kind, v, v_rec, delay, bias, pop) in zip(layers[1:], plans):
                g = top.create_group(str(lay.index))
                _type_dataset(g, "type", kind)
                g.create_dataset("shape", data=np.asarray([pop.size], dtype=np.int64))
                g.create_dataset("inFeatures", data=int(v.shape[1]))
                g.create_dataset("outFeatures", data=int(v.shape[0]))
                g.create_dataset("weight", data=v.astype(np.int32))
                if v_rec is not None:
                    g.create_dataset("weight_rec", data=v_rec.astype(np.int32))
                if delay is not None:
                    g.create_dataset("delay", data=delay.astype(np.int32))
                if bias is not None:
                    g.create_dataset("bias", data=bias.astype(np.int32))
                _type_dataset(g, "neuron/type", "CUBA")
                g.create_dataset("neuron/iDecay", data=_neuron_field(pop, "du") + 1)
                g.create_dataset("neuron/vDecay", data=_neuron_field(pop, "dv"))
                g.create_dataset("neuron/vThMant", data=_neuron_field(pop, "vth"))
                g.create_dataset("neuron/refDelay", data=np.int64(1))
                g.create_dataset("neuron/gradedSpike", data=np.bool_(False))
                g.attrs["neurohw.dense"] = lay.dense
                g.attrs["neurohw.population"] = lay.population
                if lay.recurrent:
                    g.attrs["neurohw.recurrent"] = lay.recurrent

    out = atomic_write(path, write)
    return NetxExportReport(path=Path(out), layers=tuple(layers), input_message_bits=input_bits,
                            output_population=stages[-1].pop.name, notes=tuple(notes))


def run_netx(path: PathLike, x: np.ndarray, report: "NetxExportReport") -> Dict[str, np.ndarray]:
    """Load ``path`` with the real ``netx.hdf5.Network`` and run it in Lava on ``x``.

    ``x`` is ``(T, n_in)`` integer spikes fed through a Lava ``RingBuffer``
    into the network's ``inp`` port; the run lasts ``T`` steps on
    ``Loihi2SimCfg(select_tag="fixed_pt")``.  Returns ``{population: (T, n)
    int8 spikes}`` keyed by the neurohw population names of ``report``, with
    the timing of ``neurohw emulate`` (row ``t`` = Monitor index ``t``).
    Needs lava-nc and lava-dl.
    """
    import warnings

    from ..backends.lava import import_lava

    import_lava()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from lava.lib.dl import netx
        except ImportError as exc:
            from ..errors import MissingDependencyError

            raise MissingDependencyError(f"running netx needs lava-dl ({exc})") from None
    from lava.proc.io.source import RingBuffer

    from ..backends.lava._builder import attach_monitors, run_fixed_pt

    x = np.asarray(x)
    T = int(x.shape[0])
    net = netx.hdf5.Network(net_config=str(path), **report.load_kwargs)
    src = RingBuffer(data=np.ascontiguousarray(x.T).astype(np.int32))
    src.s_out.connect(net.inp)
    neurons = {name: net.layers[i].neuron for i, name in enumerate(report.populations)}
    monitors = attach_monitors(neurons, ("spikes",), T)
    return {name: arr for (name, _), arr in run_fixed_pt(net, monitors, T).items()}
