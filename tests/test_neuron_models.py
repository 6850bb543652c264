"""neurohw's float-side neuron extension (metadata["neurohw"]: refractory_s, lower_bound,
trace, ELIF) in the float reference, checked against plain per-step loops written here
from shared/NEURON_MODELS.md's equations; validation errors."""

import math
from pathlib import Path

import nir
import numpy as np
import pytest

from neurohw.errors import ValidationError
from neurohw.reference import simulate
from neurohw.validate import validate_float_graph


def _graph(n_in, n, ext, kind="LIF", seed=0, v_reset=0.0):
    rng = np.random.default_rng(seed)
    W = rng.normal(0.4, 0.6, (n, n_in))
    if kind == "LIF":
        neuron = nir.LIF(tau=np.full(n, 0.02), r=np.full(n, 1.0), v_leak=np.zeros(n),
                         v_threshold=np.full(n, 1.0), v_reset=np.full(n, v_reset),
                         metadata={"neurohw": ext})
    else:
        neuron = nir.CubaLIF(tau_syn=np.full(n, 0.01), tau_mem=np.full(n, 0.02),
                             r=np.full(n, 1.0), v_leak=np.zeros(n), v_threshold=np.full(n, 1.0),
                             v_reset=np.full(n, v_reset), w_in=np.full(n, 1.0),
                             metadata={"neurohw": ext})
    nodes = {"in": nir.Input(input_type={"input": np.array([n_in])}),
             "fc": nir.Affine(weight=W, bias=np.full(n, 0.02)),
             "lif": neuron,
             "out": nir.Output(output_type={"output": np.array([n])})}
    return nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")]), W


def _by_hand(W, b, x, dt, ext, kind="LIF", v_reset=0.0):
    """A plain per-neuron, per-step loop: tau dv/dt = -(v - v_rest) + [Delta_T exp(..)] + R I."""
    T, n = x.shape[0], W.shape[0]
    tau, tau_syn, vth = 0.02, 0.01, 1.0
    refr_s = np.broadcast_to(np.asarray(ext.get("refractory_s", 0.0), float), (n,))
    tr = ext.get("trace")
    spikes = np.zeros((T, n), np.int8)
    vs = np.zeros((T, n))
    xs = np.zeros((T, n))
    for j in range(n):
        v = cur = trace = 0.0
        silent = 0
        refr = int(round(float(refr_s[j]) / dt))  # this neuron's silent steps
        for t in range(T):
            I = sum(W[j, k] * x[t, k] for k in range(x.shape[1])) + b
            if kind == "CubaLIF":
                cur = cur + dt / tau_syn * (-cur + I)
                I = cur
            dv = -(v - 0.0) + I
            if ext.get("model") == "elif":
                d, th = ext["delta_t"] * vth, ext["theta_rh"] * vth
                dv += d * math.exp(min((v - th) / d, 20.0))
            v = v + dt / tau * dv
            if "lower_bound" in ext:
                v = max(v, ext["lower_bound"])
            s = 0
            if silent > 0:
                v = v_reset
                silent -= 1
            elif v > vth:
                s, v, silent = 1, v_reset, refr
            if tr is not None:
                trace *= math.exp(-dt / tr["tau_s"])
                if s:
                    trace = trace + tr["scale"] if tr["mode"] == "additive" else tr["scale"]
            spikes[t, j], vs[t, j], xs[t, j] = s, v, trace
    return spikes, vs, xs


CASES = [
    ({"refractory_s": 0.004}, "LIF", 0.0),
    ({"refractory_s": 0.0031, "lower_bound": -0.3}, "CubaLIF", 0.0),
    ({"lower_bound": -0.5, "trace": {"tau_s": 0.01, "mode": "additive", "scale": 0.5}}, "LIF", -0.2),
    ({"trace": {"tau_s": 0.005, "mode": "multiplicative", "scale": 2.0},
      "refractory_s": 0.002}, "CubaLIF", 0.1),
    ({"model": "elif", "delta_t": 0.1, "theta_rh": 0.7}, "LIF", 0.0),
    ({"model": "elif", "delta_t": 0.25, "theta_rh": 0.5, "refractory_s": 0.003,
      "lower_bound": -1.0, "trace": {"tau_s": 0.02, "mode": "additive", "scale": 1.0}},
     "CubaLIF", 0.0),
]


