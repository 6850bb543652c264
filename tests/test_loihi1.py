"""The ``loihi1`` profile against nengo-loihi 1.1.0's emulator (an independent Loihi 1
emulator), bit for bit: spikes, u and v, both neurohw engines, on random block-level
networks over the whole parameter range, with overflow and refractory cases."""

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.emulate import fast, run
from neurohw.profiles import LOIHI1

from loihi1_ref import nengo_loihi_available, run_nengo_loihi

pytestmark = pytest.mark.skipif(not nengo_loihi_available(), reason="needs nengo-loihi")

ENGINES = ["numpy"] + (["numba"] if fast.available() else [])
KINDS = ("lively", "overflow", "refractory", "full_range", "vmin_zero", "small_exp")


def _vmin(rng, kind):
    if kind == "vmin_zero":
        return 0
    k = int(rng.choice([0, int(rng.integers(1, 24)), 23]))
    return -(2 ** k) + 1


def _vmax(rng):
    return 2 ** (9 + 2 * int(rng.integers(0, 8))) - 1


def _dense(rng, name, n_out, n_in, kind):
    sign_mode = str(rng.choice(ir.SIGN_MODES)) if kind == "full_range" else "mixed"
    lo, hi = LOIHI1.weight_range(sign_mode)
    bits = int(rng.choice([1, 2, 3, 4, 5, 6, 8])) if kind == "full_range" else 8
    if sign_mode == "mixed" and bits == 1:
        bits = 2
    if kind == "overflow":
        e = int(rng.integers(4, 8))
        w = rng.choice([lo, hi, hi - 1, lo + 1], size=(n_out, n_in))
    elif kind == "small_exp":
        e = int(rng.integers(-8, -1))  # per-synapse rounding on Loihi 1
        w = rng.integers(lo, hi + 1, size=(n_out, n_in))
    else:
        e = int(rng.integers(-8, 8))
        w = rng.integers(lo, hi + 1, size=(n_out, n_in))
    return ir.Dense(name, weight=w, weight_exp=e, num_weight_bits=bits, sign_mode=sign_mode), e


def _population(rng, name, n, kind, in_scale):
    """``in_scale``: a typical |input| per step in v units, to place the threshold."""
    full = kind in ("full_range", "overflow")
    du = rng.integers(0, 4096, n) if full else rng.integers(0, 4096 if rng.random() < .3 else 600, n)
    dv = rng.integers(0, 4096, n) if full else rng.integers(0, 600, n)
    if full:
        vth = rng.integers(0, 2 ** 17, n)
    else:  # near the input scale, so that the population spikes now and then
        vth = np.clip((in_scale * rng.uniform(0.2, 4.0, n)).astype(np.int64) >> 6, 0, 2 ** 17 - 1)
    if kind == "overflow" or rng.random() < 0.3:
        bias_mant = rng.integers(-4096, 4096, n)
        bias_exp = rng.integers(0, 8, n)
    else:
        bias_mant = rng.integers(-40, 60, n)
        bias_exp = rng.integers(0, 3, n)
    if kind == "refractory":
        refract = rng.integers(0, 10, n)
    else:
        refract = rng.choice([0, 1, 2, int(rng.integers(0, 64))], size=n)
    return ir.LIFPopulation(name, (n,), du=du, dv=dv, vth=vth, bias_mant=bias_mant,
                            bias_exp=bias_exp, refract_delay=refract, vmin=_vmin(rng, kind),
                            vmax=_vmax(rng) if kind != "lively" else 2 ** 23 - 1)


def _scale(dense, e, n_in):
    w = np.abs(dense.weight).mean() * 2.0 ** (6 + e)
    return max(64.0, w * max(1.0, n_in * 0.3))


