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
    neuron shares it, else ``[min, max]``; ``used`` counts the bits of the maximum."""
    arr = np.asarray(getattr(pop, param), dtype=np.int64)
    single = pop.uniform(param)
    value: Any = single if single is not None else [int(arr.min()), int(arr.max())]
    return {"param": param, "value": value, "used": bits_unsigned(int(arr.max())),
            "available": available, "signed": False}


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
                 "available": profile.bias_bits, "signed": True},
                {"param": "bias_exp", "value": [int(e.min()), int(e.max())],
                 "range": [profile.bias_exp_min, profile.bias_exp_max]},
            ]
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
    quantized graphs ``profile``, ``dt_s`` and ``bits`` (per layer, per
    parameter: value, bits used, bits available).
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
    return "\n".join(lines)
