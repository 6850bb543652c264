"""A self-contained HTML report of a deployment plan (inline SVG, no scripts, no links)."""

from __future__ import annotations

import html
from typing import List, Sequence

from .place import RESOURCES

__all__ = ["plan_html"]

_COLORS = {"compartments": "#4c72b0", "synapse_bits": "#dd8452", "in_axons": "#55a868",
           "out_axons": "#c44e52"}


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _util_svg(blocks: Sequence[dict], max_cores: int = 256) -> str:
    """Grouped bars: per core (first ``max_cores``), used/limit of each resource."""
    shown = list(blocks[:max_cores])
    bw = 3
    gw = bw * len(RESOURCES) + 2
    # wide enough for the bars and for the legend (110 px per resource), which a narrower
    # svg clips (seen in Chromium: a 5-core plan showed two of the four legend entries)
    w, h = max(40 + 110 * len(RESOURCES), 40 + gw * len(shown)), 180
    parts = [f'<svg id="core-utilization" xmlns="http://www.w3.org/2000/svg" width="{w}" '
             f'height="{h}" role="img"><title>Core utilization (% of each per-core limit)</title>',
             f'<line x1="30" y1="150" x2="{w - 5}" y2="150" stroke="#333"/>',
             '<text x="2" y="20" font-size="9">100%</text>',
             '<text x="2" y="150" font-size="9">0%</text>']
    for i, b in enumerate(shown):
        for k, r in enumerate(RESOURCES):
            frac = b[r]["used"] / b[r]["limit"] if b[r]["limit"] else 0.0
            hh = 130 * min(frac, 1.0)
            x = 32 + i * gw + k * bw
            parts.append(f'<rect class="bar" data-core="{b["chip"]}.{b["core"]}" '
                         f'data-resource="{r}" x="{x}" y="{150 - hh:.1f}" width="{bw}" '
                         f'height="{hh:.1f}" fill="{_COLORS[r]}"><title>{_esc(b["node"])} '
                         f'chip {b["chip"]} core {b["core"]}: {r} {b[r]["used"]}/'
                         f'{b[r]["limit"]}</title></rect>')
    for k, r in enumerate(RESOURCES):
        parts.append(f'<rect x="{32 + 110 * k}" y="162" width="8" height="8" '
                     f'fill="{_COLORS[r]}"/><text x="{44 + 110 * k}" y="170" '
                     f'font-size="10">{r}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _hbar_svg(items: dict, ident: str, unit: str) -> str:
    """Horizontal bars, one per item, each as a share (%) of the items' total, labelled in ``unit``."""
    total = sum(items.values()) or 1.0
    h = 24 * len(items) + 10
    labels = {k: f"{v:.3g} {unit} ({100 * v / total:.1f}%)" for k, v in items.items()}
    # room right of the longest bar (300 px) for its label: <= 7 px a character at 11 px
    # (a fixed 560 px clipped the label of a part near 100 %, seen in Chromium)
    w = 180 + 300 + 7 * max((len(t) for t in labels.values()), default=0)
    parts = [f'<svg id="{ident}" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'role="img">']
    for i, (k, v) in enumerate(items.items()):
        wdt = 300 * v / total
        parts.append(f'<text x="0" y="{18 + 24 * i}" font-size="11">{_esc(k)}</text>'
                     f'<rect x="170" y="{6 + 24 * i}" width="{wdt:.1f}" height="16" '
                     f'fill="#4c72b0"/><text x="{175 + wdt:.1f}" y="{18 + 24 * i}" '
                     f'font-size="11">{_esc(labels[k])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _line_svg(series: dict, ident: str) -> str:
    """One polyline per series over the steps, each scaled to its own maximum.

    With fewer than two steps there is no curve to draw (a one-point polyline
    renders as nothing): a paragraph with the same ``id`` says so instead.
    """
    if max((len(ys) for ys in series.values()), default=0) < 2:
        return (f'<p id="{ident}">One step per inference: no per-step curve (an --input '
                f'with more steps, or --steps N for the worst case, draws one); the totals '
                f'are in the Events table.</p>')
    w, h = 560, 170
    parts = [f'<svg id="{ident}" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'role="img"><title>Events per step</title>']
    colors = ["#4c72b0", "#dd8452", "#55a868"]
    for k, (name, ys) in enumerate(series.items()):
        ys = list(ys)
        top = max(ys) if ys and max(ys) > 0 else 1.0
        n = max(len(ys) - 1, 1)
        pts = " ".join(f"{10 + 520 * i / n:.1f},{140 - 120 * y / top:.1f}"
                       for i, y in enumerate(ys))
        parts.append(f'<polyline class="series" data-name="{_esc(name)}" fill="none" '
                     f'stroke="{colors[k % 3]}" points="{pts}"/>'
                     f'<text x="{10 + 170 * k}" y="160" font-size="10" fill="{colors[k % 3]}">'
                     f'{_esc(name)} (max {top:.3g})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: List[Sequence], head: Sequence[str], ident: str) -> str:
    out = [f'<table id="{ident}"><thead><tr>' + "".join(f"<th>{_esc(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(
            f"<td>{_esc(f'{c:.6g}' if isinstance(c, float) else c)}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def plan_html(d: dict, title: str = "neurohw deployment plan") -> str:
    """The report for a plan dict (``DeploymentPlan.to_dict()``) as one HTML string."""
    css = ("body{font-family:sans-serif;max-width:1100px;margin:1em auto}"
           "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
           "padding:2px 6px;text-align:left}.scroll{overflow-x:auto}")
    head = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}'
            f'</title><style>{css}</style></head><body><h1>{_esc(title)}</h1>')
    if not d.get("fits"):
        return head + (f'<p id="verdict">Does not fit on {_esc(d["profile"])}: '
                       f'{_esc(d.get("refusal"))}</p></body></html>')
    if d.get("profile") == "speck":
        return head + (f'<p id="verdict">Fits on speck: {d["cores_used"]} of 9 cores. '
                       f'{_esc(d["note"])}</p>' + _table(
                           [(L["node"], L["core"], f'{L["kernel_memory"]["used"]}/'
                             f'{L["kernel_memory"]["limit"]}', f'{L["neuron_memory"]["used"]}/'
                             f'{L["neuron_memory"]["limit"]}') for L in d["layers"]],
                           ("node", "core", "kernel memory", "neuron memory"), "blocks")
                       + f"<p>Source: {_esc(d['source'])}</p></body></html>")
    ev = d["events"]
    body = [f'<p id="verdict">Fits on {_esc(d["profile"])}: {d["cores_used"]} cores on '
            f'{d["chips_used"]} chip(s); binding limit <b>{_esc(d["binding_limit"] or "none (every population fits one core)")}</b>. '
            f'Energy per inference {d["energy_j"]["total"]:.4g} J, latency '
            f'{d["latency_s"]["per_inference"]:.4g} s ({d["latency_s"]["per_step"]:.4g} s per '
            f'step), EDP {d["edp_js"]:.4g} J s (constants: {_esc(d["constant_set"])}).</p>',
            f'<p>Events per inference over {ev["steps"]} step(s)'
            + (" (worst case: every neuron spikes every step)" if ev["worst_case"]
               else f' (mean of {ev["samples"]} sample(s))') + "</p>",
            "<h2>Core utilization</h2>"
            + (f"<p>first 256 of {len(d['blocks'])} cores</p>" if len(d["blocks"]) > 256 else "")
            + f'<div class="scroll">{_util_svg(d["blocks"])}</div>',
            "<h2>Energy breakdown</h2>" + _hbar_svg(d["energy_j"]["breakdown"], "energy-breakdown",
                                                    "J"),
            "<h2>Activity per step</h2>" + _line_svg(ev["per_step"], "per-step-activity"),
            "<h2>Events</h2>" + _table(
                [(k, ev[k]) for k in ("synops", "neuron_updates_active", "neuron_updates_idle",
                                      "spikes", "spike_messages", "spike_hops")],
                ("event", "per inference"), "events"),
            "<h2>NeuroBench metrics</h2>" + _table(
                [(k, v) for k, v in d["metrics"].items()], ("metric", "value"), "metrics"),
            "<h2>Constants</h2>" + _table(
                [(k, c["value"], c["unit"], c["source"]) for k, c in d["constants"].items()],
                ("constant", "value", "unit", "source"), "constants"),
            "<h2>Blocks</h2>" + _table(
                [(b["node"], b["neurons"], b["chip"], b["core"])
                 + tuple(f'{b[r]["used"]}/{b[r]["limit"]}' for r in RESOURCES)
                 + (b["binding"],) for b in d["blocks"][:2000]],
                ("node", "neurons", "chip", "core") + RESOURCES + ("binding",), "blocks")]
    return head + "".join(body) + "</body></html>"