@pytest.mark.parametrize("ext,kind,v_reset", CASES)
def test_reference_matches_equations_by_hand(ext, kind, v_reset):
    dt = 1e-3
    g, W = _graph(5, 4, ext, kind, seed=len(str(ext)), v_reset=v_reset)
    rng = np.random.default_rng(3)
    x = (rng.random((120, 5)) < 0.5).astype(np.float64) * 2.0
    run = simulate(g, x, dt, record=("spikes", "v", "trace"))
    s, v, tr = _by_hand(W, 0.02, x, dt, ext, kind, v_reset)
    assert s.sum() > 3  # the case is lively
    np.testing.assert_array_equal(run.spikes["lif"][0], s)
    np.testing.assert_allclose(run.v["lif"][0], v, rtol=1e-9, atol=1e-9)
    if "trace" in ext:
        np.testing.assert_allclose(run.trace["lif"][0], tr, rtol=1e-9, atol=1e-12)
    else:
        assert "lif" not in run.trace
    if ext.get("refractory_s"):
        k = int(round(ext["refractory_s"] / dt))
        for j in range(4):
            t = np.flatnonzero(s[:, j])
            assert np.all(np.diff(t) > k)  # at least k silent steps between spikes


@pytest.mark.parametrize("ext,msg", [
    ({"refractory_s": -0.001}, "neurohw.refractory_s=-0.001 is outside [0, inf) s"),
    ({"refractory_s": "x"}, "neurohw.refractory_s='x' must be a number"),
    ({"lower_bound": 0.5}, "neurohw.lower_bound=0.5 is outside (-inf, v_reset=0] V"),
    ({"trace": {"tau_s": 0.0}}, "neurohw.trace.tau_s=0 is outside (0, inf) s"),
    ({"trace": {"tau_s": 0.01, "mode": "both"}}, "neurohw.trace.mode='both' is not one of"),
    ({"trace": {"tau_s": 0.01, "decay": 1}}, "neurohw.trace.decay is not a trace key"),
    ({"model": "adex"}, "neurohw.model='adex' is not one of lif, elif"),
    ({"model": "elif", "theta_rh": 0.5}, "neurohw.delta_t is missing"),
    ({"model": "elif", "delta_t": 2.0, "theta_rh": 0.5}, "neurohw.delta_t=2 is outside (0, 1]"),
    ({"delta_t": 0.1}, "neurohw.delta_t is only read with model 'elif'"),
    ({"refrac": 3}, "neurohw.refrac is not a neurohw neuron key"),
])
def test_bad_extension_one_line(ext, msg):
    g, _ = _graph(3, 2, ext)
    for call in (lambda: validate_float_graph(g, "net.nir"),
                 lambda: simulate(g, np.zeros((3, 3)), 1e-3)):
        with pytest.raises(ValidationError) as e:
            call()
        text = str(e.value)
        assert msg in text and "\n" not in text and "'lif'" in text
    with pytest.raises(ValidationError, match="net.nir"):
        validate_float_graph(g, "net.nir")


def test_extension_only_on_lif_nodes():
    g, _ = _graph(3, 2, {})
    g.nodes["fc"].metadata = {"neurohw": {"refractory_s": 0.001}}
    with pytest.raises(ValidationError, match="only read on LIF and CubaLIF nodes, not Affine"):
        validate_float_graph(g, "net.nir")


