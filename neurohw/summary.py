"""Readable summaries of NIR graphs, float or quantized (``neurohw inspect``).

:func:`summarize` works on any NIR 1.0 graph (including convolution, pooling,
flatten and nested graphs) and returns plain data; :func:`format_summary`
renders it as text.  For quantized graphs it adds, per layer, how many bits
each integer uses against what the profile allows.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from .nirgraph import as_str, flow_order, meta_of, shape_of
from .nirio import is_quantized, network_from_nir
from .profiles import HardwareProfile

__all__ = ["summarize", "format_summary", "bits_unsigned", "bits_signed"]

_NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I", "Threshold")


def bits_unsigned(max_value: int) -> int:
    """Bits an unsigned integer ``max_value`` needs (0 needs 0 bits)."""
    return int(max_value).bit_length()


def bits_signed(lo: int, hi: int) -> int:
    """Bits (sign included) a two's-complement register needs to hold ``[lo, hi]``."""
    need = max(int(hi).bit_length(), (-int(lo) - 1).bit_length() if lo < 0 else 0)
    return need + 1


def _shape_str(shape) -> str:
    return "-" if shape is None else "(" + ",".join(str(int(s)) for s in shape) + ")"


def _count_synapses(node, tname: str, in_shape, out_shape) -> Optional[int]:
    w = getattr(node, "weight", None)
    if w is None:
        return None
    w = np.asarray(w)
    if tname in ("Affine", "Linear"):
        return int(np.count_nonzero(w))
    if tname in ("Conv1d", "Conv2d") and out_shape is not None:
        # non-zero taps times output positions (an upper bound: padding taps counted)
        positions = int(np.prod(out_shape[1:])) if len(out_shape) > 1 else 1
        return int(np.count_nonzero(w)) * positions
    return int(np.count_nonzero(w))


def _node_rows(graph, prefix: str, depth: int, rows: List[Dict[str, Any]]) -> None:
    import nir

    for name in flow_order(graph.nodes, graph.edges):
        node = graph.nodes[name]
        tname = type(node).__name__
        in_shape = shape_of(node, "input_type")
        out_shape = shape_of(node, "output_type")
        row: Dict[str, Any] = {
            "name": prefix + name,
            "type": tname,
            "depth": depth,
            "in_shape": list(in_shape) if in_shape else None,
            "out_shape": list(out_shape) if out_shape else None,
            "neurons": int(np.prod(out_shape)) if tname in _NEURONS and out_shape else 0,
            "synapses": _count_synapses(node, tname, in_shape, out_shape),
            "quantized": isinstance(meta_of(node).get("neurohw"), dict),
        }
        if tname in _NEURONS and not out_shape:
            for field in ("tau_mem", "tau", "v_threshold", "threshold", "r"):
                if getattr(node, field, None) is not None:
                    row["neurons"] = int(np.asarray(getattr(node, field)).size)
                    break
        rows.append(row)
        if isinstance(node, nir.NIRGraph):
            row["edges"] = len(node.edges)
            _node_rows(node, prefix + name + ".", depth + 1, rows)


def _unsigned_item(pop, param: str, available: int) -> Dict[str, Any]:
    """Bit usage of an unsigned neuron parameter: ``value`` is the int when every
    neuron shares it, else ``[min, max]``; ``used`` counts the bits of the maximum;
    ``per_neuron`` is True when the neurons do not all share one value."""
    arr = np.asarray(getattr(pop, param), dtype=np.int64)
    single = pop.uniform(param)
    value: Any = single if single is not None else [int(arr.min()), int(arr.max())]
    return {"param": param, "value": value, "used": bits_unsigned(int(arr.max())),
            "available": available, "signed": False, "per_neuron": single is None}


_PER_NEURON_PARAMS = ("du", "dv", "vth", "bias_mant", "bias_exp", "refract_delay")


