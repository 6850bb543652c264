"""Quantized NIR: reading and writing integer networks as ordinary NIR graphs.

Contract (``docs/file-formats.md``): a quantized network is a NIR graph whose
float fields hold the dequantized approximation (any NIR backend can run it)
and whose exact integers live in ``metadata["neurohw"]``:

* graph: ``{"format": "neurohw.quantized", "version": 1, "profile": NAME,
  "dt": SECONDS}`` (plus ``"profile_spec"`` with every width for profiles
  other than the built-in ``loihi1``/``loihi2``);
* ``CubaLIF`` (or ``LIF``/``IF``/``CubaLI``/``LI`` when read): ``du``, ``dv``,
  ``vth``, ``bias_mant``, ``bias_exp``, each a scalar or per neuron; optional
  ``refract_delay`` (scalar or per neuron, default 0), ``vmin``/``vmax``
  (default: the profile's full range) and ``trace_impulse``/``trace_decay``/
  ``trace_mode`` (default: no trace), written only when not the default;
* ``Linear``/``Affine``/``Conv2d``: ``weight`` (mantissas as given to Lava),
  ``weight_exp``, ``num_weight_bits``; optional ``sign_mode`` (derived from
  the weights as Lava's ``Dense`` does when absent), ``num_message_bits``
  (default 0) and ``delay``.

The reader accepts every file the contract allows, whoever wrote it
(``docs/file-formats.md``, "What a reader accepts"): a population's shape
comes from the graph, numbers may be stored in any integer form.

``read(write(net))`` gives back the same integers, bit for bit.  A NIR graph
without the metadata is a float (unquantized) network:
:func:`network_from_nir` raises :class:`~neurohw.errors.UnquantizedError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import ir
from .errors import FileFormatError, UnquantizedError, ValidationError
from .fixedpoint import as_int_array, effective_weights
from .fileio import atomic_write
from .floatview import float_view_lif, float_view_weight
from .nirgraph import NEURON_TYPES, as_str, flatten_graph, flow_order, load_nir, meta_of, shape_of
from .profiles import PROFILES, HardwareProfile, get_profile
from .signmode import LAVA_SIGN_MODE_NAME

__all__ = [
    "FORMAT",
    "VERSION",
    "is_quantized",
    "network_to_nir",
    "network_from_nir",
    "write_network",
    "read_network",
]

FORMAT = "neurohw.quantized"
VERSION = 1
_BUILTIN = ("loihi1", "loihi2")

PathLike = Union[str, "os.PathLike[str]"]


def _nir():
    import nir  # required dependency; imported lazily to keep `import neurohw` light

    return nir


# ---------------------------------------------------------------------------
# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------
def _weighted_meta(proj: ir._Weighted) -> Dict[str, Any]:
    meta = {
        "weight": np.asarray(proj.weight, dtype=np.int32),
        "weight_exp": int(proj.weight_exp),
        "num_weight_bits": int(proj.num_weight_bits),
        "sign_mode": str(proj.sign_mode),
        "num_message_bits": int(proj.num_message_bits),
    }
    if isinstance(proj, ir.Dense) and proj.delay is not None:
        meta["delay"] = np.asarray(proj.delay, dtype=np.int32)
    return meta


SPARSE_FLOAT_LIMIT = 1 << 24
"""Largest ``n_out * n_in`` of a Sparse projection whose NIR ``Linear`` float weight is
written (as the dense dequantized matrix, float32); beyond it writing refuses."""


def _sparse_meta(proj: ir.Sparse) -> Dict[str, Any]:
    """The lossless CSR encoding of a Sparse projection (``docs/file-formats.md``)."""
    m = proj.weight
    meta = {
        "format": "csr",
        "shape": np.asarray(m.shape, dtype=np.int64),
        "indptr": np.asarray(m.indptr, dtype=np.int64),
        "indices": np.asarray(m.indices, dtype=np.int32),
        "data": np.asarray(m.data, dtype=np.int32),
        "weight_exp": int(proj.weight_exp),
        "num_weight_bits": int(proj.num_weight_bits),
        "sign_mode": str(proj.sign_mode),
        "num_message_bits": int(proj.num_message_bits),
    }
    if proj.delay is not None:
        meta["delay"] = np.asarray(proj.delay.data, dtype=np.int32)  # one per stored entry
    return meta


def _sparse_float_weight(proj: ir.Sparse, profile: HardwareProfile) -> np.ndarray:
    """The dense dequantized ``(n_out, n_in)`` float32 matrix NIR's ``Linear`` needs.

    NIR 1.0.8 has no sparse node and type-checks a ``Linear`` by its weight's
    shape, so the float field must be the full matrix; above
    :data:`SPARSE_FLOAT_LIMIT` entries no NIR reader could hold it, and writing
    refuses (the integers alone would not make a file other tools can load).
    """
    n_out, n_in = proj.weight.shape
    if n_out * n_in > SPARSE_FLOAT_LIMIT:
        raise ValidationError(
            f"node '{proj.name}': a {n_out}x{n_in} Sparse projection needs a dense "
            f"{n_out * n_in}-entry NIR Linear weight (NIR has no sparse node); at most "
            f"{SPARSE_FLOAT_LIMIT} entries are written to quantized NIR")
    vals = effective_weights(proj.weight.data, proj.sign_mode, proj.num_weight_bits,
                             profile.weight_bits).astype(np.float32)
    m = proj.weight.copy()
    m.data = vals * np.float32(2.0 ** proj.weight_exp)
    return np.asarray(m.toarray(), dtype=np.float32)


def _scalar_or_array(pop: ir.LIFPopulation, param: str):
    """``param`` of ``pop`` as a Python int when uniform, else an int32 array of ``pop.shape``."""
    value = pop.uniform(param)
    return int(value) if value is not None else np.asarray(getattr(pop, param), dtype=np.int32)


def _extra_neuron_meta(pop: ir.LIFPopulation) -> Dict[str, Any]:
    """The optional neuron fields (refractory delay, v limits, spike trace), written
    only where they differ from the defaults so plain files stay as before."""
    meta: Dict[str, Any] = {}
    if bool(np.any(pop.refract_delay != 0)):
        meta["refract_delay"] = _scalar_or_array(pop, "refract_delay")
    for p in ("vmin", "vmax"):
        if getattr(pop, p) is not None:
            meta[p] = int(getattr(pop, p))
    if pop.has_trace:
        meta.update(trace_impulse=int(pop.trace_impulse), trace_decay=int(pop.trace_decay),
                    trace_mode=pop.trace_mode)
    if getattr(pop, "is_elif", False):  # ELIF table (docs/neuron-models.md)
        meta.update(elif_lut=np.asarray(pop.elif_lut, dtype=np.int32),
                    elif_lut_lo=int(pop.elif_lut_lo), elif_lut_shift=int(pop.elif_lut_shift))
    return meta


def network_to_nir(net: ir.Network):
    """Build the quantized NIR graph of ``net`` (a :class:`nir.NIRGraph`)."""
    nir = _nir()
    nodes: Dict[str, Any] = {}
    for name, node in net.nodes.items():
        if isinstance(node, ir.InputNode):
            nodes[name] = nir.Input(input_type={"input": np.array(node.shape)})
        elif isinstance(node, ir.OutputNode):
            nodes[name] = nir.Output(output_type={"output": np.array(node.shape)})
        elif isinstance(node, ir.LIFPopulation):
            meta = {
                "model": "cuba_lif",
                # a scalar when every neuron shares the value (files stay as before),
                # else the per-neuron array
                **{p: _scalar_or_array(node, p) for p in ("du", "dv", "vth")},
                "bias_mant": np.asarray(node.bias_mant, dtype=np.int32),
                "bias_exp": np.asarray(node.bias_exp, dtype=np.int32),
                **_extra_neuron_meta(node),
            }
            nodes[name] = nir.CubaLIF(**float_view_lif(node, net.dt_s, net.profile),
                                      metadata={"neurohw": meta})
        elif isinstance(node, ir.Sparse):
            nodes[name] = nir.Linear(weight=_sparse_float_weight(node, net.profile),
                                     metadata={"neurohw": _sparse_meta(node)})
        elif isinstance(node, ir.Dense):
            nodes[name] = nir.Linear(weight=float_view_weight(node, net.profile),
                                     metadata={"neurohw": _weighted_meta(node)})
        elif isinstance(node, ir.Conv2d):
            w = float_view_weight(node, net.profile)
            nodes[name] = nir.Conv2d(
                input_shape=tuple(node.input_shape[1:]),
                weight=w,
                stride=np.array(node.stride),
                padding=np.array(node.padding),
                dilation=np.array(node.dilation),
                groups=int(node.groups),
                bias=np.zeros(w.shape[0]),
                metadata={"neurohw": _weighted_meta(node)},
            )
        elif isinstance(node, ir.SumPool2d):
            nodes[name] = nir.SumPool2d(
                kernel_size=np.array(node.kernel_size),
                stride=np.array(node.stride),
                padding=np.array(node.padding),
            )
        elif isinstance(node, ir.Flatten):
            nodes[name] = nir.Flatten(
                input_type={"input": np.array(node.input_shape)},
                start_dim=int(node.start_dim),
                end_dim=int(node.end_dim),
            )
        else:  # pragma: no cover - every IR node type is listed above
            raise ValidationError(f"node '{name}': cannot export {node.kind} to NIR")
    gmeta: Dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "profile": net.profile.name,
        "dt": float(net.dt_s),
    }
    if net.profile.name not in _BUILTIN or net.profile != PROFILES[net.profile.name]:
        spec = net.profile.to_dict()
        spec.pop("energy_pj")
        spec.pop("latency_ns")
        gmeta["profile_spec"] = spec
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in net.edges],
                        metadata={"neurohw": gmeta}, type_check=False)


def write_network(net: ir.Network, path: PathLike) -> Path:
    """Write ``net`` as quantized NIR (HDF5) to ``path``, atomically."""
    graph = network_to_nir(net)
    nir = _nir()
    return atomic_write(path, lambda tmp: nir.write(tmp, graph))


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------
# What a reader accepts is stated in docs/file-formats.md ("What a reader
# accepts"); the rules below implement it one for one.

_NEURON_FLOAT_FIELDS = ("tau_syn", "tau_mem", "tau", "r", "w_in", "v_leak", "v_threshold",
                        "v_reset")
_UNSUPPORTED_NEURON_KEYS = ("refractory_period", "refractory_steps", "reset_mode")


class _Bad(ValidationError):
    """A malformed field; :func:`network_from_nir` prefixes the file name."""


def is_quantized(graph) -> bool:
    """True when a NIR graph carries neurohw's quantized-network metadata."""
    meta = meta_of(graph).get("neurohw")
    return isinstance(meta, dict) and as_str(meta.get("format")) == FORMAT