# ---------------------------------------------------------------------------
# quantizer: refractory_s -> refract_delay, lower_bound -> vmin, trace -> integer trace
# ---------------------------------------------------------------------------
def _two_layer(seed, ext, n_in=12, n_h=16, n_out=6):
    rng = np.random.default_rng(seed)

    def lif(n):
        return nir.LIF(tau=np.full(n, 0.01), r=np.full(n, 1.0), v_leak=np.zeros(n),
                       v_threshold=np.full(n, 1.0), v_reset=np.zeros(n),
                       metadata={"neurohw": dict(ext)})

    nodes = {"in": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": nir.Linear(rng.normal(1.5, 2.0, (n_h, n_in))), "l1": lif(n_h),
             "fc2": nir.Linear(rng.normal(1.5, 1.0, (n_out, n_h))), "l2": lif(n_out),
             "out": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("in", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "l2"), ("l2", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


@pytest.mark.parametrize("profile", ["loihi2", "loihi1"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantized_refractory_lif_tracks_float(profile, seed):
    """Spike counts per neuron, chip (aligned by latency) vs float reference on random
    inputs: within max(3, 10 %) per neuron; the refractory period matters (without it the
    float counts differ by far more).  (On ``loihi1`` this needs the quantizer's
    22-bit dendritic-sum cap on the voltage scale: without it fc1's sums wrapped and
    the chip lost about half its spikes.)"""
    from neurohw.emulate import run
    from neurohw.quantize import quantize

    dt = 1e-3
    steps = 2 + 2 * seed  # silent steps
    ext = {"refractory_s": steps * dt, "lower_bound": -0.5}
    g = _two_layer(seed, ext)
    rng = np.random.default_rng(100 + seed)
    x = (rng.random((6, 80, 12)) < 0.3).astype(np.float64)
    model = quantize(g, profile, dt=dt, calibrate=x)
    for pop in ("l1", "l2"):
        node = model.network.nodes[pop]
        assert np.all(node.refract_delay == steps + 1)
        assert node.vmin is not None and node.vmin < 0
        if profile == "loihi1":
            k = (1 - node.vmin).bit_length() - 1
            assert node.vmin == -(1 << k) + 1
    notes = " ".join(model.all_notes())
    assert f"refract_delay={steps + 1}" in notes and "vmin=" in notes
    f = simulate(g, x, dt)
    plain = simulate(_two_layer(seed, {}), x, dt)
    L = max(model.latency.values())
    chip = run(model.network, np.concatenate([x, np.zeros((6, L, 12))], 1).astype(np.int64))
    for pop in ("l1", "l2"):
        k = model.latency[pop]
        cs = chip.spikes[pop][:, k:k + 80].sum(axis=1).astype(np.int64)
        fs = f.spikes[pop].sum(axis=1).astype(np.int64)
        assert fs.sum() > 50
        assert np.all(np.abs(cs - fs) <= np.maximum(3, 0.1 * fs)), (pop, cs, fs)
        gap = np.abs(plain.spikes[pop].sum(axis=1).astype(np.int64) - fs)
        assert gap.max() > 3  # the refractory period is what the chip reproduces


def test_refractory_too_long_refused_and_trace_mapped():
    from neurohw.quantize import quantize

    g = _two_layer(0, {"refractory_s": 0.07})
    with pytest.raises(ValidationError, match=r"node 'l1' \(LIF\): metadata neurohw.refractory_s="
                                              r"0.07 is 70 steps .*outside \[0, 63\]"):
        quantize(g, "loihi2", dt=1e-3)
    g = _two_layer(0, {"trace": {"tau_s": 0.01, "mode": "multiplicative", "scale": 1.0}})
    node = quantize(g, "loihi2", dt=1e-3).network.nodes["l1"]
    assert node.trace_mode == "set" and node.trace_impulse == 127
    assert node.trace_decay == round(4096 * (1 - math.exp(-0.1)))


# ---------------------------------------------------------------------------
# ELIF in integer form: the table in both engines, f-I curve, export refusal
# ---------------------------------------------------------------------------
def _trunc_mul(x, f):
    p = x * f
    return -((-p) >> 12) if p < 0 else p >> 12


def _wrap(x, bits):
    h = 1 << (bits - 1)
    return ((x + h) % (1 << bits)) - h


def _ref_ext_step(u, v, ref, a, du, dv, bias, vth, r, vmin, vmax, lut, lo, sh, loihi1):
    """One extended step in plain Python ints (docs/loihi1.md, docs/neuron-models.md)."""
    H = 1 << 23
    k = (v - lo) >> sh
    e = 0 if k < 0 else lut[min(k, len(lut) - 1)]
    if loihi1:
        q = _wrap(a << 6, 22)
        u = _wrap(_trunc_mul(u, 4096 - (du + 1)) + q, 24)
        vr = _trunc_mul(v, 4096 - dv) + _wrap(u + bias, 24) + e
    else:
        q = _wrap(a << 6, 32)
        u = _wrap(_trunc_mul(u, 4096 - (du + 1)) + q, 32)
        u = u - 2 * H if u > H else (u + 2 * H if u <= -H else u)
        vr = _wrap(_trunc_mul(v, 4096 - dv) + u + bias + e, 32)
    v = min(max(vr, vmin), vmax)
    if ref > 0:
        v = 0
    s = v > (vth << 6)
    if s:
        v = 0
    ref = max((r if s else ref) - 1, 0)
    return u, v, ref, s


@pytest.mark.parametrize("loihi1", [False, True])
@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_elif_step_equals_plain_python(engine, loihi1):
    from neurohw.emulate import fast
    from neurohw.emulate.steps import LIFParams, LIFState, lif_step

    if engine == "numba" and not fast.available():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(7 + loihi1)
    B, n = 3, 40
    lut = rng.integers(0, 1 << 22, 300).astype(np.int64)
    lut[-5:] = (1 << 31) - 1  # the largest entries overflow v (Lava: int32 wrap; Loihi 1: clip)
    lo, sh = int(rng.integers(-(1 << 22), 0)), int(rng.integers(0, 16))
    du = rng.integers(0, 4096, n)
    dv = rng.integers(0, 4096, n)
    bias = rng.integers(-(1 << 20), 1 << 20, n)
    vth = rng.integers(0, 1 << 17, n)
    r = rng.integers(0, 6, n)
    vmin, vmax = -(1 << 21) + 1, (1 << 23) - 1
    p = LIFParams(decay_u=4096 - (du + 1), decay_v=4096 - dv, bias=bias, vth_scaled=vth << 6,
                  vmin=vmin, refract=r, loihi1=loihi1, dendrite_bits=22 if loihi1 else 32,
                  elif_lut=lut, elif_lo=lo, elif_shift=sh)
    u = rng.integers(-(1 << 23), 1 << 23, (B, n))
    v = rng.integers(vmin, 1 << 23, (B, n))
    ref = rng.integers(0, 3, (B, n))
    u0, v0, ref0 = u.copy(), v.copy(), ref.copy()
    for t in range(4):
        a = rng.integers(-(1 << 16), 1 << 16, (B, n))
        if engine == "numpy":
            st, s = lif_step(LIFState(u, v, ref), a, p)
            u, v, ref = st.u, st.v, st.ref
        else:
            stepper = fast.LIFStepper(p, u, v, ref)
            s = stepper(a).copy()
        for b in range(B):
            for i in range(n):
                got = _ref_ext_step(int(u0[b, i]), int(v0[b, i]), int(ref0[b, i]), int(a[b, i]),
                                    int(du[i]), int(dv[i]), int(bias[i]), int(vth[i]), int(r[i]),
                                    vmin, vmax, lut, lo, sh, loihi1)
                u0[b, i], v0[b, i], ref0[b, i] = got[:3]
                assert bool(s[b, i]) == got[3]
        np.testing.assert_array_equal(u, u0)
        np.testing.assert_array_equal(v, v0)
        np.testing.assert_array_equal(ref, ref0)
    # the table is in use: without it the step differs
    plain = p._replace(elif_lut=None)
    st, _ = lif_step(LIFState(u0.copy(), v0.copy(), ref0.copy()), a, plain)
    assert not np.array_equal(st.v, lif_step(LIFState(u0, v0, ref0), a, p)[0].v)


def _fi_graph(I, ext, cuba=False):
    n = I.size
    if cuba:  # per-neuron thresholds, a synaptic filter
        lif = nir.CubaLIF(tau_syn=np.full(n, 0.005), tau_mem=np.full(n, 0.02), r=np.ones(n),
                          v_leak=np.zeros(n), v_threshold=np.linspace(0.8, 1.2, n),
                          v_reset=np.zeros(n), metadata={"neurohw": ext})
    else:
        lif = nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n),
                      v_threshold=np.ones(n), v_reset=np.zeros(n), metadata={"neurohw": ext})
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n])}),
        "fc": nir.Affine(np.eye(n) * 0.1, I),
        "lif": lif,
        "out": nir.Output(output_type={"output": np.array([n])})},
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")])