def case(seed, steps=40, kind=None):
    """A random Input -> (Dense -> LIF) x 1..3 stack with recurrence, and its input."""
    rng = np.random.default_rng(seed)
    kind = KINDS[seed % len(KINDS)] if kind is None else kind
    n_in = int(rng.integers(2, 12 if kind != "overflow" else 400))
    nodes = {"in": ir.InputNode("in", (n_in,))}
    edges = []
    src, width = "in", n_in
    for layer in range(int(rng.integers(1, 4))):
        n = int(rng.integers(1, 10))
        d, e = _dense(rng, f"d{layer}", n, width, kind)
        nodes[d.name] = d
        nodes[f"l{layer}"] = _population(rng, f"l{layer}", n, kind, _scale(d, e, width))
        edges += [(src, d.name), (d.name, f"l{layer}")]
        if rng.random() < 0.4:  # recurrent projection onto itself
            r, _ = _dense(rng, f"r{layer}", n, n, kind)
            nodes[r.name] = r
            edges += [(f"l{layer}", r.name), (r.name, f"l{layer}")]
        src, width = f"l{layer}", n
    net = nh.Network(nodes, edges, "loihi1")
    x = (rng.random((steps, n_in)) < rng.uniform(0.05, 0.9)).astype(np.int8)
    return net, x


def _mismatch(net, x, engine):
    """None when neurohw equals nengo-loihi, else a description of the first difference."""
    ref = run_nengo_loihi(net, x)
    emu = run(net, x, record=("spikes", "u", "v"), engine=engine)
    for var in ("spikes", "u", "v"):
        for p in net.populations:
            a = np.asarray(getattr(emu, var)[p][0], np.int64)
            b = ref[p][var]
            if not np.array_equal(a, b):
                t, i = np.argwhere(a != b)[0]
                return f"{p}.{var}[t={t}, i={i}]: neurohw {a[t, i]}, nengo-loihi {b[t, i]}"
    return None


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("seed", range(18))
def test_loihi1_matches_nengo_loihi(seed, engine):
    net, x = case(seed)
    assert _mismatch(net, x, engine) is None


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(18, 400))
def test_loihi1_matches_nengo_loihi_sweep(seed):
    net, x = case(seed, steps=80)
    for engine in ENGINES:
        assert _mismatch(net, x, engine) is None


def test_corpus_exercises_every_rule():
    """The fast corpus is not vacuous: spikes, 22-bit input wraps, u and u+bias wraps,
    v clipping at vmin/vmax and refractory silences all occur in it."""
    from neurohw.emulate.engine import _lif_params, _synapse_weights
    seen = {"spikes": 0, "refractory_silence": 0, "v_clip": 0, "u_wrap": 0, "q_wrap": 0,
            "lossy_weight": 0}
    for seed in range(18):
        net, x = case(seed)
        res = run(net, x, record=("spikes",), count_events=True, engine="numpy")
        for k, pop in net.populations.items():
            s = res.spikes[k][0]
            seen["spikes"] += int(s.sum())
            seen["u_wrap"] += int(res.events[k]["u_wrap"].sum())
            seen["v_clip"] += int(res.events[k]["v_clip"].sum())
            r = pop.refract_delay.reshape(-1)
            for i in np.flatnonzero(r > 1):
                t = np.flatnonzero(s[:, i])
                seen["refractory_silence"] += int(np.sum(np.diff(t) < r[i]) == 0 and len(t) > 1)
        for k, d in net.of_type(ir.Dense).items():
            w, _ = _synapse_weights(d, net.profile)
            if d.weight_exp <= -2:
                lava = np.floor(d.weight.astype(float) * 2.0 ** d.weight_exp)
                seen["lossy_weight"] += int(np.any(w != lava))
            q = np.abs(w).sum(axis=1).max() << 6
            seen["q_wrap"] += int(q >= 2 ** 21)
    assert all(v > 0 for v in seen.values()), seen


