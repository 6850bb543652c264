"""The quantizer: float NIR -> integer network, checked against float references."""

import json
from pathlib import Path

import nir
import numpy as np
import pytest

import neurohw as nh
from neurohw import reference
from neurohw.cli import main
from neurohw.emulate import run
from neurohw.errors import ValidationError
from neurohw.quantize import latencies, quantize
from neurohw.quantize.report import evaluate, format_report, write_report

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "digits.nir"
DATA = ROOT / "examples" / "models" / "digits_data.npz"


def _graph(nodes, edges, in_shape):
    nodes = dict(nodes)
    nodes["input"] = nir.Input(input_type={"input": np.array(in_shape)})
    src = [s for s, d in edges if d == "output"]
    out = [1]
    if src and src[0] in nodes:  # declare what the output really reads
        node = nodes[src[0]]
        arr = next((getattr(node, a) for a in ("tau", "tau_mem", "r", "threshold")
                    if getattr(node, a, None) is not None), None)
        out = list(np.shape(arr)) if arr is not None and np.ndim(arr) else [1]
        if getattr(node, "weight", None) is not None:
            out = [np.shape(node.weight)[0]]
    nodes["output"] = nir.Output(output_type={"output": np.array(out)})
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _chip_vs_float(graph, x, dt, **kw):
    """(model, float spikes, chip spikes aligned by latency) per neuron node."""
    model = quantize(graph, "loihi2", dt=dt, **kw)
    ev = evaluate(model, x)
    return model, ev


def _lif(n, tau=2e-3, thr=1.0, **kw):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, kw.get("r", 1.0)),
                   v_leak=np.full(n, kw.get("v_leak", 0.0)), v_threshold=np.full(n, thr),
                   v_reset=np.full(n, kw.get("v_reset", 0.0)))


def _two_layer(rng, n_in=20, n_h=30, n_out=6, neuron=_lif, bias=False, dt=1e-3):
    w1 = rng.normal(0, 1.0, (n_h, n_in)) * 0.6
    w2 = rng.normal(0, 1.0, (n_out, n_h)) * 0.6
    fc1 = nir.Affine(w1, rng.normal(0, 0.05, n_h)) if bias else nir.Linear(w1)
    nodes = {"fc1": fc1, "l1": neuron(n_h), "fc2": nir.Linear(w2), "l2": neuron(n_out)}
    edges = [("input", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "l2"), ("l2", "output")]
    return _graph(nodes, edges, [n_in])


def _spikes(rng, shape, p=0.3):
    return (rng.random(shape) < p).astype(np.int8)


# --- agreement with the float reference ---------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_lif_network_tracks_float_reference(seed):
    rng = np.random.default_rng(seed)
    g = _two_layer(rng, bias=True)
    x = _spikes(rng, (16, 60, 20))
    model, ev = _chip_vs_float(g, x, 1e-3, calibrate=x)
    for name in ("l1", "l2"):
        r = ev.layers[name]
        assert r["count_corr"] > 0.95, (name, r)
        assert r["bin_agreement"] > 0.95, (name, r)
    assert model.latency == {"l1": 1, "l2": 2}


def test_cuba_lif_if_and_threshold_neurons_track_reference():
    rng = np.random.default_rng(5)

    def cuba(n):
        return nir.CubaLIF(tau_syn=np.full(n, 3e-3), tau_mem=np.full(n, 5e-3), r=np.full(n, 2.0),
                           v_leak=np.full(n, 0.1), v_threshold=np.full(n, 0.5),
                           v_reset=np.zeros(n), w_in=np.full(n, 1.5))

    def if_(n):
        return nir.IF(r=np.full(n, 300.0), v_threshold=np.full(n, 1.0), v_reset=np.zeros(n))

    for neuron in (cuba, if_):
        g = _two_layer(rng, neuron=neuron)
        x = _spikes(rng, (8, 80, 20))
        model, ev = _chip_vs_float(g, x, 1e-3, calibrate=x)
        for name in ("l1", "l2"):
            assert ev.layers[name]["count_corr"] > 0.9, (neuron.__name__, name, ev.layers[name])