@pytest.mark.parametrize("profile", ["loihi2", "loihi1"])
@pytest.mark.parametrize("ext,cuba", [
    ({"model": "elif", "delta_t": 0.1, "theta_rh": 0.7}, False),
    ({"model": "elif", "delta_t": 0.3, "theta_rh": 0.5, "refractory_s": 0.002}, False),
    ({"model": "elif", "delta_t": 0.05, "theta_rh": 0.9, "lower_bound": -0.2}, False),
    ({"model": "elif", "delta_t": 0.1, "theta_rh": 0.7}, True),
])
def test_elif_f_i_curve_matches_float(profile, ext, cuba):
    """Constant currents (the Affine bias), rate per current over 2500 steps of 0.2 ms:
    the quantized ELIF's spike counts equal the float ELIF's within one spike or 5 %;
    a plain LIF (no table) misses them (it is silent below the rheobase)."""
    from neurohw.emulate import run
    from neurohw.quantize import quantize

    dt, T = 2e-4, 2500
    I = np.linspace(0.3, 4.0, 24)
    g = _fi_graph(I, ext, cuba)
    fr = simulate(g, np.zeros((1, T, I.size)), dt).spikes["lif"][0].sum(axis=0).astype(np.int64)
    model = quantize(g, profile, dt=dt)
    pop = model.network.nodes["lif"]
    assert pop.is_elif and pop.elif_lut.size <= 1024
    assert any("ELIF: exp term" in s for s in model.all_notes())
    L = model.latency["lif"]
    counts = {}
    for engine in ("numpy", "numba"):
        chip = run(model.network, np.zeros((1, T + L, I.size), np.int64), engine=engine)
        counts[engine] = chip.spikes["lif"][0, L:].sum(axis=0).astype(np.int64)
    np.testing.assert_array_equal(counts["numpy"], counts["numba"])
    cr = counts["numpy"]
    assert fr.sum() > 300
    d = np.abs(cr - fr)
    assert np.all((d <= 1) | (d <= 0.05 * fr)), (fr, cr)
    plain = dict(ext)
    for k in ("model", "delta_t", "theta_rh"):
        plain.pop(k)
    m2 = quantize(_fi_graph(I, plain, cuba), profile, dt=dt)
    c2 = run(m2.network, np.zeros((1, T + L, I.size), np.int64)).spikes["lif"][0, L:].sum(axis=0)
    d2 = np.abs(c2.astype(np.int64) - fr)
    assert not np.all((d2 <= 1) | (d2 <= 0.05 * fr))


