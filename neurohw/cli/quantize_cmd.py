"""Quantize a trained float NIR graph to integers for a chip profile and write
the quantized NIR (exact integers in metadata, dequantized floats in the NIR
fields). Prints what each layer became and every approximation made; with
--report DIR (and --eval/--labels) also compares float and chip on data and
writes report.txt, report.json and figures."""

from __future__ import annotations

from ..errors import ValidationError
from ..nirio import write_network
from ..profiles import PROFILES, parse_profile
from ..sources import RESETS, SOURCES
from ._common import ensure_parent, load_array, load_input

HELP = "quantize a float NIR graph for a chip profile"


def add_args(p) -> None:
    p.add_argument("model", metavar="MODEL.nir", help="float NIR file (e.g. exported by snnTorch or Norse)")
    p.add_argument("-o", "--out", required=True, metavar="MODEL.q.nir", help="quantized NIR to write")
    p.add_argument("--profile", default="loihi2", metavar="NAME",
                   help=f"target chip profile: {', '.join(sorted(PROFILES))}, or "
                        f"'generic(field=value, ...)', e.g. 'generic(act_shift=5,decay_bits=10)'")
    p.add_argument("--source", choices=SOURCES, default=None,
                   help="the framework that exported MODEL.nir; neurohw applies its conventions so "
                        "the float model is the trained one (snntorch: reset by subtraction with "
                        "reset_delay, as snnTorch's defaults; norse: tau = dt/tau_inv, w_in, IF r; "
                        "sinabs: tau in steps, IF adds r*x per step, MultiSpike, subtract; nir: "
                        "the file as written). Default: plain NIR, refusing files that match a "
                        "known producer quirk (docs/quantization.md)")
    p.add_argument("--reset", choices=RESETS, default=None,
                   help="override the producer's reset: subtract (v -= threshold) or zero; the "
                        "chip resets to zero, and the report measures what that costs")
    p.add_argument("--reset-delay", choices=["yes", "no"], default=None,
                   help="override snnTorch's reset_delay (default yes for --source snntorch)")
    p.add_argument("--dt", type=float, default=None, metavar="S",
                   help="seconds per time step (default: graph metadata, else the source's own: "
                        "1e-4 snnTorch and plain NIR, 1e-3 Norse and Sinabs)")
    p.add_argument("--calibrate", metavar="X.npy[:KEY]",
                   help="sample spike input (B, T, n_in), or image-shaped (B, T, C, H, W) flattened "
                        "row-major, to choose scales from observed activity")
    p.add_argument("--target", default="chip", choices=["chip", "netx"],
                   help="netx: keep weight_exp 0 and biases on multiples of 64 so lava-dl netx "
                        "loads the network exactly")
    p.add_argument("--neuron-types", type=_positive_int, default=None, metavar="K",
                   help="at most K distinct (du, dv, vth) sets per population, clustered from the "
                        "neurons' time constants and thresholds (1: one per population, the "
                        "median; default: one per distinct float set, i.e. per neuron where they "
                        "differ)")
    p.add_argument("--per-channel", action="store_true",
                   help="one weight exponent per output row/channel group")
    p.add_argument("--report", metavar="DIR", help="write report.txt, report.json and figures here")
    p.add_argument("--eval", metavar="X.npy[:KEY]", help="spike input to compare float and chip on")
    p.add_argument("--labels", metavar="Y.npy[:KEY]", help="labels of --eval, for accuracy")
    p.add_argument("--progress", action="store_true", help="progress bar for the evaluation")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run --eval's chip emulation over a Dask cluster (e.g. tcp://HOST:8786; "
                        "needs dask[distributed]; same integers as a local run; docs/cluster.md)")


def _input_shape(path):
    """The unbatched shape of the float graph's one Input (``None``: several, or unreadable
    here -- the quantizer then reports the problem itself)."""
    try:
        from ..nirgraph import load_nir, shape_of
        import nir

        graph = load_nir(path)
        ins = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
        return tuple(int(d) for d in shape_of(ins[0], "output_type")) if len(ins) == 1 else None
    except Exception:
        return None


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def run(args) -> int:
    """Everything that can fail runs before anything is written; the model goes last."""
    import sys
    from pathlib import Path

    from ..errors import FileFormatError
    from ..quantize import quantize
    from ..quantize.report import evaluate, format_report, write_report

    if args.labels and not args.eval:
        raise ValidationError("--labels needs --eval")
    if getattr(args, "scheduler", None) and not args.eval:
        raise ValidationError("--scheduler needs --eval (it spreads the evaluation's batch)")
    try:
        profile = parse_profile(args.profile)
    except ValidationError as exc:
        raise ValidationError(f"--profile: {exc}") from None
    shape = _input_shape(args.model)
    calib = load_input(args.calibrate, shape=shape) if args.calibrate else None
    x = load_input(args.eval, shape=shape) if args.eval else None
    y = load_array(args.labels) if args.labels else None
    if Path(args.out).is_dir():
        raise FileFormatError(f"{args.out}: is a directory")
    ensure_parent(args.out)  # created before the work, as every command does
    model = quantize(args.model, profile, dt=args.dt, calibrate=calib,
                     per_channel=args.per_channel, name=args.model, target=args.target,
                     calibrate_source=str(args.calibrate), neuron_types=args.neuron_types,
                     source=args.source, reset=args.reset,
                     reset_delay=None if args.reset_delay is None else args.reset_delay == "yes")
    for w in model.warnings:
        print(f"neurohw quantize: warning: {w}", file=sys.stderr)
    ev = None
    if x is not None:
        try:
            ev = evaluate(model, x, y, progress=args.progress,
                          scheduler=getattr(args, "scheduler", None))
        except ValidationError as exc:
            raise ValidationError(f"{args.eval}: {exc}") from None
    print(format_report(model, ev), end="")
    if args.report:
        try:
            for path in write_report(model, args.report, ev):
                print(f"wrote {path}")
        except OSError as exc:
            raise FileFormatError(f"{args.report}: cannot write the report ({exc.strerror or exc})") from None
    write_network(model.network, args.out)
    print(f"wrote {args.out}")
    return 0
