"""Producer conventions: what a NIR file from snnTorch, Norse or Sinabs means.

NIR records the continuous-time ODE of each neuron, but the frameworks that
write it run their own discrete models, and a few of their choices do not fit
in NIR's fields (or are written differently from NIR's definition).  This
module is the one place that knows them; the float reference
(:func:`neurohw.reference.simulate`) and the quantizer
(:func:`neurohw.quantize.quantize`) both call :func:`apply_source`, which
returns a :class:`Convention`: a copy of the graph whose float fields mean
what NIR says at the chosen ``dt`` (forward Euler, see
``docs/reference-sim.md``), plus a :class:`NeuronRule` per spiking node for
what NIR cannot say (reset by subtraction, reset delay, ``>=`` comparison,
several spikes per step).

Per producer (installed versions; files under ``site-packages``):

``snntorch`` (1.0.0)
    ``snntorch/export_nir.py`` ``_extract_snntorch_module`` writes ``Leaky`` as
    ``LIF(tau = dt/(1-beta), r = tau/dt)`` and ``Synaptic`` as ``CubaLIF(tau_syn
    = dt/(1-alpha), tau_mem = dt/(1-beta), r = tau_mem/dt, w_in = tau_syn/dt)``
    with ``dt = 1e-4`` fixed: the per-step model ``v = beta v + x`` is exact
    at ``dt = 1e-4``; for another ``dt`` every time constant is scaled by
    ``dt / 1e-4`` so the per-step network stays the same.  The reset is not
    exported.  snnTorch's defaults are ``reset_mechanism="subtract"`` and
    ``reset_delay=True`` (``_neurons/leaky.py`` ``Leaky.__init__``,
    ``_neurons/synaptic.py``):

    * subtract, ``reset_delay=True`` (``_base_sub``): ``v_t = beta v_{t-1} +
      x_t - thr z_{t-1}`` (the threshold is taken off one step late, after
      the decay);
    * subtract, ``reset_delay=False``: ``v -= thr`` right after the spike
      (``forward``: ``mem - do_reset * threshold``);
    * zero, ``reset_delay=True``: ``Leaky`` zeroes ``mem`` before the next
      step's decay (``_base_zero``): the same spikes as NIR's reset;
      ``Synaptic``/``RSynaptic``/``RLeaky`` subtract the whole next step's
      update (``_base_zero``: ``mem - reset * base_fn``), so the step after a
      spike ends with ``v = 0`` (``RSynaptic`` also zeroes ``syn``).  In NIR
      ``RLeaky``/``RSynaptic`` are a ``LIF``/``CubaLIF`` on a cycle.

``norse`` (1.1.0)
    ``norse/torch/utils/export_nir.py`` ``_extract_norse_module`` writes
    ``tau = dt / tau_inv`` (the time constant times ``dt``): the true one is
    ``tau / dt``.  ``LIFCell`` (-> ``CubaLIF``) jumps the current by the input
    (``functional/lif.py`` ``lif_feed_forward_step``), i.e. ``w_in =
    tau_syn/dt``, but ``w_in = 1`` is written; ``IAFCell`` (-> ``IF``) adds
    ``x`` per step (``functional/iaf.py``), i.e. ``r = 1/dt``, but ``r = 1`` is
    written.  Membranes start at ``v_leak`` (``initial_state``).  Norse's
    ``dt`` is not in the file: pass it (default ``1e-3``, Norse's own).

``sinabs`` (3.1.3)
    ``sinabs/nir.py`` ``_extract_sinabs_module`` writes ``IAF`` as ``IF(r=1)``,
    ``LIF`` as ``LIF(tau=tau_mem, r=1)`` and ``ExpLeak`` as ``LI(tau=tau_mem,
    r=1)``, with ``tau_mem`` in *steps*.  ``layers/functional/lif.py``
    ``lif_forward_single`` runs ``v = alpha v + (1-alpha) x`` (``LIF``,
    ``norm_input=True``) or ``v = alpha v + x`` (``ExpLeak``, ``IAF``:
    ``norm_input=False``), ``alpha = exp(-1/tau_mem)``, whatever ``dt``; so
    ``IF``'s ``r`` becomes ``r/dt``, ``tau`` becomes ``dt/(1 - alpha)``, and
    ``LI``'s ``r`` becomes ``r/(1 - alpha)``.  The default ``spike_fn`` is
    ``MultiSpike`` (``activation/spike_generation.py``: ``trunc(v/thr)`` spikes
    when ``v > 0``, i.e. from ``v >= thr`` on) and the default ``reset_fn`` is
    ``MembraneSubtract`` (``activation/reset_mechanism.py``: ``v -= spikes *
    thr``).

``nir``
    The file as written: NIR's reset to ``v_reset``, strict ``v > v_threshold``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from .errors import ValidationError

__all__ = ["SOURCES", "RESETS", "NeuronRule", "CHIP_RULE", "Convention", "apply_source",
           "detect_producer", "default_dt"]

SOURCES = ("nir", "snntorch", "norse", "sinabs")
"""Producers whose conventions :func:`apply_source` knows."""

RESETS = ("zero", "subtract")

SNNTORCH_DT = 1e-4
"""The ``dt`` snnTorch 1.0's exporter writes its time constants for (``export_nir.py``)."""