def test_elif_round_trip_and_lava_refusal(tmp_path):
    from neurohw.backends.lava.graph import lava_graph_spec
    from neurohw.nirio import read_network, write_network
    from neurohw.quantize import quantize

    g = _fi_graph(np.linspace(0.5, 2.0, 4), {"model": "elif", "delta_t": 0.1, "theta_rh": 0.7})
    net = quantize(g, "loihi2", dt=1e-3).network
    path = tmp_path / "elif.nir"
    write_network(net, path)
    back = read_network(path).nodes["lif"]
    np.testing.assert_array_equal(back.elif_lut, net.nodes["lif"].elif_lut)
    assert (back.elif_lut_lo, back.elif_lut_shift) == (net.nodes["lif"].elif_lut_lo,
                                                      net.nodes["lif"].elif_lut_shift)
    with pytest.raises(ValidationError, match=r"node 'lif': ELIF .* no matching fixed_pt process"):
        lava_graph_spec(net)
    from neurohw.export.netx import export_netx

    out = tmp_path / "elif.net"
    with pytest.raises(ValidationError, match=r"node 'lif': ELIF .* no matching fixed_pt process"):
        export_netx(net, out)
    assert not out.exists()


def test_report_shows_spike_time_error():
    from neurohw.quantize import quantize
    from neurohw.quantize.report import evaluate, format_report

    g = _two_layer(1, {"model": "elif", "delta_t": 0.2, "theta_rh": 0.6, "refractory_s": 0.002})
    rng = np.random.default_rng(5)
    x = (rng.random((3, 60, 12)) < 0.3).astype(np.float64)
    model = quantize(g, "loihi2", dt=1e-3, calibrate=x)
    ev = evaluate(model, x)
    err = ev.layers["l1"]["spike_time_err"]
    assert 0 <= err < 1.0  # chip spikes within a step of the float ELIF's on average
    text = format_report(model, ev)
    assert "neuron models" in text and "elif, refractory" in text


