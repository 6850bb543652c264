"""Every profile width in both engines: an independent per-neuron Python-int reference of
one LIF step (written from docs/fixed-point.md), and numpy == numba on generic profiles."""

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.emulate import run
from neurohw.emulate.engine import _lif_params
from neurohw.emulate.steps import LIFState, lif_step
from neurohw.testing import random_network

from test_per_neuron import per_neuron
from test_performance import _assert_same_run

WIDTHS = [
    dict(),
    dict(act_shift=5),
    dict(act_shift=7),
    dict(decay_bits=10),
    dict(state_bits=16),
    dict(decay_bits=10, state_bits=16, act_shift=7),
    dict(decay_bits=14, act_shift=5, vth_shift=3, state_bits=20),
    dict(state_bits=32, act_shift=0, vth_shift=0),
    dict(decay_bits=1, state_bits=2, vth_bits=1, act_shift=1),
]


def _profile(widths):
    return nh.generic("w_" + "_".join(f"{k}{v}" for k, v in widths.items()), **widths)


# -- the reference: plain Python ints, one neuron at a time ---------------------
def _wrap32(x):
    return (x + 2**31) % 2**32 - 2**31


def _toward_zero(num, den):
    q = abs(num) // den
    return q if num >= 0 else -q


def ref_lif_step(u, v, a, du, dv, vth, bias_mant, bias_exp, prof):
    """One step of one neuron, from the formulas in docs/fixed-point.md."""
    D, H = prof.decay_bits, 2 ** (prof.state_bits - 1)
    u = _wrap32(_toward_zero(u * (2**D - (du + 1)), 2**D) + _wrap32(a * 2**prof.act_shift))
    if u > H:
        u = u - 2 * H
    elif u <= -H:
        u = u + 2 * H
    bias = bias_mant * 2**bias_exp if bias_exp >= 0 else bias_mant // 2 ** (-bias_exp)
    v = _wrap32(_toward_zero(v * (2**D - dv), 2**D) + u + bias)
    v = max(-(H - 1), min(H - 1, v))
    spike = v > vth * 2**prof.vth_shift
    return u, (0 if spike else v), spike


def _draw_case(rng, prof, B=3, n=40):
    """A per-neuron population and (B, n) states and inputs over their whole ranges."""
    lo_d, hi_d = prof.range_of("du")
    du = rng.integers(lo_d, hi_d, n, endpoint=True)
    dv = rng.integers(lo_d, hi_d, n, endpoint=True)
    vth = rng.integers(*prof.range_of("vth"), n, endpoint=True)
    du[:2], dv[:2], vth[:2] = [lo_d, hi_d], [hi_d, lo_d], list(prof.range_of("vth"))
    bm = rng.integers(*prof.range_of("bias_mant"), n, endpoint=True)
    be = rng.integers(*prof.range_of("bias_exp"), n, endpoint=True)
    pop = ir.LIFPopulation("l", (n,), du=du, dv=dv, vth=vth, bias_mant=bm, bias_exp=be)
    H = 2 ** (prof.state_bits - 1)
    # u may lie outside the state range after Lava's single wrap: draw both kinds
    u = np.where(rng.random((B, n)) < 0.5, rng.integers(-H + 1, H, (B, n)),
                 rng.integers(-(2**31), 2**31, (B, n)))
    v = rng.integers(-(H - 1), H, (B, n))
    a = np.where(rng.random((B, n)) < 0.5, rng.integers(-(2**12), 2**12, (B, n)),
                 rng.integers(-(2**33), 2**33, (B, n)))  # several int32 inputs summed
    return pop, u.astype(np.int64), v.astype(np.int64), a.astype(np.int64)


def _engine_step(engine, pop, prof, u, v, a):
    p = _lif_params(pop, prof)
    if engine == "numpy":
        st, s = lif_step(LIFState(u.copy(), v.copy()), a, p)
        return st.u, st.v, s
    from neurohw.emulate import fast

    if not fast.available():
        pytest.skip("numba not installed")
    uu, vv = u.copy(), v.copy()
    stepper = fast.LIFStepper(p, uu, vv)
    s = stepper(np.ascontiguousarray(a))
    return uu, vv, s.copy()


def _wid(w):
    return ",".join(f"{k}={v}" for k, v in w.items()) or "loihi"


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize("widths", WIDTHS, ids=_wid)
def test_one_step_equals_plain_python_reference(engine, widths):
    prof = _profile(widths)
    rng = np.random.default_rng(len(str(widths)))
    for _ in range(3):
        pop, u, v, a = _draw_case(rng, prof)
        eu, ev, es = _engine_step(engine, pop, prof, u, v, a)
        for b in range(u.shape[0]):
            for i in range(pop.size):
                ru, rv, rs = ref_lif_step(int(u[b, i]), int(v[b, i]), int(a[b, i]),
                                          int(pop.du[i]), int(pop.dv[i]), int(pop.vth[i]),
                                          int(pop.bias_mant[i]), int(pop.bias_exp[i]), prof)
                assert (int(eu[b, i]), int(ev[b, i]), bool(es[b, i])) == (ru, rv, rs), \
                    (engine, widths, b, i)