def _is_text(value) -> bool:
    if isinstance(value, (str, bytes)):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind in "SUa"


def _numbers(value, where: str, param: str) -> np.ndarray:
    """``value`` as an ``np.int64`` array (0-d for a scalar), checked exactly.

    Accepts Python and numpy integers, 0-d and n-d integer arrays of any
    integer dtype, lists, and floats that are exactly integral.  Refuses
    strings, booleans, complex numbers, NaN/inf, fractions and values
    beyond 64 bits, naming ``param``, the first bad element and its value.
    """
    if value is None:
        raise _Bad(f"{where}: {param} is empty (None); expected an integer")
    if isinstance(value, dict):
        raise _Bad(f"{where}: {param} is a group of fields; expected an integer")
    if _is_text(value):
        text = as_str(value) if as_str(value) is not None else str(value)
        raise _Bad(f"{where}: {param}={text!r} is a string; expected an integer")
    try:
        arr = np.asarray(value)
    except Exception:  # ragged lists and the like
        raise _Bad(f"{where}: {param}={value!r} is not a number or an array of numbers") from None
    kind = arr.dtype.kind
    if kind in "SUa":
        raise _Bad(f"{where}: {param} holds strings; expected integers")
    if kind == "b":
        raise _Bad(f"{where}: {param}={value!r} is a boolean; expected an integer")
    if kind == "c":
        raise _Bad(f"{where}: {param} is complex; expected integers")
    if kind not in "iuf":
        raise _Bad(f"{where}: {param}={value!r} is not a number (dtype {arr.dtype})")
    if kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise _Bad(f"{where}: {param} has values beyond the 64-bit integer range")
    try:
        return as_int_array(arr, where, param, dtype=np.int64)
    except ValidationError as exc:
        raise _Bad(str(exc)) from None