def test_refractory_semantics_by_hand():
    """refract_delay = r: r - 1 silent steps after a spike, u integrates throughout,
    v restarts from 0 (integrated by hand for a constant drive)."""
    for profile in ("loihi1", "loihi2"):
        for r in (0, 1, 2, 5):
            nodes = {"in": ir.InputNode("in", (1,)),
                     "d": ir.Dense("d", weight=[[2]], weight_exp=0),
                     "l": ir.LIFPopulation("l", (1,), du=4095, dv=0, vth=2,
                                           refract_delay=r, vmin=0 if profile == "loihi1" else None)}
            net = nh.Network(nodes, [("in", "d"), ("d", "l")], profile)
            x = np.ones((20, 1), np.int8)
            for engine in ENGINES:
                res = run(net, x, record=("spikes", "u", "v"), engine=engine)
                # by hand: du = 4095 -> u = input only = 2 << 6 = 128 from step 1; v += 128;
                # vth = 2 << 6 = 128: spike when v > 128, i.e. at the 2nd integrating step
                u_exp = np.array([0] + [128] * 19)
                v_exp, s_exp, ref, v = [], [], 0, 0
                for t in range(20):
                    v = v + u_exp[t]
                    if ref > 0:
                        v = 0
                    s = v > 128
                    if s:
                        v = 0
                        ref = r
                    ref = max(ref - 1, 0)
                    v_exp.append(v)
                    s_exp.append(int(s))
                np.testing.assert_array_equal(res.u["l"][0, :, 0], u_exp)
                np.testing.assert_array_equal(res.v["l"][0, :, 0], v_exp)
                np.testing.assert_array_equal(res.spikes["l"][0, :, 0], s_exp)
                gaps = np.diff(np.flatnonzero(s_exp))
                assert set(gaps) == {max(r, 1) + 1}, (profile, r, gaps)


def test_loihi1_refuses_vmin_vmax_the_chip_cannot_hold():
    with pytest.raises(nh.ValidationError, match=r"node 'l': vmin=-2 is not -\(2\*\*k\)\+1"):
        nh.Network({"in": ir.InputNode("in", (1,)), "d": ir.Dense("d", weight=[[2]]),
                    "l": ir.LIFPopulation("l", (1,), vmin=-2)},
                   [("in", "d"), ("d", "l")], "loihi1")
    with pytest.raises(nh.ValidationError, match=r"node 'l': vmax=1000 is not 2\*\*\(9\+2j\)-1"):
        nh.Network({"in": ir.InputNode("in", (1,)), "d": ir.Dense("d", weight=[[2]]),
                    "l": ir.LIFPopulation("l", (1,), vmax=1000)},
                   [("in", "d"), ("d", "l")], "loihi1")
    with pytest.raises(nh.ValidationError, match=r"node 'l': refract_delay=64 above"):
        nh.Network({"in": ir.InputNode("in", (1,)), "d": ir.Dense("d", weight=[[2]]),
                    "l": ir.LIFPopulation("l", (1,), refract_delay=64)},
                   [("in", "d"), ("d", "l")], "loihi2")


@pytest.mark.parametrize("seed", range(4))
def test_engines_agree_with_refractory_and_v_limits_on_lava_rules(seed):
    """loihi2 (Lava's rules) with refractory delays and [vmin, vmax]: the fused kernel
    (serial and threaded batches) gives the numpy step functions' integers."""
    if not fast.available():
        pytest.skip("numba not installed")
    net, _ = case(seed, kind=["refractory", "full_range", "overflow", "lively"][seed])
    nodes = {k: (ir.LIFPopulation(k, n.shape, du=n.du, dv=n.dv, vth=n.vth, bias_mant=n.bias_mant,
                                  bias_exp=n.bias_exp, refract_delay=n.refract_delay,
                                  vmin=n.vmin + (seed % 2), vmax=n.vmax - 3)
                 if isinstance(n, ir.LIFPopulation) else n) for k, n in net.nodes.items()}
    net = nh.Network(nodes, net.edges, "loihi2")
    rng = np.random.default_rng(seed)
    B = [1, 3, 16, 20][seed]
    x = (rng.random((B, 40, net.nodes["in"].shape[0])) < 0.5).astype(np.int8)
    a = run(net, x, record=("spikes", "u", "v"), engine="numpy", count_events=True)
    b = run(net, x, record=("spikes", "u", "v"), engine="numba", count_events=True)
    for var in ("spikes", "u", "v"):
        for p in net.populations:
            np.testing.assert_array_equal(getattr(a, var)[p], getattr(b, var)[p])
    for p in net.populations:
        for ev in ("u_wrap", "v_clip"):
            np.testing.assert_array_equal(a.events[p][ev], b.events[p][ev])