def test_reset_potential_is_shifted_and_reported():
    rng = np.random.default_rng(2)
    g = _two_layer(rng, neuron=lambda n: _lif(n, thr=0.5, v_reset=-0.5, v_leak=-0.5))
    x = _spikes(rng, (8, 60, 20))
    model, ev = _chip_vs_float(g, x, 1e-3, calibrate=x)
    assert any("v_reset" in n for n in model.all_notes())
    # float starts at 0, chip at v_reset: only the first spikes may differ
    assert ev.layers["l1"]["count_corr"] > 0.9


def test_li_readout_and_accuracy_from_voltage():
    rng = np.random.default_rng(4)
    li = nir.LI(tau=np.full(4, 5e-3), r=np.ones(4), v_leak=np.zeros(4))
    nodes = {"fc1": nir.Linear(rng.normal(0, 0.8, (16, 10))), "l1": _lif(16),
             "fc2": nir.Linear(rng.normal(0, 0.8, (4, 16))), "readout": li}
    g = _graph(nodes, [("input", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "readout"),
                       ("readout", "output")], [10])
    x = _spikes(rng, (32, 50, 10))
    model = quantize(g, "loihi2", dt=1e-3, calibrate=x)
    assert model.network.populations["readout"].uniform("vth") == model.profile.range_of("vth")[1]
    ref = reference.simulate(g, x, 1e-3, record=("v",))
    labels = ref.v["readout"][:, -1].argmax(axis=1)
    ev = evaluate(model, x, labels)
    assert ev.accuracy_float == 1.0
    assert ev.accuracy_chip >= 0.8
    assert ev.layers["readout"]["unexpected_spikes"] == 0
    assert ev.layers["readout"]["v_clips"] == 0


def test_conv_pool_flatten_model_runs_and_verifies_in_lava():
    rng = np.random.default_rng(1)
    conv = nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0.3, 0.5, (4, 2, 3, 3)),
                      stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(4))
    nodes = {"conv": conv, "l1": _lif((4, 6, 6), tau=4e-3, thr=1.0),
             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                   padding=np.array([0, 0])),
             "flat": nir.Flatten(input_type={"input": np.array([4, 3, 3])}, start_dim=0, end_dim=-1),
             "fc": nir.Linear(rng.normal(0, 0.5, (5, 36))), "l2": _lif(5)}
    g = _graph(nodes, [("input", "conv"), ("conv", "l1"), ("l1", "pool"), ("pool", "flat"),
                       ("flat", "fc"), ("fc", "l2"), ("l2", "output")], [2, 6, 6])
    x = _spikes(rng, (4, 40, 2, 6, 6), 0.4).reshape(4, 40, -1)
    model, ev = _chip_vs_float(g, x, 1e-3, calibrate=x)
    kinds = {type(n).__name__ for n in model.network.projections.values()}
    assert kinds == {"Conv2d", "Dense"}  # pool + flatten + linear compose into one Dense
    assert ev.layers["l1"]["count_corr"] > 0.95
    assert ev.layers["l2"]["count_corr"] > 0.8
    from neurohw.verify import verify_against_lava

    res = verify_against_lava(model.network, x[0, :15].astype(np.int64))
    assert res.bit_exact, res


def test_delay_scale_avgpool_and_recurrence():
    rng = np.random.default_rng(9)
    n_in, n = 12, 10
    nodes = {"fc": nir.Linear(rng.normal(0, 0.7, (n, n_in))), "scale": nir.Scale(np.full(n, 1.5)),
             "delay": nir.Delay(rng.integers(0, 4, n) * 1e-3), "l1": _lif(n),
             "rec": nir.Linear(rng.normal(0, 0.3, (n, n))), "fc2": nir.Linear(rng.normal(0, 0.7, (3, n))),
             "l2": _lif(3)}
    edges = [("input", "fc"), ("fc", "scale"), ("scale", "delay"), ("delay", "l1"),
             ("l1", "rec"), ("rec", "l1"), ("l1", "fc2"), ("fc2", "l2"), ("l2", "output")]
    g = _graph(nodes, edges, [n_in])
    x = _spikes(rng, (8, 60, n_in))
    model, ev = _chip_vs_float(g, x, 1e-3, calibrate=x)
    dense = [p for p in model.network.projections.values() if p.delay is not None]
    assert len(dense) == 1 and dense[0].delay.max() <= 3
    assert model.network.has_cycle()
    # recurrence arrives one step later on the chip than in NIR's back-edge timing:
    # agreement is looser but must stay high
    assert ev.layers["l1"]["count_corr"] > 0.8, ev.layers["l1"]