def _scalar(value, where: str, param: str) -> int:
    """One integer: a scalar, a 0-d array or a one-element array."""
    arr = _numbers(value, where, param)
    if arr.size != 1:
        raise _Bad(f"{where}: {param} has shape {arr.shape}; expected a single integer")
    return int(arr.reshape(()))


def _per_neuron(arr: np.ndarray, shape: Tuple[int, ...], where: str, param: str,
                origin: str) -> np.ndarray:
    """``arr`` as an array of ``shape``: a scalar (or one element) is broadcast,
    an array of exactly ``shape`` or its flat ``(n,)`` form is taken as is;
    anything else is refused naming the shapes (``origin`` says where ``shape``
    came from)."""
    n = int(np.prod(shape))
    if arr.size == 1:
        return np.full(shape, int(arr.reshape(-1)[0]), dtype=np.int64)
    if arr.shape == tuple(shape) or arr.shape == (n,):
        return arr.reshape(shape)
    raise _Bad(f"{where}: {param} has shape {arr.shape}; expected {tuple(shape)} "
               f"({origin}) or a scalar")


def _range_check(arr: np.ndarray, where: str, param: str, profile: HardwareProfile,
                 note: str = "") -> None:
    lo, hi = profile.range_of(param)
    what = profile.describe_range(param) + note
    try:
        as_int_array(arr, where, param, lo, hi, what, dtype=np.int64)
    except ValidationError as exc:
        raise _Bad(str(exc)) from None


