"""Fit check for SynSense Speck / DYNAP-CNN (``neurohw map --profile speck``).

Speck has 9 convolutional cores; each holds one layer (a convolution and the neurons it
feeds).  Per layer, with ``c`` input channels, ``f`` output channels, a ``kh x kw`` kernel
and an ``fy x fx`` output map (Sinabs ``DynapcnnLayer.memory_summary`` and
``sinabs/validate_memory_speck.py``, memory in entries, 1 Ki = 1,024):

* kernel memory ``K = c * 2**(ceil(log2(kh*kw)) + ceil(log2(f)))``;
* neuron memory ``N = f * 2**(ceil(log2(fy)) + ceil(log2(fx)))``;
* bias memory ``f`` (at most 1,024).

Core capacities (Sinabs ``chips/dynapcnn.py`` ``get_constraints``), kernel / neuron memory:
cores 0-2 16 Ki / 64 Ki, 3-4 32 / 32, 5-6 64 / 16, 7-8 16 / 16.  Other limits: at most 1,024
channels, kernels up to 16 x 16, stride 1, 2, 4 or 8, padding 0..7, and at most two
destination cores per core.  A Dense layer is a convolution whose kernel covers its whole
input (as Sinabs converts ``Linear``); a SumPool2d feeding neurons is a convolution with
a ``k x k`` kernel and stride ``k``.  Layers are assigned to cores by maximum bipartite
matching (augmenting paths; Sinabs uses Edmonds-Karp max-flow on the same graph).

No per-event energy or latency of Speck is used here (none are in the sources at hand):
the plan reports fit and memory only.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional


from .. import ir
from .place import projections_of

__all__ = ["SPECK_CORES", "layer_memory", "plan_speck"]

KI = 1024
SPECK_CORES = [(16 * KI, 64 * KI)] * 3 + [(32 * KI, 32 * KI)] * 2 + [(64 * KI, 16 * KI)] * 2 \
    + [(16 * KI, 16 * KI)] * 2
"""(kernel memory, neuron memory) of cores 0..8, in entries (Sinabs ``get_constraints``)."""
SOURCE = ("Sinabs 3.1 sinabs/backend/dynapcnn (DynapcnnLayer.memory_summary, "
          "chips/dynapcnn.py get_constraints); sinabs/validate_memory_speck.py")


def _clog2(x: int) -> int:
    return int(math.ceil(math.log2(x))) if x > 1 else 0


def layer_memory(c: int, f: int, kh: int, kw: int, fy: int, fx: int) -> Dict[str, int]:
    """Kernel, neuron and bias memory of one layer, in entries (formulas in module doc)."""
    return {"kernel_memory": int(c * 2 ** (_clog2(kh * kw) + _clog2(f))),
            "neuron_memory": int(f * 2 ** (_clog2(fy) + _clog2(fx))),
            "bias_memory": int(f)}


def _layers(net: ir.Network) -> List[dict]:
    out = []
    for p in projections_of(net):
        if p.kind == "conv":
            cv = p.conv
            c, _, _ = cv.input_shape
            f, _, oy, ox = (cv.weight.shape[0],) + tuple(cv.out_shape)
            kh, kw = cv.weight.shape[2:]
            geo = {"stride": cv.stride, "padding": cv.padding, "dilation": cv.dilation,
                   "groups": cv.groups}
        else:
            shape = tuple(net.nodes[p.src].out_shape)
            c, in_h, in_w = shape if len(shape) == 3 else (p.n_src, 1, 1)
            f, oy, ox, kh, kw = p.n_dst, 1, 1, in_h, in_w
            geo = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}
        mem = layer_memory(c, f, kh, kw, oy, ox)
        out.append(dict(node=p.dst, projection=p.name, source=p.src, in_channels=int(c),
                        out_channels=int(f), kernel=[int(kh), int(kw)], out_map=[int(oy), int(ox)],
                        **mem, **{k: list(v) if isinstance(v, tuple) else v
                                  for k, v in geo.items()}))
    return out


def _match(layers: List[dict]) -> Optional[List[int]]:
    """Core per layer by maximum bipartite matching, or None when some layer has no core."""
    fits = [[j for j, (k, n) in enumerate(SPECK_CORES)
             if L["kernel_memory"] <= k and L["neuron_memory"] <= n] for L in layers]
    core_of: Dict[int, int] = {}  # core -> layer

    def augment(i, seen):
        for j in fits[i]:
            if j not in seen:
                seen.add(j)
                if j not in core_of or augment(core_of[j], seen):
                    core_of[j] = i
                    return True
        return False

    for i in range(len(layers)):
        if not augment(i, set()):
            return None
    out = [0] * len(layers)
    for j, i in core_of.items():
        out[i] = j
    return out


def plan_speck(net: ir.Network) -> dict:
    """Fit check of ``net`` on Speck: a dict with ``fits``, ``refusal``, ``layers``."""
    layers = _layers(net)
    problems = []
    pops_fed: Dict[str, int] = {}
    for L in layers:
        pops_fed[L["node"]] = pops_fed.get(L["node"], 0) + 1
        where = f"node '{L['node']}' (projection '{L['projection']}')"
        for key, limit in (("in_channels", 1024), ("out_channels", 1024)):
            if L[key] > limit:
                problems.append(f"{where}: {L[key]} {key.replace('_', ' ')} but Speck allows "
                                f"{limit}")
        if max(L["kernel"]) > 16:
            problems.append(f"{where}: kernel {L['kernel']} but Speck allows at most 16x16")
        if any(s not in (1, 2, 4, 8) for s in L["stride"]):
            problems.append(f"{where}: stride {L['stride']} but Speck allows 1, 2, 4 or 8")
        if any(p > 7 for p in L["padding"]):
            problems.append(f"{where}: padding {L['padding']} but Speck allows 0..7")
        if L["dilation"] != [1, 1] or L["groups"] != 1:
            problems.append(f"{where}: dilation/groups are not supported on Speck")
        if L["kernel_memory"] > 64 * KI or L["neuron_memory"] > 64 * KI:
            r = "kernel_memory" if L["kernel_memory"] > 64 * KI else "neuron_memory"
            problems.append(f"{where}: needs {L[r] / KI:g} Ki {r.replace('_', ' ')} but a Speck "
                            f"core has at most 64 Ki")
    for node, n in pops_fed.items():
        if n > 1:
            problems.append(f"node '{node}': fed by {n} projections; a Speck core has one "
                            f"convolution")
    dests: Dict[str, int] = {}
    for L in layers:
        dests[L["source"]] = dests.get(L["source"], 0) + 1
    for src, n in dests.items():
        if src in net.populations and n > 2:
            problems.append(f"node '{src}': sends to {n} layers but a Speck core has at most "
                            f"2 destinations")
    if len(layers) > len(SPECK_CORES):
        problems.append(f"network: {len(layers)} layers but Speck has {len(SPECK_CORES)} cores")
    cores = None if problems else _match(layers)
    if cores is None and not problems:
        problems.append("no valid mapping: the layers' kernel and neuron memories do not fit "
                        "Speck's cores together (" + ", ".join(
                            f"'{L['node']}' {L['kernel_memory'] / KI:g} Ki kernel / "
                            f"{L['neuron_memory'] / KI:g} Ki neuron" for L in layers) + ")")
    for i, L in enumerate(layers):
        L["core"] = None if cores is None else cores[i]
        if cores is not None:
            k, n = SPECK_CORES[cores[i]]
            L["kernel_memory"] = {"used": L["kernel_memory"], "limit": k}
            L["neuron_memory"] = {"used": L["neuron_memory"], "limit": n}
            L["bias_memory"] = {"used": L["bias_memory"], "limit": 1024}
    return {"profile": "speck", "dt": net.dt_s, "fits": not problems,
            "refusal": "; ".join(problems) if problems else None,
            "cores_used": None if problems else len(layers), "chips_used": None if problems else 1,
            "layers": layers, "source": SOURCE,
            "energy_j": None, "latency_s": None, "edp_js": None,
            "note": "no published per-event energy or latency for Speck: fit and memory only"}


def speck_text(d: dict) -> str:
    """Terminal summary of a :func:`plan_speck` dict."""
    if not d["fits"]:
        return f"does not fit on speck: {d['refusal']}"
    lines = [f"profile speck: {d['cores_used']} of {len(SPECK_CORES)} cores"]
    for L in d["layers"]:
        lines.append(f"  {L['node']:<16} core {L['core']}: kernel "
                     f"{L['kernel_memory']['used'] / KI:g}/{L['kernel_memory']['limit'] // KI} Ki, "
                     f"neuron {L['neuron_memory']['used'] / KI:g}/"
                     f"{L['neuron_memory']['limit'] // KI} Ki")
    lines.append(d["note"])
    return "\n".join(lines)