def _neuron_fields(pop, profile: HardwareProfile) -> Dict[str, Any]:
    """The neuron model and optional fields of one quantized population (plain data).

    Keys: ``model`` (``"lif"`` or ``"elif"``); ``per_neuron`` / ``shared`` (which of
    du, dv, vth, bias_mant, bias_exp, refract_delay differ between neurons / are one
    value for all); ``refract_delay`` (steps: the int when shared, else ``[min, max]``;
    ``silent_steps`` after a spike likewise, ``max(r - 1, 0)``); ``vmin`` / ``vmax``
    (``v`` units, the profile's full range filled in) with ``v_limits_default`` (True
    when neither is set); ``trace`` (None, or impulse, decay per ``2**decay_bits``,
    mode, bits); ``elif`` (None, or the table's size, ``lo``, ``shift``, value range
    and the ``v`` range it spans: entry ``k`` covers ``v`` in
    ``[lo + k * 2**shift, lo + (k + 1) * 2**shift)``, the last entry all ``v`` above).
    """
    per = [p for p in _PER_NEURON_PARAMS if pop.uniform(p) is None]
    rd = np.asarray(pop.refract_delay, dtype=np.int64)
    single = pop.uniform("refract_delay")
    silent = np.maximum(rd - 1, 0)
    vmin, vmax = pop.v_limits(profile)
    out: Dict[str, Any] = {
        "model": "elif" if pop.is_elif else "lif",
        "neurons": pop.size,
        "per_neuron": per,
        "shared": [p for p in _PER_NEURON_PARAMS if p not in per],
        "refract_delay": single if single is not None else [int(rd.min()), int(rd.max())],
        "silent_steps": (max(single - 1, 0) if single is not None
                         else [int(silent.min()), int(silent.max())]),
        "vmin": vmin,
        "vmax": vmax,
        "v_limits_default": pop.vmin is None and pop.vmax is None,
        "trace": None,
        "elif": None,
    }
    if pop.has_trace:
        out["trace"] = {"impulse": int(pop.trace_impulse), "decay": int(pop.trace_decay),
                        "decay_bits": profile.trace_decay_bits, "mode": pop.trace_mode,
                        "bits": profile.trace_bits}
    if pop.is_elif:
        lut = np.asarray(pop.elif_lut, dtype=np.int64)
        lo, shift, n = int(pop.elif_lut_lo), int(pop.elif_lut_shift), int(lut.size)
        out["elif"] = {"table_size": n, "lo": lo, "shift": shift,
                       "values": [int(lut.min()), int(lut.max())],
                       "v_span": [lo, lo + (n << shift) - 1]}
    return out