def _profile_from_meta(meta: Mapping[str, Any], where: str) -> HardwareProfile:
    name = as_str(meta.get("profile"))
    if name is None:
        if "profile" in meta:
            raise FileFormatError(f"{where}: metadata neurohw.profile={meta['profile']!r} "
                                  f"is not a string naming a profile")
        raise FileFormatError(f"{where}: metadata neurohw.profile is missing")
    spec = meta.get("profile_spec")
    if spec is not None and not isinstance(spec, dict):
        raise FileFormatError(f"{where}: metadata neurohw.profile_spec is not a group of fields")
    if isinstance(spec, dict):
        spec = {k: (as_str(v) if as_str(v) is not None else v) for k, v in spec.items()}
        spec.setdefault("name", name)
        try:
            return HardwareProfile.from_dict(spec)
        except (ValidationError, TypeError, ValueError) as exc:
            raise FileFormatError(f"{where}: bad profile_spec: {exc}") from None
    try:
        return get_profile(name)
    except ValidationError as exc:
        raise FileFormatError(f"{where}: {exc}") from None


def _need(meta: Mapping[str, Any], key: str, where: str):
    if key not in meta:
        raise _Bad(f"{where}: metadata neurohw.{key} is missing")
    return meta[key]


def _graph_header(graph, source: str):
    """Check the graph's ``metadata["neurohw"]``; return ``(profile, dt_s)``."""
    if not is_quantized(graph):
        raise UnquantizedError(
            f"{source}: unquantized NIR graph (no neurohw metadata); "
            f"run 'neurohw quantize' first"
        )
    gmeta = graph.metadata["neurohw"]
    if "version" not in gmeta:
        raise FileFormatError(f"{source}: metadata neurohw.version is missing "
                              f"(this neurohw reads version {VERSION})")
    version = gmeta["version"]
    try:
        ok = _scalar(version, source, "version") == VERSION
    except _Bad:
        ok = False
    if not ok:
        shown = as_str(version) if as_str(version) is not None else version
        raise FileFormatError(f"{source}: unsupported neurohw format version {shown!r} "
                              f"(this neurohw reads version {VERSION})")
    profile = _profile_from_meta(gmeta, source)
    if "dt" not in gmeta:
        raise FileFormatError(f"{source}: metadata neurohw.dt is missing (seconds per step)")
    dt = gmeta["dt"]
    try:
        if _is_text(dt) or isinstance(dt, dict) or np.asarray(dt).dtype.kind not in "iuf":
            raise TypeError
        dt_s = float(np.asarray(dt, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise FileFormatError(f"{source}: metadata neurohw.dt={dt!r} is not a number "
                              f"(seconds per step)") from None
    if not np.isfinite(dt_s) or dt_s <= 0:
        raise FileFormatError(f"{source}: metadata neurohw.dt={dt_s!r} must be a positive, "
                              f"finite number of seconds per step")
    return profile, dt_s


def network_from_nir(graph, source: str = "graph") -> ir.Network:
    """Rebuild the integer :class:`~neurohw.ir.Network` from a quantized NIR graph.

    Accepts every file the contract in ``docs/file-formats.md`` allows
    (optional ``sign_mode``/``num_message_bits``/``delay``, scalar or
    per-neuron neuron integers, numbers stored as numpy scalars, 0-d arrays,
    lists or exactly integral floats).  ``source`` (a file name) prefixes
    every error message.  Raises :class:`UnquantizedError` for a float graph
    and :class:`FileFormatError` (one line naming node, parameter, value and
    allowed range) for anything malformed or out of range.
    """
    nir = _nir()
    profile, dt_s = _graph_header(graph, source)
    flat_nodes, edges = flatten_graph(graph)
    preds: Dict[str, List[str]] = {}
    succs: Dict[str, List[str]] = {}
    for s, d in edges:
        preds.setdefault(d, []).append(s)
        succs.setdefault(s, []).append(d)
    built: Dict[str, ir.Node] = {}
    pending = dict(flat_nodes)
    ctx = _Context(built, preds, succs, profile, nir)
    try:
        # nodes whose shape comes from a neighbour are built once that neighbour exists;
        # the last pass lets a population fall back to the node it feeds
        last_resort = False
        while pending:
            progressed = False
            for name in list(pending):
                node = _convert(name, pending[name], ctx, last_resort)
                if node is not None:
                    built[name] = node
                    del pending[name]
                    progressed = True
            if progressed:
                last_resort = False
            elif not last_resort:
                last_resort = True
            else:
                name = next(iter(pending))
                raise _Bad(f"node '{name}': cannot determine its shape (no float field, "
                           f"edge or input_type gives it)")
        ordered = {k: built[k] for k in flow_order(flat_nodes, edges)}
        return ir.Network(nodes=ordered, edges=tuple(edges), profile=profile, dt_s=dt_s)
    except ValidationError as exc:
        raise FileFormatError(f"{source}: {exc}") from None


class _Context:
    """What :func:`_convert` needs to know about the graph being read."""

    def __init__(self, built, preds, succs, profile, nir):
        self.built, self.preds, self.succs = built, preds, succs
        self.profile, self.nir = profile, nir

    def pred_shape(self, name: str) -> Optional[Tuple[int, ...]]:
        """Output shape of the first already-built node feeding ``name``."""
        for p in self.preds.get(name, []):
            if p in self.built:
                return tuple(self.built[p].out_shape)
        return None

    def all_preds_built(self, name: str) -> bool:
        return all(p in self.built for p in self.preds.get(name, []))

    def succ_shape(self, name: str) -> Optional[Tuple[int, ...]]:
        """Input shape of the first already-built node ``name`` feeds."""
        for s in self.succs.get(name, []):
            if s in self.built:
                return tuple(self.built[s].in_shape)
        return None


def _float_field_shape(node, where: str) -> Optional[Tuple[str, Tuple[int, ...]]]:
    """``(field, shape)`` of the per-neuron float fields of a NIR neuron node
    (those with more than one element), or ``None`` when all are scalars.
    Fields of different sizes are refused."""
    found: List[Tuple[str, Tuple[int, ...]]] = []
    for f in _NEURON_FLOAT_FIELDS:
        value = getattr(node, f, None)
        if value is None:
            continue
        try:
            arr = np.asarray(value)
        except Exception:
            continue
        if arr.dtype.kind in "iuf" and arr.size > 1:
            found.append((f, tuple(int(s) for s in arr.shape)))
    if not found:
        return None
    sizes = {int(np.prod(s)) for _, s in found}
    if len(sizes) > 1:
        desc = ", ".join(f"{f} {s}" for f, s in found)
        raise _Bad(f"{where}: float fields disagree on the number of neurons ({desc})")
    return max(found, key=lambda fs: len(fs[1]))  # the most informative (e.g. (C, H, W))


def _population_shape(name, node, ctx: _Context, where: str, last_resort: bool):
    """The population's shape and where it came from, or ``None`` to wait.

    From the projection feeding it (its output shape), checked against the
    NIR node's per-neuron float fields; else from those fields; else (last
    resort) from the node it feeds.  Never from an integer metadata field.
    """
    fields = _float_field_shape(node, where)
    if ctx.preds.get(name) and ctx.all_preds_built(name):
        shape = ctx.pred_shape(name)
        origin = f"the output of '{ctx.preds[name][0]}'"
        if fields is not None and int(np.prod(fields[1])) != int(np.prod(shape)):
            raise _Bad(f"{where}: float field {fields[0]} has shape {fields[1]}; expected "
                       f"{shape} ({origin})")
        return shape, origin
    if fields is not None and (last_resort or not ctx.preds.get(name)):
        return fields[1], f"its float field {fields[0]}"
    if last_resort:
        shape = ctx.pred_shape(name)
        if shape is not None:
            return shape, f"the output of '{ctx.preds[name][0]}'"
        shape = ctx.succ_shape(name)
        if shape is not None:
            return shape, "the input of the node it feeds"
    return None


def _convert_population(name, node, meta, ctx: _Context, where, last_resort):
    found = _population_shape(name, node, ctx, where, last_resort)
    if found is None:
        return None
    shape, origin = found
    model = meta.get("model")
    if model is not None and as_str(model) != "cuba_lif":
        raise _Bad(f"{where}: model={as_str(model) or model!r} is not supported "
                   f"(neurohw reads 'cuba_lif', Lava's LIF)")
    for key in _UNSUPPORTED_NEURON_KEYS:
        if key in meta:
            raise _Bad(f"{where}: {key} is not supported (neurohw models Lava's LIF without "
                       f"refractory period or reset modes)")
    values = {}
    for p in ("du", "dv", "vth", "bias_mant", "bias_exp"):
        raw = _numbers(_need(meta, p, where), where, p)
        arr = _per_neuron(raw, shape, where, p, origin)
        _range_check(raw, where, p, ctx.profile)  # element indices as stored in the file
        first = int(arr.reshape(-1)[0])
        # uniform values go in as one int (works with scalar-only and per-neuron IRs alike)
        values[p] = first if bool(np.all(arr == first)) else arr.astype(np.int32)
    # optional (issue 12): refractory delay (scalar or per neuron, default 0), v limits
    # (default: the profile's full range), spike trace (default: none)
    if "refract_delay" in meta:
        raw = _numbers(meta["refract_delay"], where, "refract_delay")
        arr = _per_neuron(raw, shape, where, "refract_delay", origin)
        _range_check(raw, where, "refract_delay", ctx.profile)
        first = int(arr.reshape(-1)[0])
        values["refract_delay"] = first if bool(np.all(arr == first)) else arr.astype(np.int32)
    for p in ("vmin", "vmax", "trace_impulse", "trace_decay"):
        if p in meta:
            values[p] = _scalar(meta[p], where, p)
            _range_check(np.asarray(values[p]), where, p, ctx.profile)
    if "trace_mode" in meta:
        mode = as_str(meta["trace_mode"])
        if mode not in ir.TRACE_MODES:
            raise _Bad(f"{where}: trace_mode={meta['trace_mode']!r} is not one of "
                       f"{', '.join(ir.TRACE_MODES)}")
        values["trace_mode"] = mode
    if "elif_lut" in meta:  # ELIF table (docs/neuron-models.md); the IR checks the ranges
        values["elif_lut"] = _numbers(meta["elif_lut"], where, "elif_lut").reshape(-1)
        for p in ("elif_lut_lo", "elif_lut_shift"):
            values[p] = _scalar(_need(meta, p, where), where, p)
    return ir.LIFPopulation(name, shape=shape, **values)


def _sign_mode(meta, weight: np.ndarray, where: str) -> Tuple[str, bool]:
    """``(sign_mode, derived)``: as given, or derived from the weights as Lava's
    ``determine_sign_mode`` does (min >= 0: excitatory, so all-zero weights
    are excitatory; max <= 0: inhibitory; else mixed)."""
    raw = meta.get("sign_mode")
    if raw is None:
        if weight.size == 0:
            raise _Bad(f"{where}: weight is empty")
        if int(weight.min()) >= 0:
            return "excitatory", True
        if int(weight.max()) <= 0:
            return "inhibitory", True
        return "mixed", True
    text = as_str(raw)
    if text is not None:
        mode = text.strip().lower()
        if mode in ir.SIGN_MODES:
            return mode, False
        raise _Bad(f"{where}: sign_mode={text!r} is not one of {', '.join(ir.SIGN_MODES)} "
                   f"(or Lava's SignMode values 1, 2, 3; omit it to derive it from the "
                   f"weights as Lava does)")
    code = _scalar(raw, where, "sign_mode")
    if code not in LAVA_SIGN_MODE_NAME:
        codes = ", ".join(f"{c} {n}" for c, n in sorted(LAVA_SIGN_MODE_NAME.items()))
        raise _Bad(f"{where}: sign_mode={code} is not a Lava SignMode value ({codes})")
    return LAVA_SIGN_MODE_NAME[code], False


def _zero_bias(node, where: str, tname: str) -> None:
    bias = getattr(node, "bias", None)
    if bias is None:
        return
    arr = np.asarray(bias)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        return
    if not np.all(np.isfinite(arr)) or np.any(arr != 0):
        bad = arr.reshape(-1)[np.flatnonzero(~np.isfinite(arr.reshape(-1)) | (arr.reshape(-1) != 0))[0]]
        raise _Bad(f"{where}: {tname} bias has a non-zero element ({float(bad)!r}); a quantized "
                   f"projection has no bias (put it in the neurons' bias_mant/bias_exp)")


def _weighted_common(node, meta, ctx: _Context, where: str, tname: str, ndim: int):
    weight = _numbers(_need(meta, "weight", where), where, "weight")
    if weight.ndim != ndim:
        raise _Bad(f"{where}: weight has shape {weight.shape}; a {tname} needs a "
                   f"{ndim}-D weight")
    nir_w = getattr(node, "weight", None)
    if nir_w is not None:
        nir_shape = tuple(np.shape(nir_w))
        if nir_shape != weight.shape:
            raise _Bad(f"{where}: weight has shape {weight.shape}; expected {nir_shape} "
                       f"(the shape of the node's NIR weight)")
    _zero_bias(node, where, tname)
    mode, derived = _sign_mode(meta, weight, where)
    lo, hi = ctx.profile.weight_range(mode)
    what = f"{ctx.profile.weight_bits}-bit {mode} weight mantissa"
    if derived:
        what += "; sign_mode not given, derived from the weights as Lava's Dense does"
    try:
        as_int_array(weight, where, "weight", lo, hi, what, dtype=np.int64)
    except ValidationError as exc:
        raise _Bad(str(exc)) from None
    scalars = {}
    for p, default in (("weight_exp", None), ("num_weight_bits", None), ("num_message_bits", 0)):
        raw = _need(meta, p, where) if default is None else meta.get(p, default)
        scalars[p] = _scalar(raw, where, p)
        _range_check(np.asarray(scalars[p]), where, p, ctx.profile)
    return dict(weight=weight.astype(np.int32), sign_mode=mode, **scalars)


def _convert(name, node, ctx: _Context, last_resort: bool = False) -> Optional[ir.Node]:
    where = f"node '{name}'"
    nir = ctx.nir
    meta = meta_of(node).get("neurohw")
    tname = type(node).__name__

    if isinstance(node, nir.Input):
        shape = shape_of(node, "input_type") or (ctx.succ_shape(name) if last_resort else None)
        return None if shape is None else ir.InputNode(name, shape)
    if isinstance(node, nir.Output):
        shape = shape_of(node, "output_type") or ctx.pred_shape(name)
        return None if shape is None else ir.OutputNode(name, shape)
    if tname in NEURON_TYPES:
        if not isinstance(meta, dict):
            raise _Bad(f"{where}: {tname} has no neurohw metadata (not quantized)")
        return _convert_population(name, node, meta, ctx, where, last_resort)
    if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
        if not isinstance(meta, dict):
            raise _Bad(f"{where}: {tname} has no neurohw metadata (not quantized)")
        if as_str(meta.get("format")) == "csr":
            return _convert_sparse(name, node, meta, ctx, where, tname)
        is_conv = isinstance(node, nir.Conv2d)
        common = _weighted_common(node, meta, ctx, where, tname, 4 if is_conv else 2)
        delay = meta.get("delay")
        if is_conv:
            if delay is not None and np.any(_numbers(delay, where, "delay")):
                raise _Bad(f"{where}: delay is set on a Conv2d; Lava's Conv has no delays")
            w = common["weight"]
            shape = ctx.pred_shape(name)
            if shape is None:
                hw = np.asarray(node.input_shape).reshape(-1) if node.input_shape is not None else None
                if hw is None or hw.size != 2:
                    return None
                shape = (int(w.shape[1]) * int(node.groups), int(hw[0]), int(hw[1]))
            padding = node.padding
            if isinstance(padding, str):
                raise _Bad(f"{where}: padding={padding!r}; quantized Conv2d needs explicit integers")
            return ir.Conv2d(name, input_shape=shape, stride=node.stride, padding=padding,
                             dilation=node.dilation, groups=node.groups, **common)
        if delay is not None:
            d = _numbers(delay, where, "delay")
            shape = common["weight"].shape
            if d.size == 1:
                d = np.full(shape, int(d.reshape(-1)[0]), dtype=np.int64)
            elif d.shape != shape:
                raise _Bad(f"{where}: delay has shape {d.shape}; expected {shape} "
                           f"(the weight's) or a scalar")
            _range_check(d, where, "delay", ctx.profile)
            delay = d.astype(np.int32)
        return ir.Dense(name, delay=delay, **common)
    if isinstance(node, nir.SumPool2d):
        shape = ctx.pred_shape(name) or shape_of(node, "input_type")
        if shape is None:
            return None
        return ir.SumPool2d(name, input_shape=shape, kernel_size=node.kernel_size,
                            stride=node.stride, padding=node.padding)
    if isinstance(node, nir.Flatten):
        shape = shape_of(node, "input_type") or ctx.pred_shape(name)
        if shape is None:
            return None
        return ir.Flatten(name, input_shape=shape, start_dim=node.start_dim, end_dim=node.end_dim)
    raise _Bad(
        f"{where}: NIR node type {tname} is not supported in a quantized network "
        f"(supported: Input, Output, CubaLIF/LIF/IF/CubaLI/LI, Linear/Affine, Conv2d, SumPool2d, "
        f"Flatten)"
    )


def _convert_sparse(name, node, meta, ctx: "_Context", where: str, tname: str) -> ir.Sparse:
    """A ``Linear``/``Affine`` with ``format: "csr"`` metadata: an :class:`ir.Sparse`.

    The CSR arrays are checked for structure (lengths, monotone ``indptr``,
    column indices in range and sorted without repeats within a row) before the
    matrix is made; values are checked against the profile by the IR (the error
    names the ``(row, column)`` element).
    """
    import scipy.sparse as sp

    if tname not in ("Linear", "Affine"):
        raise _Bad(f"{where}: format 'csr' is for Linear/Affine nodes, not {tname}")
    shape = _numbers(_need(meta, "shape", where), where, "shape").reshape(-1)
    if shape.size != 2 or shape.min() < 1:
        raise _Bad(f"{where}: shape={shape.tolist()}; expected [n_out, n_in], both >= 1")
    n_out, n_in = int(shape[0]), int(shape[1])
    nir_w = getattr(node, "weight", None)
    if nir_w is not None and tuple(np.shape(nir_w)) != (n_out, n_in):
        raise _Bad(f"{where}: shape=({n_out}, {n_in}) differs from the node's NIR weight "
                   f"{tuple(np.shape(nir_w))}")
    _zero_bias(node, where, tname)
    indptr = _numbers(_need(meta, "indptr", where), where, "indptr").reshape(-1)
    indices = _numbers(_need(meta, "indices", where), where, "indices").reshape(-1)
    data = _numbers(_need(meta, "data", where), where, "data").reshape(-1)
    if indptr.size != n_out + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise _Bad(f"{where}: indptr must be {n_out + 1} non-decreasing offsets from 0 "
                   f"(got {indptr.size} values)")
    nnz = int(indptr[-1])
    if indices.size != nnz or data.size != nnz:
        raise _Bad(f"{where}: indptr ends at {nnz} but there are {indices.size} indices and "
                   f"{data.size} data values")
    if nnz and (indices.min() < 0 or indices.max() >= n_in):
        k = int(np.flatnonzero((indices < 0) | (indices >= n_in))[0])
        raise _Bad(f"{where}: indices[{k}]={int(indices[k])} outside [0, {n_in - 1}]")
    rows = np.repeat(np.arange(n_out), np.diff(indptr))
    same_row = rows[1:] == rows[:-1]
    if np.any(same_row & (indices[1:] <= indices[:-1])):
        k = int(np.flatnonzero(same_row & (indices[1:] <= indices[:-1]))[0]) + 1
        raise _Bad(f"{where}: indices of row {int(rows[k])} are not strictly increasing "
                   f"(indices[{k}]={int(indices[k])})")
    probe = data if nnz == n_out * n_in else np.append(data, 0)  # implicit zeros count
    mode, _ = _sign_mode(meta, probe, where)
    scalars = {}
    for p, default in (("weight_exp", None), ("num_weight_bits", None), ("num_message_bits", 0)):
        raw = _need(meta, p, where) if default is None else meta.get(p, default)
        scalars[p] = _scalar(raw, where, p)
        _range_check(np.asarray(scalars[p]), where, p, ctx.profile)
    delay = None
    if meta.get("delay") is not None:
        d = _numbers(meta["delay"], where, "delay").reshape(-1)
        if d.size == 1:
            d = np.full(nnz, int(d[0]), np.int64)
        elif d.size != nnz:
            raise _Bad(f"{where}: delay has {d.size} values; expected {nnz} (one per stored "
                       f"weight) or a scalar")
        delay = sp.csr_matrix((d, indices, indptr), shape=(n_out, n_in))
    weight = sp.csr_matrix((data, indices, indptr), shape=(n_out, n_in))
    node_ir = ir.Sparse(name, weight=weight, delay=delay, sign_mode=mode, **scalars)
    node_ir.check(ctx.profile)
    return node_ir


def read_network(path: PathLike) -> ir.Network:
    """Read a quantized NIR file into an integer :class:`~neurohw.ir.Network`.

    Every failure is a one-line :class:`~neurohw.errors.FileFormatError`
    naming the file (and node, parameter, value and range where they apply).
    """
    graph = load_nir(path, infer_types=False)  # exactly as stored: no added nodes
    return network_from_nir(graph, source=str(path))