_DEFAULT_DT = {"snntorch": SNNTORCH_DT, "norse": 1e-3, "sinabs": 1e-3}
_SPIKING = ("LIF", "CubaLIF", "IF")


def default_dt(source: Optional[str]) -> Optional[float]:
    """The producer's own step (s) when neither the caller nor the graph gives one, else None."""
    return _DEFAULT_DT.get(source or "nir")


@dataclass(frozen=True)
class NeuronRule:
    """What a spiking node does beyond NIR's fields (per node, all its neurons).

    ``reset``: ``"zero"`` (``v = v_reset``, NIR's) or ``"subtract"``
    (``v -= v_threshold``).  ``reset_delay``: snnTorch's one-step-late reset
    (see the module docstring); ``drop_step``: with ``reset="zero"`` and a
    delay, the step after a spike ends with ``v = v_reset`` (Synaptic,
    RLeaky, RSynaptic) rather than starting from it (Leaky); ``drop_current``:
    ... and the synaptic current is zeroed too (RSynaptic).  ``threshold_ge``:
    fire on ``v >= v_threshold`` (Sinabs) instead of ``>``.  ``multi_spike``:
    emit ``trunc(v / v_threshold)`` spikes per step (Sinabs ``MultiSpike``).
    ``late_check``: snnTorch's subtract reset without delay, whose step starts
    with ``reset = v > thr`` on the stored (post-reset) membrane and compares
    ``beta v + x - reset * thr`` with the threshold (``forward``, ``_base_sub``)
    -- one more threshold off the comparison while a post-reset membrane
    stays above threshold; the stored membrane is ``beta v + x - z thr`` either way.
    """

    reset: str = "zero"
    reset_delay: bool = False
    drop_step: bool = False
    drop_current: bool = False
    threshold_ge: bool = False
    multi_spike: bool = False
    late_check: bool = False

    def chip_gaps(self) -> List[str]:
        """What the chip (reset to zero at once, ``v > vth``, one spike per step) does differently."""
        out = []
        if self.reset == "subtract":
            out.append("reset by subtraction -> reset to zero")
        if self.reset_delay and (self.reset == "subtract" or self.drop_step):
            out.append("reset delay (snnTorch reset_delay=True) -> immediate reset")
        if self.multi_spike:
            out.append("several spikes per step (Sinabs MultiSpike) -> at most one")
        if self.threshold_ge:
            out.append("v >= threshold -> v > threshold")
        return out


CHIP_RULE = NeuronRule()
"""The chip's (and NIR's) rule: reset to ``v_reset`` at once, ``v > v_threshold``, one spike."""