def test_extension_survives_a_nir_file_and_bad_values_name_the_file(tmp_path):
    from neurohw.validate import read_float_nir

    ext = {"model": "elif", "delta_t": 0.1, "theta_rh": 0.7, "refractory_s": 0.002,
           "trace": {"tau_s": 0.01, "mode": "multiplicative", "scale": 2.0}}
    g, _ = _graph(3, 2, ext)
    path = tmp_path / "ok.nir"
    nir.write(path, g)
    x = np.zeros((40, 3))
    x[::3] = 1.0
    a = simulate(g, x, 1e-3, record=("spikes", "v", "trace"))
    b = simulate(read_float_nir(path), x, 1e-3, record=("spikes", "v", "trace"))
    for rec in ("spikes", "v", "trace"):
        np.testing.assert_array_equal(getattr(a, rec)["lif"], getattr(b, rec)["lif"])
    g, _ = _graph(3, 2, {"trace": {"tau_s": -1.0}})
    bad = tmp_path / "bad.nir"
    nir.write(bad, g)
    with pytest.raises(ValidationError, match=r"bad.nir.*'lif'.*trace.tau_s=-1 is outside"):
        read_float_nir(bad)


def test_example_figures_script_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import runpy

    mod = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "neuron_models.py"))
    mod["main"](tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == sorted(f"neuron-{k}.png" for k in mod["MODELS"])
    out = capsys.readouterr().out
    for line in out.strip().splitlines():  # same spike counts, float and chip
        parts = line.split()
        assert parts[2] == parts[4], line


# ---------------------------------------------------------------------------
# per-neuron refractory_s: an array of the population's shape
# ---------------------------------------------------------------------------
PER_NEURON = np.array([0.0, 0.002, 0.0049, 0.0031])  # 0, 2, 5, 3 silent steps at dt = 1 ms


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF"])
def test_per_neuron_refractory_reference_matches_by_hand(kind):
    dt = 1e-3
    ext = {"refractory_s": PER_NEURON, "lower_bound": -0.4}
    g, W = _graph(5, 4, ext, kind, seed=4)
    rng = np.random.default_rng(8)
    x = (rng.random((150, 5)) < 0.5).astype(np.float64) * 15.0  # driven hard
    run = simulate(g, x, dt, record=("spikes", "v"))
    s, v, _ = _by_hand(W, 0.02, x, dt, ext, kind)
    assert s.sum(axis=0).min() > 20  # lively
    np.testing.assert_array_equal(run.spikes["lif"][0], s)
    np.testing.assert_allclose(run.v["lif"][0], v, rtol=1e-9, atol=1e-9)
    for j, k in enumerate([0, 2, 5, 3]):
        gaps = np.diff(np.flatnonzero(s[:, j]))
        assert gaps.min() > k
        if kind == "LIF":
            assert gaps.min() == k + 1  # driven hard: fires as soon as it may
    # one number per neuron really differs from the population's single value
    one, _, _ = _by_hand(W, 0.02, x, dt, {"refractory_s": 0.002, "lower_bound": -0.4}, kind)
    assert not np.array_equal(one, s)


def test_per_neuron_refractory_uniform_array_is_one_number():
    from neurohw.neuronext import neuron_ext

    g, _ = _graph(3, 4, {"refractory_s": np.full(4, 0.002)})
    ext = neuron_ext(g.nodes["lif"], "net.nir: node 'lif'")
    assert ext.refractory_s == 0.002 and not ext.per_neuron_refractory
    g, _ = _graph(3, 4, {"refractory_s": PER_NEURON.tolist()})  # a list works too
    ext = neuron_ext(g.nodes["lif"], "net.nir: node 'lif'")
    assert ext.per_neuron_refractory and ext.has_refractory
    np.testing.assert_array_equal(ext.refractory_s, PER_NEURON)
    np.testing.assert_array_equal(ext.refractory_steps(1e-3), [0, 2, 5, 3])
    assert not ext.refractory_s.flags.writeable


@pytest.mark.parametrize("value,msg", [
    (np.array([0.001, -0.002, 0.0, 0.003]),
     "metadata neurohw.refractory_s[1]=-0.002 is outside [0, inf) s"),
    (np.array([0.001, 0.0, 0.0, np.nan]), "metadata neurohw.refractory_s[3]=nan is outside [0, inf) s"),
    (np.array([0.001, 0.002, 0.003]),
     "metadata neurohw.refractory_s has shape (3,); expected a number or the population's "
     "shape (4,)"),
    (np.zeros((2, 2)), "metadata neurohw.refractory_s has shape (2, 2); expected a number or "
                       "the population's shape (4,)"),
    (["a", "b", "c", "d"], "metadata neurohw.refractory_s must be a number or an array of "
                           "numbers (seconds, one per neuron) in [0, inf) s"),
])
def test_per_neuron_refractory_bad_values_one_line(value, msg):
    g, _ = _graph(3, 4, {"refractory_s": value})
    for call in (lambda: validate_float_graph(g, "net.nir"),
                 lambda: simulate(g, np.zeros((3, 3)), 1e-3)):
        with pytest.raises(ValidationError) as e:
            call()
        text = str(e.value)
        assert msg in text and "\n" not in text and "'lif'" in text, text


def test_per_neuron_refractory_in_image_shaped_population():
    """A (C, H, W) population: an array of that shape, or flat with its size (row-major);
    a bad element is named by its (c, h, w) index."""
    from neurohw.neuronext import neuron_ext

    shape = (2, 2, 3)
    r = np.arange(12).reshape(shape) * 1e-3
    node = nir.LIF(tau=np.full(shape, 0.02), r=np.ones(shape), v_leak=np.zeros(shape),
                   v_threshold=np.ones(shape), v_reset=np.zeros(shape),
                   metadata={"neurohw": {"refractory_s": r}})
    np.testing.assert_array_equal(neuron_ext(node, "n").refractory_s, r)
    node.metadata["neurohw"]["refractory_s"] = r.reshape(-1)
    np.testing.assert_array_equal(neuron_ext(node, "n").refractory_s, r)
    bad = r.copy()
    bad[1, 0, 2] = -1.0
    node.metadata["neurohw"]["refractory_s"] = bad
    with pytest.raises(ValidationError, match=r"refractory_s\[1, 0, 2\]=-1 is outside"):
        neuron_ext(node, "n")


@pytest.mark.parametrize("profile", ["loihi2", "loihi1"])
def test_per_neuron_refractory_quantized(profile, tmp_path):
    """refract_delay per neuron = round(refractory_s / dt) + 1 (0: none); the chip keeps
    each neuron's spikes that far apart and tracks the float reference's counts; the
    array survives a NIR file."""
    from neurohw.emulate import run
    from neurohw.quantize import quantize

    dt = 1e-3
    n_h = 16
    r1 = np.tile(PER_NEURON, 4)  # l1: 16 neurons, 0/2/5/3 silent steps
    g = _two_layer(2, {"lower_bound": -0.5})
    g.nodes["l1"].metadata["neurohw"]["refractory_s"] = r1
    path = tmp_path / "r.nir"
    nir.write(path, g)
    from neurohw.validate import read_float_nir

    g = read_float_nir(path)
    rng = np.random.default_rng(9)
    x = (rng.random((6, 80, 12)) < 0.3).astype(np.float64)
    model = quantize(g, profile, dt=dt, calibrate=x)
    want = np.where(np.rint(r1 / dt) > 0, np.rint(r1 / dt) + 1, 0)
    np.testing.assert_array_equal(model.network.nodes["l1"].refract_delay, want)
    assert np.all(model.network.nodes["l2"].refract_delay == 0)
    notes = " ".join(model.all_notes())
    assert "refractory_s=0..0.0049 s per neuron -> 0..5 silent steps" in notes
    assert "refract_delay=0..6" in notes
    f = simulate(g, x, dt)
    L = max(model.latency.values())
    chip = run(model.network, np.concatenate([x, np.zeros((6, L, 12))], 1).astype(np.int64))
    k = model.latency["l1"]
    cs = chip.spikes["l1"][:, k:k + 80]
    for i in range(n_h):
        for b in range(6):
            t = np.flatnonzero(cs[b, :, i])
            if len(t) > 1:
                assert np.diff(t).min() >= max(int(want[i]), 1)
    counts_c = cs.sum(axis=1).astype(np.int64)
    counts_f = f.spikes["l1"].sum(axis=1).astype(np.int64)
    assert counts_f.sum() > 50
    assert np.all(np.abs(counts_c - counts_f) <= np.maximum(3, 0.1 * counts_f))


def test_per_neuron_refractory_too_long_names_the_neuron():
    from neurohw.quantize import quantize

    r = np.full(16, 0.002)
    r[11] = 0.07
    g = _two_layer(0, {})
    g.nodes["l1"].metadata["neurohw"]["refractory_s"] = r
    with pytest.raises(ValidationError, match=r"node 'l1' \(LIF\): metadata neurohw.refractory_s"
                                              r"\[11\]=0.07 is 70 steps of dt=0.001 s, "
                                              r"refract_delay 71 is outside \[0, 63\] on profile "
                                              r"'loihi2'"):
        quantize(g, "loihi2", dt=1e-3)
