"""Scale check of sparse synapses: an N-neuron recurrent LIF population with FAN random
synapses per neuron (mixed signs), driven by biases and one input.

Run as a script (``python tests/scale_sparse.py N FAN STEPS [ENGINE [VTH]]``; a higher
threshold mantissa VTH, default 1000, lowers the spike rate); prints one JSON
line: synapses, seconds to build the IR, seconds of a first 2-step run (loading numba
and the kernels, preparing the column-wise copy, which later runs reuse), steady-state
steps/s (the run time of STEPS steps minus that of 2 steps, both after it), mean spike
rate, and the process's peak resident memory in GiB.  ``test_sparse.py`` runs it at
1M neurons / 100M synapses (slow) and a small size (fast); docs/performance.md has
the figures.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def build(n: int, fan: int, seed: int = 0, vth: int = 1000):
    import scipy.sparse as sp

    import neurohw as nh
    from neurohw import ir

    rng = np.random.default_rng(seed)
    cols = rng.integers(0, n, size=(n, fan), dtype=np.int32)
    cols.sort(axis=1)  # CSR built directly: row i holds its FAN (sorted) columns
    data = (rng.integers(1, 41, size=n * fan, dtype=np.int32)
            * rng.choice(np.array([-1, 1], np.int32), n * fan))
    w = sp.csr_matrix((data, cols.reshape(-1), np.arange(0, n * fan + 1, fan, dtype=np.int64)),
                      shape=(n, n))
    del cols, data
    rec = ir.Sparse("rec", weight=w, weight_exp=0, num_weight_bits=8, sign_mode="mixed")
    del w
    drive = ir.Sparse("drive", weight=sp.csr_matrix(np.full((n, 1), 100, np.int32)))
    pop = ir.LIFPopulation("pop", (n,), du=400, dv=200, vth=vth,
                           bias_mant=rng.integers(0, 600, n), bias_exp=3)
    return nh.Network({"in": ir.InputNode("in", (1,)), "drive": drive, "pop": pop, "rec": rec},
                      [("in", "drive"), ("drive", "pop"), ("pop", "rec"), ("rec", "pop")],
                      "loihi2")


def measure(n: int, fan: int, steps: int, engine: str, vth: int = 1000) -> dict:
    from neurohw.emulate.engine import run

    t0 = time.perf_counter()
    net = build(n, fan, vth=vth)
    t_build = time.perf_counter() - t0
    x = (np.random.default_rng(1).random((steps, 1)) < 0.5).astype(np.int8)
    t0 = time.perf_counter()
    run(net, x[:2], engine=engine)  # loads numba and the kernels, prepares the CSC copy
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(net, x[:2], engine=engine)
    t_two = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = run(net, x, engine=engine)
    t_all = time.perf_counter() - t0
    return {
        "neurons": n, "synapses": int(net.num_synapses), "engine": engine, "steps": steps,
        "vth": vth,
        "build_s": round(t_build, 2), "first_run_s": round(t_first, 2),
        "steps_per_s": round((steps - 2) / max(t_all - t_two, 1e-9), 2),
        "spike_rate": round(float(r.spikes["pop"].mean()), 4),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


if __name__ == "__main__":
    n, fan, steps = (int(v) for v in sys.argv[1:4])
    print(json.dumps(measure(n, fan, steps, sys.argv[4] if len(sys.argv) > 4 else "numba",
                             int(sys.argv[5]) if len(sys.argv) > 5 else 1000)))
