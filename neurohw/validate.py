"""Validation of float NIR graphs and of the files and arrays they come in.

Everything here runs *before* any work is done, and every refusal is one
line naming the file, the node and the parameter (and the value and the
allowed range where they apply):

* :func:`check_nir_file` -- opens a NIR (HDF5) file with h5py and checks its
  layout from the declarations alone (node types, fields, dtypes, dataset
  sizes, declared shapes, edge lists) before ``nir.read`` loads anything,
  against :class:`~neurohw.limits.Limits`;
* :func:`validate_float_graph` -- checks a float :class:`nir.NIRGraph`
  (nested graphs included): edges, supported node types, parameter values
  (finite, real, time constants > 0, equal lengths within a neuron node),
  weight ranks, conv/pool geometry, shapes along every edge, and with
  ``chip=True`` the rules a chip imposes on the graph (no loop made only of
  stateless nodes, neurons connect through a weighted node);
* :func:`read_float_nir` -- both, for a path;
* :func:`check_array_file` -- reads the header of an ``.npy``/``.npz`` input
  (never a pickle) and refuses what declares more than the limits.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import FileFormatError, ValidationError
from .ir import conv_output_len, find_cycle
from .limits import Limits, get_limits
from .nirgraph import NEURON_NODE_TYPES, shape_of, meta_of

__all__ = ["NODE_FIELDS", "TIME_CONSTANTS", "STATELESS_TYPES", "WEIGHTED_TYPES", "NEURON_NODE_TYPES",
           "CHIP_NODE_TYPES", "check_nir_file", "validate_float_graph", "read_float_nir",
           "check_array_file"]

PathLike = Union[str, "os.PathLike[str]"]
Shape = Tuple[int, ...]

# NIR 1.0 node types and their stored fields: (required, optional).  The
# neuron parameters of one node must all have the same shape.
NODE_FIELDS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    "Input": (("shape",), ()),
    "Output": (("shape",), ()),
    "Affine": (("weight", "bias"), ()),
    "Linear": (("weight",), ()),
    "Scale": (("scale",), ()),
    "Conv1d": (("weight", "stride", "padding", "dilation", "groups", "bias"), ("input_shape",)),
    "Conv2d": (("weight", "stride", "padding", "dilation", "groups", "bias"), ("input_shape",)),
    "SumPool2d": (("kernel_size", "stride", "padding"), ()),
    "AvgPool2d": (("kernel_size", "stride", "padding"), ()),
    "Flatten": ((), ("input_type", "start_dim", "end_dim")),
    "Delay": (("delay",), ()),
    "Threshold": (("threshold",), ()),
    "I": (("r",), ()),
    "IF": (("r", "v_threshold"), ("v_reset",)),
    "LI": (("tau", "r", "v_leak"), ()),
    "LIF": (("tau", "r", "v_leak", "v_threshold"), ("v_reset",)),
    "CubaLI": (("tau_syn", "tau_mem", "r", "v_leak"), ("w_in",)),
    "CubaLIF": (("tau_syn", "tau_mem", "r", "v_leak", "v_threshold"), ("v_reset", "w_in")),
    "NIRGraph": (("nodes", "edges"), ()),
}
"""Fields of each NIR node type as stored in a file: ``(required, optional)``."""

STATELESS_TYPES = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
                   "Flatten", "Delay", "Identity")
WEIGHTED_TYPES = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")
"""Stateless nodes that make a synaptic projection (Flatten, Delay, Identity do not)."""
CHIP_NODE_TYPES = ("Input", "Output") + WEIGHTED_TYPES + ("Flatten", "Delay") + NEURON_NODE_TYPES
"""Node types neurohw quantizes for a chip (and ``inspect`` accepts in a float file)."""
TIME_CONSTANTS = ("tau", "tau_mem", "tau_syn")
_NEURON_PARAMS = ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in",
                  "threshold")
_SHAPE_FIELDS = ("shape", "input_shape", "input_type")
_INT_FIELDS = ("stride", "padding", "dilation", "groups", "kernel_size", "start_dim", "end_dim")
_MAX_DIMS = 8


def _where(source: str, name: str, kind: str = "") -> str:
    return f"{source}: node '{name}'"


def _index(shape: Shape, flat: int) -> str:
    if len(shape) <= 1:
        return f"[{flat}]"
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


# ---------------------------------------------------------------------------
# the file, from its declarations (h5py, before nir.read)
# ---------------------------------------------------------------------------
def _dtype_kind(ds) -> str:
    """'num', 'complex', 'str' or 'other' for an h5py dataset."""
    import h5py

    if h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind in "SU":
        return "str"
    kind = ds.dtype.kind
    if kind in "biuf":
        return "num"
    if kind == "c":
        return "complex"
    return "other"


def _decode(value) -> Optional[str]:
    if isinstance(value, bytes):
        try:
            return value.decode("utf8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, np.ndarray) and value.shape == ():
        return _decode(value.item())
    return value if isinstance(value, str) else None


class _Scan:
    """State of one :func:`check_nir_file` walk: totals against the limits."""

    def __init__(self, path: Path, limits: Limits):
        self.path = path
        self.limits = limits
        self.elements = 0
        self.neurons = 0

    def fail(self, msg: str):
        raise FileFormatError(f"{self.path}: malformed NIR: {msg}")

    def too_big(self, msg: str):
        raise FileFormatError(f"{self.path}: {msg}")

    def dataset_size(self, ds, what: str) -> int:
        size = int(np.prod(ds.shape, dtype=object)) if ds.shape else 1
        lim = self.limits
        if size > lim.max_elements:
            self.too_big(f"{what} declares {ds.shape} = {size} elements, above the limit "
                      f"{lim.max_elements} ({lim.env_name('max_elements')} raises it)")
        self.elements += size
        if self.elements > lim.max_total_elements:
            self.too_big(f"{what}: the file's arrays hold more than {lim.max_total_elements} "
                      f"elements in all ({lim.env_name('max_total_elements')} raises it)")
        return size

    def walk_sizes(self, group, prefix: str) -> None:
        import h5py

        for key, item in group.items():
            if isinstance(item, h5py.Group):
                self.walk_sizes(item, f"{prefix}{key}/")
            elif isinstance(item, h5py.Dataset):
                self.dataset_size(item, _label(f"{prefix}{key}"))

    def declared_shape(self, ds, where: str, field: str) -> Shape:
        if _dtype_kind(ds) != "num" or ds.ndim > 1 or ds.size > _MAX_DIMS:
            self.fail(f"{where}: {field} must be a list of at most {_MAX_DIMS} integers, "
                      f"got a {ds.dtype} dataset of shape {ds.shape}")
        arr = np.asarray(ds[()]).reshape(-1)
        if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            self.fail(f"{where}: {field}={arr.tolist()} must be whole numbers")
        dims = tuple(int(v) for v in arr)
        if not dims:
            self.fail(f"{where}: {field}=[] names no size; expected at least one")
        if any(d < 1 for d in dims):
            self.fail(f"{where}: {field}={list(dims)}: every size must be >= 1")
        n = int(np.prod(dims, dtype=object)) if dims else 1
        if n > self.limits.max_neurons:
            self.too_big(f"{where}: {field}={list(dims)} declares {n} elements, above the limit "
                      f"{self.limits.max_neurons} per node "
                      f"({self.limits.env_name('max_neurons')} raises it)")
        return dims

    def node(self, group, name: str) -> None:
        import h5py

        if "type" not in group or not isinstance(group["type"], h5py.Dataset):
            self.fail(f"node '{name}': no 'type' field (not a NIR node)")
        tds = group["type"]
        kind = _decode(tds[()]) if tds.shape == () and _dtype_kind(tds) == "str" else None
        if kind is None:
            self.fail(f"node '{name}': 'type' is not a string")
        if kind not in NODE_FIELDS:
            self.fail(f"node '{name}': unknown NIR node type '{kind}' "
                      f"(NIR types: {', '.join(NODE_FIELDS)})")
        where = f"node '{name}' ({kind})"
        required, optional = NODE_FIELDS[kind]
        present = [k for k in group.keys() if k not in ("type", "metadata")]
        for key in required:
            if key not in group:
                self.fail(f"{where}: parameter {key} is missing")
        unknown = [k for k in present if k not in required + optional]
        if unknown:
            self.fail(f"{where}: unknown field '{unknown[0]}' "
                      f"({kind} has: {', '.join(required + optional)})")
        if "metadata" in group and not isinstance(group["metadata"], h5py.Group):
            self.fail(f"{where}: metadata is not a group")
        if kind == "NIRGraph":
            self.graph(group, name)
            return
        shapes: Dict[str, Shape] = {}
        for key in present:
            ds = group[key]
            if not isinstance(ds, h5py.Dataset):
                self.fail(f"{where}: parameter {key} is a group, expected an array")
            dk = _dtype_kind(ds)
            if key in _SHAPE_FIELDS:
                self.declared_shape(ds, where, key)
                continue
            if dk == "str":
                text = _decode(ds[()]) if ds.shape == () else None
                if key == "padding" and kind in ("Conv1d", "Conv2d") and text in ("same", "valid"):
                    continue
                shown = f" ({text!r})" if text is not None and len(text) < 40 else ""
                self.fail(f"{where}: parameter {key} is a string{shown}, expected numbers")
            if dk == "complex":
                self.fail(f"{where}: parameter {key} is complex ({ds.dtype}); "
                          f"NIR parameters are real numbers")
            if dk != "num":
                self.fail(f"{where}: parameter {key} has dtype {ds.dtype}, expected numbers")
            if key in _INT_FIELDS and ds.size > _MAX_DIMS:
                self.fail(f"{where}: {key} has {ds.size} values, expected an integer "
                          f"or one per spatial dimension")
            shapes[key] = tuple(int(s) for s in ds.shape)
        self.geometry(group, kind, where, shapes)
        params = {k: s for k, s in shapes.items() if k in _NEURON_PARAMS}
        if kind in NEURON_NODE_TYPES and params:
            ref_key = next(k for k in NODE_FIELDS[kind][0] if k in params)
            ref = params[ref_key]
            for key, shape in params.items():
                if shape != ref and not (key == "w_in" and int(np.prod(shape)) == 1):
                    self.fail(f"{where}: parameter {key} has shape {shape} but {ref_key} has "
                              f"{ref}; a neuron node's parameters have one shape")
            n = int(np.prod(ref, dtype=object)) if ref else 1
            if n > self.limits.max_neurons:
                self.too_big(f"{where}: {n} neurons, above the limit {self.limits.max_neurons} "
                          f"per population ({self.limits.env_name('max_neurons')} raises it)")
            self.neurons += n
            if self.neurons > self.limits.max_total_neurons:
                self.too_big(f"{where}: the network has more than {self.limits.max_total_neurons} "
                          f"neurons in all ({self.limits.env_name('max_total_neurons')} raises it)")

    def ints(self, group, key: str, where: str, n: int, minimum: int) -> Optional[Tuple[int, ...]]:
        """A small integer field (one value or ``n``) read and range-checked; None if absent
        or a string (Conv padding 'same'/'valid')."""
        if key not in group or _dtype_kind(group[key]) == "str":
            return None
        arr = np.asarray(group[key][()]).reshape(-1)
        if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            self.fail(f"{where}: {key}={arr.tolist()} must be whole numbers")
        if arr.size not in (1, n):
            self.fail(f"{where}: {key}={arr.tolist()} must be one integer or {n}")
        vals = tuple(int(v) for v in np.broadcast_to(arr, (n,)))
        for i, v in enumerate(vals):
            if v < minimum:
                self.fail(f"{where}: {key}[{i}]={v} must be >= {minimum}")
        return vals

    def geometry(self, group, kind: str, where: str, shapes: Dict[str, Shape]) -> None:
        """Weight ranks and conv/pool/flatten geometry, which ``nir.read`` computes with."""
        if kind in ("Affine", "Linear") and len(shapes.get("weight", (0, 0))) != 2:
            self.fail(f"{where}: weight has shape {shapes['weight']}; expected 2-D (n_out, n_in)")
        if kind in ("Conv1d", "Conv2d"):
            nd = 2 if kind == "Conv2d" else 1
            w = shapes.get("weight", ())
            if len(w) != nd + 2 or 0 in w:
                self.fail(f"{where}: weight has shape {w}; expected {nd + 2}-D "
                          f"(C_out, C_in/groups, {'kh, kw' if nd == 2 else 'k'})")
            stride = self.ints(group, "stride", where, nd, 1)
            dilation = self.ints(group, "dilation", where, nd, 1)
            padding = self.ints(group, "padding", where, nd, 0)
            groups = self.ints(group, "groups", where, 1, 1)
            if groups and w[0] % groups[0]:
                self.fail(f"{where}: groups={groups[0]} does not divide the {w[0]} output channels")
            if "input_shape" in group:
                spatial = np.asarray(group["input_shape"][()]).reshape(-1)
                if spatial.size != nd:
                    self.fail(f"{where}: input_shape={spatial.tolist()} must be {nd} sizes")
                for i in range(nd):
                    n, k = int(spatial[i]), w[2 + i]
                    p = padding[i] if padding else 0
                    span = dilation[i] * (k - 1) + 1 if dilation else k
                    if padding is not None and n + 2 * p < span:
                        self.fail(f"{where}: kernel {'x'.join(map(str, w[2:]))} (span {span} with "
                                  f"dilation) is larger than the padded input ({n} + 2*{p} = "
                                  f"{n + 2 * p}) along dimension {i}")
        if kind in ("SumPool2d", "AvgPool2d"):
            self.ints(group, "kernel_size", where, 2, 1)
            self.ints(group, "stride", where, 2, 1)
            self.ints(group, "padding", where, 2, 0)
        if kind == "Flatten":
            dims = {k: self.ints(group, k, where, 1, -(2**31)) for k in ("start_dim", "end_dim")}
            if "input_type" in group:
                nd = int(np.asarray(group["input_type"][()]).size)
                start = dims["start_dim"][0] if dims["start_dim"] else 1
                end = dims["end_dim"][0] if dims["end_dim"] else -1
                s_, e_ = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
                if not (0 <= s_ < nd and 0 <= e_ < nd and s_ <= e_):
                    self.fail(f"{where}: start_dim={start}, end_dim={end} do not fit input_type "
                              f"of {nd} dimensions")

    def graph(self, group, name: str) -> None:
        import h5py

        label = f"graph '{name}'" if name else "graph"
        nodes = group["nodes"]
        if not isinstance(nodes, h5py.Group):
            self.fail(f"{label}: 'nodes' is not a group")
        prefix = f"{name}." if name else ""
        for key, item in nodes.items():
            if not isinstance(item, h5py.Group):
                self.fail(f"node '{prefix}{key}': not a group (not a NIR node)")
            self.node(item, prefix + key)
        eds = group["edges"]
        if not isinstance(eds, h5py.Dataset):
            self.fail(f"{label}: 'edges' is not an array")
        if eds.size == 0:
            return
        if eds.ndim != 2 or eds.shape[1] != 2:
            self.fail(f"{label}: edges has shape {eds.shape}; expected (n, 2) pairs of node names")
        if _dtype_kind(eds) != "str":
            self.fail(f"{label}: edges hold {eds.dtype} values; expected pairs of node names "
                      f"(strings)")
        seen = set()
        for row in np.asarray(eds[()]):
            pair = tuple(_decode(v) for v in row)
            if None in pair:
                self.fail(f"{label}: edge {tuple(row.tolist())} is not a pair of node names")
            if pair in seen:
                self.fail(f"{label}: edge {pair} appears twice")
            seen.add(pair)
            for end in pair:
                if not _names_node(nodes, end):
                    self.fail(f"{label}: edge {pair}: no node named '{end}' "
                              f"(nodes: {', '.join(nodes.keys())})")


def _label(h5path: str) -> str:
    """``node/nodes/sub/nodes/lif/tau`` -> ``node 'sub.lif': parameter tau`` (for messages)."""
    parts = h5path.split("/")
    if parts[:1] != ["node"]:
        return f"dataset {h5path}"
    names, i = [], 1
    while i + 1 < len(parts) and parts[i] == "nodes":
        names.append(parts[i + 1])
        i += 2
    rest = "/".join(parts[i:])
    if not names:
        return f"graph: field {rest}"
    where = f"node '{'.'.join(names)}'"
    if rest.startswith("metadata/"):
        return f"{where}: metadata {rest[len('metadata/'):]}"
    return f"{where}: parameter {rest}"


def _names_node(nodes, end: str) -> bool:
    """``end`` is a node of ``nodes`` or ``sub.port`` of a nested graph ``sub``."""
    if end in nodes:
        return True
    head, _, tail = end.partition(".")
    if not tail or head not in nodes:
        return False
    sub = nodes[head]
    inner = sub.get("nodes") if hasattr(sub, "get") else getattr(sub, "nodes", None)
    return inner is not None and tail in inner


def check_nir_file(path: PathLike, limits: Optional[Limits] = None) -> None:
    """Check a NIR file from its declarations, before ``nir.read`` loads it.

    Opens ``path`` with h5py and checks, reading only small datasets: every
    node has a known NIR type and that type's fields (nothing missing or
    unknown); numeric fields are real numbers (not strings, not complex);
    a neuron node's parameters share one shape; declared shapes (``Input``/
    ``Output`` ``shape``, ``Flatten`` ``input_type``, ``Conv`` ``input_shape``)
    are positive whole numbers; edge lists are ``(n, 2)`` string pairs naming
    existing nodes, without duplicates; and every dataset's declared size,
    the file's total, each population and the network's neurons stay within
    ``limits`` (default :func:`~neurohw.limits.get_limits`).
    Raises :class:`~neurohw.errors.FileFormatError` naming file, node and field.
    """
    import h5py

    path = Path(path)
    limits = limits or get_limits()
    scan = _Scan(path, limits)
    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise FileFormatError(f"{path}: cannot open as HDF5 ({type(exc).__name__})") from None
    with f:
        if "node" not in f or not isinstance(f["node"], h5py.Group):
            raise FileFormatError(f"{path}: not a NIR file (HDF5 without a 'node' group)")
        scan.walk_sizes(f, "")
        root = f["node"]
        if "type" in root and _decode(root["type"][()]) == "NIRGraph":
            required, optional = NODE_FIELDS["NIRGraph"]
            for key in required:
                if key not in root:
                    scan.fail(f"graph: field '{key}' is missing")
            scan.graph(root, "")
        else:
            scan.node(root, "node")


# ---------------------------------------------------------------------------
# the graph (nir objects, from a file or built in memory)
# ---------------------------------------------------------------------------
def _kind(node) -> str:
    return type(node).__name__


def _numeric(value, where: str, key: str, kind: str = "f") -> np.ndarray:
    """``value`` as a real array (int64 for ``kind="i"``; otherwise as stored, not
    copied), refusing strings, objects, complex numbers and non-finite values
    (naming the first bad element's index)."""
    if hasattr(value, "detach"):  # a torch tensor left in a graph built in memory
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes)):
        raise ValidationError(f"{where}: {key}={value!r} is a string, expected numbers")
    try:
        raw = np.asarray(value)
    except Exception:
        raise ValidationError(f"{where}: {key} is not an array of numbers "
                              f"({type(value).__name__})") from None
    if raw.dtype.kind == "c":
        raise ValidationError(f"{where}: {key} is complex ({raw.dtype}); NIR parameters are "
                              f"real numbers")
    if raw.dtype.kind in "SUO" or raw.dtype.kind not in "biuf":
        raise ValidationError(f"{where}: {key} holds {raw.dtype} values, expected numbers")
    if raw.dtype.kind != "f":  # integers and booleans are finite; no float copy of a big array
        return raw.astype(np.int64) if kind == "i" else raw
    arr = raw
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr.reshape(-1)))[0])
        raise ValidationError(f"{where}: {key} contains {arr.reshape(-1)[i]} at index "
                              f"{_index(arr.shape, i)} (every value must be finite)")
    if kind == "i":
        frac = arr != np.round(arr)
        if frac.any():
            i = int(np.flatnonzero(frac.reshape(-1))[0])
            raise ValidationError(f"{where}: {key}{_index(arr.shape, i)}={arr.reshape(-1)[i]:g} "
                                  f"must be a whole number")
        return arr.astype(np.int64)
    return arr


