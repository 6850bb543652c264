#!/usr/bin/env python
"""Run the full neurohw benchmark (emulator vs Lava fixed_pt) and record it.

Writes ``OUT_DIR/bench.json`` (every number, the machine and the config) and
``OUT_DIR/bench.md`` (the table pasted into docs/performance.md), and prints
the table.  Defaults as ``neurohw bench``: 2,000 steps, batch 256 (moderate and
dense activity), the 10k-neuron network with 500 emulator steps and 200 Lava
steps, start-up, the GEMM bound, the 1M-neuron conv net and the 1M-neuron,
100M-synapse sparse net (about 4-6 minutes on 2 cores, ~4.3 GiB at the peak).

    .venv/bin/python benchmarks/run_bench.py [--out-dir benchmarks/results] [--quick]

Every option of ``neurohw bench`` is accepted (``--steps``, ``--batch``,
``--under-load``, ``--no-sparse``, ``--sparse-neurons``, ...).  Exit status as
``neurohw bench``: 1 if the spikes differ or a section's child process failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neurohw.bench import format_markdown, run_bench, write_report
from neurohw.cli import bench_cmd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_cmd.add_args(parser)
    parser.add_argument("--out-dir", default=str(Path(__file__).parent / "results"),
                        help="where bench.json and bench.md go (created if missing)")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = bench_cmd.config_from_args(args)
    report = run_bench(config, progress=True,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    write_report(report, json_path=out / "bench.json", markdown_path=out / "bench.md")
    print(format_markdown(report), end="")
    print(f"written: {out / 'bench.json'}, {out / 'bench.md'}")
    return 1 if report["all_bit_exact"] is False or report.get("sections_failed") else 0


if __name__ == "__main__":
    sys.exit(main())
