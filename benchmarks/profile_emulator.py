#!/usr/bin/env python
"""Where the emulator's time goes: cProfile on the benchmark's runs.

Profiles ``neurohw.emulate.run`` on the benchmark's 100-100-10 network for
one sample and for a batch, and (with ``--large``) on the 1000-5000-5000
network, and prints the functions with the most own time (``tottime``).
numpy ufuncs and the ``@`` operator do not appear as entries of their own:
their time is the own time of the function that calls them (``lif_step``,
``wrap32``, ``_decay``, ``dense_accumulate``...).

    .venv/bin/python benchmarks/profile_emulator.py [--steps 2000] [--batch 256] [--large]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
import timeit

import numpy as np

from neurohw.bench import bench_input, bench_network
from neurohw.emulate import LIFParams, LIFState, apply_exp, dense_accumulate, lif_step, wrap32
from neurohw.emulate import run as emulate


def profile(label: str, net, x, top: int) -> None:
    emulate(net, x[:1, :10])  # warm-up
    t0 = time.perf_counter()
    emulate(net, x)
    plain = time.perf_counter() - t0
    prof = cProfile.Profile()
    prof.enable()
    emulate(net, x)
    prof.disable()
    B, T = x.shape[:2]
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).sort_stats("tottime")
    stats.print_stats(top)
    print(f"=== {label}: batch {B} x {T} steps, {plain:.3f} s without the profiler "
          f"({plain / T * 1e6:.1f} us/step, {B * T / plain:,.0f} sample-steps/s)")
    print("\n".join(buf.getvalue().splitlines()[4:]))


def components(batch: int, n: int = 100) -> None:
    """Microseconds per call of each per-step operation for a (batch, n) layer, no profiler."""
    rng = np.random.default_rng(0)
    w = rng.integers(-256, 255, (n, n)).astype(np.int64)
    wt_f = w.T.astype(np.float64)
    wt_32 = w.T.astype(np.float32)
    s = rng.random((batch, n)) < 0.1
    st = LIFState(rng.integers(-2**20, 2**20, (batch, n)), rng.integers(-2**20, 2**20, (batch, n)))
    p = LIFParams(3071, 3584, np.zeros(n, np.int64), 400000)
    a = rng.integers(-3000, 3000, (batch, n))
    buf = np.zeros((batch, 1, n), np.int64)
    rec = np.zeros((batch, 2000, n), np.int8)
    ops = {
        "lif_step (whole LIF update)": lambda: lif_step(st, a, p),
        "wrap32 (one call; lif_step makes 3, Dense 1)": lambda: wrap32(a),
        "dense_accumulate, float64 BLAS path": lambda: dense_accumulate(s, w, wt_f),
        "  of which the bare float64 matmul": lambda: s.astype(np.float64) @ wt_f,
        "  float32 matmul instead (exact below 2**24)": lambda: s.astype(np.float32) @ wt_32,
        "apply_exp(a, 0) (a copy)": lambda: apply_exp(a, 0),
        "np.roll of a delay-free (B, 1, n) buffer": lambda: np.roll(buf, -1, axis=1),
        "record one step of spikes into (B, T, n)": lambda: rec.__setitem__((slice(None), 7), s),
        "np.zeros((B, n)) + add (input sum)": lambda: np.zeros((batch, n), np.int64) + a,
    }
    print(f"=== per-call cost, batch {batch} x {n} neurons (best of 5 x 200 calls)")
    for name, fn in ops.items():
        us = min(timeit.repeat(fn, number=200, repeat=5)) / 200 * 1e6
        print(f"  {us:9.1f} us  {name}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--large", action="store_true", help="also the 10k-neuron network (100 steps)")
    p.add_argument("--top", type=int, default=18)
    args = p.parse_args(argv)
    components(1)
    components(args.batch)
    net = bench_network((100, 100, 10))
    x = bench_input(100, args.steps, args.batch, seed=1)
    profile("single sample, 100-100-10", net, x[:1], args.top)
    profile(f"batch {args.batch}, 100-100-10", net, x, args.top)
    if args.large:
        net = bench_network((1000, 5000, 5000), in_rate=0.05)
        profile("single sample, 1000-5000-5000", net, bench_input(1000, 100, 1, 0.05, seed=2),
                args.top)


if __name__ == "__main__":
    main()