def test_per_channel_exponents_never_worse():
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 1, (12, 8)) * np.geomspace(0.01, 4, 12)[:, None]  # rows of very different size
    g = _graph({"fc1": nir.Linear(w1), "l1": _lif(12)}, [("input", "fc1"), ("fc1", "l1"),
                                                         ("l1", "output")], [8])
    plain = quantize(g, "loihi2", dt=1e-3)
    per = quantize(g, "loihi2", dt=1e-3, per_channel=True)
    err = lambda m: np.sqrt(np.mean([p.weight_error ** 2 for p in m.projections]))  # noqa: E731
    assert len(per.projections) > 1
    assert err(per) < err(plain)


def test_quantized_model_round_trips_through_nir(tmp_path):
    from conftest import assert_networks_equal

    rng = np.random.default_rng(0)
    model = quantize(_two_layer(rng, bias=True), "loihi1", dt=1e-3)
    path = nh.write_network(model.network, tmp_path / "q.nir")
    assert_networks_equal(nh.read_network(path), model.network)


# --- errors --------------------------------------------------------------------------------
def test_time_constant_shorter_than_dt_is_an_error():
    g = _two_layer(np.random.default_rng(0), neuron=lambda n: _lif(n, tau=1e-4))
    with pytest.raises(ValidationError, match=r"node 'l1': tau\[0\]=0.0001 s is shorter than dt=0.001 s"):
        quantize(g, dt=1e-3)


def test_output_reading_a_linear_layer_is_an_error():
    g = _graph({"fc": nir.Linear(np.ones((2, 3)))}, [("input", "fc"), ("fc", "output")], [3])
    with pytest.raises(ValidationError, match=r"node 'output': Output reads Linear 'fc'"):
        quantize(g, dt=1e-3)


def test_unsupported_node_and_nan_weight():
    g = _two_layer(np.random.default_rng(0))
    g.nodes["fc1"] = nir.Linear(np.full((30, 20), np.nan))
    with pytest.raises(ValidationError, match=r"fc1.*weight contains nan"):
        quantize(g, dt=1e-3)
    class Gaussian(nir.Linear):  # any NIR node type the quantizer does not know
        pass

    g2 = _graph({"id": Gaussian(np.ones((3, 3))), "l": _lif(3)},
                [("input", "id"), ("id", "l"), ("l", "output")], [3])
    with pytest.raises(ValidationError, match=r"node 'id': NIR node type Gaussian is not supported"):
        quantize(g2, dt=1e-3)


def test_delay_longer_than_profile_is_an_error():
    nodes = {"fc": nir.Linear(np.ones((2, 3))), "d": nir.Delay(np.array([0.1, 0.0])), "l": _lif(2)}
    g = _graph(nodes, [("input", "fc"), ("fc", "d"), ("d", "l"), ("l", "output")], [3])
    with pytest.raises(ValidationError, match=r"delay 100 steps exceeds the profile maximum 62"):
        quantize(g, dt=1e-3)


def test_already_quantized_is_an_error(tmp_path):
    model = quantize(_two_layer(np.random.default_rng(0)), dt=1e-3)
    path = nh.write_network(model.network, tmp_path / "q.nir")
    with pytest.raises(ValidationError, match="already quantized"):
        quantize(path)


# --- the shipped trained model ---------------------------------------------------------------
def test_digits_model_loihi2_within_one_point_of_float():
    data = np.load(DATA)
    model = quantize(MODEL, "loihi2", calibrate=data["x_train"])
    ev = evaluate(model, data["x_test"], data["y_test"])
    info = json.loads((MODEL.parent / "digits_info.json").read_text())
    assert ev.accuracy_float == pytest.approx(info["float_test_accuracy"], abs=1e-9)
    assert ev.accuracy_chip >= ev.accuracy_float - 0.01
    text = format_report(model, ev)
    assert "accuracy: float" in text


