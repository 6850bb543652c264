"""The deployment plan: placement + events + energy/latency + metrics, as one object.

:func:`plan` is the library form of ``neurohw map``; :meth:`DeploymentPlan.to_dict`
follows the deployment-plan contract (shared DESIGN.md, ``docs/deployment.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .. import ir
from ..profiles import get_profile
from .cost import CONSTANT_SETS, constants_for, estimate
from .events import Events, count_events, worst_case_events
from .metrics import neurobench_metrics
from .place import RESOURCES, FitError, Placement, _in_usage, place

__all__ = ["DeploymentPlan", "plan"]


@dataclass
class DeploymentPlan:
    """Everything ``neurohw map`` reports; :meth:`to_dict` is the JSON contract."""

    profile: str
    dt: float
    input: Optional[dict]
    fits: bool
    refusal: Optional[str] = None
    placement: Optional[Placement] = None
    events: Optional[Events] = None
    cost: Dict[str, dict] = field(default_factory=dict)
    constant_set: str = "davies2018"
    constants: Dict[str, dict] = field(default_factory=dict)
    metrics: Dict[str, object] = field(default_factory=dict)
    projections: List[dict] = field(default_factory=list)

    # ------------------------------------------------------------------
    @property
    def binding_limit(self) -> Optional[str]:
        """The resource that set the core count: the one with the highest total use
        relative to the cores' capacity; ``None`` when no population had to be split
        (each fits one core, so no limit set the count)."""
        pl = self.placement
        if pl is None or not pl.blocks:
            return None
        if len({b.node for b in pl.blocks}) == len(pl.blocks):
            return None
        util = {r: sum(b.used[r] for b in pl.blocks) / (pl.limits[r] * len(pl.blocks))
                for r in RESOURCES}
        return max(util, key=util.get)

    def to_dict(self) -> dict:
        """The plan as plain JSON-able values, SI units (contract in docs/deployment.md)."""
        out: dict = {"profile": self.profile, "dt": self.dt, "input": self.input,
                     "fits": self.fits}
        if not self.fits:
            out.update({"refusal": self.refusal, "cores_used": None, "chips_used": None,
                        "binding_limit": None, "blocks": []})
            return out
        pl = self.placement
        blocks = []
        for b in pl.blocks:
            d = {"node": b.node, "neurons": b.neurons(), "core": b.core, "chip": b.chip}
            for r in RESOURCES:
                d[r] = {"used": int(b.used[r]), "limit": int(pl.limits[r])}
            d["binding"] = max(RESOURCES, key=lambda r: b.used[r] / pl.limits[r])
            blocks.append(d)
        ev = self.events
        main = self.cost[self.constant_set]
        out.update({
            "cores_used": pl.cores_used, "chips_used": pl.chips_used,
            "binding_limit": self.binding_limit,
            "blocks": blocks,
            "events": dict({k: ev.totals[k] for k in ("synops", "neuron_updates_active",
                                                     "neuron_updates_idle", "spikes",
                                                     "spike_hops")},
                           steps=ev.steps, samples=ev.samples, worst_case=ev.worst_case,
                           spike_messages=ev.totals["spike_messages"],
                           per_step=ev.per_step),
            "energy_j": main["energy_j"],
            "latency_s": main["latency_s"],
            "edp_js": main["edp_js"],
            "constant_set": self.constant_set,
            "alternatives": {k: {"energy_j": v["energy_j"]["total"],
                                 "latency_s": v["latency_s"]["per_inference"],
                                 "edp_js": v["edp_js"]}
                             for k, v in self.cost.items() if k != self.constant_set},
            "metrics": self.metrics,
            "projections": self.projections,
            "mesh": {k: v for k, v in pl.mesh.items()},
            "constants": self.constants,
        })
        return out

    def text(self) -> str:
        """A terminal summary (several lines)."""
        if not self.fits:
            return f"does not fit on {self.profile}: {self.refusal}"
        d = self.to_dict()
        pl = self.placement
        lines = [f"profile {self.profile}: {d['cores_used']} cores on {d['chips_used']} chip(s), "
                 f"binding limit: {d['binding_limit'] or 'none (every population fits one core)'}"]
        per_node: Dict[str, list] = {}
        for b in pl.blocks:
            per_node.setdefault(b.node, []).append(b)
        lines.append(f"  {'node':<16}{'cores':>6}{'compart.':>10}{'syn bits':>10}"
                     f"{'in ax':>8}{'out ax':>8}  (max % of a core)")
        for node, bl in per_node.items():
            pct = {r: 100 * max(b.used[r] for b in bl) / pl.limits[r] for r in RESOURCES}
            lines.append(f"  {node:<16}{len(bl):>6}" + "".join(
                f"{pct[r]:>9.1f}%" if i < 2 else f"{pct[r]:>7.1f}%"
                for i, r in enumerate(RESOURCES)))
        ev = d["events"]
        what = "worst case (every neuron spikes every step)" if ev["worst_case"] \
            else f"{ev['samples']} sample(s)"
        lines.append(f"events per inference ({ev['steps']} steps, {what}): "
                     f"{ev['synops']:.4g} synops, {ev['neuron_updates_active']:.4g} active / "
                     f"{ev['neuron_updates_idle']:.4g} idle updates, {ev['spikes']:.4g} spikes, "
                     f"{ev['spike_hops']:.4g} hops")
        e, lat = d["energy_j"], d["latency_s"]
        which = self.constant_set if self.profile == "loihi1" else \
            f"{self.constant_set} Loihi 1 values, ASSUMED for {self.profile}"
        lines.append(f"energy per inference: {e['total']:.4g} J ({which}); "
                     + ", ".join(f"{k} {v:.3g}" for k, v in e["breakdown"].items()))
        lines.append(f"latency: {lat['per_step']:.4g} s per step, {lat['per_inference']:.4g} s "
                     f"per inference; EDP {d['edp_js']:.4g} J s")
        for k, v in d["alternatives"].items():
            lines.append(f"  with {k} constants: {v['energy_j']:.4g} J, {v['latency_s']:.4g} s")
        m = d["metrics"]
        act = "n/a" if m["activation_sparsity"] is None else f"{m['activation_sparsity']:.4f}"
        lines.append(f"NeuroBench: footprint {m['footprint_bytes']} B, connection sparsity "
                     f"{m['connection_sparsity']}, activation sparsity {act}, synops dense "
                     f"{m['synops_dense']:.4g} / effective {m['synops_effective']:.4g}")
        dens = [p for p in self.projections if p.get("densified")]
        for p in dens:
            lines.append(f"  note: '{p['name']}' is a dense projection from a spatial layer "
                         f"({p['synapses']} synapses, {p['synapse_bits']} bits)")
        return "\n".join(lines)


def _projection_rows(pl: Placement, net: ir.Network) -> List[dict]:
    """Per projection: kind, ends, non-zero synapses and synapse-memory bits on chip."""
    rows = []
    for p in pl.projections:
        bits = sum(_in_usage([p], b.index, b.box)[0] for b in pl.blocks if b.node == p.dst)
        src_shape = tuple(net.nodes[p.src].out_shape)
        rows.append({"name": p.name, "kind": p.kind, "source": p.src, "target": p.dst,
                     "synapses": p.num_synapses(), "synapse_bits": int(bits),
                     "densified": p.kind == "dense" and len(src_shape) == 3})
    return rows


def plan(net: ir.Network, x=None, profile=None, steps: int = 1, constant_set: Optional[str] = None,
         engine: str = "auto", input_name: Optional[str] = None) -> DeploymentPlan:
    """Plan ``net`` on ``profile`` (default: the network's own).

    With input spikes ``x`` (as for :func:`neurohw.emulate.run`) events are counted
    from a bit-exact run; without, the worst case over ``steps`` steps.  A network
    that cannot fit gives ``fits=False`` and a one-line ``refusal``.
    """
    prof = net.profile if profile is None else get_profile(profile)
    inp = None
    if x is not None:
        arr = np.asarray(x)
        inp = {"file": input_name, "shape": list(arr.shape)}
    try:
        pl = place(net, prof)
    except FitError as exc:
        return DeploymentPlan(prof.name, net.dt_s, inp, False, refusal=str(exc))
    ev = count_events(pl, net, x, engine=engine) if x is not None \
        else worst_case_events(pl, net, steps)
    tiles = len({(b.chip, b.core // pl.mesh["cores_per_tile"]) for b in pl.blocks})
    main = constant_set or "davies2018"
    cost = {}
    constants = {}
    for key in CONSTANT_SETS:
        c = constants_for(prof.name, key)
        cost[key] = estimate(ev, c, tiles, pl.chips_used)
        constants.update({f"{key}.{k}": v.to_dict() for k, v in c.items()})
    mets = neurobench_metrics(net, ev.totals["synops"], ev.steps, ev.activation_sparsity)
    return DeploymentPlan(prof.name, net.dt_s, inp, True, placement=pl, events=ev, cost=cost,
                          constant_set=main, constants=constants, metrics=mets,
                          projections=_projection_rows(pl, net))