def _bit_usage(net, profile: HardwareProfile) -> Dict[str, List[Dict[str, Any]]]:
    from . import ir

    usage: Dict[str, List[Dict[str, Any]]] = {}
    for name, node in net.nodes.items():
        items: List[Dict[str, Any]] = []
        if isinstance(node, ir.LIFPopulation):
            b = node.bias_mant.astype(np.int64)
            e = node.bias_exp.astype(np.int64)
            items = [
                _unsigned_item(node, "du", profile.decay_bits),
                _unsigned_item(node, "dv", profile.decay_bits),
                _unsigned_item(node, "vth", profile.vth_bits),
                {"param": "bias_mant", "value": [int(b.min()), int(b.max())],
                 "used": bits_signed(int(b.min()), int(b.max())) if b.any() else 0,
                 "available": profile.bias_bits, "signed": True,
                 "per_neuron": node.uniform("bias_mant") is None},
                {"param": "bias_exp", "value": [int(e.min()), int(e.max())],
                 "range": [profile.bias_exp_min, profile.bias_exp_max],
                 "per_neuron": node.uniform("bias_exp") is None},
            ]
            if np.any(node.refract_delay != 0):
                items.append(_unsigned_item(node, "refract_delay",
                                            bits_unsigned(profile.refract_delay_max)))
            for p in ("vmin", "vmax"):
                if getattr(node, p) is not None:
                    items.append({"param": p, "value": int(getattr(node, p)),
                                  "range": list(profile.range_of(p))})
            if node.has_trace:
                items.append({"param": "trace_impulse", "value": int(node.trace_impulse),
                              "used": bits_unsigned(node.trace_impulse),
                              "available": profile.trace_bits, "signed": False})
                items.append({"param": "trace_decay", "value": int(node.trace_decay),
                              "used": bits_unsigned(node.trace_decay),
                              "available": profile.trace_decay_bits, "signed": False})
            if node.is_elif:
                lut = np.asarray(node.elif_lut, dtype=np.int64)
                items.append({"param": "elif_lut", "value": [int(lut.min()), int(lut.max())],
                              "used": bits_unsigned(int(lut.max())), "available": 31,
                              "signed": False})
        elif isinstance(node, (ir.Dense, ir.Sparse, ir.Conv2d)):
            w = (node.weight.data if isinstance(node, ir.Sparse) else node.weight).astype(np.int64)
            lo, hi = (int(w.min()), int(w.max())) if w.size else (0, 0)
            mag = max(abs(lo), abs(hi))
            items = [
                {"param": "weight", "value": [lo, hi],
                 "used": (bits_signed(lo, hi) - 1) if node.sign_mode == "mixed" else bits_unsigned(mag),
                 "available": profile.weight_bits, "signed": node.sign_mode == "mixed",
                 "sign_mode": node.sign_mode, "num_weight_bits": node.num_weight_bits},
                {"param": "weight_exp", "value": node.weight_exp,
                 "range": [profile.weight_exp_min, profile.weight_exp_max]},
            ]
            if isinstance(node, (ir.Dense, ir.Sparse)) and node.delay is not None:
                dl = node.delay.data if isinstance(node, ir.Sparse) else node.delay  # stored only
                d = int(dl.max(initial=0))
                items.append({"param": "delay", "value": [int(dl.min()) if dl.size else 0, d],
                              "used": bits_unsigned(d),
                              "available": bits_unsigned(profile.delay_max_steps),
                              "signed": False})
            if node.num_message_bits:
                items.append({"param": "num_message_bits", "value": node.num_message_bits,
                              "range": [0, profile.graded_spike_bits]})
        if items:
            usage[name] = items
    return usage


def summarize(graph, source: str = "graph") -> Dict[str, Any]:
    """Plain-data summary of a NIR graph: nodes, shapes, counts, quantization.

    Keys: ``source``, ``quantized``, ``nodes`` (rows with name, type, depth,
    shapes, neurons, synapses), ``edges``, ``neurons``, ``synapses``, and for
    quantized graphs ``profile``, ``dt_s``, ``bits`` (per layer, per
    parameter: value, bits used, bits available, and ``per_neuron`` for neuron
    parameters) and ``neuron_fields`` (per population: model, refractory delay,
    v limits, spike trace, ELIF table, which parameters are per neuron; see
    :func:`_neuron_fields`).
    """
    rows: List[Dict[str, Any]] = []
    _node_rows(graph, "", 0, rows)
    out: Dict[str, Any] = {
        "source": source,
        "nir_version": as_str(meta_of(graph).get("nir_version")),
        "quantized": is_quantized(graph),
        "nodes": rows,
        "num_nodes": sum(1 for r in rows if r["type"] != "NIRGraph"),
        "edges": len(graph.edges),
        "neurons": sum(r["neurons"] for r in rows),
        "synapses": sum(r["synapses"] or 0 for r in rows),
        "nested": any(r["depth"] > 0 for r in rows),
    }
    if out["quantized"]:
        net = network_from_nir(graph, source=source)
        out["profile"] = net.profile.name
        out["dt_s"] = net.dt_s
        out["recurrent"] = net.has_cycle()
        out["bits"] = _bit_usage(net, net.profile)
        out["neuron_fields"] = {name: _neuron_fields(pop, net.profile)
                                for name, pop in net.populations.items()}
        # exact synapse counts from the integer network (conv padding excluded)
        for row in rows:
            node = net.nodes.get(row["name"])
            if node is not None and hasattr(node, "num_synapses"):
                row["synapses"] = node.num_synapses
        out["synapses"] = net.num_synapses
    return out


