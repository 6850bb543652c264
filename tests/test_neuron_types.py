"""Per-neuron time constants and thresholds, and their clustering into K parameter sets."""

import json

import nir
import numpy as np
import pytest

from neurohw.cli import main
from neurohw.errors import ValidationError
from neurohw.quantize import quantize
from neurohw.quantize.core import cluster_types
from neurohw.quantize.report import evaluate, format_report, report_dict

DT = 1e-3


def _cuba(tau_syn, tau_mem, thr):
    n = len(tau_syn)
    return nir.CubaLIF(tau_syn=np.asarray(tau_syn, float), tau_mem=np.asarray(tau_mem, float),
                       r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.asarray(thr, float),
                       v_reset=np.zeros(n), w_in=np.ones(n))


def _het(rng, n):
    """Log-uniform time constants over a decade and thresholds over a factor five."""
    return (np.exp(rng.uniform(np.log(2e-3), np.log(20e-3), n)),
            np.exp(rng.uniform(np.log(3e-3), np.log(40e-3), n)), rng.uniform(0.3, 1.5, n))


def _net(layers, weights, n_in):
    """input -> (Linear -> neuron) * len(layers) -> output."""
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges, prev = [], "input"
    for i, (neuron, w) in enumerate(zip(layers, weights), 1):
        nodes[f"fc{i}"], nodes[f"l{i}"] = nir.Linear(np.asarray(w, float)), neuron
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"l{i}")]
        prev = f"l{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([np.shape(weights[-1])[0]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _triples(pop):
    return np.stack([np.asarray(pop.du).reshape(-1), np.asarray(pop.dv).reshape(-1),
                     np.asarray(pop.vth).reshape(-1)], axis=1)


def _ints(net):
    """Every integer of a network, for exact comparisons."""
    out = {}
    for name, node in net.nodes.items():
        for p in ("du", "dv", "vth", "bias_mant", "bias_exp", "weight", "weight_exp"):
            if hasattr(node, p):
                out[f"{name}.{p}"] = np.asarray(getattr(node, p))
    return out


def test_per_neuron_integers_match_a_plain_per_neuron_computation():
    rng = np.random.default_rng(0)
    n, n_in = 9, 12
    ts, tm, th = _het(rng, n)
    w = rng.normal(0.2, 1.0, (n, n_in))
    model = quantize(_net([_cuba(ts, tm, th)], [w], n_in), "loihi2", dt=DT)
    pop = model.network.populations["l1"]
    # decays: each neuron its own 12-bit rounding, Lava's du offset included
    assert np.array_equal(pop.du.reshape(-1), np.rint(4096 * DT / ts).astype(int) - 1)
    assert np.array_equal(pop.dv.reshape(-1), np.rint(4096 * DT / tm).astype(int))
    assert len(np.unique(pop.vth)) > 1
    # each neuron alone (its row of weights, its parameters) gets the same triple
    for i in range(n):
        alone = quantize(_net([_cuba(ts[i:i + 1], tm[i:i + 1], th[i:i + 1])], [w[i:i + 1]], n_in),
                         "loihi2", dt=DT).network.populations["l1"]
        assert np.array_equal(_triples(alone)[0], _triples(pop)[i]), i
    assert model.neurons["l1"].parameter_sets() == n


def test_one_type_equals_the_old_median_behaviour():
    rng = np.random.default_rng(1)
    n, n_in = 10, 15
    ts, tm, _ = _het(rng, n)
    th = np.full(n, 0.8)
    ws = [rng.normal(0.2, 1.0, (n, n_in)), rng.normal(0.2, 1.0, (4, n))]
    het = _net([_cuba(ts, tm, th), _cuba(ts[:4], tm[:4], th[:4])], ws, n_in)
    med = _net([_cuba(np.full(n, np.median(ts)), np.full(n, np.median(tm)), th),
                _cuba(np.full(4, np.median(ts[:4])), np.full(4, np.median(tm[:4])), th[:4])], ws, n_in)
    x = (rng.random((6, 40, n_in)) < 0.3).astype(np.int8)
    for calib in (None, x):
        a = quantize(het, "loihi2", dt=DT, calibrate=calib, neuron_types=1)
        b = quantize(med, "loihi2", dt=DT, calibrate=calib)
        ia, ib = _ints(a.network), _ints(b.network)
        assert ia.keys() == ib.keys()
        for k in ia:
            assert np.array_equal(ia[k], ib[k]), k
        assert a.neurons["l1"].parameter_sets() == 1
        assert any("median" in note for note in a.all_notes())


