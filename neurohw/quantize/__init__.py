"""Quantize a trained float NIR graph to an integer chip network.

``quantize(graph, profile="loihi2", dt=None, calibrate=None)`` returns a
:class:`QuantizedModel`: the validated :class:`~neurohw.ir.Network`, the
float analysis it came from, and a list of every approximation made
(rounded time constants, saturated weights, moved reset potentials...).
Nothing is changed silently: anything the chip cannot express either raises
:class:`~neurohw.errors.ValidationError` naming node, parameter and value,
or appears in :attr:`QuantizedModel.notes`.

The mapping and its formulas: :mod:`neurohw.quantize.core` and
``docs/quantization.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path as _FsPath
from typing import Dict, List, Optional

import numpy as np

from .. import ir
from ..errors import ValidationError
from ..profiles import HardwareProfile, get_profile
from .calibrate import peaks_from_bounds, peaks_from_data
from .core import (NeuronMap, ProjectionMap, build_network, choose_scale, neuron_params, scale_caps,
                   unreachable_thresholds)
from .graph import FloatGraph, analyze
from ..sources import SOURCES, Convention, apply_source, default_dt

__all__ = ["quantize", "QuantizedModel", "DEFAULT_DT", "latencies", "TARGETS"]

TARGETS = {
    "chip": None,
    # lava-dl netx re-derives weight exponents from the stored integers (clipped to 8 bits)
    # and fixes bias_exp at 6: keep weight_exp = 0 and biases on multiples of 64
    "netx": {"weight_exp": (0, 0), "bias_exp": (6, 7)},
}
"""Extra constraints per export target (``--target``); see docs/quantization.md."""

DEFAULT_DT = 1e-4
"""Seconds per step when neither ``dt`` nor the graph says: snnTorch's NIR export convention."""


@dataclass
class QuantizedModel:
    """The result of :func:`quantize`."""

    network: ir.Network
    graph: object  # the float nir.NIRGraph
    float_graph: FloatGraph
    neurons: Dict[str, NeuronMap]
    projections: List[ProjectionMap]
    dt_s: float
    profile: HardwareProfile
    calibrated: bool
    latency: Dict[str, int]  # chip steps behind the float model, per population
    notes: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)  # things that break the network: shown first
    neuron_types: Optional[int] = None  # the K asked for (None: one per distinct float set)
    convention: Optional[Convention] = None  # the producer's conventions the graph was read with
    approximations: List[str] = field(default_factory=list)  # model behaviour the chip lacks

    def all_notes(self) -> List[str]:
        """Every approximation, prefixed with the population it concerns."""
        out = list(self.notes)
        for name, m in self.neurons.items():
            out.extend(f"population {name}: {n}" for n in m.notes)
        return out


def _resolve_dt(graph, dt, notes, producer: Optional[str] = None) -> float:
    if dt is None:
        meta = getattr(graph, "metadata", None)
        cand = meta.get("dt") if isinstance(meta, dict) else None
        if cand is not None:
            dt = float(cand)
            notes.append(f"dt={dt:.6g} s taken from the graph's metadata")
        elif default_dt(producer) is not None:
            dt = default_dt(producer)
            notes.append(f"dt not given: using {dt:g} s, {producer}'s own default step")
        else:
            dt = DEFAULT_DT
            notes.append(f"dt not given: using {DEFAULT_DT:g} s, the step snnTorch's NIR export "
                         f"assumes (pass --dt for other sources)")
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValidationError(f"dt={dt!r} is not a number of seconds") from None
    if not math.isfinite(dt) or dt <= 0:
        raise ValidationError(f"dt={dt!r} must be a positive number of seconds")
    return dt