@dataclass
class Convention:
    """A graph read with one producer's conventions (see :func:`apply_source`).

    ``graph`` is a copy whose float fields mean NIR's ODE at ``dt`` (seconds);
    ``rules`` maps the flattened name of each spiking node (``"sub.node"`` for
    nested graphs) to its :class:`NeuronRule`; ``start_at_leak``: membranes
    start at ``v_leak`` (Norse); ``notes`` says what was rewritten.
    """

    source: str
    graph: object
    dt: float
    rules: Dict[str, NeuronRule] = field(default_factory=dict)
    start_at_leak: bool = False
    notes: List[str] = field(default_factory=list)

    def chip_rules(self) -> Dict[str, NeuronRule]:
        """The same nodes under the chip's rule (what the quantized network approximates)."""
        return {k: CHIP_RULE for k in self.rules}

    def approximations(self) -> List[str]:
        """One line per way the chip differs from the model as trained, naming the nodes."""
        by_gap: Dict[str, List[str]] = {}
        for name, rule in self.rules.items():
            for gap in rule.chip_gaps():
                by_gap.setdefault(gap, []).append(name)
        out = [f"{gap} (nodes {', '.join(nodes)})" for gap, nodes in by_gap.items()]
        if self.start_at_leak:
            out.append("membranes start at v_leak (Norse) -> start at 0")
        return out


def _flat_nodes(graph, prefix: str = ""):
    """``(flat name, node)`` of every non-graph node, nested graphs walked (names as flatten_graph)."""
    import nir

    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            yield from _flat_nodes(node, prefix + name + ".")
        else:
            yield prefix + name, node


def _on_cycle(graph) -> set:
    """Flat names of nodes that lie on a directed cycle."""
    from .nirgraph import flatten_graph

    nodes, edges = flatten_graph(graph)
    succ: Dict[str, List[str]] = {n: [] for n in nodes}
    for s, d in edges:
        if s in succ and d in nodes:
            succ[s].append(d)
    out = set()
    for start in nodes:
        seen, stack = set(), list(succ[start])
        while stack:
            n = stack.pop()
            if n == start:
                out.add(start)
                break
            if n not in seen:
                seen.add(n)
                stack.extend(succ[n])
    return out


def _f(node, key) -> Optional[np.ndarray]:
    value = getattr(node, key, None)
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _kind(node) -> str:
    return type(node).__name__


def _all_close(a, value) -> bool:
    return a is not None and a.size > 0 and bool(np.all(np.abs(a - value) <= 1e-6 * abs(value)))


def detect_producer(graph, dt: float) -> Optional[Tuple[str, str]]:
    """A known producer quirk in a graph read as plain NIR at ``dt``: ``(producer, reason)`` or None.

    * ``norse``: a time constant shorter than ``dt`` with ``r = 1`` (Norse 1.1
      writes ``tau = dt/tau_inv``, e.g. 1e-5 s for a 10 ms membrane);
    * ``sinabs or norse``: every ``IF`` with ``r = 1`` (Sinabs ``IAF`` and Norse
      ``IAFCell`` add the input once per step; read as NIR, ``r = 1`` adds
      ``dt * x``).
    """
    for name, node in _flat_nodes(graph):
        kind = _kind(node)
        r = _f(node, "r")
        taus = {k: _f(node, k) for k in ("tau", "tau_mem", "tau_syn") if _f(node, k) is not None}
        if kind in ("LIF", "LI", "CubaLIF", "CubaLI") and _all_close(r, 1.0) and taus:
            for key, tau in taus.items():
                flat = tau.reshape(-1)
                short = np.flatnonzero(flat < dt)
                if short.size:
                    i = int(short[0])
                    return "norse", (f"node '{name}': {key}[{i}]={flat[i]:.6g} s is shorter than "
                                     f"dt={dt:.6g} s with r=1, the signature of Norse 1.1's export "
                                     f"(tau = dt/tau_inv; give Norse's dt with --dt, default 1e-3)")
    ifs = [(n, nd) for n, nd in _flat_nodes(graph) if _kind(nd) == "IF"]
    if ifs and all(_all_close(_f(nd, "r"), 1.0) for _, nd in ifs):
        return "sinabs or norse", (f"node '{ifs[0][0]}' (IF): r=1, as Sinabs (IAF) and Norse "
                                   f"(IAFCell) write it; both add the input once per step, "
                                   f"while NIR's IF adds dt*r*x = {dt:g}*x")
    return None


