"""Run a quantized network bit-exactly (Lava fixed_pt semantics) on an input
spike array and write every population's spikes (and, with --record, v/u) to
an .npz file: NAME.spikes / NAME.v / NAME.u, each (B, T, n); with
--record trace also NAME.trace for populations that keep a spike trace."""

from __future__ import annotations

import sys
import time

import numpy as np

from ..emulate import run as emulate
from ..fileio import atomic_write
from ._common import load_array, load_model, parse_record

HELP = "emulate a quantized network bit-exactly"


def add_args(p) -> None:
    p.add_argument("model", metavar="MODEL.nir", help="quantized NIR file")
    p.add_argument("--input", required=True, metavar="X.npy",
                   help="integer spikes, shape (T, n_in) or (B, T, n_in)")
    p.add_argument("--out", required=True, metavar="RUN.npz", help="output file")
    p.add_argument("--record", default="", metavar="v,u,trace",
                   help="also record membrane voltage v, current u and/or the integer spike "
                        "trace (populations with trace_impulse > 0)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "numba"],
                   help="numba: fused compiled kernels (default when installed); numpy: the "
                        "reference step functions; both give the same integers")


def run(args) -> int:
    items = [s.strip() for s in args.record.split(",")] if args.record else []
    record = parse_record(",".join(s for s in items if s != "trace"))
    if "trace" in items:
        record = record + ("trace",)
    net = load_model(args.model)
    x = load_array(args.input)
    t0 = time.perf_counter()
    result = emulate(net, x, record=record, progress=args.progress or sys.stderr.isatty(),
                     source=str(args.input), engine=args.engine)
    secs = time.perf_counter() - t0
    arrays = result.to_npz_dict()
    atomic_write(args.out, lambda tmp: _save(tmp, arrays))
    total = sum(int(v.sum()) for k, v in arrays.items() if k.endswith(".spikes"))
    print(f"{args.out}: {result.batch_size} sample(s) x {result.num_steps} steps, "
          f"{len(result.spikes)} populations, {total} spikes ({secs:.2f} s)")
    return 0


def _save(tmp: str, arrays) -> None:
    with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
        np.savez(f, **arrays)
