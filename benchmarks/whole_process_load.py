"""Whole `neurohw emulate` processes on the 100-100-10 bench net, quiet and with one
CPU-bound process beside them (best of 3 each, alternating): wall time, sample-steps/s
and loaded / quiet.  Includes start-up, reading the input and writing the run file.

    .venv/bin/python benchmarks/whole_process_load.py
"""

import subprocess
import sys
import tempfile
import time

import numpy as np

from neurohw import bench
from neurohw.nirio import write_network

CASES = (("single", 1, 20000, 0.1), ("batch", 256, 3000, 0.1), ("dense_batch", 256, 3000, 0.5))


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        write_network(bench.bench_network((100, 100, 10)), f"{d}/net.nir")
        for name, B, T, rate in CASES:
            x = bench.bench_input(100, T, B, rate=rate)
            np.save(f"{d}/{name}.npy", x if B > 1 else x[0])
        for name, B, T, _ in CASES:
            cmd = [sys.executable, "-m", "neurohw", "emulate", f"{d}/net.nir", "--input",
                   f"{d}/{name}.npy", "--out", f"{d}/out_{name}.npz"]
            best = {"quiet": float("inf"), "loaded": float("inf")}
            for _ in range(3):
                for mode in best:
                    spin = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
                            if mode == "loaded" else None)
                    try:
                        if spin is not None:
                            time.sleep(0.3)
                        t = time.perf_counter()
                        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                        best[mode] = min(best[mode], time.perf_counter() - t)
                    finally:
                        if spin is not None:
                            spin.kill()
                            spin.wait()
            q, ld = best["quiet"], best["loaded"]
            print(f"{name:>11} {B} x {T}: quiet {q:.2f} s ({B * T / q:,.0f} sample-steps/s), "
                  f"loaded {ld:.2f} s ({B * T / ld:,.0f}), loaded / quiet {q / ld:.2f}")


if __name__ == "__main__":
    main()
