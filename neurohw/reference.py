"""Float reference simulator for NIR graphs, with an explicit time step ``dt``.

:func:`simulate` runs any float NIR graph (NIR 1.0) for ``T`` steps of ``dt``
seconds, batched, in numpy ``float64`` (no PyTorch here).  It is the
"reference" of ``DESIGN.md``: what the float network does, to compare the
quantized integer emulation against.  ``docs/reference-sim.md`` explains every
choice and how snnTorch and Norse differ from it and from each other.

Node semantics (forward Euler at ``dt``; ``x`` is the node's input at step
``t``, the sum over its incoming edges; all parameters broadcast elementwise).
The stateless nodes are :mod:`neurohw.floatsem` (shared with the quantizer);
with ``source=`` the graph is first read with a producer's conventions
(:func:`neurohw.sources.apply_source`), whose per-node
:class:`~neurohw.sources.NeuronRule` may replace the reset below by
subtraction, snnTorch's reset delay or Sinabs's multi-spike
(``docs/reference-sim.md``).

* ``Input``: row ``t`` of the given input.  ``Output``, ``Identity``: ``x``.
* ``Affine``: ``W x + b``; ``Linear``: ``W x``; ``Scale``: ``s * x``.
* ``Conv1d``/``Conv2d``: PyTorch's cross-correlation (``weight`` is
  ``(C_out, C_in/groups, k...)``), integer or ``"same"``/``"valid"`` zero
  padding, stride, dilation, groups, plus ``bias`` per output channel.
* ``SumPool2d``: window sums with zero padding; ``AvgPool2d``: the same sums
  divided by the window area (PyTorch's default ``count_include_pad=True``).
* ``Flatten``: ``start_dim``/``end_dim`` index the unbatched shape, as in NIR.
* ``Delay``: ``y(t) = x(t - k)`` with ``k = delay / dt`` steps per element
  (must be a whole number of steps); zero before the first input arrives.
* ``Threshold``: ``z = x > threshold`` (strict).
* ``I``: ``v += dt * r * x``; output ``v``.
* ``LI``: ``v += dt / tau * (v_leak - v + r * x)``; output ``v``.
* ``IF``: ``v += dt * r * x``; then ``z = v > v_threshold`` and
  ``v = v_reset`` where ``z``; output ``z``.
* ``LIF``: ``v += dt / tau * (v_leak - v + r * x)``; then spike and reset as IF.
* ``CubaLI``: ``i += dt / tau_syn * (-i + w_in * x)``, then
  ``v += dt / tau_mem * (v_leak - v + r * i)`` with the *updated* ``i``;
  output ``v``.  ``CubaLIF``: the same, then spike and reset ``v`` (not ``i``).

neurohw's float-side extension (``metadata["neurohw"]`` on ``LIF``/``CubaLIF``,
:mod:`neurohw.neuronext`, ``docs/neuron-models.md``): ``model: "elif"`` adds
``dt / tau * Delta_T * exp((v_prev - theta_RH) / Delta_T)`` (``v_prev`` the
step's starting ``v``) to the integration; then ``v = max(v, lower_bound)``;
then, during the ``round(refractory_s / dt)`` steps after a spike (``refractory_s``
one number or one per neuron),
``v = v_reset`` and no spike (a ``CubaLIF``'s current integrates as usual);
after the spike decision a ``trace`` decays by ``exp(-dt / tau_s)`` and
adds ``scale`` (additive) or becomes ``scale`` (multiplicative) on a spike.

Within a step, per neuron: integrate, compare (``v > v_threshold``, strict,
as every NIR docstring writes it), reset.  The recorded ``v`` is the value
after the reset, i.e. the state carried into the next step.  With snnTorch's
export (``dt = 1e-4``, ``tau = dt / (1 - beta)``, ``r = tau / dt``,
``w_in = tau_syn / dt``) these are exactly ``snn.Leaky`` / ``snn.Synaptic``
with ``reset_mechanism="zero"``: ``v = beta v + x`` and
``i = alpha i + x; v = beta v + i``.

Evaluation order and recurrence: nested ``NIRGraph`` nodes are inlined
(:func:`neurohw.nirgraph.flatten_graph`, names become ``"sub.node"``).  Every
cycle is cut at one *back edge* (:func:`graph_schedule`): the edge leaving the
last neuron on the cycle, as a depth-first search from the Input nodes meets
it (the closing edge if the cycle has no neuron).  Every other edge delivers
within the same step.  Nodes run once per step in a topological order of the
remaining acyclic graph, so a purely feed-forward graph has no latency at all
(input row ``t`` reaches the last layer at step ``t``), and a back edge
delivers at step ``t`` its source's output of step ``t - 1`` (at step 0: no
spike, or the initial ``v`` of a non-spiking neuron).  The weights (and
biases) inside a loop run in the current step on the delayed spikes: for
``LIF -> Affine -> LIF`` that is ``W z(t-1) + b``, exactly snnTorch's
``RLeaky``/``RSynaptic`` (``recurrent(spk_prev)``, bias included at step 0).
Membranes and currents start at 0 (``start_at_leak=True``: ``v = v_leak``,
Norse's initial state).  (The
chip's one-step latency per connection is *not* modelled here; that is the
quantizer's and the emulator's business.)

Invalid input raises :class:`~neurohw.errors.ValidationError` with one line
naming the node and parameter: an unsupported node type, mismatched shapes,
a non-finite parameter or input value, ``dt <= 0``, a non-positive time
constant, a delay that is not a whole number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import floatsem
from .errors import MissingDependencyError, ValidationError
from .ir import find_cycle
from .neuronext import ELIF_EXP_CAP, NeuronExt, neuron_ext
from .nirgraph import flatten_graph
from .sources import CHIP_RULE, NeuronRule, apply_source
from .validate import validate_float_graph

__all__ = ["ReferenceRun", "simulate", "RECORDABLE", "SUPPORTED_NODES", "graph_schedule"]

RECORDABLE = ("spikes", "v", "i", "values", "trace")
SUPPORTED_NODES = ("Input", "Output", "Identity", "Affine", "Linear", "Scale", "Conv1d", "Conv2d",
                   "SumPool2d", "AvgPool2d", "Flatten", "Delay", "Threshold", "I", "LI", "IF",
                   "LIF", "CubaLI", "CubaLIF")
_SPIKING = ("IF", "LIF", "CubaLIF", "Threshold")
_STATEFUL_V = ("I", "LI", "IF", "LIF", "CubaLI", "CubaLIF")
_STATEFUL_I = ("CubaLI", "CubaLIF")

Shape = Tuple[int, ...]


@dataclass
class ReferenceRun:
    """What :func:`simulate` recorded; every array is ``float64`` or ``int8``, shape ``(B, T, n)``.

    ``n`` is the node's number of elements, flattened in row-major order of
    its unbatched output shape (``shapes[name]``, e.g. ``(C, H, W)``), the
    layout of the emulator's run output.

    * ``outputs``: each ``Output`` node's value, ``float64`` (always recorded);
    * ``spikes``: each spiking node (``IF``, ``LIF``, ``CubaLIF``, ``Threshold``), ``int8`` 0/1;
    * ``v``: membrane potential of each neuron node (``I``, ``LI``, ``IF``,
      ``LIF``, ``CubaLI``, ``CubaLIF``) after the step's reset, ``float64``;
    * ``i``: synaptic current of ``CubaLI``/``CubaLIF`` nodes, ``float64``;
    * ``values``: every node's output (with ``record`` including ``"values"``);
    * ``trace``: the float spike trace of each node with ``metadata["neurohw"]["trace"]``
      (:mod:`neurohw.neuronext`), after the step's spikes, ``float64``.
    """

    dt: float
    num_steps: int
    batch_size: int
    shapes: Dict[str, Shape]
    order: Tuple[str, ...]
    back_edges: Tuple[Tuple[str, str], ...]
    outputs: Dict[str, np.ndarray] = field(default_factory=dict)
    spikes: Dict[str, np.ndarray] = field(default_factory=dict)
    v: Dict[str, np.ndarray] = field(default_factory=dict)
    i: Dict[str, np.ndarray] = field(default_factory=dict)
    values: Dict[str, np.ndarray] = field(default_factory=dict)
    trace: Dict[str, np.ndarray] = field(default_factory=dict)

    def spike_counts(self, name: str) -> np.ndarray:
        """Spike counts of node ``name`` over all steps, ``int64`` ``(B, n)``."""
        if name not in self.spikes:
            raise ValidationError(f"node '{name}': no spikes recorded "
                                  f"(spiking nodes: {', '.join(self.spikes) or 'none'})")
        return self.spikes[name].sum(axis=1, dtype=np.int64)


# ---------------------------------------------------------------------------
# parameter helpers
# ---------------------------------------------------------------------------
def _type(node) -> str:
    return type(node).__name__


def _where(name: str, node) -> str:
    return f"node '{name}' ({_type(node)})"


def _param(name: str, node, key: str, required: bool = True, default=None) -> Optional[np.ndarray]:
    """A node parameter as a finite float64 array (raises naming node and parameter)."""
    return floatsem.param(_where(name, node), node, key, required, default)


def _positive(name, node, key) -> np.ndarray:
    return floatsem.positive(_where(name, node), node, key)


_strip = floatsem.strip


def _node_shape(value) -> Optional[Shape]:
    if value is None:
        return None
    arr = np.asarray(value).reshape(-1)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        return None
    return tuple(int(v) for v in arr)


# ---------------------------------------------------------------------------
# compiled nodes: each has out_shape and step(x, t) -> y on (B, *shape) arrays
# ---------------------------------------------------------------------------
class _Node:
    spiking = False
    has_v = False
    has_i = False

    def __init__(self, name: str, node, in_shape: Optional[Shape]):
        self.name = name
        self.kind = _type(node)
        self.in_shape = in_shape
        self.out_shape: Shape = in_shape  # overridden where it differs

    def where(self) -> str:
        return f"node '{self.name}' ({self.kind})"

    def reset(self, batch: int, start_at_leak: bool = False) -> None:
        """Set up state for a batch of ``batch`` sequences."""

    def initial_output(self, batch: int) -> np.ndarray:
        """What a back edge from this node delivers at step 0 (its output "at step -1")."""
        return np.zeros((batch,) + tuple(self.out_shape))

    def step(self, x: np.ndarray, t: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class _PassThrough(_Node):
    def step(self, x, t):
        return x


class _Input(_Node):
    def __init__(self, name, node, in_shape):
        super().__init__(name, node, in_shape)
        shape = None
        types = getattr(node, "input_type", None)
        if isinstance(types, dict) and types:
            shape = _node_shape(next(iter(types.values())))
        if shape is None:
            raise ValidationError(f"{self.where()}: input_type has no shape")
        self.out_shape = shape
        self.data: Optional[np.ndarray] = None

    def step(self, x, t):
        return self.data[:, t]


class _Stateless(_Node):
    """Affine, Linear, Scale, Conv1d/2d, Sum/AvgPool2d, Flatten: :mod:`neurohw.floatsem` ops."""

    def __init__(self, name, node, in_shape):
        super().__init__(name, node, in_shape)
        self.op = floatsem.stateless_op(self.where(), node, in_shape)
        self.in_shape, self.out_shape = self.op.in_shape, self.op.out_shape

    def step(self, x, t):
        return self.op.apply(x)


class _Elementwise(_Node):
    """A node whose parameters broadcast over its input (shape kept)."""

    def _fit(self, params: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        shapes = {k: v.shape for k, v in params.items()}
        full = max(shapes.values(), key=lambda s: int(np.prod(s)) if s else 1)
        in_shape = self.in_shape
        if in_shape is None:  # no forward input (only back edges): params give the shape
            in_shape = full
        out = {}
        for k, v in params.items():
            if v.shape == tuple(in_shape) or v.size == 1:
                out[k] = v if v.size != 1 else v.reshape(())
            elif _strip(v.shape) == _strip(in_shape):
                out[k] = v.reshape(in_shape)
            else:
                raise ValidationError(f"{self.where()}: parameter {k} has shape {v.shape}, "
                                      f"input has shape {tuple(in_shape)}")
        self.in_shape = self.out_shape = tuple(in_shape)
        return out


class _Threshold(_Elementwise):
    spiking = True

    def __init__(self, name, node, in_shape):
        super().__init__(name, node, in_shape)
        self.th = self._fit({"threshold": _param(name, node, "threshold")})["threshold"]

    def step(self, x, t):
        return (x > self.th).astype(np.float64)


class _Neuron(_Elementwise):
    """I, LI, IF, LIF, CubaLI, CubaLIF: forward Euler at ``dt`` (see the module docstring)."""

    has_v = True

    def __init__(self, name, node, in_shape, dt: float, rule=None):
        super().__init__(name, node, in_shape)
        self.rule = rule if rule is not None else CHIP_RULE
        kind = self.kind
        p: Dict[str, np.ndarray] = {"r": _param(name, node, "r")}
        if kind in ("LI", "LIF"):
            p["tau"] = _positive(name, node, "tau")
        if kind in ("CubaLI", "CubaLIF"):
            p["tau_syn"] = _positive(name, node, "tau_syn")
            p["tau_mem"] = _positive(name, node, "tau_mem")
            p["w_in"] = _param(name, node, "w_in", default=1.0)
        if kind in ("LI", "LIF", "CubaLI", "CubaLIF"):
            p["v_leak"] = _param(name, node, "v_leak")
        else:
            p["v_leak"] = np.zeros(1)
        self.spiking = kind in ("IF", "LIF", "CubaLIF")
        if self.spiking:
            p["v_threshold"] = _param(name, node, "v_threshold")
            p["v_reset"] = _param(name, node, "v_reset", default=0.0)
        self.has_i = kind in _STATEFUL_I
        p = self._fit(p)
        # v += a_v * (v_leak - v + r * x)  ==  v = (1 - a_v) v + a_v v_leak + a_v r x
        if kind in ("I", "IF"):
            self.keep_v, self.gain, self.leak = 1.0, dt * p["r"], 0.0
        else:
            a_v = dt / (p["tau"] if "tau" in p else p["tau_mem"])
            self.keep_v, self.gain, self.leak = 1.0 - a_v, a_v * p["r"], a_v * p["v_leak"]
        if self.has_i:
            a_i = dt / p["tau_syn"]
            self.keep_i, self.gain_i = 1.0 - a_i, a_i * p["w_in"]
        if self.spiking:
            self.th, self.v_reset = p["v_threshold"], p["v_reset"]
        self.v_leak = p["v_leak"]
        self.v = self.i = self.z = None
        # neurohw's float-side extension (refractory, lower bound, trace, ELIF)
        self.ext = neuron_ext(node, self.where()) if kind in ("LIF", "CubaLIF") else NeuronExt()
        steps = self.ext.refractory_steps(dt)  # an int, or per neuron
        if isinstance(steps, np.ndarray):
            if steps.size != int(np.prod(self.out_shape)):
                raise ValidationError(
                    f"{self.where()}: metadata neurohw.refractory_s has {steps.size} values, the "
                    f"population has {int(np.prod(self.out_shape))} neurons {tuple(self.out_shape)}")
            steps = steps.reshape(tuple(self.out_shape))
        self.refr_steps = steps
        self.has_trace = self.ext.trace is not None
        if self.has_trace:
            self.trace_keep = float(np.exp(-dt / self.ext.trace.tau_s))
        if self.ext.is_elif:
            self.elif_a = dt / p["tau" if "tau" in p else "tau_mem"]
            self.elif_delta = self.ext.delta_t * p["v_threshold"]
            self.elif_theta = self.ext.theta_rh * p["v_threshold"]
        self.ref = self.x_trace = None

    def reset(self, batch, start_at_leak=False):
        shape = (batch,) + tuple(self.out_shape)
        self.v = np.zeros(shape)
        if start_at_leak:
            self.v = self.v + self.v_leak
        self.i = np.zeros(shape) if self.has_i else None
        self.z = np.zeros(shape) if self.spiking else None
        self.ref = np.zeros(shape, np.int64) if np.any(np.asarray(self.refr_steps) > 0) else None
        self.x_trace = np.zeros(shape) if self.has_trace else None

    def initial_output(self, batch):
        if self.spiking:
            return np.zeros((batch,) + tuple(self.out_shape))
        return self.v.copy()

    def step(self, x, t):
        rule = self.rule
        if rule.late_check:
            self.v_prev = self.v
        delayed = self.spiking and rule.reset_delay and self.z is not None
        if delayed and rule.reset == "zero" and not rule.drop_step:
            # snnTorch Leaky: the pre-reset membrane is zeroed before the decay
            self.v = np.where(self.z > 0, self.v_reset, self.v)
        if self.has_i:
            self.i = self.keep_i * self.i + self.gain_i * x
            x = self.i
        v_old = self.v
        self.v = self.keep_v * self.v + self.leak + self.gain * x
        if not self.spiking:
            return self.v
        ext = self.ext
        if ext.is_elif:  # forward Euler on the step's starting v (docs/neuron-models.md)
            arg = np.minimum((v_old - self.elif_theta) / self.elif_delta, ELIF_EXP_CAP)
            self.v = self.v + self.elif_a * self.elif_delta * np.exp(arg)
        if ext.lower_bound is not None:
            self.v = np.maximum(self.v, ext.lower_bound)
        if self.ref is not None:  # refractory: v held at v_reset, no spike
            self.v = np.where(self.ref > 0, self.v_reset, self.v)
        if delayed:
            if rule.reset == "subtract":  # snnTorch: the threshold comes off one step late
                self.v = self.v - self.z * self.th
            elif rule.drop_step:  # Synaptic/RLeaky: the step after a spike ends at v_reset
                self.v = np.where(self.z > 0, self.v_reset, self.v)
                if rule.drop_current and self.has_i:
                    self.i = np.where(self.z > 0, 0.0, self.i)
        cmp = self.v
        if rule.late_check:  # snnTorch subtract, no delay: a still-high membrane pays twice
            cmp = self.v - (self.v_prev > self.th) * self.th
        fired = cmp >= self.th if rule.threshold_ge else cmp > self.th
        if rule.multi_spike:  # Sinabs MultiSpike: trunc(v / thr) spikes when v > 0
            z = np.where(fired & (self.v > 0), np.trunc(self.v / self.th), 0.0)
        else:
            z = fired.astype(np.float64)
        if not rule.reset_delay:
            if rule.reset == "subtract":
                self.v = self.v - z * self.th
            else:
                self.v = np.where(fired, self.v_reset, self.v)
        self.z = z
        if self.ref is not None:
            self.ref = np.where(z > 0, self.refr_steps, np.maximum(self.ref - 1, 0))
        if self.has_trace:
            tr = ext.trace
            self.x_trace = self.x_trace * self.trace_keep
            if tr.mode == "additive":
                self.x_trace = self.x_trace + tr.scale * z
            else:
                self.x_trace = np.where(z > 0, tr.scale, self.x_trace)
        return self.z


class _Delay(_Elementwise):
    def __init__(self, name, node, in_shape, dt: float):
        super().__init__(name, node, in_shape)
        d = self._fit({"delay": _param(name, node, "delay")})["delay"]
        steps = d / dt
        k = np.round(steps)
        if (d < 0).any():
            raise ValidationError(f"{self.where()}: delay must be >= 0 (min {d.min():g} s)")
        if not np.allclose(steps, k, rtol=0, atol=1e-6):
            bad = steps.reshape(-1)[np.argmax(np.abs(steps - k).reshape(-1))]
            raise ValidationError(f"{self.where()}: delay {bad * dt:g} s is {bad:g} steps of "
                                  f"dt={dt:g} s; it must be a whole number of steps")
        self.k = np.broadcast_to(k.astype(np.int64), self.out_shape).reshape(-1)
        self.depth = int(self.k.max(initial=0)) + 1
        self.buf = None

    def reset(self, batch, start_at_leak=False):
        n = int(np.prod(self.out_shape))
        self.buf = np.zeros((batch, self.depth, n))
        self.cols = np.arange(n)

    def step(self, x, t):
        B = x.shape[0]
        self.buf[:, t % self.depth] = x.reshape(B, -1)
        y = self.buf[:, (t - self.k) % self.depth, self.cols]
        y = np.where(self.k <= t, y, 0.0)  # nothing has arrived yet
        return y.reshape((B,) + self.out_shape)


_BUILDERS: Dict[str, Callable[..., _Node]] = {
    "Output": _PassThrough,
    "Identity": _PassThrough,
    "Affine": _Stateless,
    "Linear": _Stateless,
    "Scale": _Stateless,
    "Conv1d": _Stateless,
    "Conv2d": _Stateless,
    "SumPool2d": _Stateless,
    "AvgPool2d": _Stateless,
    "Flatten": _Stateless,
    "Threshold": _Threshold,
}
_NEEDS_DT = {"Delay": _Delay, **{k: _Neuron for k in _STATEFUL_V}}


# ---------------------------------------------------------------------------
# scheduling
# ---------------------------------------------------------------------------
def graph_schedule(nodes: Mapping[str, Any], edges: Sequence[Tuple[str, str]]
                   ) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Evaluation order and back edges of a flat graph (see the module docstring).

    Cycles are found one at a time by a depth-first search from the ``Input``
    nodes (then from any node not yet reached), in the order of ``nodes``,
    successors in edge order.  Each is cut at the edge leaving the *last
    neuron* on the cycle (walking from where the search entered it), so what
    travels around a loop is a neuron's output of the previous step, and the
    stateless nodes of the loop (weights, biases) run in the current step;
    a cycle without a neuron is cut at its closing edge.  Returns
    ``(order, back_edges)``: a topological order of the graph without its back
    edges (Kahn's algorithm, ties broken by the order of ``nodes``).
    """
    names = list(nodes)
    starts = [n for n in names if _type(nodes[n]) == "Input"]
    back: List[Tuple[str, str]] = []
    while True:
        cut = set(back)
        succ: Dict[str, List[str]] = {n: [] for n in names}
        for s, d in edges:
            if (s, d) not in cut and d not in succ[s]:
                succ[s].append(d)
        cycle = find_cycle(names, succ, starts)
        if cycle is None:
            break
        ring = list(zip(cycle, cycle[1:] + cycle[:1]))
        neuron_edges = [e for e in ring if _type(nodes[e[0]]) in _STATEFUL_V]
        back.append(neuron_edges[-1] if neuron_edges else ring[-1])
    cut = set(back)
    indeg = {n: 0 for n in names}
    succ = {n: [] for n in names}
    for s, d in edges:
        if (s, d) not in cut:
            indeg[d] += 1
            succ[s].append(d)
    rank = {n: i for i, n in enumerate(names)}
    ready = sorted((n for n in names if indeg[n] == 0), key=rank.__getitem__)
    order: List[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for d in succ[n]:
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
                ready.sort(key=rank.__getitem__)
    return order, back


@dataclass
class _Compiled:
    nodes: Dict[str, _Node]
    order: List[str]
    preds: Dict[str, List[Tuple[str, bool]]]  # (source, is_back_edge)
    back_edges: List[Tuple[str, str]]
    inputs: List[str]


def _compile(graph, dt: float, rules: Optional[Mapping[str, NeuronRule]] = None) -> _Compiled:
    import nir

    if isinstance(graph, nir.NIRGraph):
        # edge lists (pairs of existing names, no duplicates) and node types, one-line errors
        validate_float_graph(graph, "graph", chip=False, supported=SUPPORTED_NODES, values=False)
        raw_nodes, edges = flatten_graph(graph)
    else:
        raise ValidationError(f"graph: expected a nir.NIRGraph, got {type(graph).__name__}")
    edges = [(str(s), str(d)) for s, d in edges]  # node types and edge ends checked above
    inputs = [n for n, node in raw_nodes.items() if _type(node) == "Input"]
    if not inputs:
        raise ValidationError("graph: no Input node")
    for s, d in edges:
        if _type(raw_nodes[d]) == "Input":
            raise ValidationError(f"edge ({s!r}, {d!r}): Input node '{d}' cannot receive an edge")
    order, back = graph_schedule(raw_nodes, edges)
    back_set = set(back)
    preds: Dict[str, List[Tuple[str, bool]]] = {n: [] for n in raw_nodes}
    for s, d in edges:
        preds[d].append((s, (s, d) in back_set))
    # Build nodes as soon as one incoming shape is known (the other edges are
    # checked afterwards); a node inside a loop may wait for its back-edge source.
    compiled: Dict[str, _Node] = {}
    pending = list(order)

    def build(name: str, in_shape: Optional[Shape]) -> None:
        node, kind = raw_nodes[name], _type(raw_nodes[name])
        if kind in _NEEDS_DT:
            if kind in _STATEFUL_V:
                compiled[name] = _Neuron(name, node, in_shape, dt, (rules or {}).get(name))
            else:
                compiled[name] = _NEEDS_DT[kind](name, node, in_shape, dt)
        else:
            compiled[name] = _BUILDERS[kind](name, node, in_shape)
        pending.remove(name)

    while pending:
        progressed = False
        for name in list(pending):
            node, kind = raw_nodes[name], _type(raw_nodes[name])
            if kind == "Input":
                compiled[name] = _Input(name, node, None)
                pending.remove(name)
                progressed = True
                continue
            if not preds[name]:
                raise ValidationError(f"node '{name}' ({kind}): no incoming edge and not an "
                                      f"Input node")
            known = [s for s, _ in preds[name] if s in compiled]
            if known:
                build(name, tuple(compiled[known[0]].out_shape))
                progressed = True
        if not progressed:  # only loops left: a node whose parameters give its shape starts
            name = next((n for n in pending if _type(raw_nodes[n])
                         in ("Scale", "Threshold", "Delay") + _STATEFUL_V), None)
            if name is None:
                name = pending[0]
                raise ValidationError(f"node '{name}' ({_type(raw_nodes[name])}): its input "
                                      f"shape cannot be determined (it lies on a loop of "
                                      f"nodes without shape parameters)")
            build(name, None)
    for s, d in edges:
        a, b = compiled[s].out_shape, compiled[d].in_shape
        if _strip(a) != _strip(b):
            what = "recurrent edge" if (s, d) in back_set else "edge"
            raise ValidationError(f"node '{d}' ({compiled[d].kind}): {what} from '{s}' carries "
                                  f"shape {tuple(a)}, the node takes {tuple(b)}")
    return _Compiled(compiled, order, preds, back, inputs)


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------
def _prepare_input(comp: _Compiled, x) -> Dict[str, np.ndarray]:
    if not isinstance(x, Mapping):
        if len(comp.inputs) != 1:
            raise ValidationError(f"x: graph has {len(comp.inputs)} Input nodes "
                                  f"({', '.join(comp.inputs)}); give inputs as a dict by name")
        x = {comp.inputs[0]: x}
    unknown = sorted(set(x) - set(comp.inputs))
    if unknown:
        raise ValidationError(f"x: no Input node named {', '.join(map(str, unknown))}")
    out: Dict[str, np.ndarray] = {}
    bt = set()
    for name in comp.inputs:
        if name not in x:
            raise ValidationError(f"x: input for Input node '{name}' is missing")
        raw = x[name]
        if hasattr(raw, "detach"):
            raw = raw.detach().cpu().numpy()
        arr = np.asarray(raw)
        if arr.dtype.kind not in "biuf":
            raise ValidationError(f"x: input for node '{name}' has dtype {arr.dtype}; "
                                  f"expected numbers")
        shape = comp.nodes[name].out_shape
        n = int(np.prod(shape))
        nd = len(shape)
        if arr.ndim in (nd + 1, nd + 2) and tuple(arr.shape[arr.ndim - nd:]) == tuple(shape):
            lead = arr.shape[:arr.ndim - nd]
        elif arr.ndim in (2, 3) and arr.shape[-1] == n:
            lead = arr.shape[:-1]
        else:
            raise ValidationError(f"x: input for node '{name}' has shape {arr.shape}; expected "
                                  f"(T, *{shape}) or (B, T, *{shape}) (or flat (B, T, {n}))")
        if len(lead) == 1:
            lead = (1,) + lead
        if min(lead) < 1:
            raise ValidationError(f"x: input for node '{name}' has shape {arr.shape}: "
                                  f"batch and time must be >= 1")
        arr = arr.astype(np.float64).reshape(lead + tuple(shape))
        if not np.isfinite(arr).all():
            raise ValidationError(f"x: input for node '{name}' has non-finite values")
        out[name] = arr
        bt.add(lead)
    if len(bt) > 1:
        raise ValidationError(f"x: inputs differ in batch size or length: {sorted(bt)}")
    return out


def simulate(graph, x, dt: float, record: Iterable[str] = ("spikes",),
             progress: bool = False, start_at_leak: bool = False, source: Optional[str] = None,
             reset: Optional[str] = None, reset_delay: Optional[bool] = None,
             rules: Optional[Mapping[str, NeuronRule]] = None) -> ReferenceRun:
    """Run the float NIR ``graph`` for ``T`` steps of ``dt`` seconds (module docstring: semantics).

    ``graph``: a :class:`nir.NIRGraph` (nested graphs allowed).
    ``x``: what the Input node emits, ``(T, *in_shape)`` or ``(B, T, *in_shape)``
    (a flat ``(B, T, n)`` also works), any real dtype (spikes are 0/1); a dict
    by Input node name for graphs with several inputs.
    ``dt``: the time step in seconds, ``> 0`` -- the same ``dt`` the graph's
    time constants were exported for (snnTorch: ``1e-4``; Norse: its ``dt``
    argument, default ``1e-3``).
    ``record``: any of ``"spikes"``, ``"v"``, ``"i"``, ``"values"``
    (:data:`RECORDABLE`); ``Output`` nodes are always recorded.
    ``progress``: show a tqdm progress bar over the steps.
    ``start_at_leak``: start every membrane at its ``v_leak`` (Norse's initial
    state) instead of 0 (snnTorch's, and the chip's); currents start at 0.

    Returns a :class:`ReferenceRun` with ``(B, T, n)`` arrays.
    """
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValidationError(f"dt={dt!r} must be a number of seconds > 0") from None
    if not np.isfinite(dt) or dt <= 0:
        raise ValidationError(f"dt={dt} must be a finite number of seconds > 0")
    if isinstance(record, str):
        record = (record,)
    record = tuple(record)
    bad = sorted(set(record) - set(RECORDABLE))
    if bad:
        raise ValidationError(f"record: unknown variable(s) {', '.join(map(str, bad))}; "
                              f"use {', '.join(RECORDABLE)}")
    if source is not None or reset is not None or reset_delay is not None:
        conv = apply_source(graph, source or "nir", dt, reset=reset, reset_delay=reset_delay)
        graph, rules = conv.graph, conv.rules
        start_at_leak = start_at_leak or conv.start_at_leak
    comp = _compile(graph, dt, rules)
    data = _prepare_input(comp, x)
    B, T = next(iter(data.values())).shape[:2]
    nodes = comp.nodes
    for name in comp.inputs:
        nodes[name].data = data[name]
    for node in nodes.values():
        node.reset(B, start_at_leak=bool(start_at_leak))

    run = ReferenceRun(dt=dt, num_steps=T, batch_size=B,
                       shapes={k: tuple(int(s) for s in n.out_shape) for k, n in nodes.items()},
                       order=tuple(comp.order), back_edges=tuple(comp.back_edges))

    def alloc(names, dtype):
        return {k: np.zeros((B, T, int(np.prod(nodes[k].out_shape))), dtype) for k in names}

    run.outputs = alloc([k for k in comp.order if nodes[k].kind == "Output"], np.float64)
    if "spikes" in record:
        run.spikes = alloc([k for k in comp.order if nodes[k].spiking], np.int8)
    if "v" in record:
        run.v = alloc([k for k in comp.order if nodes[k].has_v], np.float64)
    if "i" in record:
        run.i = alloc([k for k in comp.order if nodes[k].has_i], np.float64)
    if "values" in record:
        run.values = alloc(comp.order, np.float64)
    if "trace" in record:
        run.trace = alloc([k for k in comp.order if getattr(nodes[k], "has_trace", False)],
                          np.float64)

    steps: Iterable[int] = range(T)
    if progress:
        try:
            from tqdm import tqdm
        except ImportError:
            raise MissingDependencyError("progress=True needs tqdm (pip install tqdm)") from None
        steps = tqdm(steps, desc="reference", unit="step")

    prev: Dict[str, np.ndarray] = {s: nodes[s].initial_output(B) for s, _ in comp.back_edges}
    cur: Dict[str, np.ndarray] = {}
    for t in steps:
        for name in comp.order:
            node = nodes[name]
            if node.kind == "Input":
                y = node.step(None, t)
            else:
                acc = None
                for src, is_back in comp.preds[name]:
                    val = prev[src] if is_back else cur[src]
                    val = val.reshape((B,) + tuple(node.in_shape))
                    acc = val if acc is None else acc + val
                y = node.step(acc, t)
            cur[name] = y
        for name in prev:
            prev[name] = cur[name]
        for name, arr in run.outputs.items():
            arr[:, t] = cur[name].reshape(B, -1)
        for name, arr in run.spikes.items():
            arr[:, t] = cur[name].reshape(B, -1)
        for name, arr in run.v.items():
            arr[:, t] = nodes[name].v.reshape(B, -1)
        for name, arr in run.i.items():
            arr[:, t] = nodes[name].i.reshape(B, -1)
        for name, arr in run.values.items():
            arr[:, t] = cur[name].reshape(B, -1)
        for name, arr in run.trace.items():
            arr[:, t] = nodes[name].x_trace.reshape(B, -1)
    return run