def test_lava_graph_spec_refuses_what_lava_fixed_pt_cannot_run():
    from neurohw.backends.lava.graph import lava_graph_spec

    def net(profile, **kw):
        return nh.Network({"in": ir.InputNode("in", (1,)), "d": ir.Dense("d", weight=[[2]]),
                           "l": ir.LIFPopulation("l", (1,), **kw)},
                          [("in", "d"), ("d", "l")], profile)

    lava_graph_spec(net("loihi2", refract_delay=1))  # 0 and 1: no refractory step
    with pytest.raises(nh.ValidationError, match="profile 'loihi1': semantics='loihi1'"):
        lava_graph_spec(net("loihi1"))
    with pytest.raises(nh.ValidationError, match="node 'l': refract_delay=3 > 1"):
        lava_graph_spec(net("loihi2", refract_delay=3))
    with pytest.raises(nh.ValidationError, match="node 'l': vmin=0, vmax=None"):
        lava_graph_spec(net("loihi2", vmin=0))


def test_synapse_weights_equal_nengo_loihi_discretize_weights():
    """Every mantissa, sign mode, weight width and exponent: neurohw's per-synapse Loihi 1
    integers equal nengo-loihi's discretize_weights (lossy two-part shift) of Lava's
    effective weights."""
    import warnings

    from nengo_loihi.block import SynapseConfig
    from nengo_loihi.builder.discretize import discretize_weights

    from neurohw.emulate.steps import loihi1_synapse_weights
    from neurohw.fixedpoint import effective_weights

    bits_index = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7}
    checked = 0
    for mode in ir.SIGN_MODES:
        lo, hi = LOIHI1.weight_range(mode)
        w = np.arange(lo, hi + 1)
        for nwb in bits_index:
            if mode == "mixed" and nwb == 1:
                continue  # sign bit only: no magnitude left
            w_eff = effective_weights(w, mode, nwb, 8)
            for e in range(-8, 8):
                cfg = SynapseConfig(weight_exp=e, fanout_type=int(mode == "mixed"),
                                    weight_bits=bits_index[nwb])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ref = discretize_weights(cfg, w_eff.astype(np.float64), check_result=False)
                mine = loihi1_synapse_weights(w_eff, mode, nwb, 8, e) << 6
                np.testing.assert_array_equal(mine, ref, err_msg=f"{mode} {nwb} bits e={e}")
                checked += 1
    assert checked == 3 * 7 * 16 - 16


def test_netx_export_refuses_refractory_and_v_limits(tmp_path):
    pytest.importorskip("h5py")
    from neurohw.export.netx import export_netx

    net = nh.Network({"in": ir.InputNode("in", (2,)), "d": ir.Dense("d", weight=[[2, 3]]),
                      "l": ir.LIFPopulation("l", (1,), vth=3, refract_delay=4)},
                     [("in", "d"), ("d", "l")], "loihi2")
    with pytest.raises(nh.ValidationError, match="node 'l': refract_delay=4 > 1"):
        export_netx(net, tmp_path / "n.net")
    assert not (tmp_path / "n.net").exists()


# -- one step over the whole state range: a plain Python-int reference of docs/loihi1.md
#    and docs/fixed-point.md ("Voltage limits and refractory period") -------------------
def _wrap(x, bits):
    return (x + 2 ** (bits - 1)) % 2 ** bits - 2 ** (bits - 1)


def _trunc_shift(x, d):
    return (abs(x) >> d) * (1 if x >= 0 else -1)


