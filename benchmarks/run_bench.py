#!/usr/bin/env python
"""Run the full neurohw benchmark (emulator vs Lava fixed_pt) and record it.

Writes ``OUT_DIR/bench.json`` (every number, the machine and the config) and
``OUT_DIR/bench.md`` (the table pasted into docs/performance.md), and prints
the table.  Defaults: 2,000 steps, batch 256, the 10k-neuron network with
500 emulator steps and 200 Lava steps (several minutes on 2 cores).

    .venv/bin/python benchmarks/run_bench.py [--out-dir benchmarks/results] [--quick]

Any other option of ``neurohw bench`` is accepted (``--steps``, ``--batch``,
``--large-steps``, ``--large-lava-steps``, ``--repeats``, ``--skip-lava``,
``--seed``).  Exit status as ``neurohw bench``: 1 if the spikes differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neurohw.bench import BenchConfig, format_markdown, run_bench, write_report
from neurohw.cli import bench_cmd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_cmd.add_args(parser)
    parser.add_argument("--out-dir", default=str(Path(__file__).parent / "results"),
                        help="where bench.json and bench.md go (created if missing)")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    overrides = dict(steps=args.steps, batch=args.batch, large_steps=args.large_steps,
                     large_lava_steps=args.large_lava_steps, repeats=args.repeats,
                     skip_lava=args.skip_lava, seed=args.seed)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    config = BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)
    report = run_bench(config, progress=True,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    write_report(report, json_path=out / "bench.json", markdown_path=out / "bench.md")
    print(format_markdown(report), end="")
    print(f"written: {out / 'bench.json'}, {out / 'bench.md'}")
    return 1 if report["all_bit_exact"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
