"""neurohw's float-side neuron extension (metadata["neurohw"]: refractory_s, lower_bound,
trace, ELIF) in the float reference, checked against plain per-step loops written here
from shared/NEURON_MODELS.md's equations; validation errors."""

import math

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
    refr = int(round(ext.get("refractory_s", 0.0) / dt))
    tr = ext.get("trace")
    spikes = np.zeros((T, n), np.int8)
    vs = np.zeros((T, n))
    xs = np.zeros((T, n))
    for j in range(n):
        v = cur = trace = 0.0
        silent = 0
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