def latencies(net: ir.Network) -> Dict[str, int]:
    """Steps by which each population lags the float model: its projection depth from the inputs.

    Each chip projection delivers one step later than NIR's same-step
    semantics; the depth is the number of projections on the shortest path
    from an Input (cycles do not shorten it).
    """
    depth: Dict[str, int] = {n: 0 for n in net.of_type(ir.InputNode)}
    frontier = list(depth)
    while frontier:
        nxt = []
        for n in frontier:
            for m in net.successors(n):
                node = net.nodes[m]
                step = 1 if isinstance(node, (ir.Dense, ir.Sparse, ir.Conv2d, ir.SumPool2d)) else 0
                d = depth[n] + step
                if m not in depth or d < depth[m]:
                    depth[m] = d
                    nxt.append(m)
        frontier = nxt
    return {k: depth.get(k, 0) for k in net.populations}


def _load(graph, source):
    from ..nirgraph import load_nir
    from ..nirio import is_quantized

    if isinstance(graph, (str, _FsPath)):
        source = str(graph)
        graph = load_nir(graph)
    if is_quantized(graph):
        raise ValidationError(f"{source}: already quantized (it has neurohw metadata)")
    return graph, source


def quantize(graph, profile: HardwareProfile | str = "loihi2", dt: Optional[float] = None,
             calibrate=None, per_channel: bool = False, margin: float = 1.25,
             source: Optional[str] = None, target: str = "chip",
             calibrate_source: str = "calibration data",
             neuron_types: Optional[int] = None, reset: Optional[str] = None,
             reset_delay: Optional[bool] = None, name: Optional[str] = None) -> QuantizedModel:
    """Map a float NIR graph (or a path to a ``.nir`` file) to integers for ``profile``.

    ``dt`` (seconds per step) defaults to the graph's ``metadata["dt"]``, or
    :data:`DEFAULT_DT`.  ``calibrate`` is sample input ``(B, T, n_in)`` (or
    ``(T, n_in)``) used to choose each population's voltage scale from
    observed activity; without it a worst-case bound is used (every input
    spiking at once).  ``per_channel`` gives each output row/channel group
    its own weight exponent (as separate projections into the same
    population).  ``margin`` is the headroom factor over the peak state.
    ``target="netx"`` keeps every value inside what lava-dl netx can load
    exactly (weight_exp 0, bias multiples of 64; see :data:`TARGETS`).

    ``neuron_types`` is the most distinct ``(du, dv, vth)`` sets a population
    may use (a chip such as Loihi keeps neuron parameters in a small per-core
    profile table): ``None`` (default) keeps one set per distinct float
    ``(tau_syn, tau_mem, threshold)`` -- per neuron where they differ, one per
    population where they do not; ``1`` one set per population (each time
    constant its median); ``K`` clusters them (see
    :func:`neurohw.quantize.core.cluster_types`).

    ``source`` names the producer of the file (``"snntorch"``, ``"norse"``,
    ``"sinabs"`` or ``"nir"``): its conventions (:mod:`neurohw.sources`) decide
    what the float fields mean, so the float model is the model as trained.
    ``None`` reads the file as NIR after refusing one that matches a known
    producer quirk (e.g. Norse's ``tau = dt/tau_inv``).  ``reset``
    (``"zero"``/``"subtract"``) and ``reset_delay`` override the producer's
    reset; the chip always resets to zero at once, and every difference is
    listed in :attr:`QuantizedModel.approximations` (its cost in accuracy is
    measured by :func:`neurohw.quantize.report.evaluate`).  ``name`` is what
    messages call the graph (default: its path, or ``"graph"``); for old
    callers, a ``source`` that is not a producer name is taken as ``name``.

    A spiking population that can never fire on the chip although the float
    model can (see :func:`~neurohw.quantize.core.unreachable_thresholds`)
    raises :class:`ValidationError` naming it; single neurons lost that way
    are listed in :attr:`QuantizedModel.warnings`.
    """
    producer = source
    if source is not None and str(source).lower() not in SOURCES:
        producer, name = None, (name or str(source))  # the old meaning: a name for messages
    graph, source = _load(graph, name or "graph")
    profile = get_profile(profile)
    if target not in TARGETS:
        raise ValidationError(f"target={target!r} is not one of {', '.join(TARGETS)}")
    constraints = TARGETS[target]
    notes: List[str] = []
    dt = _resolve_dt(graph, dt, notes, producer)
    from ..validate import CHIP_NODE_TYPES, validate_float_graph

    # the file's own faults first (the same one-line messages as every reader), then producer quirks
    validate_float_graph(graph, source, chip=True, supported=CHIP_NODE_TYPES)
    conv = apply_source(graph, producer, dt, reset=reset, reset_delay=reset_delay, where=source)
    notes.extend(conv.notes)
    fg = analyze(conv.graph, source)
    if target == "netx":  # before any work: netx layers are Dense -> LIF chains only
        for path in fg.paths:
            if path.kind != "dense":
                op = next((o for o in path.ops if type(fg.nodes.get(o)).__name__ in
                           ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")), path.ops[0])
                raise ValidationError(
                    f"{source}: node '{op}' ({type(fg.nodes.get(op)).__name__}): --target netx "
                    f"supports Input -> (Dense -> LIF)+ chains, no convolution or pooling; "
                    f"quantize with --target chip and export with --to lava")
    if not fg.neurons:
        raise ValidationError(f"{source}: the graph has no neuron node (LIF, CubaLIF, IF, LI, ...)")
    maps = {n: neuron_params(n, fg.nodes[n], fg.shapes[n], dt, source, profile=profile,
                             neuron_types=neuron_types) for n in fg.neurons}
    if calibrate is not None:
        pu, pv = peaks_from_data(fg, maps, calibrate, dt, calibrate_source)
    else:
        pu, pv = peaks_from_bounds(fg, maps)
        notes.append("no calibration data: voltage scales from a worst-case bound "
                     "(every input spiking at once); --calibrate usually keeps more precision")
    caps = scale_caps(fg, maps, profile, constraints)
    for n, m in maps.items():
        choose_scale(m, pu[n], pv[n], profile, margin=margin, s_cap=caps[n])
    net, projs, pnotes = build_network(fg, maps, profile, dt, per_channel=per_channel, source=source,
                                       constraints=constraints)
    if constraints:
        notes.append(f"target {target}: " + ", ".join(f"{k} in {lo}..{hi}"
                                                      for k, (lo, hi) in constraints.items()))
    notes.extend(pnotes)
    warnings = _reachability(maps, projs, net, profile, source)
    lat = latencies(net)
    model = QuantizedModel(net, graph, fg, maps, projs, dt, profile, calibrate is not None, lat, notes,
                           warnings, neuron_types, conv, conv.approximations())
    for a in model.approximations:
        notes.append(f"approximation (the chip cannot do what the model does): {a}")
    if len(set(lat.values())) > 1:
        notes.append("chip latency per population (steps behind the float model): "
                     + ", ".join(f"{k}={v}" for k, v in lat.items()))
    return model


def _reachability(maps, projs, net, profile, source) -> List[str]:
    """Refuse populations the chip can never fire; warn about single neurons (see quantize)."""
    warnings: List[str] = []
    widths = (f"profile {profile.name}: state_bits={profile.state_bits}, "
              f"vth_shift={profile.vth_shift}, act_shift={profile.act_shift}, "
              f"weight_bits={profile.weight_bits}")
    for name, r in unreachable_thresholds(maps, projs, net, profile).items():
        alive = r["neurons"] - r["float_dead"]
        what = (f"the largest v its inputs and bias can produce, {r['v_max']:.6g}, does not exceed "
                f"its threshold vth << vth_shift = {r['threshold']:.6g}")
        if alive > 0 and r["killed"] == alive and r["dead"] == r["neurons"]:
            raise ValidationError(
                f"{source}: population '{name}' can never fire on the chip although the float "
                f"model can: {what} ({widths}): its weights round to zero or its state saturates under "
                f"these widths")
        if r["killed"]:
            warnings.append(
                f"population '{name}': {r['killed']} of {r['neurons']} neurons can never fire on "
                f"the chip although the float model can ({what}; {widths})")
        if r["float_dead"]:
            maps[name].notes.append(f"{r['float_dead']} of {r['neurons']} neurons can never reach "
                                    f"their threshold in the float model either")
    return warnings
