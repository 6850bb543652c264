"""Run a quantized network bit-exactly (Lava fixed_pt semantics) on an input
spike array and write every population's spikes (and, with --record, v/u) to
an .npz file: NAME.spikes / NAME.v / NAME.u, each (B, T, n); with
--record trace also NAME.trace for populations that keep a spike trace.
With --align, row t of every population is its answer to input row t (the
input is padded with the readout's latency); with --labels, the readout's
accuracy is printed."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..emulate import run as emulate
from ..emulate.runfile import SPILL_BYTES, write_run
from ..fileio import atomic_write
from ..errors import ValidationError
from ._common import ensure_parent, load_array, load_input, load_model, parse_populations, parse_record

HELP = "emulate a quantized network bit-exactly"


def add_args(p) -> None:
    p.add_argument("model", metavar="MODEL.nir", help="quantized NIR file")
    p.add_argument("--input", required=True, metavar="X.npy[:KEY]",
                   help="integer spikes (T, n_in) or (B, T, n_in), or image-shaped (B, T, C, H, W) "
                        "flattened row-major; FILE.npz:KEY picks one array of an archive")
    p.add_argument("--out", required=True, metavar="RUN.npz",
                   help="output file (missing parent directories are created)")
    p.add_argument("--align", action="store_true",
                   help="pad the input with the recorded populations' largest latency (the "
                        "readout's; zero steps) and drop each population's first latency rows, "
                        "so row t answers input row t")
    p.add_argument("--labels", metavar="Y.npy[:KEY]", default=None,
                   help="one integer label per sample: print the readout's accuracy (argmax of "
                        "spike counts, or of the last v for a readout that never fires); "
                        "implies --align")
    p.add_argument("--populations", metavar="a,b", default=None,
                   help="record only these populations (default: all)")
    p.add_argument("--record", default="", metavar="v,u,trace",
                   help="also record membrane voltage v, current u and/or the integer spike "
                        "trace (populations with trace_impulse > 0)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--engine", default="auto", choices=["auto", "numpy", "numba"],
                   help="numba: fused compiled kernels (default when installed); numpy: the "
                        "reference step functions; both give the same integers")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="spread the batch over a Dask cluster (e.g. tcp://HOST:8786; needs "
                        "dask[distributed]; same integers as a local run; docs/cluster.md)")


def run(args) -> int:
    items = [s.strip() for s in args.record.split(",")] if args.record else []
    record = parse_record(",".join(s for s in items if s != "trace"))
    if "trace" in items:
        record = record + ("trace",)
    net = load_model(args.model)
    x = load_input(args.input, net)
    keep = parse_populations(args.populations, net) if args.populations else tuple(net.populations)
    readout = readout_population(net)
    y = None
    if args.labels:
        y = np.asarray(load_array(args.labels)).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise ValidationError(f"{args.labels}: {y.shape[0]} labels for {x.shape[0]} samples "
                                  f"of {args.input}")
        if y.dtype.kind not in "iu":
            raise ValidationError(f"{args.labels}: labels must be integers (dtype {y.dtype})")
        if readout is None:
            raise ValidationError(f"{args.model}: no population feeds an Output node; "
                                  f"--labels needs a readout")
        if "v" not in record:
            record = record + ("v",)  # a non-firing readout is read from v
    align = args.align or y is not None
    ensure_parent(args.out)  # before the run, not after
    lat = _latencies(net) if align else {}
    T = x.shape[1]
    # the readout's latency: every kept population (and the readout) gets all T answers
    pad = max((lat[k] for k in set(keep) | ({readout} if y is not None else set())),
              default=0) if align else 0
    if pad:
        x = np.concatenate([x, np.zeros((x.shape[0], pad) + x.shape[2:], x.dtype)], axis=1)
    # a recording larger than SPILL_BYTES goes to memory-mapped files beside the output
    # (deleted when written), so long runs and big batches stay in bounded memory
    rec_bytes = x.shape[0] * x.shape[1] * sum(
        p.size * (1 if var == "spikes" else 4) for var in record for p in net.populations.values())
    spill = (tempfile.TemporaryDirectory(prefix=".neurohw-run-", dir=Path(args.out).parent)
             if rec_bytes > SPILL_BYTES else contextlib.nullcontext())
    with spill as spill_dir:
        return _run_and_write(args, net, x, record, items, keep, readout, y, align, lat, T, pad,
                              spill_dir)


def _run_and_write(args, net, x, record, items, keep, readout, y, align, lat, T, pad,
                   spill_dir) -> int:
    t0 = time.perf_counter()
    if getattr(args, "scheduler", None):
        from ..distributed import run as run_distributed

        result = run_distributed(net, x, args.scheduler, record=record, source=str(args.input),
                                 engine=args.engine, spill_dir=spill_dir)
    else:
        result = emulate(net, x, record=record, progress=args.progress or sys.stderr.isatty(),
                         source=str(args.input), engine=args.engine, spill_dir=spill_dir)
    secs = time.perf_counter() - t0
    acc = None
    if y is not None:
        k = lat.get(readout, 0)
        s = result.spikes[readout][:, k:k + T]
        if _fires(net, readout) or s.any():
            pred = s.sum(axis=1, dtype=np.int64).argmax(axis=1)
        else:
            pred = result.v[readout][:, k + T - 1].argmax(axis=1)
        acc = float((pred == y).mean())
    if args.labels and "v" not in items:
        result.v.clear()  # recorded only to read the readout
    for var in ("spikes", "v", "u", "trace"):
        table = getattr(result, var)
        for name in list(table):
            if name not in keep:
                del table[name]
            elif align:
                k = lat[name]
                table[name] = table[name][:, k:k + T]
    if align:
        result.num_steps = T
    arrays = result.to_npz_dict()
    atomic_write(args.out, lambda tmp: _save(tmp, arrays))
    total = sum(_count(v) for k, v in arrays.items() if k.endswith(".spikes"))
    print(f"{args.out}: {result.batch_size} sample(s) x {result.num_steps} steps"
          f"{f' (aligned: input padded by {pad} step(s))' if align else ''}, "
          f"{len(keep)} populations, {total} spikes ({secs:.2f} s)")
    if acc is not None:
        print(f"accuracy of '{readout}': {acc * 100:.2f} % ({int(round(acc * len(y)))}/{len(y)})")
    return 0


def readout_population(net):
    """The population an Output node reads (the last one, through Flatten), or ``None``."""
    from .. import ir

    outs = [net.through_flatten(p) for o in net.of_type(ir.OutputNode) for p in net.predecessors(o)]
    outs = [p for p in outs if p in net.populations]
    return outs[-1] if outs else None


def _fires(net, pop) -> bool:
    """False for a readout quantized as non-spiking (every vth at the profile's maximum;
    such a readout that does emit spikes is read from its spikes all the same)."""
    return not bool(np.all(net.populations[pop].vth >= 2**net.profile.vth_bits - 1))


def _latencies(net):
    from ..quantize import latencies

    return latencies(net)


def _count(spikes: np.ndarray) -> int:
    """Spikes in a (B, T, n) 0/1 array, summed one sample at a time (bounded memory)."""
    return sum(int(np.count_nonzero(spikes[b])) for b in range(spikes.shape[0]))


def _save(tmp: str, arrays) -> None:
    # a compressed .npz streamed member by member, a block of samples at a time
    # (neurohw.emulate.runfile); a file object: a name would get ".npz" appended
    with open(tmp, "wb") as f:
        write_run(f, arrays)