@pytest.mark.parametrize("seed", range(3))
def test_k_types_give_at_most_k_distinct_triples(seed):
    rng = np.random.default_rng(seed)
    n, n_in = 40, 10
    layer = _cuba(*_het(rng, n))
    g = _net([layer], [rng.normal(0.2, 1.0, (n, n_in))], n_in)
    per_neuron = quantize(g, "loihi2", dt=DT)
    assert len(np.unique(_triples(per_neuron.network.populations["l1"]), axis=0)) == n
    for k in (1, 2, 3, 5, 8):
        m = quantize(g, "loihi2", dt=DT, neuron_types=k)
        t = _triples(m.network.populations["l1"])
        assert 1 <= len(np.unique(t, axis=0)) <= k
        # neurons sharing a type share the whole triple
        types = m.neurons["l1"].types
        for j in np.unique(types):
            assert len(np.unique(t[types == j], axis=0)) == 1
        again = quantize(g, "loihi2", dt=DT, neuron_types=k)  # deterministic
        assert np.array_equal(_triples(again.network.populations["l1"]), t)
    # K at least the number of distinct float sets changes nothing
    m = quantize(g, "loihi2", dt=DT, neuron_types=n)
    assert np.array_equal(_triples(m.network.populations["l1"]),
                          _triples(per_neuron.network.populations["l1"]))


@pytest.mark.parametrize("seed", range(2))
def test_per_neuron_parameters_track_the_float_model_better_than_one_type(seed):
    rng = np.random.default_rng(seed)
    n_in, n_h, n_out = 20, 40, 8
    g = _net([_cuba(*_het(rng, n_h)), _cuba(*_het(rng, n_out))],
             [rng.normal(0.3, 1.0, (n_h, n_in)), rng.normal(0.3, 1.0, (n_out, n_h))], n_in)
    x = (rng.random((16, 100, n_in)) < 0.3).astype(np.int8)
    res = {}
    for k in (None, 1):
        m = quantize(g, "loihi2", dt=DT, calibrate=x, neuron_types=k)
        res[k] = evaluate(m, x).layers
    for name in ("l1", "l2"):
        per, one = res[None][name], res[1][name]
        assert per["count_corr"] > 0.98, (name, per)
        assert per["count_corr"] > one["count_corr"] + 0.15, (name, per, one)
        assert per["rate_err"] < 0.5 * one["rate_err"], (name, per, one)


def test_report_gives_sets_and_what_they_cost(tmp_path):
    rng = np.random.default_rng(3)
    n, n_in = 30, 10
    ts, tm, th = _het(rng, n)
    g = _net([_cuba(ts, tm, th)], [rng.normal(0.3, 1.0, (n, n_in))], n_in)
    costs = {}
    for k in (None, 1, 4):
        m = quantize(g, "loihi2", dt=DT, neuron_types=k)
        rep = report_dict(m)
        pop = rep["populations"]["l1"]
        assert pop["parameter_sets"] == (n if k is None else k)
        err = pop["parameter_error"]
        # the relative error the report states is the one of the integers
        eff = DT / ((m.network.populations["l1"].du.reshape(-1) + 1) / 4096)
        assert err["tau_syn"]["max"] == pytest.approx(np.max(np.abs(eff - ts) / ts))
        assert err["v_threshold"]["max"] < 1e-12  # thresholds are exact through the scale
        costs[k] = err["tau_mem"]["mean"]
        text = format_report(m)
        assert "neuron parameter sets" in text and f"neuron_types={k if k else 'per'}" in text
        json.dumps(rep)
    assert costs[None] < 0.002 < costs[4] < costs[1]


def test_cli_neuron_types(tmp_path, capsys):
    rng = np.random.default_rng(4)
    n, n_in = 12, 6
    g = _net([_cuba(*_het(rng, n))], [rng.normal(0.3, 1.0, (n, n_in))], n_in)
    src = tmp_path / "het.nir"
    nir.write(src, g)
    out = tmp_path / "q.nir"
    x = tmp_path / "x.npy"
    np.save(x, (rng.random((4, 30, n_in)) < 0.3).astype(np.int8))
    rc = main(["quantize", str(src), "-o", str(out), "--dt", "1e-3", "--neuron-types", "3",
               "--eval", str(x), "--report", str(tmp_path / "rep")])
    assert rc == 0
    from neurohw import read_network

    pop = read_network(out).populations["l1"]
    assert len(np.unique(_triples(pop), axis=0)) <= 3
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["neuron_types"] == 3 and rep["populations"]["l1"]["parameter_sets"] <= 3
    rc = main(["quantize", str(src), "-o", str(out), "--neuron-types", "0"])
    assert rc == 2 and "--neuron-types" in capsys.readouterr().err


