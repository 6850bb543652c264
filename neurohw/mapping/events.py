"""Event counts per inference: synaptic operations, neuron updates, spikes, spike hops.

Definitions (``docs/deployment.md``), all exact integer counts:

* **synop** -- one spike crossing one non-zero synapse: for every projection,
  Σ over steps of (source spikes x non-zero fan-out).  Counted at the step the
  spike is emitted (the chip processes it one step later, Lava's Dense latency).
  Input spikes (any non-zero payload) count like population spikes.
* **neuron update** -- every compartment of every population is updated every
  step.  *Active* when the neuron's ``u`` or ``v`` is non-zero before or after
  the step, or it spikes; otherwise *idle* (its state stays all-zero).
* **spike** -- a spike of a population neuron (inputs excluded: they come from
  the host).
* **spike message** -- one per spike and destination core (the core's output
  axons); **hops** -- tile-to-tile mesh hops of those messages, east-west and
  north-south separately (Manhattan routing).  Input spikes enter from the
  host: their messages are counted, their hops are not (no published cost).

With no input the counts are a stated worst case: every input and every neuron
spikes at every step and every update is active.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from .. import ir
from .place import Placement, _receptive_mask

__all__ = ["Events", "route_tables", "count_events", "events_from_spikes", "worst_case_events"]


@dataclass
class Events:
    """Event totals (mean per inference) plus per-step and per-core detail.

    ``per_core_step`` maps an event kind to an array ``(B, T, cores)`` (int64) of
    counts on each core; ``totals`` the mean per inference over the ``B`` samples.
    """

    steps: int
    samples: int
    worst_case: bool
    totals: Dict[str, float] = field(default_factory=dict)
    per_step: Dict[str, list] = field(default_factory=dict)
    per_core_step: Dict[str, np.ndarray] = field(default_factory=dict)
    synops_by_kind: Dict[str, float] = field(default_factory=dict)
    activation_sparsity: Optional[float] = None


def route_tables(pl: Placement, net: ir.Network) -> Dict[str, Dict[str, np.ndarray]]:
    """Per source node: ``messages``, ``hops_ew``, ``hops_ns`` per source neuron (int64):
    the spike messages one spike of that neuron sends and the mesh hops they take."""
    tables: Dict[str, Dict[str, np.ndarray]] = {}
    xy = np.array([pl.core_xy(i) for i in range(len(pl.blocks))], np.int64).reshape(-1, 2)
    for p in pl.projections:
        t = tables.setdefault(p.src, {k: np.zeros(p.n_src, np.int64)
                                      for k in ("messages", "hops_ew", "hops_ns")})
        src_lab = pl.labels(p.src, p.n_src) if p.src_on_chip else None
        for j in pl.blocks_of(p.dst):
            m = _receptive_mask(p, pl.blocks[j])
            t["messages"] += m
            if src_lab is not None:
                sx = xy[src_lab[m]]
                t["hops_ew"][m] += np.abs(sx[:, 0] - xy[j, 0])
                t["hops_ns"][m] += np.abs(sx[:, 1] - xy[j, 1])
    return tables


def _per_core(pl: Placement, node: str, per_neuron: np.ndarray) -> np.ndarray:
    """Sum ``(..., n)`` per-neuron counts into ``(..., cores)`` by block."""
    out = np.zeros(per_neuron.shape[:-1] + (len(pl.blocks),), np.int64)
    for j in pl.blocks_of(node):
        out[..., j] = per_neuron[..., pl.blocks[j].index].sum(axis=-1)
    return out


def count_events(pl: Placement, net: ir.Network, x, engine: str = "auto") -> Events:
    """Run the bit-exact emulator on ``x`` and count events exactly (see module doc)."""
    from ..emulate import prepare_input, run

    res = run(net, x, record=("spikes", "v", "u"), engine=engine)
    inputs = prepare_input(net, x)
    spikes = {k: np.asarray(v) for k, v in res.spikes.items()}
    for k, v in inputs.items():
        spikes[k] = (np.asarray(v) != 0).astype(np.int8)
    active = {}
    for k in net.populations:
        s = spikes[k]
        u, v = np.asarray(res.u[k]), np.asarray(res.v[k])
        prev_u = np.concatenate([np.zeros_like(u[:, :1]), u[:, :-1]], axis=1)
        prev_v = np.concatenate([np.zeros_like(v[:, :1]), v[:, :-1]], axis=1)
        active[k] = (u != 0) | (v != 0) | (prev_u != 0) | (prev_v != 0) | (s != 0)
    return events_from_spikes(pl, net, spikes, active)


def events_from_spikes(pl: Placement, net: ir.Network, spikes: Dict[str, np.ndarray],
                       active: Optional[Dict[str, np.ndarray]] = None) -> Events:
    """Count events from recorded activity: ``spikes[name]`` is ``(B, T, n)`` 0/1 for every
    input and population (e.g. from another simulator).  ``active[name]`` (same shape, bool)
    marks active updates; without it a neuron is active in a step when it receives at least
    one synaptic event emitted in that step or spikes."""
    first = next(iter(spikes.values()))
    B, T = first.shape[:2]
    n_cores = len(pl.blocks)
    pc = {k: np.zeros((B, T, n_cores), np.int64)
          for k in ("synops", "active", "idle", "spikes", "messages_out")}
    by_kind: Dict[str, float] = {}
    received = {k: np.zeros((B, T, p.size), np.int64) for k, p in net.populations.items()}
    for p in pl.projections:
        s = np.asarray(spikes[p.src]).reshape(B * T, p.n_src)
        fan = p.fanin_sum(s).reshape(B, T, p.n_dst)
        received[p.dst] += fan
        pc["synops"] += _per_core(pl, p.dst, fan)
        by_kind[p.kind] = by_kind.get(p.kind, 0.0) + float(fan.sum()) / B
    tables = route_tables(pl, net)
    tot = {"messages": 0, "hops_ew": 0, "hops_ns": 0}
    act_total = nz_total = 0
    for k, pop in net.populations.items():
        s = np.asarray(spikes[k])
        a = active[k] if active is not None else (received[k] > 0) | (s != 0)
        pc["active"] += _per_core(pl, k, a.astype(np.int64))
        pc["idle"] += _per_core(pl, k, (~a).astype(np.int64))
        pc["spikes"] += _per_core(pl, k, s.astype(np.int64))
        nz_total += int(np.count_nonzero(s))
        act_total += s.size
    for k, t in tables.items():
        s = np.asarray(spikes[k]).reshape(B * T, -1).astype(np.float64)
        for key in tot:
            tot[key] += int(np.rint(s @ t[key].astype(np.float64)).sum())
        if k in net.populations:
            pc["messages_out"] += _per_core(pl, k, np.asarray(spikes[k]).astype(np.int64)
                                            * t["messages"])
    ev = Events(steps=T, samples=B, worst_case=False, per_core_step=pc, synops_by_kind=by_kind)
    ev.totals = {
        "synops": float(pc["synops"].sum()) / B,
        "neuron_updates_active": float(pc["active"].sum()) / B,
        "neuron_updates_idle": float(pc["idle"].sum()) / B,
        "spikes": float(pc["spikes"].sum()) / B,
        "spike_messages": tot["messages"] / B,
        "spike_hops": (tot["hops_ew"] + tot["hops_ns"]) / B,
        "spike_hops_ew": tot["hops_ew"] / B,
        "spike_hops_ns": tot["hops_ns"] / B,
    }
    ev.per_step = {k: (pc[k].sum(axis=2).mean(axis=0)).tolist()
                   for k in ("synops", "spikes", "active")}
    ev.activation_sparsity = 1.0 - nz_total / act_total if act_total else 0.0
    return ev


def worst_case_events(pl: Placement, net: ir.Network, steps: int = 1) -> Events:
    """Every input and neuron spikes at every step; every update is active."""
    n_cores = len(pl.blocks)
    syn = np.zeros(n_cores, np.int64)
    by_kind: Dict[str, float] = {}
    for p in pl.projections:
        # non-zero fan-in of every target neuron (all sources spiking once)
        fanin = p.fanin_sum(np.ones((1, p.n_src), np.int8))[0]
        for j in pl.blocks_of(p.dst):
            n = int(fanin[pl.blocks[j].index].sum())
            syn[j] += n
            by_kind[p.kind] = by_kind.get(p.kind, 0.0) + n * steps
    comp = np.array([b.size for b in pl.blocks], np.int64)
    pc = {"synops": np.broadcast_to(syn, (1, steps, n_cores)).copy(),
          "active": np.broadcast_to(comp, (1, steps, n_cores)).copy(),
          "idle": np.zeros((1, steps, n_cores), np.int64),
          "spikes": np.broadcast_to(comp, (1, steps, n_cores)).copy(),
          "messages_out": np.broadcast_to(np.array([b.used["out_axons"] for b in pl.blocks],
                                                   np.int64), (1, steps, n_cores)).copy()}
    tables = _worst_routes(pl)
    ev = Events(steps=steps, samples=1, worst_case=True, per_core_step=pc, synops_by_kind=by_kind)
    ev.totals = {
        "synops": float(syn.sum()) * steps,
        "neuron_updates_active": float(comp.sum()) * steps,
        "neuron_updates_idle": 0.0,
        "spikes": float(comp.sum()) * steps,
        "spike_messages": float(tables["messages"]) * steps,
        "spike_hops": float(tables["hops_ew"] + tables["hops_ns"]) * steps,
        "spike_hops_ew": float(tables["hops_ew"]) * steps,
        "spike_hops_ns": float(tables["hops_ns"]) * steps,
    }
    ev.per_step = {"synops": [float(syn.sum())] * steps, "spikes": [float(comp.sum())] * steps,
                   "active": [float(comp.sum())] * steps}
    ev.activation_sparsity = 0.0
    return ev


def _worst_routes(pl: Placement) -> Dict[str, int]:
    """Messages and hops when every source neuron spikes once (box arithmetic per block pair)."""
    xy = np.array([pl.core_xy(i) for i in range(len(pl.blocks))], np.int64).reshape(-1, 2)
    out = {"messages": 0, "hops_ew": 0, "hops_ns": 0}
    for p in pl.projections:
        src_lab = pl.labels(p.src, p.n_src) if p.src_on_chip else None
        for j in pl.blocks_of(p.dst):
            m = _receptive_mask(p, pl.blocks[j])
            out["messages"] += int(m.sum())
            if src_lab is not None:
                cnt = np.bincount(src_lab[m], minlength=len(pl.blocks))
                out["hops_ew"] += int((cnt * np.abs(xy[:, 0] - xy[j, 0])).sum())
                out["hops_ns"] += int((cnt * np.abs(xy[:, 1] - xy[j, 1])).sum())
    return out