def _ints(node, key: str, where: str, n: int, minimum: int, default=None) -> Tuple[int, ...]:
    value = getattr(node, key, default)
    if value is None:
        value = default
    if value is None:
        raise ValidationError(f"{where}: parameter {key} is missing")
    arr = _numeric(value, where, key, "i").reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise ValidationError(f"{where}: {key}={arr.tolist()} must be one integer or {n}")
    for i, v in enumerate(arr):
        if v < minimum:
            raise ValidationError(f"{where}: {key}[{i}]={int(v)} must be >= {minimum}")
    return tuple(int(v) for v in arr)


def _prod(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=object)) if len(shape) else 1


def _strip(shape: Shape) -> Shape:
    shape = tuple(shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


class _NodeCheck:
    """Parameter checks of one node; ``in_shape()`` / ``out_shape(in)`` give its shapes."""

    def __init__(self, name: str, node, source: str, limits: Limits):
        self.name, self.node, self.kind = name, node, _kind(node)
        self.where = _where(source, name, self.kind)
        self.limits = limits
        self.p: Dict[str, np.ndarray] = {}
        self.own_in: Optional[Shape] = None  # the input shape the parameters imply
        getattr(self, "_check_" + self.kind, self._check_other)()

    # -- parameters ---------------------------------------------------------
    def _get(self, key: str, required: bool = True) -> Optional[np.ndarray]:
        value = getattr(self.node, key, None)
        if value is None:
            if required:
                raise ValidationError(f"{self.where}: parameter {key} is missing")
            return None
        arr = _numeric(value, self.where, key)
        self.p[key] = arr
        return arr

    def _check_other(self) -> None:
        pass

    def _check_Input(self) -> None:
        shape = shape_of(self.node, "input_type")
        if shape is None:
            raise ValidationError(f"{self.where}: input_type has no shape")
        self._shape_ok(shape, "input_type")
        self.own_in = shape

    def _check_Output(self) -> None:
        shape = shape_of(self.node, "output_type")
        if shape is not None:
            self._shape_ok(shape, "output_type")

    def _shape_ok(self, shape: Shape, key: str) -> None:
        if not shape:
            raise ValidationError(f"{self.where}: {key}=[] names no size; expected at least one")
        if any(d < 1 for d in shape):
            raise ValidationError(f"{self.where}: {key}={list(shape)}: every size must be >= 1")
        if _prod(shape) > self.limits.max_neurons:
            raise ValidationError(f"{self.where}: {key}={list(shape)} declares {_prod(shape)} "
                                  f"elements, above the limit {self.limits.max_neurons} per node "
                                  f"({self.limits.env_name('max_neurons')} raises it)")

    def _check_Affine(self) -> None:
        w = self._get("weight")
        if w.ndim != 2:
            raise ValidationError(f"{self.where}: weight has shape {w.shape}; expected 2-D "
                                  f"(n_out, n_in)")
        if self.kind == "Affine":
            b = self._get("bias")
            if b.size not in (1, w.shape[0]):
                raise ValidationError(f"{self.where}: bias has {b.size} entries for "
                                      f"{w.shape[0]} outputs")
        self.own_in = (w.shape[1],)

    _check_Linear = _check_Affine

    def _check_Scale(self) -> None:
        s = self._get("scale")
        self.own_in = tuple(s.shape) if s.size > 1 else None

    def _check_Conv2d(self) -> None:
        nd = 2 if self.kind == "Conv2d" else 1
        w = self._get("weight")
        if w.ndim != nd + 2:
            raise ValidationError(f"{self.where}: weight has shape {w.shape}; expected "
                                  f"{nd + 2}-D (C_out, C_in/groups, {', '.join('kh kw'.split()[-nd:])})")
        if w.size == 0:
            raise ValidationError(f"{self.where}: weight has shape {w.shape} (no elements)")
        self.stride = _ints(self.node, "stride", self.where, nd, 1)
        self.dilation = _ints(self.node, "dilation", self.where, nd, 1)
        groups = _ints(self.node, "groups", self.where, 1, 1)[0]
        pad = getattr(self.node, "padding", None)
        pad = _decode(pad) if _decode(pad) is not None else pad
        if isinstance(pad, str):
            if pad not in ("same", "valid"):
                raise ValidationError(f"{self.where}: padding={pad!r}; expected integers, "
                                      f"'same' or 'valid'")
            self.padding: Union[str, Tuple[int, ...]] = pad
        else:
            self.padding = _ints(self.node, "padding", self.where, nd, 0)
        if w.shape[0] % groups:
            raise ValidationError(f"{self.where}: groups={groups} does not divide the "
                                  f"{w.shape[0]} output channels")
        self.groups = groups
        self.kernel = tuple(int(k) for k in w.shape[2:])
        self.c_in, self.c_out = int(w.shape[1]) * groups, int(w.shape[0])
        b = getattr(self.node, "bias", None)
        if b is not None:
            b = self._get("bias")
            if b.size not in (1, self.c_out):
                raise ValidationError(f"{self.where}: bias has {b.size} entries for "
                                      f"{self.c_out} output channels")
        ish = getattr(self.node, "input_shape", None)
        if ish is not None:
            spatial = tuple(int(v) for v in _numeric(ish, self.where, "input_shape", "i").reshape(-1))
            if len(spatial) != nd or min(spatial) < 1:
                raise ValidationError(f"{self.where}: input_shape={list(spatial)} must be {nd} "
                                      f"sizes >= 1")
            self.own_in = (self.c_in,) + spatial
            self.out_shape(self.own_in)  # geometry errors name the declared shape

    _check_Conv1d = _check_Conv2d

    def _check_SumPool2d(self) -> None:
        self.kernel = _ints(self.node, "kernel_size", self.where, 2, 1)
        self.stride = _ints(self.node, "stride", self.where, 2, 1, default=self.kernel)
        self.padding = _ints(self.node, "padding", self.where, 2, 0, default=0)
        self.dilation = (1, 1)

    _check_AvgPool2d = _check_SumPool2d

    def _check_Flatten(self) -> None:
        for key in ("start_dim", "end_dim"):
            _ints(self.node, key, self.where, 1, -(2**31), default=0)
        shape = shape_of(self.node, "input_type")
        if shape is not None:
            self._shape_ok(shape, "input_type")
            self.own_in = shape

    def _check_Delay(self) -> None:
        d = self._get("delay")
        neg = d < 0
        if neg.any():
            i = int(np.flatnonzero(neg.reshape(-1))[0])
            raise ValidationError(f"{self.where}: delay{_index(d.shape, i)}={d.reshape(-1)[i]:g} s "
                                  f"must be >= 0")
        self.own_in = tuple(d.shape) if d.size > 1 else None

    def _check_neuron(self) -> None:
        required, optional = NODE_FIELDS[self.kind]
        ref_key, ref = None, None
        for key in required + optional:
            arr = self._get(key, required=key in required)
            if arr is None:
                continue
            if key in TIME_CONSTANTS:
                bad = ~(arr > 0)
                if bad.any():
                    i = int(np.flatnonzero(bad.reshape(-1))[0])
                    raise ValidationError(
                        f"{self.where}: {key}{_index(arr.shape, i)}={arr.reshape(-1)[i]:g} s; a time "
                        f"constant must be > 0 (and finite)")
            if ref is None:
                ref_key, ref = key, arr.shape
            elif arr.shape != ref and not (key == "w_in" and arr.size == 1) \
                    and _strip(arr.shape) != _strip(ref):
                raise ValidationError(f"{self.where}: parameter {key} has shape {arr.shape} but "
                                      f"{ref_key} has {ref}; a neuron node's parameters have "
                                      f"one shape")
        if ref is not None and _prod(ref) > 1:
            self.own_in = tuple(ref)
            self._shape_ok(self.own_in, ref_key)

    _check_LIF = _check_CubaLIF = _check_IF = _check_LI = _check_CubaLI = _check_I = _check_neuron

    def _check_Threshold(self) -> None:
        t = self._get("threshold")
        self.own_in = tuple(t.shape) if t.size > 1 else None

    # -- shapes -------------------------------------------------------------
    def conv_out(self, spatial: Shape) -> Shape:
        out = []
        for i, n in enumerate(spatial):
            k, s, d = self.kernel[i], self.stride[i], self.dilation[i]
            span = d * (k - 1) + 1
            if self.padding == "same":
                out.append(-(-n // s))
                continue
            p = 0 if self.padding == "valid" else self.padding[i]
            if n + 2 * p < span:
                raise ValidationError(
                    f"{self.where}: kernel {'x'.join(map(str, self.kernel))} (dilation "
                    f"{self.dilation[i]}, span {span}) is larger than the padded input "
                    f"({n} + 2*{p} = {n + 2 * p}) along dimension {i}")
            out.append(conv_output_len(n, k, s, p, p, d))
        return tuple(out)

    def out_shape(self, in_shape: Shape) -> Shape:
        """The node's output shape for input ``in_shape`` (raises naming the node)."""
        k = self.kind
        if k in ("Affine", "Linear"):
            w = self.p["weight"]
            if _prod(in_shape) != w.shape[1]:
                raise ValidationError(f"{self.where}: weight {w.shape} takes {w.shape[1]} inputs, "
                                      f"the input has shape {tuple(in_shape)} "
                                      f"({_prod(in_shape)} values)")
            return (w.shape[0],)
        if k in ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d"):
            nd = 1 if k == "Conv1d" else 2
            shape = _strip(in_shape) if len(in_shape) > nd + 1 else tuple(in_shape)
            if len(shape) != nd + 1:
                if self.own_in is not None and _prod(in_shape) == _prod(self.own_in):
                    shape = self.own_in
                else:
                    raise ValidationError(f"{self.where}: input shape {tuple(in_shape)}; expected "
                                          f"{nd + 1}-D (C, {'H, W' if nd == 2 else 'L'})")
            if k.startswith("Conv"):
                if shape[0] != self.c_in:
                    raise ValidationError(
                        f"{self.where}: input has {shape[0]} channels, weight "
                        f"{self.p['weight'].shape} with groups={self.groups} takes {self.c_in}")
                out = (self.c_out,) + self.conv_out(shape[1:])
            else:
                out = (shape[0],) + self.conv_out(shape[1:])
            self._shape_ok(out, "output shape")
            return out
        if k == "Flatten":
            shape = tuple(in_shape)
            if self.own_in is not None and shape != self.own_in:
                if _prod(shape) != _prod(self.own_in):
                    raise ValidationError(f"{self.where}: input_type {list(self.own_in)} "
                                          f"({_prod(self.own_in)} values) but the input has shape "
                                          f"{shape} ({_prod(shape)})")
                shape = self.own_in
            nd = len(shape)
            start, end = int(getattr(self.node, "start_dim", 0)), int(getattr(self.node, "end_dim", -1))
            s, e = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
            if not (0 <= s < nd and 0 <= e < nd and s <= e):
                raise ValidationError(f"{self.where}: start_dim={start}, end_dim={end} do not fit "
                                      f"input shape {shape} (dims index the unbatched shape)")
            return shape[:s] + (_prod(shape[s:e + 1]),) + shape[e + 1:]
        if k == "Output":
            declared = shape_of(self.node, "output_type")
            if declared is not None and _prod(declared) != _prod(in_shape):
                raise ValidationError(f"{self.where}: output_type {list(declared)} but the input "
                                      f"has shape {tuple(in_shape)}")
            return tuple(in_shape)
        if self.own_in is not None:  # elementwise: parameters fix the shape
            if _prod(self.own_in) != _prod(in_shape):
                key = next(iter(self.p), "parameters")
                what = "neurons" if k in NEURON_NODE_TYPES else "entries"
                raise ValidationError(f"{self.where}: {key} has shape {self.own_in} "
                                      f"({_prod(self.own_in)} {what}) but the input has shape "
                                      f"{tuple(in_shape)} ({_prod(in_shape)} values)")
            return self.own_in if len(self.own_in) >= len(_strip(in_shape)) else tuple(in_shape)
        return tuple(in_shape)


def _check_structure(graph, source: str, prefix: str = "") -> None:
    """Edges of ``graph`` and every nested graph: pairs of existing node names, no duplicates."""
    import nir

    label = f"{source}: graph '{prefix[:-1]}'" if prefix else f"{source}: graph"
    nodes = getattr(graph, "nodes", None)
    if not isinstance(nodes, dict):
        raise ValidationError(f"{label}: nodes is not a dict of NIR nodes")
    edges = getattr(graph, "edges", None)
    if edges is None:
        edges = []
    if isinstance(edges, np.ndarray):
        edges = edges.tolist()
    if not isinstance(edges, (list, tuple)):
        raise ValidationError(f"{label}: edges is a {type(edges).__name__}, expected a list of "
                              f"(source, target) pairs")
    seen = set()
    for e in edges:
        if isinstance(e, np.ndarray):
            e = e.tolist()
        if not isinstance(e, (list, tuple)) or len(e) != 2:
            raise ValidationError(f"{label}: edge {e!r} is not a (source, target) pair")
        pair = tuple(_decode(v) for v in e)
        if None in pair:
            raise ValidationError(f"{label}: edge {tuple(e)!r} is not a pair of node names "
                                  f"(strings)")
        if pair in seen:
            raise ValidationError(f"{label}: edge {pair} appears twice")
        seen.add(pair)
        for end in pair:
            if not _names_node(nodes, end):
                raise ValidationError(f"{label}: edge {pair}: no node named '{prefix}{end}' "
                                      f"(nodes: {', '.join(map(str, nodes))})")
    for name, node in nodes.items():
        if not isinstance(name, str):
            raise ValidationError(f"{label}: node name {name!r} is not a string")
        if isinstance(node, nir.NIRGraph):
            _check_structure(node, source, f"{prefix}{name}.")


def _nested_ports(graph, prefix: str = "") -> List[Tuple[str, str, Optional[Shape], List[str]]]:
    """The Input/Output nodes of every nested graph, which inlining removes:
    ``(flat name, "Input"|"Output", declared shape, flat names of the inner nodes
    they feed / read)``, so their declared shapes can still be checked."""
    import nir

    ports = []
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            continue
        full = f"{prefix}{name}."
        for pname, pnode in node.nodes.items():
            kind = _kind(pnode)
            if kind == "Input":
                inner = [full + d for s, d in node.edges if s == pname]
                ports.append((full + pname, kind, shape_of(pnode, "input_type"), inner))
            elif kind == "Output":
                inner = [full + s for s, d in node.edges if d == pname]
                ports.append((full + pname, kind, shape_of(pnode, "output_type"), inner))
        ports.extend(_nested_ports(node, full))
    return ports


def _check_ports(ports, nodes, preds, out, source: str) -> None:
    for port, kind, declared, inner in ports:
        if declared is None:
            continue
        sub = port.rsplit(".", 1)[0]
        if kind == "Input":  # what arrives from outside the nested graph
            arriving = [(p, out[p]) for t in inner if t in nodes for p in preds[t]
                        if not p.startswith(sub + ".") and p in out]
        else:
            arriving = [(p, out[p]) for p in inner if p in out]
        for p, shape in arriving:
            if _prod(shape) != _prod(declared):
                raise ValidationError(
                    f"{source}: node '{port}' ({kind} of nested graph '{sub}'): declares shape "
                    f"{list(declared)} but '{p}' carries {tuple(shape)}")


def _find_stateless_loop(nodes, edges) -> Optional[List[str]]:
    """A cycle made only of stateless nodes, as a list of names (first == last), or None."""
    stateless = {n for n, v in nodes.items() if _kind(v) in STATELESS_TYPES}
    succ: Dict[str, List[str]] = {n: [] for n in stateless}
    for s, d in edges:
        if s in stateless and d in stateless:
            succ[s].append(d)
    cycle = find_cycle(sorted(stateless), succ)
    return None if cycle is None else cycle + [cycle[0]]


def validate_float_graph(graph, source: str = "graph", chip: bool = True,
                         supported: Optional[Iterable[str]] = None,
                         limits: Optional[Limits] = None, values: bool = True) -> Dict[str, Shape]:
    """Check a float NIR graph before any work; return every node's output shape.

    ``source`` names the file (or ``"graph"``) in messages.  Checks, on the
    graph with nested graphs inlined (names ``"sub.node"``): edges are pairs
    of existing node names without duplicates; node types are in
    ``supported`` (default :data:`CHIP_NODE_TYPES` with ``chip``, every NIR
    type otherwise); parameters are real, finite numbers (the first bad
    element named by index), time constants ``> 0`` s, a neuron node's
    parameters share one shape; Affine/Linear weights are 2-D, Conv2d 4-D,
    Conv1d 3-D, with stride and dilation ``>= 1``, padding ``>= 0``, groups
    dividing the channels and a kernel no larger than the padded input;
    shapes agree along every edge (NIR's ``input_type``/``output_type`` where
    present, inferred otherwise) and stay within ``limits``.  With ``chip``
    also: every node is reachable from an Input, no loop consists of
    stateless nodes only, and neurons (or Inputs) reach a neuron only through
    a weighted node (``LIF -> LIF`` and ``LIF -> Flatten -> LIF`` are refused).

    ``values=False`` stops after the structure (edges, node types) and
    returns ``{}``: for callers that check parameters and shapes themselves.

    Raises :class:`~neurohw.errors.ValidationError` with one line naming the
    file, the node and the parameter.
    """
    import nir

    from .nirgraph import flatten_graph

    limits = limits or get_limits()
    if not isinstance(graph, nir.NIRGraph):
        raise ValidationError(f"{source}: expected a NIR graph, got {type(graph).__name__}")
    _check_structure(graph, source)
    nodes, edges = flatten_graph(graph)
    edges = [(str(s), str(d)) for s, d in edges]
    allowed = tuple(supported) if supported is not None else \
        (CHIP_NODE_TYPES if chip else tuple(k for k in NODE_FIELDS if k != "NIRGraph") + ("Identity",))
    for name, node in nodes.items():
        kind = _kind(node)
        if kind not in allowed:
            raise ValidationError(f"{_where(source, name, kind)}: NIR node type {kind} is not supported "
                                  f"(supported: {', '.join(allowed)})")
    for s, d in edges:
        for end in (s, d):
            if end not in nodes:
                raise ValidationError(f"{source}: edge ({s!r}, {d!r}): '{end}' is not a node "
                                      f"(a nested graph with several Inputs/Outputs is named as "
                                      f"'graph.port')")
    if not values:
        return {}
    checks = {name: _NodeCheck(name, node, source, limits) for name, node in nodes.items()}
    from .neuronext import EXT_KEYS, neuron_ext  # metadata["neurohw"] (neuron-models.md)

    for name, node in nodes.items():
        ext = meta_of(node).get("neurohw")
        if _kind(node) in ("LIF", "CubaLIF") or (isinstance(ext, dict)
                                                 and any(k in ext for k in EXT_KEYS)):
            neuron_ext(node, _where(source, name, _kind(node)))
    total = sum(_prod(c.own_in) for c in checks.values()
                if c.kind in NEURON_NODE_TYPES and c.own_in is not None)
    if total > limits.max_total_neurons:
        raise ValidationError(f"{source}: {total} neurons in all, above the limit "
                              f"{limits.max_total_neurons} ({limits.env_name('max_total_neurons')} "
                              f"raises it)")
    for s, d in edges:
        if _kind(nodes[d]) == "Input":
            raise ValidationError(f"{source}: edge ({s!r}, {d!r}): Input node '{d}' cannot "
                                  f"receive an edge")
    if chip:
        loop = _find_stateless_loop(nodes, edges)
        if loop:
            raise ValidationError(
                f"{_where(source, loop[0], _kind(nodes[loop[0]]))}: a loop of stateless nodes "
                f"({' -> '.join(loop)}); every loop must pass through a neuron node")
    # shapes along every edge: breadth-first from the Inputs
    succ: Dict[str, List[str]] = {n: [] for n in nodes}
    preds: Dict[str, List[str]] = {n: [] for n in nodes}
    for s, d in edges:
        succ[s].append(d)
        preds[d].append(s)
    out: Dict[str, Shape] = {}
    took: Dict[str, Tuple[str, Shape]] = {}
    queue = [n for n in nodes if _kind(nodes[n]) == "Input"]
    if chip and not queue:
        raise ValidationError(f"{source}: the graph has no Input node")
    for n in queue:
        out[n] = checks[n].own_in
    seeded = set()
    while True:
        while queue:
            s = queue.pop(0)
            for d in succ[s]:
                shape = out[s]
                if d in took:
                    src, prev = took[d]
                    if _prod(prev) != _prod(shape):
                        raise ValidationError(
                            f"{_where(source, d, checks[d].kind)}: inputs of different sizes: "
                            f"'{src}' gives {prev}, '{s}' gives {shape}")
                    continue
                took[d] = (s, shape)
                out[d] = checks[d].out_shape(shape)
                queue.append(d)
        # nodes only reached through a loop (not from an Input): their parameters give the shape
        rest = [n for n in nodes if n not in out and n not in seeded
                and checks[n].own_in is not None and checks[n].kind in NEURON_NODE_TYPES]
        if not rest:
            break
        n = rest[0]
        seeded.add(n)
        out[n] = checks[n].out_shape(checks[n].own_in)
        queue.append(n)
    _check_ports(_nested_ports(graph), nodes, preds, out, source)
    if chip:
        for n in nodes:
            if n not in out:
                raise ValidationError(f"{_where(source, n, checks[n].kind)}: not reachable from "
                                      f"an Input node (its input shape is unknown)")
        for d in nodes:
            if _kind(nodes[d]) not in NEURON_NODE_TYPES:
                continue
            for s in preds[d]:
                bare = _unweighted_source(nodes, preds, s)
                if bare is not None:
                    via = " -> ".join(bare)
                    raise ValidationError(
                        f"{_where(source, d, checks[d].kind)}: input {via} -> {d} has no weighted "
                        f"node (Affine/Linear/Conv/Scale/pooling) between; on a chip every "
                        f"connection into a neuron is a synaptic projection")
    return out


def _unweighted_source(nodes, preds, start: str) -> Optional[List[str]]:
    """Walk back from ``start`` through Flatten/Delay/Identity nodes; if an Input or a
    neuron is reached that way, the chain (source first), else None."""
    chain = [start]
    frontier = [(start, chain)]
    seen = set()
    while frontier:
        name, path = frontier.pop()
        kind = _kind(nodes[name])
        if kind == "Input" or kind in NEURON_NODE_TYPES:
            return list(reversed(path))
        if kind in WEIGHTED_TYPES or name in seen:
            continue
        seen.add(name)
        if kind in ("Flatten", "Delay", "Identity"):
            frontier.extend((p, path + [p]) for p in preds[name])
    return None


def read_float_nir(path: PathLike, chip: bool = True, limits: Optional[Limits] = None):
    """Read a float NIR file with every check of this module; returns the ``nir.NIRGraph``.

    :func:`~neurohw.nirgraph.load_nir` (which runs :func:`check_nir_file`),
    then :func:`validate_float_graph` with ``source`` the path.  A quantized
    file is returned as read (its integers are the quantized reader's business).
    """
    from .nirgraph import load_nir
    from .nirio import is_quantized

    graph = load_nir(path)
    if not is_quantized(graph):
        validate_float_graph(graph, str(path), chip=chip, limits=limits)
    return graph


# ---------------------------------------------------------------------------
# .npy / .npz inputs, from their headers
# ---------------------------------------------------------------------------
def _npy_header(fp, label: str):
    from numpy.lib import format as npf

    try:
        version = npf.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = npf.read_array_header_2_0(fp)
        else:
            shape, fortran, dtype = npf._read_array_header(fp, version)  # 3.0: utf8 header
    except Exception as exc:
        raise FileFormatError(f"{label}: not a valid .npy header ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return tuple(int(s) for s in shape), dtype


def _check_header(label: str, shape: Shape, dtype, limits: Limits) -> None:
    if dtype.hasobject:
        raise FileFormatError(f"{label}: holds Python objects (dtype {dtype}, a pickle); neurohw "
                              f"never loads pickles, save a numeric array")
    n = _prod(shape)
    nbytes = n * dtype.itemsize
    if n > limits.max_elements:
        raise FileFormatError(f"{label}: declares shape {shape} = {n} elements, above the limit "
                              f"{limits.max_elements} ({limits.env_name('max_elements')} raises it)")
    if nbytes > limits.max_input_bytes:
        raise FileFormatError(f"{label}: declares shape {shape} of {dtype} = {nbytes} bytes, above "
                              f"the limit {limits.max_input_bytes} bytes "
                              f"({limits.env_name('max_input_bytes')} raises it)")


def check_array_file(path: PathLike, key: Optional[str] = None,
                     limits: Optional[Limits] = None) -> Dict[str, Tuple[Shape, np.dtype]]:
    """Read the header(s) of an ``.npy`` file or the members of an ``.npz`` archive
    (only ``key`` if given) without loading data; refuse object arrays (pickles) and
    arrays whose declared size exceeds ``limits`` (elements and bytes), naming the
    file and member.  Returns ``{member: (shape, dtype)}`` (member ``""`` for .npy).
    """
    path = Path(path)
    limits = limits or get_limits()
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        with open(path, "rb") as f:
            shape, dtype = _npy_header(f, str(path))
        _check_header(str(path), shape, dtype, limits)
        return {"": (shape, dtype)}
    out: Dict[str, Tuple[Shape, np.dtype]] = {}
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileFormatError(f"{path}: not a .npz archive ({type(exc).__name__})") from None
    with zf:
        for info in zf.infolist():
            member = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key is not None and member != key:
                continue
            label = f"{path}: array '{member}'"
            if not info.filename.endswith(".npy"):
                continue
            try:
                with zf.open(info) as fp:
                    shape, dtype = _npy_header(fp, label)
            except FileFormatError:
                raise
            except Exception as exc:
                raise FileFormatError(f"{label}: cannot be read ({type(exc).__name__})") from None
            _check_header(label, shape, dtype, limits)
            out[member] = (shape, dtype)
    return out
