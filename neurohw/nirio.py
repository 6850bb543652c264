"""Quantized NIR: reading and writing integer networks as ordinary NIR graphs.

Contract (``docs/file-formats.md``): a quantized network is a NIR graph whose
float fields hold the dequantized approximation (any NIR backend can run it)
and whose exact integers live in ``metadata["neurohw"]``:

* graph: ``{"format": "neurohw.quantized", "version": 1, "profile": NAME,
  "dt": SECONDS}`` (plus ``"profile_spec"`` with every width for profiles
  other than the built-in ``loihi1``/``loihi2``);
* ``CubaLIF`` (or ``LIF``/``IF``/``CubaLI``/``LI`` when read): ``du``, ``dv``,
  ``vth``, ``bias_mant``, ``bias_exp``;
* ``Linear``/``Affine``/``Conv2d``: ``weight`` (mantissas as given to Lava),
  ``weight_exp``, ``num_weight_bits``, ``sign_mode``, ``num_message_bits`` and
  ``delay`` where used.

``read(write(net))`` gives back the same integers, bit for bit.  A NIR graph
without the metadata is a float (unquantized) network:
:func:`network_from_nir` raises :class:`~neurohw.errors.UnquantizedError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np

from . import ir
from .errors import FileFormatError, UnquantizedError, ValidationError
from .fileio import atomic_write
from .floatview import float_view_lif, float_view_weight
from .nirgraph import NEURON_TYPES, as_str, flatten_graph, flow_order, load_nir, meta_of, shape_of
from .profiles import PROFILES, HardwareProfile, get_profile

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


def _scalar_or_array(pop: ir.LIFPopulation, param: str):
    """``param`` of ``pop`` as a Python int when uniform, else an int32 array of ``pop.shape``."""
    value = pop.uniform(param)
    return int(value) if value is not None else np.asarray(getattr(pop, param), dtype=np.int32)


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
            }
            nodes[name] = nir.CubaLIF(**float_view_lif(node, net.dt_s, net.profile),
                                      metadata={"neurohw": meta})
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
def is_quantized(graph) -> bool:
    """True when a NIR graph carries neurohw's quantized-network metadata."""
    meta = meta_of(graph).get("neurohw")
    return isinstance(meta, dict) and as_str(meta.get("format")) == FORMAT


def _profile_from_meta(meta: Mapping[str, Any], where: str) -> HardwareProfile:
    name = as_str(meta.get("profile"))
    if name is None:
        raise FileFormatError(f"{where}: metadata neurohw.profile is missing")
    spec = meta.get("profile_spec")
    if isinstance(spec, dict):
        spec = {k: (as_str(v) if as_str(v) is not None else v) for k, v in spec.items()}
        spec.setdefault("name", name)
        try:
            return HardwareProfile.from_dict(spec)
        except ValidationError as exc:
            raise FileFormatError(f"{where}: bad profile_spec: {exc}") from None
    try:
        return get_profile(name)
    except ValidationError as exc:
        raise FileFormatError(f"{where}: {exc}") from None


def _need(meta: Mapping[str, Any], key: str, where: str):
    if key not in meta:
        raise FileFormatError(f"{where}: metadata neurohw.{key} is missing")
    return meta[key]


def network_from_nir(graph, source: str = "graph") -> ir.Network:
    """Rebuild the integer :class:`~neurohw.ir.Network` from a quantized NIR graph.

    ``source`` (a file name) prefixes every error message.  Raises
    :class:`UnquantizedError` for a float graph and :class:`FileFormatError`
    (with node and parameter) for anything malformed or out of range.
    """
    nir = _nir()
    if not is_quantized(graph):
        raise UnquantizedError(
            f"{source}: unquantized NIR graph (no neurohw metadata); "
            f"run 'neurohw quantize' first"
        )
    gmeta = graph.metadata["neurohw"]
    version = gmeta.get("version")
    if version is None or int(version) != VERSION:
        raise FileFormatError(f"{source}: unsupported neurohw format version {version!r} "
                              f"(this neurohw reads version {VERSION})")
    profile = _profile_from_meta(gmeta, source)
    try:
        dt_s = float(_need(gmeta, "dt", source))
    except (TypeError, ValueError):
        raise FileFormatError(f"{source}: metadata neurohw.dt is not a number") from None
    flat_nodes, edges = flatten_graph(graph)
    preds: Dict[str, List[str]] = {}
    for s, d in edges:
        preds.setdefault(d, []).append(s)
    built: Dict[str, ir.Node] = {}
    pending = dict(flat_nodes)
    try:
        # nodes whose input shape comes from a predecessor are built once it exists
        while pending:
            progressed = False
            for name in list(pending):
                node = _convert(name, pending[name], built, preds, nir, source)
                if node is not None:
                    built[name] = node
                    del pending[name]
                    progressed = True
            if not progressed:
                name = next(iter(pending))
                raise FileFormatError(f"{source}: node '{name}': cannot determine its input shape")
        ordered = {k: built[k] for k in flow_order(flat_nodes, edges)}
        return ir.Network(nodes=ordered, edges=tuple(edges), profile=profile, dt_s=dt_s)
    except ValidationError as exc:
        raise FileFormatError(f"{source}: {exc}") from None


