"""Scale check of sparse synapses: an N-neuron recurrent LIF population with FAN random
synapses per neuron (mixed signs), driven by biases and one input
(:func:`neurohw.bench.sparse_network`; ``neurohw bench`` times the same net at 1M
neurons in its sparse section, :func:`neurohw.bench.measure_sparse`).

Run as a script (``python tests/scale_sparse.py N FAN STEPS [ENGINE [VTH]]``; a higher
threshold mantissa VTH, default 1000, lowers the spike rate); prints one JSON
line: synapses, seconds to build the IR, seconds of a first 2-step run (loading numba
and the kernels, preparing the column-wise copy, which later runs reuse), steady-state
steps/s (the run time of STEPS steps minus that of 2 steps, both after it), mean spike
rate, and the process's peak resident memory in GiB
(:func:`neurohw.bench.sparse_steady_state`).  ``test_sparse.py`` runs it at
1M neurons / 100M synapses (slow) and a small size (fast); docs/performance.md has
the figures.
"""

from __future__ import annotations

import json
import sys

from neurohw.bench import sparse_network, sparse_steady_state


def build(n: int, fan: int, seed: int = 0, vth: int = 1000):
    """The scale network (:func:`neurohw.bench.sparse_network`)."""
    return sparse_network(n, fan, seed=seed, vth=vth)


def measure(n: int, fan: int, steps: int, engine: str, vth: int = 1000) -> dict:
    """:func:`neurohw.bench.sparse_steady_state`, times rounded for printing."""
    out = sparse_steady_state(n, fan, steps, engine, vth)
    for k in ("build_s", "first_run_s", "steps_per_s", "peak_rss_gib"):
        out[k] = round(out[k], 2)
    out["spike_rate"] = round(out["spike_rate"], 4)
    return out


if __name__ == "__main__":
    n, fan, steps = (int(v) for v in sys.argv[1:4])
    print(json.dumps(measure(n, fan, steps, sys.argv[4] if len(sys.argv) > 4 else "numba",
                             int(sys.argv[5]) if len(sys.argv) > 5 else 1000)))