def test_neuron_types_argument_is_checked():
    g = _net([_cuba([2e-3], [3e-3], [1.0])], [np.ones((1, 2))], 2)
    for bad in (0, -2, 1.5, True, "3"):
        with pytest.raises(ValidationError, match="neuron_types"):
            quantize(g, dt=DT, neuron_types=bad)


def test_cluster_types_is_exact_deterministic_and_finds_blobs():
    rng = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 1.0], [0.0, 4.0, -2.0]])
    truth = np.repeat(np.arange(3), [50, 30, 20])
    feats = centres[truth] + rng.normal(0, 0.1, (100, 3))
    labels = cluster_types(feats, 3)
    # the three blobs, whatever the numbering
    for j in range(3):
        assert len(np.unique(labels[truth == j])) == 1
    assert len(np.unique(labels)) == 3
    assert np.array_equal(cluster_types(feats, 3), labels)
    # the same partition whatever the order of the neurons
    rev = cluster_types(feats[::-1], 3)[::-1]
    assert np.array_equal(rev[:, None] == rev[None, :], labels[:, None] == labels[None, :])
    # identical rows always share a label; k >= distinct rows is exact
    dup = np.repeat(feats[:5], 4, axis=0)
    for k in (1, 2, 5, None):
        lab = cluster_types(dup, k)
        assert np.all(lab.reshape(5, 4) == lab.reshape(5, 4)[:, :1])
        assert len(np.unique(lab)) == min(5, k or 5)


def test_per_neuron_quantized_network_is_bit_exact_with_lava():
    pytest.importorskip("lava")
    from neurohw.verify import verify_against_lava

    rng = np.random.default_rng(11)
    n_in, n_h, n_out = 10, 12, 4
    g = _net([_cuba(*_het(rng, n_h)), _cuba(*_het(rng, n_out))],
             [rng.normal(0.3, 1.0, (n_h, n_in)), rng.normal(0.3, 1.0, (n_out, n_h))], n_in)
    x = (rng.random((2, 30, n_in)) < 0.3).astype(np.int8)
    m = quantize(g, "loihi2", dt=DT, calibrate=x)
    assert m.neurons["l1"].parameter_sets() == n_h
    res = verify_against_lava(m.network, x[0].astype(np.int64))
    assert res.bit_exact, res


def test_conv_population_with_per_channel_parameters():
    """Channels may differ (one scale per channel is all a convolution needs); K merges them."""
    rng = np.random.default_rng(1)
    c, hw = 4, (6, 6)
    per_ch = lambda v: np.broadcast_to(np.asarray(v, float)[:, None, None], (c,) + hw).copy()  # noqa: E731
    lif = nir.LIF(tau=per_ch([2e-3, 4e-3, 8e-3, 16e-3]), r=per_ch(np.ones(c)), v_leak=per_ch(np.zeros(c)),
                  v_threshold=per_ch([0.5, 1.0, 1.5, 0.8]), v_reset=per_ch(np.zeros(c)))
    conv = nir.Conv2d(input_shape=hw, weight=rng.normal(0.3, 0.5, (c, 2, 3, 3)), stride=1, padding=1,
                      dilation=1, groups=1, bias=np.zeros(c))
    nodes = {"input": nir.Input(input_type={"input": np.array([2, *hw])}), "conv": conv, "l1": lif,
             "output": nir.Output(output_type={"output": np.array([c, *hw])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "conv"), ("conv", "l1"), ("l1", "output")],
                     type_check=False)
    x = (rng.random((4, 40, 72)) < 0.4).astype(np.int8)
    corr = {}
    for k in (None, 2, 1):
        m = quantize(g, "loihi2", dt=DT, calibrate=x, neuron_types=k)
        pop = m.network.populations["l1"]
        assert pop.shape == (c, *hw)
        assert m.neurons["l1"].parameter_sets() == (c if k is None else k)
        for p in (pop.du, pop.dv, pop.vth):  # uniform within each channel
            assert np.all(p == p[:, :1, :1])
        corr[k] = evaluate(m, x).layers["l1"]["count_corr"]
        if k is None:
            assert np.array_equal(pop.dv[:, 0, 0], np.rint(4096 * DT / np.array([2e-3, 4e-3, 8e-3, 16e-3])))
            per_neuron = m
    assert corr[None] > 0.99 and corr[None] > corr[1] + 0.03
    pytest.importorskip("lava")
    from neurohw.verify import verify_against_lava

    res = verify_against_lava(per_neuron.network, x[0, :15].astype(np.int64))
    assert res.bit_exact, res


