"""Plan a quantized network on a chip: split populations into core-sized blocks,
check every per-core limit, count events (from a bit-exact run with --input, else
the worst case) and estimate energy and latency from published per-event figures.
Writes a text summary, and optionally the JSON plan and an HTML report."""

from __future__ import annotations

import json

from ..errors import ValidationError
from ..fileio import atomic_write
from ._common import ensure_parent, load_input, load_model

HELP = "plan cores, chips, energy and latency of a quantized network"


def add_args(p) -> None:
    p.add_argument("model", metavar="MODEL.q.nir", help="quantized NIR file")
    p.add_argument("--input", metavar="X.npy[:KEY]", default=None,
                   help="integer spikes (T, n_in) or (B, T, n_in) (or image-shaped, as for "
                        "emulate) to count events from; "
                        "without it the worst case is reported")
    p.add_argument("--profile", default=None, metavar="P",
                   help="target profile (default: the model's own): loihi1, loihi2, generic(...), "
                        "or speck (SynSense Speck: layer-per-core memory fit check only)")
    p.add_argument("--steps", type=int, default=1, metavar="N",
                   help="steps per inference for the worst case without --input (default 1)")
    p.add_argument("--constants", default=None, choices=["davies2018", "sanafe"],
                   help="headline energy/latency constant set (default davies2018)")
    p.add_argument("--json", default=None, metavar="F", help="write the plan as JSON")
    p.add_argument("--html", default=None, metavar="F", help="write a self-contained HTML report")


def run(args) -> int:
    from ..mapping import plan
    from ..mapping.html import plan_html

    if args.steps < 1:
        raise ValidationError(f"--steps={args.steps}: must be >= 1")
    net = load_model(args.model)
    if str(args.profile).lower() == "speck":
        return _run_speck(args, net)
    x = load_input(args.input, net) if args.input else None
    for out in (args.json, args.html):
        if out:
            ensure_parent(out)
    p = plan(net, x, profile=args.profile, steps=args.steps, constant_set=args.constants,
             input_name=args.input)
    d = p.to_dict()
    if args.json:
        text = json.dumps(d, indent=1)
        atomic_write(args.json, lambda tmp: _write_text(tmp, text))
    if args.html:
        page = plan_html(d, f"neurohw deployment plan: {args.model}")
        atomic_write(args.html, lambda tmp: _write_text(tmp, page))
    if not p.fits:
        raise ValidationError(f"{args.model}: does not fit on {p.profile}: {p.refusal}")
    print(p.text())
    return 0


def _write_text(tmp: str, text: str) -> None:
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def _run_speck(args, net) -> int:
    from ..mapping.html import plan_html
    from ..mapping.speck import plan_speck, speck_text

    d = plan_speck(net)
    for out in (args.json, args.html):
        if out:
            ensure_parent(out)
    if args.json:
        text = json.dumps(d, indent=1)
        atomic_write(args.json, lambda tmp: _write_text(tmp, text))
    if args.html:
        page = plan_html(d, f"neurohw deployment plan: {args.model}")
        atomic_write(args.html, lambda tmp: _write_text(tmp, page))
    if not d["fits"]:
        raise ValidationError(f"{args.model}: does not fit on speck: {d['refusal']}")
    print(speck_text(d))
    return 0