def test_reference_can_fail_when_a_width_is_ignored():
    """The old engine hard-coded a 12-bit decay shift: the reference tells the difference."""
    prof = _profile(dict(decay_bits=10))
    u, du = 100_000, 0
    right = ref_lif_step(u, 0, 0, du, 0, 0, 0, 0, prof)[0]
    hard_coded_12 = _toward_zero(u * (2**10 - 1), 2**12)
    assert right != hard_coded_12


# -- whole networks: the engine's wiring (Dense latency, act_shift) ------------------
@pytest.mark.parametrize("widths", WIDTHS[1:6], ids=_wid)
def test_chain_equals_reference_over_many_steps(widths):
    prof = _profile(widths)
    rng = np.random.default_rng(7)
    n_in, n = 30, 6
    d = ir.Dense("d", weight=rng.integers(-256, 256, (n, n_in)), weight_exp=int(rng.integers(0, 8)))
    pop, *_ = _draw_case(rng, prof, n=n)
    pop = ir.LIFPopulation("l", (n,), du=pop.du, dv=pop.dv,
                           vth=np.minimum(pop.vth, rng.integers(0, 50, n)),
                           bias_mant=pop.bias_mant, bias_exp=pop.bias_exp)
    net = nh.Network({"in": ir.InputNode("in", (n_in,)), "d": d, "l": pop},
                     [("in", "d"), ("d", "l")], prof)
    T = 40
    x = (rng.random((T, n_in)) < 0.6).astype(np.int8)
    from neurohw.fixedpoint import effective_weights

    w = effective_weights(d.weight, d.sign_mode, d.num_weight_bits, prof.weight_bits)
    u, v, pending = [0] * n, [0] * n, [0] * n
    want = {"u": [], "v": [], "spikes": []}
    for t in range(T):
        a = list(pending)  # a Dense sends what it accumulated the step before
        acc = [sum(int(w[i, j]) for j in range(n_in) if x[t, j]) for i in range(n)]
        pending = [_wrap32(s << d.weight_exp) for s in acc]
        row = [ref_lif_step(u[i], v[i], a[i], int(pop.du[i]), int(pop.dv[i]), int(pop.vth[i]),
                            int(pop.bias_mant[i]), int(pop.bias_exp[i]), prof) for i in range(n)]
        u, v = [r[0] for r in row], [r[1] for r in row]
        want["u"].append(u)
        want["v"].append(v)
        want["spikes"].append([int(r[2]) for r in row])
    for engine in ("numpy", "numba"):
        from neurohw.emulate import fast

        if engine == "numba" and not fast.available():
            continue
        got = run(net, x, record=("spikes", "v", "u"), engine=engine)
        for var in ("u", "v", "spikes"):
            np.testing.assert_array_equal(getattr(got, var)["l"][0], np.array(want[var]),
                                          err_msg=f"{engine} {var}")


# -- numpy == numba on random generic-width networks that overflow ---------------------
def _assert_engines_agree(net, x):
    rec = ("spikes", "v", "u")
    a = run(net, x, record=rec, engine="numpy", count_events=True)
    b = run(net, x, record=rec, engine="numba", count_events=True)
    _assert_same_run(net, a, b, rec)
    return a


def _generic_case(seed, widths, B=4, T=30):
    rng = np.random.default_rng(300 + seed)
    prof = _profile(widths)
    net = per_neuron(random_network(rng, prof, conv=bool(seed % 2), delays=True,
                                    max_width=20), rng)
    n = int(np.prod(net.nodes["input"].shape))
    x = (rng.random((B, T, n)) < rng.uniform(0.2, 0.9)).astype(np.int8)
    return net, x


@pytest.mark.parametrize("widths", WIDTHS[1:6], ids=_wid)
def test_numba_equals_numpy_on_generic_widths(widths):
    from neurohw.emulate import fast

    if not fast.available():
        pytest.skip("numba not installed")
    total = 0
    for seed in range(2):
        net, x = _generic_case(seed, widths, B=[3, 17][seed])
        a = _assert_engines_agree(net, x)
        total += sum(int(ev["u_wrap"].sum() + ev["v_clip"].sum()) for ev in a.events.values())
    assert total > 0  # the narrow widths overflowed somewhere


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40))
def test_numba_equals_numpy_on_generic_widths_slow(seed):
    from neurohw.emulate import fast

    if not fast.available():
        pytest.skip("numba not installed")
    net, x = _generic_case(seed, WIDTHS[seed % len(WIDTHS)], B=[1, 5, 16, 33][seed % 4], T=40)
    _assert_engines_agree(net, x)


def test_profile_refuses_shifts_beyond_31_bits():
    with pytest.raises(nh.ValidationError, match="decay_bits=32 exceeds 31"):
        nh.generic(decay_bits=32)
    with pytest.raises(nh.ValidationError, match="act_shift=40 exceeds 31"):
        nh.generic(act_shift=40)