def _random_neuron(rng, kind, n):
    ts, tm, th = _het(rng, n)
    if rng.random() < 0.3:  # some populations share their parameters
        ts, tm, th = np.full(n, ts[0]), np.full(n, tm[0]), np.full(n, th[0])
    if kind == "LIF":
        return nir.LIF(tau=tm, r=np.ones(n), v_leak=np.zeros(n), v_threshold=th, v_reset=np.zeros(n))
    if kind == "IF":
        return nir.IF(r=np.full(n, 300.0), v_threshold=th, v_reset=np.zeros(n))
    if kind == "LI":
        return nir.LI(tau=tm, r=np.ones(n), v_leak=np.zeros(n))
    return _cuba(ts, tm, th)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40))
def test_random_heterogeneous_networks_across_k_and_profiles_slow(seed):
    rng = np.random.default_rng(100 + seed)
    n_in, n_h, n_out = int(rng.integers(5, 30)), int(rng.integers(5, 60)), int(rng.integers(2, 10))
    hidden = _random_neuron(rng, rng.choice(["LIF", "CubaLIF", "IF"]), n_h)
    readout = _random_neuron(rng, rng.choice(["LIF", "CubaLIF", "LI"]), n_out)
    g = _net([hidden, readout], [rng.normal(0.3, 1.0, (n_h, n_in)), rng.normal(0.3, 1.0, (n_out, n_h))],
             n_in)
    x = (rng.random((8, 60, n_in)) < 0.3).astype(np.int8)
    profile = ["loihi2", "generic(decay_bits=10)", "generic(act_shift=5,state_bits=20)"][seed % 3]
    corr = {}
    for k in (None, 1, 3):
        m = quantize(g, profile, dt=DT, calibrate=x, neuron_types=k)
        m.network.validate()
        for name in ("l1", "l2"):
            t = _triples(m.network.populations[name])
            assert len(np.unique(t, axis=0)) <= (k or len(t))
            types = m.neurons[name].types
            assert all(len(np.unique(t[types == j], axis=0)) == 1 for j in np.unique(types))
        ev = evaluate(m, x)
        if "count_corr" in ev.layers["l1"]:
            corr[k] = ev.layers["l1"]["count_corr"]
    if corr and not np.isnan(corr[None]):
        assert corr[None] > 0.9, corr
        assert np.isnan(corr[1]) or corr[None] >= corr[1] - 0.02, corr


def test_snntorch_learned_per_neuron_beta_and_threshold_are_kept():
    """snnTorch's Leaky with a beta and a threshold per neuron (learn_beta, learn_threshold)
    exports one tau and one threshold per neuron; the default keeps them."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    n_in, n_h, n_out = 16, 24, 5
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, n_h),
        snn.Leaky(beta=torch.rand(n_h) * 0.6 + 0.35, threshold=torch.rand(n_h) + 0.5,
                  init_hidden=True, learn_beta=True, learn_threshold=True, reset_mechanism="zero"),
        torch.nn.Linear(n_h, n_out),
        snn.Leaky(beta=torch.full((n_out,), 0.8), threshold=torch.ones(n_out), init_hidden=True,
                  output=True, reset_mechanism="zero"))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    g = export_to_nir(net, torch.zeros(n_in))
    x = (np.random.default_rng(0).random((16, 60, n_in)) < 0.3).astype(np.int8)
    corr = {}
    for k in (None, 1):
        m = quantize(g, "loihi2", calibrate=x, neuron_types=k)
        assert m.neurons["1"].parameter_sets() == (n_h if k is None else 1)
        assert m.neurons["3"].parameter_sets() == 1
        corr[k] = {n: r["count_corr"] for n, r in evaluate(m, x).layers.items()}
    for name in ("1", "3"):  # measured: 0.9995 / 0.989 per neuron, 0.896 / 0.858 with K=1
        assert corr[None][name] > 0.98, corr
        assert corr[None][name] > corr[1][name] + 0.07, corr
