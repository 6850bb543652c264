"""Benchmark the emulator against Lava's fixed_pt simulator on the same
networks in one run: a 100-100-10 LIF network on one sample and on a batch,
at moderate and at dense activity, and a 10,000-neuron network; then, emulator
only, the 1M-neuron conv net and the 1M-neuron, 100M-synapse sparse net.
Prints the machine, a table of speeds and ratios against the targets, and
whether the spikes agreed bit for bit.  Exit status 1 if they did not
or if the conv or sparse section's child process failed."""

from __future__ import annotations

import sys
from pathlib import Path

from ..bench import BenchConfig, format_markdown, run_bench, write_report
from ..errors import FileFormatError

HELP = "time the emulator against Lava on the same networks"


def add_args(p) -> None:
    p.add_argument("--quick", action="store_true",
                   help="short runs for CI: 200 steps, batch 16, one repeat; no 10k-neuron "
                        "network, start-up, conv or sparse section")
    p.add_argument("--steps", type=int, default=None, metavar="T",
                   help="steps for the 100-100-10 cases (default 2000; 200 with --quick)")
    p.add_argument("--batch", type=int, default=None, metavar="B",
                   help="samples in the batch case (default 256; 16 with --quick)")
    p.add_argument("--large-steps", type=int, default=None, metavar="T",
                   help="emulator steps on the 10k-neuron network (default 500)")
    p.add_argument("--large-lava-steps", type=int, default=None, metavar="T",
                   help="Lava steps on the 10k-neuron network (default 200)")
    p.add_argument("--skip-lava", action="store_true",
                   help="time the emulator only (no ratios, no bit-exactness check)")
    p.add_argument("--repeats", type=int, default=None, metavar="N",
                   help="runs per 100-100-10 case, the best counts (default 3; 1 with --quick)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and inputs")
    p.add_argument("--under-load", action="store_true",
                   help="also time the 100-100-10 cases with one CPU-bound process running "
                        "beside the emulator (started and stopped by the bench) and report "
                        "loaded / quiet speed (target >= 0.5)")
    p.add_argument("--no-gemm", action="store_true",
                   help="skip measuring the machine's float32 GEMM bound")
    p.add_argument("--no-startup", action="store_true",
                   help="skip timing whole `neurohw emulate` processes (default: timed, "
                        "except with --quick)")
    p.add_argument("--no-conv", action="store_true",
                   help="skip the 1M-neuron conv net (default: timed, except with --quick)")
    p.add_argument("--conv-steps", type=int, default=None, metavar="T",
                   help="steps on the 1M-neuron conv net (default 200)")
    p.add_argument("--no-dense", action="store_true",
                   help="skip the dense-activity cases (the 100-100-10 net at input rate 0.5)")
    p.add_argument("--no-sparse", action="store_true",
                   help="skip the sparse-synapse net (default: timed, except with --quick; "
                        "~4.3 GiB and ~1 min at 1M neurons)")
    p.add_argument("--sparse-neurons", type=int, default=None, metavar="N",
                   help="neurons of the recurrent sparse net, 100 synapses each (default "
                        "1000000; the target is for that size)")
    p.add_argument("--sparse-steps", type=int, default=None, metavar="T",
                   help="steps on the sparse net (default 50)")
    p.add_argument("--sparse-vth", type=int, default=None, metavar="VTH",
                   help="threshold mantissa of the sparse net (default 4000: ~5%% spikes per "
                        "step; 1000: ~21%%)")
    p.add_argument("--json", default=None, metavar="OUT.json", help="write the full report")
    p.add_argument("--progress", action="store_true",
                   help="progress bars (default: when stderr is a terminal)")


def config_from_args(args) -> BenchConfig:
    """The :class:`~neurohw.bench.BenchConfig` the parsed options of :func:`add_args` ask for."""
    overrides = dict(steps=args.steps, batch=args.batch, large_steps=args.large_steps,
                     large_lava_steps=args.large_lava_steps, repeats=args.repeats,
                     skip_lava=args.skip_lava,
                     seed=args.seed, under_load=args.under_load or None,
                     gemm=False if args.no_gemm else None,
                     startup=False if args.no_startup else None,
                     conv=False if args.no_conv else None, conv_steps=args.conv_steps,
                     dense=False if args.no_dense else None,
                     sparse=False if args.no_sparse else None,
                     sparse_neurons=args.sparse_neurons, sparse_steps=args.sparse_steps,
                     sparse_vth=args.sparse_vth)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)


def run(args) -> int:
    if args.json:
        if Path(args.json).is_dir():
            raise FileFormatError(f"{args.json}: is a directory, not a file")
        from ._common import ensure_parent

        ensure_parent(args.json)  # created (or refused) before a long run, not after
    config = config_from_args(args)
    config.check()  # bad options fail here, in one line, before anything runs
    report = run_bench(config, progress=args.progress or sys.stderr.isatty(),
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_markdown(report), end="")
    if args.json:
        write_report(report, json_path=args.json)
        print(f"{args.json}: report written")
    if report["all_bit_exact"] is False:
        print("spikes differ between the emulator and Lava (see table)", file=sys.stderr)
        return 1
    if report.get("sections_failed"):
        print(f"bench: section(s) failed: {', '.join(report['sections_failed'])} (see above)",
              file=sys.stderr)
        return 1
    return 0