def test_cli_quantize_with_report(tmp_path, capsys):
    out = tmp_path / "d.q.nir"
    rc = main(["quantize", str(MODEL), "-o", str(out), "--calibrate", f"{DATA}:x_train",
               "--eval", f"{DATA}:x_test", "--labels", f"{DATA}:y_test", "--report", str(tmp_path / "rep")])
    assert rc == 0
    assert nh.read_network(out).num_neurons == 74
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["evaluation"]["accuracy_chip"] >= rep["evaluation"]["accuracy_float"] - 0.01
    for f in ("report.txt", "layer_error.png", "spike_counts.png", "raster_float_vs_chip.png"):
        assert (tmp_path / "rep" / f).stat().st_size > 0


@pytest.mark.parametrize("argv, msg", [
    (["--calibrate", "missing.npy"], "missing.npy: no such file"),
    (["--dt", "-1"], "dt=-1.0 must be a positive number of seconds"),
    (["--labels", "y.npy"], "--labels needs --eval"),
])
def test_cli_quantize_errors_are_one_line(tmp_path, capsys, argv, msg):
    out = tmp_path / "q.nir"
    rc = main(["quantize", str(MODEL), "-o", str(out)] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("with_scale, kind", [(False, "Conv2d"), (True, "Dense")])
def test_avgpool_into_neurons(with_scale, kind):
    """A lone pooling stays a (grouped) Conv on the chip; pool + scale compose to a Dense."""
    rng = np.random.default_rng(6)
    nodes = {"pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                   padding=np.array([0, 0])),
             "scale": nir.Scale(np.full((2, 3, 3), 2.5)), "l": _lif((2, 3, 3), tau=3e-3, thr=0.3)}
    edges = [("input", "pool"), ("pool", "scale"), ("scale", "l"), ("l", "output")]
    if not with_scale:
        del nodes["scale"]
        edges = [("input", "pool"), ("pool", "l"), ("l", "output")]
    g = _graph(nodes, edges, [2, 6, 6])
    x = _spikes(rng, (6, 50, 72), 0.5)
    model, ev = _chip_vs_float(g, x, 1e-3, calibrate=x)
    (proj,) = model.network.projections.values()
    assert type(proj).__name__ == kind
    assert ev.layers["l"]["count_corr"] > 0.95


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_random_two_layer_graphs_track_reference_slow(seed):
    rng = np.random.default_rng(100 + seed)
    kinds = [lambda n: _lif(n, tau=float(rng.uniform(1.5e-3, 2e-2)), thr=float(rng.uniform(0.3, 2)),
                            v_leak=float(rng.uniform(-0.2, 0.2)))]
    g = _two_layer(rng, bias=bool(seed % 2), neuron=kinds[0])
    x = _spikes(rng, (16, 60, 20), float(rng.uniform(0.1, 0.5)))
    model, ev = _chip_vs_float(g, x, 1e-3, calibrate=x)
    r = ev.layers["l1"]
    if np.isfinite(r["count_corr"]):
        assert r["count_corr"] > 0.9, r
    assert abs(r["rate_chip"] - r["rate_float"]) < 0.02


@pytest.mark.torch
def test_norse_exported_model_quantizes_and_tracks_norse():
    from test_reference import _fix_norse_taus, _run_norse, norse_lifbox_model

    rng = np.random.default_rng(3)
    dt = 1e-3
    lin1, c1, lin2, c2, graph = norse_lifbox_model(10, 24, 5, dt, seed=3, bias=False)
    graph = _fix_norse_taus(graph, dt)
    x = (rng.random((16, 60, 10)) < 0.3).astype(np.float32)
    z, _ = _run_norse([c1, c2], [lin1, lin2], x)
    model = quantize(graph, "loihi2", dt=dt, calibrate=x)
    out = list(model.network.populations)[-1]
    L = model.latency[out]
    chip = run(model.network, np.concatenate([x, np.zeros((16, L, 10))], 1).astype(np.int64))
    c = chip.spikes[out][:, L:].sum(axis=1).reshape(-1)
    f = z.sum(axis=1).reshape(-1)
    assert f.sum() > 20
    assert np.corrcoef(c, f)[0, 1] > 0.9


@pytest.mark.torch
def test_sinabs_exported_model_quantizes_and_tracks_sinabs():
    """Sinabs LIF (single spikes, reset to zero, normalized input) exported by sinabs.to_nir."""
    pytest.importorskip("sinabs", reason="sinabs is installed by the Makefile (--no-deps)")
    import torch
    import sinabs.layers as sl
    from sinabs import to_nir
    from sinabs.activation import MembraneReset, SingleSpike

    torch.manual_seed(0)

    def lif(tau):
        return sl.LIF(tau_mem=tau, spike_threshold=1.0, reset_fn=MembraneReset(), spike_fn=SingleSpike)

    m = torch.nn.Sequential(torch.nn.Linear(10, 24, bias=False), lif(5.0),
                            torch.nn.Linear(24, 5, bias=False), lif(10.0))
    with torch.no_grad():
        m[0].weight.mul_(20)
        m[2].weight.mul_(20)
    graph = to_nir(m, torch.zeros(1, 10))  # time constants in steps: dt = 1
    rng = np.random.default_rng(0)
    x = (rng.random((16, 60, 10)) < 0.3).astype(np.float32)
    with torch.no_grad():
        h = torch.from_numpy(x)
        for layer in m:
            h = layer(h)
    z = h.numpy()
    model = quantize(graph, "loihi2", dt=1.0, calibrate=x)
    out = list(model.network.populations)[-1]
    L = model.latency[out]
    chip = run(model.network, np.concatenate([x, np.zeros((16, L, 10))], 1).astype(np.int64))
    c = chip.spikes[out][:, L:].sum(axis=1).reshape(-1)
    f = z.sum(axis=(1,)).reshape(-1)
    assert f.sum() > 100
    # Sinabs decays by exp(-dt/tau), NIR (and the chip) by 1 - dt/tau: close, not equal
    assert np.corrcoef(c, f)[0, 1] > 0.95
    assert abs(c.sum() - f.sum()) < 0.25 * f.sum()


def test_nested_graph_quantizes_like_the_flat_one():
    rng = np.random.default_rng(12)
    w1, w2 = rng.normal(0, 0.7, (12, 8)), rng.normal(0, 0.7, (4, 12))
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([8])}),
                              "fc": nir.Linear(w1), "lif": _lif(12),
                              "output": nir.Output(output_type={"output": np.array([12])})},
                       edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    nested = _graph({"block": sub, "fc2": nir.Linear(w2), "l2": _lif(4)},
                    [("input", "block"), ("block", "fc2"), ("fc2", "l2"), ("l2", "output")], [8])
    flat = _graph({"fc": nir.Linear(w1), "lif": _lif(12), "fc2": nir.Linear(w2), "l2": _lif(4)},
                  [("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "l2"), ("l2", "output")], [8])
    x = _spikes(rng, (4, 40, 8))
    a = quantize(nested, dt=1e-3, calibrate=x)
    b = quantize(flat, dt=1e-3, calibrate=x)
    assert set(a.network.populations) == {"block.lif", "l2"}
    ra, rb = run(a.network, x), run(b.network, x)
    np.testing.assert_array_equal(ra.spikes["block.lif"], rb.spikes["lif"])
    np.testing.assert_array_equal(ra.spikes["l2"], rb.spikes["l2"])


# --- edge cases found in review ---------------------------------------------------------------
def _one_layer(W, neuron, b=None):
    n_out, n_in = W.shape
    fc = nir.Affine(W, np.zeros(n_out) if b is None else b)
    return _graph({"fc": fc, "l": neuron(n_out)}, [("input", "fc"), ("fc", "l"), ("l", "output")],
                  [n_in])


def test_one_signed_and_zero_weight_layers():
    rng = np.random.default_rng(0)
    W = -np.abs(rng.normal(size=(6, 8)))
    m = quantize(_one_layer(W, _lif), dt=1e-3)
    (p,) = m.network.projections.values()
    assert p.sign_mode == "inhibitory" and p.weight.min() < -100 and p.weight.max() <= 0
    assert m.projections[0].weight_error < 0.02
    m = quantize(_one_layer(np.abs(W), _lif), dt=1e-3)
    assert next(iter(m.network.projections.values())).sign_mode == "excitatory"
    m = quantize(_one_layer(np.zeros((6, 8)), _lif), dt=1e-3)  # nothing limits the scale
    assert (m.network.populations["l"].vth > 0).all()


def test_leak_slower_than_12_bits_keeps_its_input():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(4, 8))
    m = quantize(_one_layer(W, lambda n: _lif(n, tau=10.0)), dt=1e-4)
    assert m.network.populations["l"].uniform("dv") == 1
    assert np.abs(next(iter(m.network.projections.values())).weight).max() > 100
    assert any("longer than 8192 steps" in n for n in m.all_notes())


def test_uncalibrated_leaky_readout_never_fires():
    rng = np.random.default_rng(1)
    W = np.abs(rng.normal(size=(2, 8)))
    li = lambda n: nir.LI(tau=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n))  # noqa: E731
    m = quantize(_one_layer(W, li), dt=1e-4)
    x = np.ones((1, 400, 8), np.int8)
    r = run(m.network, x, record=("spikes", "v"), count_events=True)
    assert not r.spikes["l"].any() and r.events["l"]["v_clip"].sum() == 0
    assert r.v["l"].max() > 2 ** 20  # the headroom is used, not wasted
    ev = evaluate(m, x)
    assert ev.layers["l"]["unexpected_spikes"] == 0


def test_calibration_data_is_checked():
    g = _one_layer(np.ones((2, 3)), _lif)
    for bad, msg in [(np.zeros((0, 5, 3)), "no samples or no steps"),
                     (np.full((1, 5, 3), 2), "value 2.0 is not a spike"),
                     (np.full((1, 5, 3), np.nan), "NaN")]:
        with pytest.raises(ValidationError, match=msg):
            quantize(g, dt=1e-3, calibrate=bad, calibrate_source="c.npy")
    m = quantize(g, dt=1e-3, calibrate=np.zeros((2, 5, 3)))  # silent data: threshold still fits
    assert (m.network.populations["l"].vth > 0).all()


def test_bias_lost_to_rounding_is_reported():
    g = _one_layer(np.random.default_rng(0).normal(size=(3, 4)), _lif, b=np.array([1e-4, 0, 0]))
    m = quantize(g, dt=1e-4, target="netx")
    assert any("non-zero biases round to 0" in n for n in m.all_notes())


def test_scale_of_the_wrong_size_is_an_error():
    g = _graph({"fc": nir.Linear(np.ones((4, 3))), "sc": nir.Scale(np.ones(3)), "l": _lif(4)},
               [("input", "fc"), ("fc", "sc"), ("sc", "l"), ("l", "output")], [3])
    with pytest.raises(ValidationError, match=r"node 'sc': .*(3 entries|shape \(3,\))"):
        quantize(g, dt=1e-3)


def test_cli_quantize_writes_nothing_when_evaluation_fails(tmp_path, capsys):
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((5, 25, 10), np.int8))
    out = tmp_path / "q.nir"
    rc = main(["quantize", str(MODEL), "-o", str(out), "--eval", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and "x.npy" in err and "(B, T, 64)" in err and err.count("\n") == 1
    assert not out.exists()


def test_cli_refuses_object_arrays_inside_npz(tmp_path, capsys):
    p = tmp_path / "obj.npz"
    np.savez(p, a=np.array([{"x": 1}], dtype=object))
    rc = main(["quantize", str(MODEL), "-o", str(tmp_path / "q.nir"), "--calibrate", str(p)])
    err = capsys.readouterr().err
    assert rc == 2 and "holds Python objects" in err and err.count("\n") == 1