def format_summary(s: Dict[str, Any]) -> str:
    """Render :func:`summarize` output as an aligned text report."""
    lines = []
    if s["quantized"]:
        state = f"quantized for {s['profile']}, dt = {s['dt_s']:g} s"
    else:
        state = "unquantized (float NIR, no neurohw metadata)"
    lines.append(f"{s['source']}: {state}")
    lines.append(
        f"  {s['num_nodes']} nodes, {s['edges']} top-level edges, {s['neurons']} neurons, "
        f"{s['synapses']} synapses" + (", nested graphs" if s["nested"] else "")
        + (", recurrent" if s.get("recurrent") else "")
    )
    header = ("node", "type", "in", "out", "neurons", "synapses")
    table = [header]
    for r in s["nodes"]:
        table.append((
            "  " * r["depth"] + r["name"].split(".")[-1] if r["depth"] else r["name"],
            r["type"],
            _shape_str(r["in_shape"]),
            _shape_str(r["out_shape"]),
            str(r["neurons"]) if r["neurons"] else "",
            "" if r["synapses"] is None else str(r["synapses"]),
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.append("")
    for row in table:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if s["quantized"]:
        lines.append("")
        lines.append(f"  bit usage vs profile {s['profile']} (used / available):")
        for name, items in s["bits"].items():
            parts = []
            for it in items:
                val = it["value"]
                val_s = f"{val[0]}..{val[1]}" if isinstance(val, list) else str(val)
                if "available" in it:
                    flag = " FULL" if it["used"] >= it["available"] else ""
                    sign = " signed" if it.get("signed") else ""
                    parts.append(f"{it['param']}={val_s} ({it['used']}/{it['available']} bits{sign}{flag})")
                else:
                    parts.append(f"{it['param']}={val_s} (range {it['range'][0]}..{it['range'][1]})")
                if "sign_mode" in it:
                    parts[-1] += f" [{it['sign_mode']}, num_weight_bits={it['num_weight_bits']}]"
            lines.append(f"    {name}: " + "; ".join(parts))
        if s.get("neuron_fields"):
            lines.append("")
            lines.append("  neuron fields (per population):")
            for name, nf in s["neuron_fields"].items():
                lines.append(f"    {name}: " + "; ".join(_neuron_field_parts(nf)))
    return "\n".join(lines)


def _range_str(value) -> str:
    return f"{value[0]}..{value[1]}" if isinstance(value, list) else str(value)


def _neuron_field_parts(nf: Dict[str, Any]) -> List[str]:
    """Text pieces of one population's :func:`_neuron_fields` entry."""
    parts = [f"model {nf['model']}"]
    rd = nf["refract_delay"]
    if rd == 0:
        parts.append("refract_delay 0 (none)")
    else:
        parts.append(f"refract_delay {_range_str(rd)} ({_range_str(nf['silent_steps'])} silent "
                     f"steps{', per neuron' if isinstance(rd, list) else ''})")
    parts.append(f"v in [{nf['vmin']}, {nf['vmax']}]"
                 + (" (profile default)" if nf["v_limits_default"] else " (vmin/vmax set)"))
    tr = nf["trace"]
    parts.append("trace none" if tr is None else
                 f"trace impulse {tr['impulse']}, decay {tr['decay']}/2**{tr['decay_bits']} "
                 f"per step, {tr['mode']}, {tr['bits']}-bit")
    el = nf["elif"]
    if el is not None:
        parts.append(f"ELIF table {el['table_size']} entries, lo {el['lo']}, shift {el['shift']} "
                     f"(v {el['v_span'][0]}..{el['v_span'][1]}), values "
                     f"{el['values'][0]}..{el['values'][1]}")
    parts.append("per neuron: " + (", ".join(nf["per_neuron"]) or "none"))
    parts.append("shared: " + (", ".join(nf["shared"]) or "none"))
    return parts