def _looks_sinabs(graph, dt: float) -> Optional[str]:
    """A LIF/LI with ``r = 1`` and ``tau >= max(1 s, 1000 dt)`` (Sinabs writes ``tau`` in steps)."""
    for name, node in _flat_nodes(graph):
        tau = _f(node, "tau")
        if _kind(node) in ("LIF", "LI") and tau is not None and tau.size \
                and _all_close(_f(node, "r"), 1.0) and float(tau.min()) >= max(1.0, 1000 * dt):
            return f"node '{name}': tau={float(tau.min()):.3g} s with r=1"
    return None


def _looks_snntorch(graph) -> bool:
    """Every LIF/CubaLIF has ``r = tau/1e-4`` (snnTorch's export), and there is at least one."""
    seen = False
    for _, node in _flat_nodes(graph):
        kind = _kind(node)
        tau = _f(node, "tau" if kind == "LIF" else "tau_mem")
        if kind in ("LIF", "CubaLIF"):
            seen = True
            r = _f(node, "r")
            if r is None or tau is None or not np.allclose(r * SNNTORCH_DT, tau, rtol=1e-4, atol=0):
                return False
    return seen


def _set(node, key, value) -> None:
    setattr(node, key, np.asarray(value, dtype=np.float64))


def apply_source(graph, source: Optional[str] = "nir", dt: Optional[float] = None,
                 reset: Optional[str] = None, reset_delay: Optional[bool] = None,
                 where: str = "graph") -> Convention:
    """Read ``graph`` (a float :class:`nir.NIRGraph`) with ``source``'s conventions.

    ``source``: one of :data:`SOURCES`; ``None`` is ``"nir"`` after a check:
    a graph that matches a known producer quirk (:func:`detect_producer`) is
    refused naming the producer and the option to pass.  ``dt`` (seconds per
    step) defaults to the graph's ``metadata["dt"]``, then the producer's
    own (:func:`default_dt`); the caller must give one for ``"nir"`` files
    without metadata.  ``reset`` (``"zero"``/``"subtract"``) and
    ``reset_delay`` override the producer's defaults (snnTorch: subtract,
    delay; Sinabs: subtract; Norse and NIR: zero, no delay).

    Returns a :class:`Convention`; ``graph`` itself is not changed.
    """
    import nir

    auto = source is None
    source = "nir" if auto else str(source).lower()
    if source not in SOURCES:
        raise ValidationError(f"source={source!r} is not one of {', '.join(SOURCES)}")
    if reset is not None and reset not in RESETS:
        raise ValidationError(f"reset={reset!r} is not one of {', '.join(RESETS)}")
    if not isinstance(graph, nir.NIRGraph):
        raise ValidationError(f"{where}: expected a nir.NIRGraph, got {type(graph).__name__}")
    notes: List[str] = []
    if dt is None:
        meta = getattr(graph, "metadata", None)
        cand = meta.get("dt") if isinstance(meta, dict) else None
        if cand is not None:
            dt = float(cand)
        elif default_dt(source) is not None:
            dt = default_dt(source)
            notes.append(f"dt not given: using {dt:g} s, {source}'s own step")
        else:
            raise ValidationError(f"{where}: dt is needed to read a {source} graph")
    dt = float(dt)
    if not math.isfinite(dt) or dt <= 0:
        raise ValidationError(f"dt={dt!r} must be a positive number of seconds")
    if auto:
        hit = detect_producer(graph, dt)
        if hit is not None:
            producer, reason = hit
            flags = " or ".join(f"--source {p}" for p in producer.split(" or "))
            raise ValidationError(
                f"{where}: {reason}; pass {flags} (source=... in Python) so neurohw applies that "
                f"producer's conventions, or --source nir to take the file as plain NIR")
        slow = _looks_sinabs(graph, dt)
        if slow:
            notes.append(f"{slow}: if the file comes from Sinabs (tau in steps), pass --source sinabs")
        if _looks_snntorch(graph):
            notes.append("the file looks like an snnTorch export (r = tau/1e-4): snnTorch's "
                         "default reset (subtract, reset_delay=True) is not in the file; pass "
                         "--source snntorch (with --reset zero if trained so) to reproduce it")
    g = copy.deepcopy(graph)
    cyc = _on_cycle(g) if source == "snntorch" else set()
    rules: Dict[str, NeuronRule] = {}
    base = {"snntorch": NeuronRule(reset="subtract", reset_delay=True),
            "sinabs": NeuronRule(reset="subtract", threshold_ge=True, multi_spike=True)
            }.get(source, CHIP_RULE)
    if reset is not None:
        base = replace(base, reset=reset)
    if reset_delay is not None:
        base = replace(base, reset_delay=bool(reset_delay))
    rewritten = set()
    for name, node in _flat_nodes(g):
        kind = _kind(node)
        if source == "snntorch" and kind in ("LIF", "LI", "CubaLIF", "CubaLI") \
                and abs(dt - SNNTORCH_DT) > 1e-12 * dt:
            for key in ("tau", "tau_mem", "tau_syn"):
                if _f(node, key) is not None:
                    _set(node, key, _f(node, key) * (dt / SNNTORCH_DT))
            rewritten.add("time constants x dt/1e-4 (per-step beta, alpha kept)")
        elif source == "norse":
            for key in ("tau", "tau_mem", "tau_syn"):
                if _f(node, key) is not None:
                    _set(node, key, _f(node, key) / dt)
                    rewritten.add("tau = tau_file/dt")
            if kind in ("CubaLIF", "CubaLI"):
                w_in = _f(node, "w_in")
                if w_in is None or _all_close(w_in, 1.0):
                    _set(node, "w_in", _f(node, "tau_syn") / dt * (1.0 if w_in is None else w_in))
                    rewritten.add("CubaLIF w_in = tau_syn/dt (LIFCell: i += x)")
            if kind == "IF":
                _set(node, "r", _f(node, "r") / dt)
                rewritten.add("IF r = r/dt (IAFCell: v += x)")
        elif source == "sinabs":
            if kind in ("LIF", "LI"):
                alpha = np.exp(-1.0 / _f(node, "tau"))
                _set(node, "tau", dt / (1.0 - alpha))
                if kind == "LI":  # ExpLeak: norm_input=False, v = alpha v + x
                    _set(node, "r", _f(node, "r") / (1.0 - alpha))
                rewritten.add("tau (steps) -> dt/(1 - exp(-1/tau)); LI r = r/(1 - alpha)")
            if kind == "IF":
                _set(node, "r", _f(node, "r") / dt)
                rewritten.add("IF r = r/dt (IAF: v += x)")
        if kind in _SPIKING:
            rule = base
            if source == "snntorch" and rule.reset == "subtract" and not rule.reset_delay:
                rule = replace(rule, late_check=True)
            if rule.reset_delay and rule.reset == "zero" and source == "snntorch":
                rule = replace(rule, drop_step=(kind == "CubaLIF" or name in cyc),
                               drop_current=(kind == "CubaLIF" and name in cyc))
            rules[name] = rule
    if rewritten:
        notes.append(f"source {source}: " + "; ".join(sorted(rewritten)))
    # Norse starts membranes at v_leak; that differs from 0 only where v_leak does
    leak_start = source == "norse" and any(
        _f(node, "v_leak") is not None and np.any(_f(node, "v_leak") != 0)
        for _, node in _flat_nodes(g))
    return Convention(source, g, dt, rules, start_at_leak=leak_start, notes=notes)
