"""Where a chain-loop sample-step goes: each part timed by running it twice.

A copy of ``neurohw.emulate.fast``'s per-sample chain loop (spikes recorded, no
v/u) that can repeat one part per step: the LIF update (on a second copy of the
state), the row sums of layer 1 or 2, the input listing, or the sends.  The extra
time over the plain loop is that part's cost.  Repeating a part keeps the network's
dynamics, so the activity stays what it is in the real run.  Used for the
"Where a sample-step goes now" figures in docs/performance.md.

    .venv/bin/python benchmarks/chain_parts.py [INPUT_RATE] [BATCH] [STEPS]
"""

import sys
import time

import numba as nb
import numpy as np

from neurohw import bench
from neurohw.emulate import fast, run
from neurohw.emulate.fast import _lif_rows, _send_rows, _vec_row_sums, _vlist


@nb.njit(parallel=True, boundscheck=False)
def _body(x, t0, t1, wpad, wpoff, npad, aoff, nin, nout, noff, exps, per, prm, u, v, buf,
          rec_s, counts, scratch, dup, u2, v2, s2):
    B = x.shape[0]
    L = nout.shape[0]
    N = u.shape[1]
    shift, half, dshift, lanes = prm[0], prm[1], prm[2], prm[3]
    for b in nb.prange(B):
        idx = np.zeros(nin.max() + 8, np.int64)
        acc = scratch[b]
        for t in range(t0, t1):
            s = rec_s[t, b]
            for l in range(L):
                o = noff[l]
                end = noff[l + 1] if l + 1 < L else N
                cw, cc = _lif_rows(u, v, buf, per, s, b, o, end, shift, half, dshift)
                counts[0, l, b] += cw
                counts[1, l, b] += cc
                if dup[0]:
                    cw, cc = _lif_rows(u2, v2, buf, per, s2[b], b, o, end, shift, half, dshift)
                    counts[0, l, b] += cw
            for l in range(L):
                o = np.uint64(noff[l])
                n = np.uint64(nout[l])
                src = x[b, t] if l == 0 else s[noff[l - 1]:noff[l - 1] + nin[l]]
                ao = aoff[l]
                _vec_row_sums(src, nin[l], idx, wpad, wpoff[l], npad[l], acc, ao, lanes)
                if dup[1 + l]:
                    _vec_row_sums(src, nin[l], idx, wpad, wpoff[l], npad[l], acc, ao, lanes)
                if dup[3]:
                    counts[1, l, b] += _vlist(src, nin[l], npad[l], wpoff[l], idx)
                _send_rows(buf, b, o, acc, np.uint64(ao), n, exps[l])
                if dup[4]:
                    _send_rows(buf, b, o, acc, np.uint64(ao), n, exps[l])


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    B = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    T = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    net = bench.bench_network((100, 100, 10))
    x = bench.bench_input(100, T, B, rate=rate)
    made = []
    init = fast.ChainRunner.__init__

    def keep(self, *a, **k):
        init(self, *a, **k)
        made.append(self)

    fast.ChainRunner.__init__ = keep
    ref = run(net, x, engine="numba")
    fast.ChainRunner.__init__ = init
    r = made[-1]
    rec = np.empty((T, B, r.N), np.int8)
    u2, v2, s2 = r.u.copy(), r.v.copy(), np.zeros((B, r.N), np.int8)
    names = ["none", "LIF update", "layer 1 row sums", "layer 2 row sums", "listing",
             "sends"]
    base = None
    for part in range(6):
        dup = np.zeros(5, np.int64)
        if part:
            dup[part - 1] = 1
        best = float("inf")
        for _ in range(4):
            r.u[:] = 0
            r.v[:] = 0
            r.buf[:] = 0
            t0 = time.perf_counter()
            _body(x, 0, T, r.wpad, r.wpoff, r.npad, r.aoff, r.nin, r.nout, r.noff, r.exps,
                  r.per, r.prm, r.u, r.v, r.buf, rec, r.counts, r.scratch, dup, u2, v2, s2)
            best = min(best, time.perf_counter() - t0)
        ns = best / (B * T) * nb.get_num_threads() * 1e9
        if base is None:
            base = ns
            same = all((rec[:, :, o:o + n].transpose(1, 0, 2) == ref.spikes[k]).all()
                       for k, o, n in zip(ref.spikes, r.noff, r.nout))
            print(f"plain loop: {ns:.1f} ns per sample-step per thread "
                  f"({B * T / best / 1e6:.2f} M sample-steps/s), spikes equal run(): {same}")
        else:
            print(f"{names[part]:>17} twice: +{ns - base:.1f} ns")


if __name__ == "__main__":
    main()
