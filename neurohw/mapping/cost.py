"""Energy and latency per inference from per-event constants, each with its source.

Two constant sets are shipped (``docs/deployment.md`` lists them with sources
and error bounds):

* ``davies2018`` -- Davies et al., "Loihi: A Neuromorphic Manycore Processor with
  On-Chip Learning", IEEE Micro 38(1):82-99, 2018, Table 2 (pre-silicon, 0.75 V;
  values as transcribed in shared/DEPLOYMENT_FACTS.md, tag [S]).
* ``sanafe`` -- SANA-FE ``arch/loihi.yaml`` (Boyle et al., IEEE TCAD 2025), fitted
  to Loihi hardware measurements.

Loihi 2 and generic profiles have no published per-event figure: they use the
Davies 2018 values, every constant marked ``assumed``.

Energy (joules) = Σ events x energy per event.  Latency per step = the slowest
core's busy time (Σ its events x time per event) plus a barrier; latency per
inference = Σ over steps; EDP = energy x latency per inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from .events import Events

__all__ = ["Constant", "CONSTANT_SETS", "constants_for", "estimate", "DEFAULT_SET"]


@dataclass(frozen=True)
class Constant:
    """One per-event figure: ``value`` in ``unit`` (J or s), with its ``source``."""

    value: float
    unit: str
    source: str

    def to_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit, "source": self.source}


_D = "Davies et al. 2018, IEEE Micro 38(1), Table 2 (pre-silicon, 0.75 V)"
_S = "SANA-FE arch/loihi.yaml (Boyle et al., IEEE TCAD 2025; calibrated on Loihi)"

CONSTANT_SETS: Dict[str, Dict[str, Constant]] = {
    "davies2018": {
        "synop_energy": Constant(23.6e-12, "J", _D + ": synaptic spike op, minimum"),
        "synop_time": Constant(3.5e-9, "s", _D + ": synaptic spike op, maximum"),
        "update_active_energy": Constant(81e-12, "J", _D + ": neuron update, active"),
        "update_active_time": Constant(8.4e-9, "s", _D + ": neuron update, active"),
        "update_idle_energy": Constant(52e-12, "J", _D + ": neuron update, inactive"),
        "update_idle_time": Constant(5.3e-9, "s", _D + ": neuron update, inactive"),
        "message_energy": Constant(1.7e-12, "J", _D + ": within-tile spike energy"),
        "message_time": Constant(2.1e-9, "s", _D + ": within-tile spike latency"),
        "hop_ew_energy": Constant(3.0e-12, "J", _D + ": per tile hop, E-W"),
        "hop_ns_energy": Constant(4.0e-12, "J", _D + ": per tile hop, N-S"),
        "barrier_1_tile": Constant(113e-9, "s", _D + ": mesh-wide barrier sync, 1 tile"),
        "barrier_32_tiles": Constant(465e-9, "s", _D + ": mesh-wide barrier sync, 32 tiles"),
        "barrier_multichip": Constant(14.3e-6, "s", "Frady et al., NICE 2020 (Pohoiki "
                                      "Springs): barrier sync, 4x64-chip column, measured; "
                                      "used for any multi-chip plan (an upper bound)"),
    },
    "sanafe": {
        "synop_dense_energy": Constant(35.5e-12, "J", _S + ": loihi_dense_synapse"),
        "synop_sparse_energy": Constant(33.6e-12, "J", _S + ": loihi_sparse_synapse"),
        "synop_conv_energy": Constant(24.0e-12, "J", _S + ": loihi_conv_synapse"),
        "synop_dense_time": Constant(3.8e-9, "s", _S + ": loihi_dense_synapse"),
        "synop_conv_time": Constant(3.1e-9, "s", _S + ": loihi_conv_synapse"),
        "access_energy": Constant(51.2e-12, "J", _S + ": energy_access_neuron"),
        "access_time": Constant(6.0e-9, "s", _S + ": latency_access_neuron"),
        "update_energy": Constant(21.6e-12, "J", _S + ": energy_update_neuron"),
        "update_time": Constant(3.7e-9, "s", _S + ": latency_update_neuron"),
        "spike_out_energy": Constant(69.3e-12, "J", _S + ": energy_spike_out"),
        "spike_out_time": Constant(30e-9, "s", _S + ": latency_spike_out"),
        "message_out_energy": Constant(111e-12, "J", _S + ": energy_message_out"),
        "message_out_time": Constant(5.1e-9, "s", _S + ": latency_message_out"),
        "message_in_time": Constant(16e-9, "s", _S + ": latency_message_in"),
        "hop_ew_energy": Constant(3.0e-12, "J", _S + ": energy_east/west_hop"),
        "hop_ns_energy": Constant(4.2e-12, "J", _S + ": energy_north/south_hop"),
        "barrier": Constant(1.8e-6, "s", _S + ": latency_sync table, largest entry"),
    },
}

DEFAULT_SET = {"loihi1": "davies2018"}


def constants_for(profile_name: str, which: Optional[str] = None) -> Dict[str, Constant]:
    """The constant set for a profile: ``which`` or the profile's default; profiles
    without published figures get Davies 2018 values marked ``assumed``."""
    key = which or DEFAULT_SET.get(profile_name, "davies2018")
    consts = CONSTANT_SETS[key]
    if profile_name != "loihi1":
        consts = {k: Constant(c.value, c.unit, f"assumed for {profile_name}: no published "
                              f"per-event figure; Loihi 1 value used ({c.source})")
                  for k, c in consts.items()}
    return consts


def _barrier(c: Dict[str, Constant], tiles: int, chips: int) -> float:
    if "barrier" in c:
        return c["barrier"].value
    if chips > 1:
        return c["barrier_multichip"].value
    lo, hi = c["barrier_1_tile"].value, c["barrier_32_tiles"].value
    return lo + (hi - lo) * (min(max(tiles, 1), 32) - 1) / 31


def estimate(ev: Events, consts: Dict[str, Constant], tiles: int, chips: int) -> dict:
    """Energy (J) per inference with breakdown, latency (s) per step and per inference,
    and EDP (J s), from events ``ev`` and constants ``consts``."""
    t = ev.totals
    pc = ev.per_core_step
    if "synop_energy" in consts:  # Davies 2018 model
        c = {k: v.value for k, v in consts.items()}
        breakdown = {
            "synops": t["synops"] * c["synop_energy"],
            "neuron_updates_active": t["neuron_updates_active"] * c["update_active_energy"],
            "neuron_updates_idle": t["neuron_updates_idle"] * c["update_idle_energy"],
            "spike_messages": t["spike_messages"] * c["message_energy"],
            "spike_hops": (t["spike_hops_ew"] * c["hop_ew_energy"]
                           + t["spike_hops_ns"] * c["hop_ns_energy"]),
        }
        core_time = (pc["synops"] * c["synop_time"] + pc["active"] * c["update_active_time"]
                     + pc["idle"] * c["update_idle_time"]
                     + pc["messages_out"] * c["message_time"])
    else:  # SANA-FE model: access every neuron, update active ones, spike out, messages
        c = {k: v.value for k, v in consts.items()}
        kinds = ev.synops_by_kind
        breakdown = {
            "synops": (kinds.get("dense", 0.0) * c["synop_dense_energy"]
                       + kinds.get("conv", 0.0) * c["synop_conv_energy"]),
            "neuron_access": (t["neuron_updates_active"] + t["neuron_updates_idle"])
            * c["access_energy"],
            "neuron_updates_active": t["neuron_updates_active"] * c["update_energy"],
            "spikes": t["spikes"] * c["spike_out_energy"],
            "spike_messages": t["spike_messages"] * c["message_out_energy"],
            "spike_hops": (t["spike_hops_ew"] * c["hop_ew_energy"]
                           + t["spike_hops_ns"] * c["hop_ns_energy"]),
        }
        core_time = np.maximum(
            (pc["active"] + pc["idle"]) * c["access_time"] + pc["active"] * c["update_time"]
            + pc["spikes"] * c["spike_out_time"] + pc["messages_out"] * c["message_out_time"],
            pc["synops"] * c["synop_dense_time"])
    barrier = _barrier(consts, tiles, chips)
    step_time = core_time.max(axis=2) + barrier if core_time.shape[2] else \
        np.full(core_time.shape[:2], barrier)
    per_inf = float(step_time.sum(axis=1).mean())
    total = float(sum(breakdown.values()))
    return {
        "energy_j": {"total": total, "breakdown": breakdown},
        "latency_s": {"per_step": per_inf / max(ev.steps, 1), "per_inference": per_inf,
                      "barrier": barrier},
        "edp_js": total * per_inf,
        "per_step_latency_s": step_time.mean(axis=0).tolist(),
    }
