"""Cost of the register row sums of ``fast.SpikeSum`` (a Dense over spikes in the step
loop) per spike and per added weight, checked against numpy, and the 1000-5000-5000
bench net (step loop) single-sample and at batch 16.

    .venv/bin/python benchmarks/spike_sum.py

Used for the SpikeSum figures in docs/performance.md (ns per added weight, steps/s of
the 1000-5000-5000 net).
"""

import time

import numpy as np

from neurohw import bench
from neurohw.emulate import fast, run

CASES = [  # n_in, n_out, batch, spike rate, largest |w|
    (100, 100, 256, 0.5, 150), (1000, 1000, 16, 0.2, 150), (5000, 5000, 1, 0.16, 150),
    (5000, 5000, 16, 0.16, 150), (784, 128, 64, 0.1, 100), (784, 2000, 64, 0.3, 3000)]


def main() -> None:
    rng = np.random.default_rng(0)
    for n_in, n_out, B, rate, wmax in CASES:
        wt = rng.integers(-wmax, wmax, (n_in, n_out))
        s = rng.random((B, n_in)) < rate
        ss = fast.SpikeSum(wt, B, True)
        assert (ss(s) == s.astype(np.int64) @ wt).all()
        reps = max(1, int(2e5 / (B * n_in * rate * n_out / 100)))
        t = time.perf_counter()
        for _ in range(reps):
            ss(s)
        dt = (time.perf_counter() - t) / reps
        nnz = int(s.sum())
        print(f"{n_in:>5} -> {n_out:<5} batch {B:<3} rate {rate:<4} weights "
              f"{ss.wpad.dtype}, sums {ss.scratch.dtype}: {dt * 1e6:8.1f} us, "
              f"{dt * 1e9 / nnz:6.1f} ns/spike, {dt * 1e9 / nnz / n_out:.4f} ns/weight")
    net = bench.bench_network((1000, 5000, 5000), seed=0, in_rate=0.05)
    for B, T in ((1, 500), (16, 100)):
        x = bench.bench_input(1000, T, B, rate=0.05, seed=2)
        run(net, x[:, :20], engine="numba")
        best = min(_timed(net, x) for _ in range(3 if B == 1 else 1))
        print(f"1000-5000-5000, batch {B}: {B * T / best:,.0f} sample-steps/s")


def _timed(net, x) -> float:
    t = time.perf_counter()
    run(net, x, engine="numba")
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