def _convert(name, node, built, preds, nir, source) -> Optional[ir.Node]:
    where = f"{source}: node '{name}'"
    meta = meta_of(node).get("neurohw")
    tname = type(node).__name__

    def pred_shape():
        ps = preds.get(name, [])
        if len(ps) == 1 and ps[0] in built:
            return built[ps[0]].out_shape
        return None

    if isinstance(node, nir.Input):
        return ir.InputNode(name, shape_of(node, "input_type") or (1,))
    if isinstance(node, nir.Output):
        shape = shape_of(node, "output_type") or pred_shape()
        return None if shape is None else ir.OutputNode(name, shape)
    if tname in NEURON_TYPES:
        if not isinstance(meta, dict):
            raise FileFormatError(f"{where}: {tname} has no neurohw metadata (not quantized)")
        shape = np.asarray(_need(meta, "bias_mant", where)).shape or (1,)
        return ir.LIFPopulation(
            name,
            shape=shape,
            du=_need(meta, "du", where),
            dv=_need(meta, "dv", where),
            vth=_need(meta, "vth", where),
            bias_mant=_need(meta, "bias_mant", where),
            bias_exp=_need(meta, "bias_exp", where),
        )
    if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
        if not isinstance(meta, dict):
            raise FileFormatError(f"{where}: {tname} has no neurohw metadata (not quantized)")
        common = dict(
            weight=_need(meta, "weight", where),
            weight_exp=_need(meta, "weight_exp", where),
            num_weight_bits=_need(meta, "num_weight_bits", where),
            sign_mode=as_str(_need(meta, "sign_mode", where)),
            num_message_bits=meta.get("num_message_bits", 0),
        )
        if isinstance(node, nir.Conv2d):
            w = np.asarray(common["weight"])
            shape = pred_shape()
            if shape is None:
                hw = np.asarray(node.input_shape).reshape(-1) if node.input_shape is not None else None
                if hw is None or hw.size != 2 or w.ndim != 4:
                    return None
                shape = (int(w.shape[1]) * int(node.groups), int(hw[0]), int(hw[1]))
            padding = node.padding
            if isinstance(padding, str):
                raise FileFormatError(f"{where}: padding={padding!r}; quantized Conv2d needs explicit integers")
            return ir.Conv2d(name, input_shape=shape, stride=node.stride, padding=padding,
                             dilation=node.dilation, groups=node.groups, **common)
        delay = meta.get("delay")
        return ir.Dense(name, delay=delay, **common)
    if isinstance(node, nir.SumPool2d):
        shape = pred_shape() or shape_of(node, "input_type")
        if shape is None:
            return None
        return ir.SumPool2d(name, input_shape=shape, kernel_size=node.kernel_size,
                            stride=node.stride, padding=node.padding)
    if isinstance(node, nir.Flatten):
        shape = shape_of(node, "input_type") or pred_shape()
        if shape is None:
            return None
        return ir.Flatten(name, input_shape=shape, start_dim=node.start_dim, end_dim=node.end_dim)
    raise FileFormatError(
        f"{where}: NIR node type {tname} is not supported in a quantized network "
        f"(supported: Input, Output, CubaLIF/LIF/IF/CubaLI/LI, Linear/Affine, Conv2d, SumPool2d, Flatten)"
    )


def read_network(path: PathLike) -> ir.Network:
    """Read a quantized NIR file into an integer :class:`~neurohw.ir.Network`."""
    graph = load_nir(path, infer_types=False)  # exactly as stored: no added nodes
    return network_from_nir(graph, source=str(path))
