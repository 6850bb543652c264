"""Reading NIR graphs and walking them: helpers shared by every module that
handles NIR (float or quantized).

* :func:`load_nir` -- read any NIR file with one-line errors;
* :func:`meta_of`, :func:`as_str`, :func:`shape_of` -- tolerant accessors of
  node metadata, strings stored as bytes, and ``input_type``/``output_type``;
* :func:`flatten_graph` -- inline nested graphs;
* :func:`flow_order` -- order nodes along the data flow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .errors import FileFormatError
from .fileio import one_line

__all__ = ["NEURON_TYPES", "NEURON_NODE_TYPES", "load_nir", "meta_of", "as_str", "shape_of", "flatten_graph",
           "flow_order"]

NEURON_TYPES = ("CubaLIF", "LIF", "IF", "CubaLI", "LI")
"""NIR neuron node types a quantized network may use for an integer LIF population."""

NEURON_NODE_TYPES = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I", "Threshold")
"""Every NIR neuron node type neurohw reads in a float network (``I`` and
``Threshold`` have no quantized form; the quantizer maps them to LIF)."""

PathLike = Union[str, "os.PathLike[str]"]


def _nir():
    import nir  # required dependency; imported lazily to keep `import neurohw` light

    return nir


def load_nir(path: PathLike, infer_types: bool = True, limits=None):
    """Read any NIR file, turning every failure into a one-line :class:`FileFormatError`.

    With ``infer_types`` NIR's type inference runs first (it fills in shapes,
    and adds an ``Output`` node after every leaf that lacks one); a graph its
    checker rejects (NIR 1.0.8 infers a grouped convolution's input channels
    wrongly, for one) is read again without it.  ``infer_types=False`` reads
    the graph exactly as stored.

    Before ``nir.read`` loads anything, :func:`neurohw.validate.check_nir_file`
    checks the file's layout and declared sizes against ``limits`` (default
    :func:`neurohw.limits.get_limits`: ``NEUROHW_MAX_*`` environment variables).
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a directory, not a NIR file")
    try:
        import h5py

        if not h5py.is_hdf5(path):
            raise FileFormatError(f"{path}: not a NIR file (not HDF5)")
    except FileFormatError:
        raise
    except Exception as exc:
        raise FileFormatError(f"{path}: cannot open ({one_line(exc)})") from None
    # layout, dtypes and declared sizes, before nir.read allocates anything
    from .validate import check_nir_file

    check_nir_file(path, limits)
    nir = _nir()
    first: Optional[Exception] = None
    readers = (lambda: nir.read(path, type_check=True), lambda: _read_unchecked(path))
    for read in (readers if infer_types else readers[1:]):
        try:
            graph = read()
            break
        except Exception as exc:  # nir raises many kinds; all mean "bad file" here
            first = first or exc
    else:
        raise FileFormatError(f"{path}: malformed NIR ({one_line(first)})") from None
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.NIRGraph(nodes={"node": graph}, edges=[], type_check=False)
    return graph


def _read_unchecked(path: Path):
    """``nir.read(path, type_check=False)``, but without type checks in nested graphs
    too (NIR 1.0.8 checks those regardless), and with a Conv's optional
    ``input_shape`` allowed to be absent: shapes are then checked, naming the
    node, by :func:`neurohw.validate.validate_float_graph` or the quantized reader."""
    import h5py
    from nir.serialization import hdf2dict

    nir = _nir()
    with h5py.File(path, "r") as f:
        data = hdf2dict(f["node"])

    def relax(d):
        if d.get("type") == "NIRGraph":
            d["type_check"] = False
            for child in d.get("nodes", {}).values():
                if isinstance(child, dict):
                    relax(child)
            return
        if d.get("type") in ("Conv1d", "Conv2d"):
            d.setdefault("input_shape", None)
        # one-value fields as NIR's constructors expect them: a shape as a 1-D array,
        # a scalar (groups, Flatten dims, Conv1d's spatial input size) as an int
        for key in ("shape", "input_type"):
            v = d.get(key)
            if isinstance(v, (np.ndarray, np.generic, int, float)) and np.ndim(v) == 0:
                d[key] = np.asarray(v).reshape(1)
        scalars = ("groups", "start_dim", "end_dim") + (("input_shape",) if d.get("type") == "Conv1d" else ())
        if d.get("type") == "Conv1d":
            scalars += ("stride", "padding", "dilation")
        for key in scalars:
            v = d.get(key)
            if isinstance(v, (np.ndarray, np.generic)) and v.size == 1 and v.dtype.kind in "iuf":
                d[key] = int(np.asarray(v).reshape(-1)[0])
        if d.get("type") in ("Conv2d", "SumPool2d", "AvgPool2d"):  # one value for both axes
            for key in ("stride", "padding", "dilation", "kernel_size"):
                v = d.get(key)
                if isinstance(v, (np.ndarray, np.generic)) and v.size == 1 and v.dtype.kind in "iuf":
                    d[key] = np.repeat(np.asarray(v).reshape(-1), 2)

    relax(data)
    return nir.dict2NIRNode(data)


