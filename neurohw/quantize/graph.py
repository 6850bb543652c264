"""Float NIR graphs as neurons joined by affine paths.

A trained SNN exported to NIR alternates *stateless* nodes (Affine, Linear,
Scale, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, Delay) and *neuron*
nodes (LIF, CubaLIF, IF, LI, CubaLI, I, Threshold).  On a chip every
connection between two neuron layers (or from the input) is one synaptic
projection, so this module finds, for each neuron node, every *path* of
stateless nodes that feeds it from an Input or another neuron node, and
turns each path into a float affine map ``y = A x + b`` (plus per-output
delays).  :mod:`neurohw.quantize.core` then turns each path into one integer
projection.

Everything here is float64 numpy; shapes are NIR's, batch excluded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import floatsem
from . import compose
from ..errors import ValidationError
from ..validate import NEURON_NODE_TYPES, WEIGHTED_TYPES

__all__ = ["NEURON_TYPES", "LINEAR_TYPES", "Path", "FloatGraph", "analyze", "apply_linear"]

# one home for the type lists: neurohw.validate (checked there before analyze runs)
NEURON_TYPES = NEURON_NODE_TYPES
LINEAR_TYPES = WEIGHTED_TYPES + ("Flatten", "Delay")
_MAX_COMPOSED = 50_000_000  # entries of a composed dense matrix (400 MB of float64)


def _tname(node) -> str:
    return type(node).__name__


def _arr(value, where: str, param: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: {param} is not numeric") from None
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].reshape(-1)[0]
        raise ValidationError(f"{where}: {param} contains {bad} (must be finite)")
    return arr


def conv_float(x: np.ndarray, w, shape, stride, padding, dilation, groups) -> np.ndarray:
    """Float cross-correlation of ``x`` (m, C, H, W) by ``w`` (O, C/g, kh, kw) -> (m, O, OH, OW).

    ``padding`` is ``(pad_h, pad_w)`` on both sides; the arithmetic is
    :func:`neurohw.floatsem.correlate2d` (one implementation for all float code).
    """
    pads = (padding[0], padding[0], padding[1], padding[1])
    return floatsem.correlate2d(x.reshape((x.shape[0],) + tuple(shape)), np.asarray(w, np.float64),
                                stride, pads, dilation, groups)


def apply_linear(node, x: np.ndarray, in_shape: Sequence[int], where: str = "node") -> np.ndarray:
    """Apply one stateless NIR node to a batch ``x`` of shape ``(m, *in_shape)`` (float64).

    The semantics are :mod:`neurohw.floatsem`'s (shared with the reference
    simulator); Delay nodes are the identity here (their timing is handled per path).
    """
    return floatsem.stateless_op(where, node, tuple(in_shape)).apply(x)


@dataclass
class Path:
    """One chain of stateless nodes from ``src`` (Input or neuron) into neuron ``dst``.

    ``ops`` are node names in data-flow order.  Filled by :func:`analyze`:
    ``kind`` is ``"dense"`` (``A`` is ``(n_dst, n_src)``), ``"conv"`` or
    ``"pool"`` (``conv`` holds the float kernel and geometry);
    ``bias`` is the constant part ``(n_dst,)``; ``delay_s`` per output
    neuron (seconds) or ``None``.
    """

    src: str
    dst: str
    ops: List[str]
    kind: str = "dense"
    A: Optional[np.ndarray] = None
    conv: Optional[dict] = None
    bias: Optional[np.ndarray] = None
    delay_s: Optional[np.ndarray] = None

    @property
    def name(self) -> str:
        return "->".join([self.src] + self.ops + [self.dst])


@dataclass
class FloatGraph:
    """A flattened float NIR graph: neurons, inputs, outputs, shapes and paths."""

    nodes: Dict[str, object]
    edges: List[Tuple[str, str]]
    shapes: Dict[str, Tuple[int, ...]]  # output shape of every node
    inputs: List[str]
    neurons: List[str]
    outputs: Dict[str, str]  # Output node -> the neuron (or input) it reads
    paths: List[Path] = field(default_factory=list)

    def preds(self, name: str) -> List[str]:
        return [s for s, d in self.edges if d == name]


def _infer_shapes(nodes, edges, inputs, source) -> Dict[str, Tuple[int, ...]]:
    shapes: Dict[str, Tuple[int, ...]] = {}
    for name in inputs:
        types = getattr(nodes[name], "input_type", None) or {}
        val = next(iter(types.values()), None) if isinstance(types, dict) else None
        if val is None:
            raise ValidationError(f"{source}: node '{name}': Input has no shape (input_type)")
        shapes[name] = tuple(int(v) for v in np.asarray(val).reshape(-1))
    preds: Dict[str, List[str]] = {}
    for s, d in edges:
        preds.setdefault(d, []).append(s)
    changed = True
    while changed:
        changed = False
        for name, node in nodes.items():
            if name in shapes:
                continue
            known = [shapes[p] for p in preds.get(name, []) if p in shapes]
            if not known:
                continue
            in_shape = known[0]
            for other in known[1:]:
                if int(np.prod(other)) != int(np.prod(in_shape)):
                    raise ValidationError(
                        f"{source}: node '{name}': inputs of different sizes {in_shape} and {other}")
            where = f"{source}: node '{name}'"
            t = _tname(node)
            if t in LINEAR_TYPES:
                shapes[name] = tuple(floatsem.stateless_op(where, node, in_shape).out_shape)
            else:
                shapes[name] = tuple(in_shape)
            changed = True
    missing = [n for n in nodes if n not in shapes]
    if missing:
        raise ValidationError(f"{source}: node '{missing[0]}' is not reachable from an Input")
    return shapes


def analyze(graph, source: str = "graph") -> FloatGraph:
    """Flatten ``graph`` (a float :class:`nir.NIRGraph`) into neurons and affine paths.

    The graph is checked first by :func:`neurohw.validate.validate_float_graph`
    (``chip=True``).  Raises :class:`ValidationError` naming the node for
    anything the chip cannot run: unsupported node types, stateless cycles, an Output fed by a
    stateless node, Delay nodes anywhere but just before a neuron.
    """
    from ..nirgraph import flatten_graph
    from ..validate import CHIP_NODE_TYPES, validate_float_graph

    # every check that needs no chip profile, before any work (one-line errors)
    validate_float_graph(graph, source, chip=True, supported=CHIP_NODE_TYPES)
    nodes, edges = flatten_graph(graph)
    for name, node in nodes.items():
        t = _tname(node)
        if t not in NEURON_TYPES + LINEAR_TYPES + ("Input", "Output"):
            raise ValidationError(
                f"{source}: node '{name}': NIR node type {t} is not supported "
                f"(supported: Input, Output, {', '.join(LINEAR_TYPES)}, {', '.join(NEURON_TYPES)})")
    inputs = [n for n, v in nodes.items() if _tname(v) == "Input"]
    if not inputs:
        raise ValidationError(f"{source}: the graph has no Input node")
    shapes = _infer_shapes(nodes, edges, inputs, source)
    neurons = [n for n, v in nodes.items() if _tname(v) in NEURON_TYPES]
    preds: Dict[str, List[str]] = {}
    for s, d in edges:
        preds.setdefault(d, []).append(s)
    outputs: Dict[str, str] = {}
    for name, node in nodes.items():
        if _tname(node) != "Output":
            continue
        ps = preds.get(name, [])
        if len(ps) != 1:
            raise ValidationError(f"{source}: node '{name}': an Output needs exactly one input, has {len(ps)}")
        src = ps[0]
        while _tname(nodes[src]) == "Flatten":
            (src,) = preds[src]
        if _tname(nodes[src]) in LINEAR_TYPES:
            raise ValidationError(
                f"{source}: node '{name}': Output reads {_tname(nodes[src])} '{src}' directly; a chip "
                f"reads neurons, so end the network with a neuron layer (e.g. LI or LIF)")
        outputs[name] = src

    def walk(name: str, stack: Tuple[str, ...]) -> List[Tuple[str, List[str]]]:
        found = []
        for p in preds.get(name, []):
            t = _tname(nodes[p])
            if t == "Input" or t in NEURON_TYPES:
                found.append((p, []))
            elif t in LINEAR_TYPES:
                if p in stack:
                    raise ValidationError(f"{source}: node '{p}': a cycle of stateless nodes "
                                          f"(every loop must pass through a neuron)")
                found.extend((s, ops + [p]) for s, ops in walk(p, stack + (p,)))
            else:
                raise ValidationError(f"{source}: node '{p}': {t} cannot feed a neuron")
        return found

    fg = FloatGraph(nodes=nodes, edges=edges, shapes=shapes, inputs=inputs, neurons=neurons,
                    outputs=outputs)
    for dst in neurons:
        for src, ops in walk(dst, (dst,)):
            if not ops:
                raise ValidationError(
                    f"{source}: edge {src} -> {dst}: neurons connect through a weighted node "
                    f"(Affine/Linear/Conv/Scale); a direct edge has no chip equivalent")
            path = Path(src, dst, ops)
            _compose(fg, path, source)
            fg.paths.append(path)
    return fg


def _compose(fg: FloatGraph, path: Path, source: str) -> None:
    """Fill ``path.kind``, ``A``/``conv``, ``bias`` and ``delay_s``."""
    nodes = fg.nodes
    ops = list(path.ops)
    delays = [o for o in ops if _tname(nodes[o]) == "Delay"]
    if delays:
        if len(delays) > 1:
            raise ValidationError(f"{source}: path {path.name}: more than one Delay node")
        d = delays[0]
        after = ops[ops.index(d) + 1:]
        if any(_tname(nodes[o]) not in ("Flatten",) for o in after):
            raise ValidationError(
                f"{source}: node '{d}': a Delay must sit just before a neuron layer "
                f"(after the weights), as chip delays are per synapse")
        delay = _arr(nodes[d].delay, f"{source}: node '{d}'", "delay")
        n_out = int(np.prod(fg.shapes[d]))
        if delay.size not in (1, n_out):
            raise ValidationError(f"{source}: node '{d}': delay has {delay.size} entries, expected {n_out}")
        if np.any(delay < 0):
            raise ValidationError(f"{source}: node '{d}': delay={delay.min()} s is negative")
        path.delay_s = np.broadcast_to(delay.reshape(-1), (n_out,)).copy()
        ops = [o for o in ops if o != d]
    core = [o for o in ops if _tname(nodes[o]) not in ("Flatten",)]
    in_shape = fg.shapes[path.src]
    n_in = int(np.prod(in_shape))
    n_out = int(np.prod(fg.shapes[path.dst]))
    where = f"{source}: path {path.name}"
    # a single convolution or pooling keeps its structure (a Conv on the chip) when its
    # padding is symmetric (an even kernel with padding="same" pads one side more)
    if len(core) == 1 and _tname(nodes[core[0]]) in ("Conv2d", "SumPool2d", "AvgPool2d") \
            and len(in_shape) == 3 and not delays and ops[0] == core[0]:
        op = floatsem.stateless_op(f"{source}: node '{core[0]}'", nodes[core[0]], in_shape)
        if op.symmetric_padding is not None:
            out_shape = fg.shapes[core[0]]
            path.kind = "conv" if op.kind == "Conv2d" else "pool"
            path.conv = dict(weight=op.weight, input_shape=tuple(in_shape), stride=op.stride,
                             padding=op.symmetric_padding, dilation=op.dilation, groups=op.groups,
                             out_shape=tuple(out_shape))
            path.bias = (np.zeros(out_shape) + op.bias[:, None, None]).reshape(-1)
            return
    # a pool followed by a conv is one strided conv with a larger kernel (quantize/compose.py)
    composed = None if delays else compose.pool_then_conv(nodes, ops, in_shape, source)
    if composed is not None:
        path.kind = "conv"
        path.conv, path.bias = composed
        return
    # anything else becomes one dense matrix, found by probing the affine map
    if n_in * n_out > _MAX_COMPOSED:
        raise ValidationError(
            f"{where}: composing {len(core)} stateless nodes into one {n_out}x{n_in} matrix "
            f"exceeds {_MAX_COMPOSED} entries; insert a neuron layer between them")

    shape, chain = in_shape, []
    for o in ops:
        chain.append(floatsem.stateless_op(f"{source}: node '{o}'", nodes[o], shape))
        shape = chain[-1].out_shape

    def run_ops(x):
        for op in chain:
            x = op.apply(x)
        return x.reshape(x.shape[0], -1)

    b = run_ops(np.zeros((1,) + tuple(in_shape)))[0]
    cols = []
    chunk = max(1, min(n_in, 4_000_000 // max(n_out, n_in, 1)))  # chunk x n_in probe <= 32 MB
    for start in range(0, n_in, chunk):
        eye = np.zeros((min(chunk, n_in - start), n_in))
        eye[np.arange(eye.shape[0]), start + np.arange(eye.shape[0])] = 1.0
        cols.append(run_ops(eye.reshape((-1,) + tuple(in_shape))) - b)
    path.kind = "dense"
    path.A = np.concatenate(cols, axis=0).T.copy()  # (n_out, n_in)
    path.bias = b