def _ref_step(u, v, ref, a, du, dv, vth, bias, r, vmin, vmax, prof):
    D, H, sb = prof.decay_bits, 2 ** (prof.state_bits - 1), prof.state_bits
    q = _wrap(a << prof.act_shift, prof.dendrite_bits)
    if prof.semantics == "loihi1":
        u = _wrap(_trunc_shift(u * (2 ** D - du - 1), D) + q, sb)
        v = _trunc_shift(v * (2 ** D - dv), D) + _wrap(u + bias, sb)
    else:
        u = _wrap(_trunc_shift(u * (2 ** D - du - 1), D) + q, 32)
        u = u - 2 * H if u > H else u + 2 * H if u <= -H else u
        v = _wrap(_trunc_shift(v * (2 ** D - dv), D) + u + bias, 32)
    v = min(max(v, vmin), vmax)
    if ref > 0:
        v = 0
    s = v > vth << prof.vth_shift
    if s:
        v, ref = 0, r
    return u, v, max(ref - 1, 0), s


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("prof", [LOIHI1, nh.generic("narrow", state_bits=16, dendrite_bits=20),
                                  nh.generic("l1narrow", state_bits=16, dendrite_bits=14,
                                             decay_bits=10, act_shift=4, semantics="loihi1"),
                                  "loihi2"], ids=lambda p: getattr(p, "name", p))
def test_extended_step_equals_plain_python_reference(engine, prof):
    from neurohw.emulate.engine import _lif_params
    from neurohw.emulate.steps import LIFState, lif_step

    prof = nh.get_profile(prof)
    rng = np.random.default_rng(11)
    B, n = 3, 50
    H = 2 ** (prof.state_bits - 1)
    D = prof.decay_bits
    du, dv = rng.integers(0, 2 ** D, n), rng.integers(0, 2 ** D, n)
    du[:2], dv[:2] = [0, 2 ** D - 1], [2 ** D - 1, 0]
    vth = rng.integers(0, 2 ** min(prof.vth_bits, prof.state_bits - prof.vth_shift), n)
    bm = rng.integers(*prof.range_of("bias_mant"), n, endpoint=True)
    be = rng.integers(*prof.range_of("bias_exp"), n, endpoint=True)
    r = rng.integers(0, 64, n)
    if prof.semantics == "loihi1":
        vmin, vmax = -(2 ** int(rng.integers(0, prof.state_bits))) + 1, 2 ** (prof.state_bits - 1) - 1
    else:
        vmin, vmax = int(rng.integers(-(H - 1), 1)), int(rng.integers(0, H))
    pop = ir.LIFPopulation("l", (n,), du=du, dv=dv, vth=vth, bias_mant=bm, bias_exp=be,
                           refract_delay=r, vmin=vmin, vmax=vmax)
    p = _lif_params(pop, prof)
    assert p.extended
    u = rng.integers(-H, H, (B, n))
    v = rng.integers(vmin, vmax + 1, (B, n))
    ref = rng.integers(0, 5, (B, n))
    a = np.where(rng.random((B, n)) < 0.5, rng.integers(-2 ** 12, 2 ** 12, (B, n)),
                 rng.integers(-2 ** 33, 2 ** 33, (B, n)))
    if engine == "numpy":
        st, s = lif_step(LIFState(u.copy(), v.copy(), ref.copy()), a, p)
        eu, ev, er = st.u, st.v, st.ref
    else:
        eu, ev, er = u.copy(), v.copy(), ref.copy()
        s = fast.LIFStepper(p, eu, ev, er)(np.ascontiguousarray(a)).copy()
    bias = [int(m) << int(e) if e >= 0 else int(m) >> int(-e) for m, e in zip(bm, be)]
    for b in range(B):
        for i in range(n):
            want = _ref_step(int(u[b, i]), int(v[b, i]), int(ref[b, i]), int(a[b, i]),
                             int(du[i]), int(dv[i]), int(vth[i]), int(bias[i]), int(r[i]),
                             vmin, vmax, prof)
            got = (int(eu[b, i]), int(ev[b, i]), int(er[b, i]), bool(s[b, i]))
            assert got == want, (b, i)