def meta_of(obj) -> Dict[str, Any]:
    """The ``metadata`` dict of a NIR node or graph (empty when absent or not a dict)."""
    meta = getattr(obj, "metadata", None)
    return meta if isinstance(meta, dict) else {}


def as_str(value) -> Optional[str]:
    """A string stored as str, bytes or a 0-d array, else ``None``."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return as_str(value.item())
    return value if isinstance(value, str) else None


def shape_of(node, key: str) -> Optional[Tuple[int, ...]]:
    """The shape in a node's ``input_type``/``output_type`` (``key``), or ``None``."""
    types = getattr(node, key, None)
    if not isinstance(types, dict) or not types:
        return None
    value = next(iter(types.values()))
    if value is None:
        return None
    arr = np.asarray(value).reshape(-1)
    if arr.size == 0 or arr.dtype.kind not in "iuf":
        return None
    return tuple(int(v) for v in arr)


def flatten_graph(graph, prefix: str = "") -> Tuple[Dict[str, Any], List[Tuple[str, str]]]:
    """Inline nested NIR graphs: returns ``(nodes, edges)`` with dotted names.

    A subgraph's own Input/Output nodes disappear; edges that named the
    subgraph (``"sub"`` or ``"sub.port"``) are rewired to what lies behind
    its Input (for edges in) and its Output (for edges out).
    """
    nir = _nir()
    nodes: Dict[str, Any] = {}
    edges: List[Tuple[str, str]] = []
    entry: Dict[str, List[str]] = {}  # "sub" / "sub.port" -> targets of its Input
    exit_: Dict[str, List[str]] = {}  # "sub" / "sub.port" -> sources of its Output
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = flatten_graph(node, full + ".")
            ins = {k for k, v in node.nodes.items() if isinstance(v, nir.Input)}
            outs = {k for k, v in node.nodes.items() if isinstance(v, nir.Output)}
            for n in ins:
                tgt = [d for s, d in sub_edges if s == f"{full}.{n}"]
                entry[f"{full}.{n}"] = tgt
                if len(ins) == 1:
                    entry[full] = tgt
            for n in outs:
                src = [s for s, d in sub_edges if d == f"{full}.{n}"]
                exit_[f"{full}.{n}"] = src
                if len(outs) == 1:
                    exit_[full] = src
            drop = {f"{full}.{n}" for n in ins | outs}
            nodes.update({k: v for k, v in sub_nodes.items() if k not in drop})
            edges.extend((s, d) for s, d in sub_edges if s not in drop and d not in drop)
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        s_full, d_full = prefix + src, prefix + dst
        sources = exit_.get(s_full, [s_full])
        targets = entry.get(d_full, [d_full])
        edges.extend((s, d) for s in sources for d in targets)
    return nodes, edges


def flow_order(names, edges) -> List[str]:
    """Order node names along the data flow: breadth-first from nodes without
    incoming edges (the inputs), following edges; nodes left over (cycles
    not reachable from an input) keep their given order at the end."""
    names = list(names)
    succ: Dict[str, List[str]] = {n: [] for n in names}
    has_pred = set()
    for s, d in edges:
        if s in succ and d in succ:
            succ[s].append(d)
            has_pred.add(d)
    order: List[str] = []
    seen = set()
    queue = [n for n in names if n not in has_pred]
    while queue:
        n = queue.pop(0)
        if n in seen:
            continue
        seen.add(n)
        order.append(n)
        queue.extend(m for m in succ[n] if m not in seen)
    order.extend(n for n in names if n not in seen)
    return order
