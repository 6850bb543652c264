"""Producer conventions (neurohw.sources): the float reference is the model as trained.

Real snnTorch, Norse and Sinabs models are built (and one trained, in about a
second), exported with each framework's own NIR exporter, and run by the
framework itself.  With the right ``source`` the reference equals the
framework spike for spike (membranes of non-spiking readouts to float32
precision); read as plain NIR the same files do not, so each convention is
material.  The quantizer refuses files that match a producer quirk unless told
the source, and reports what the chip's reset costs.
"""

from __future__ import annotations

import json
import zlib

import nir
import numpy as np
import pytest

from neurohw.errors import ValidationError
from neurohw.quantize import quantize
from neurohw.quantize.report import evaluate, format_report, report_dict
from neurohw.reference import simulate
from neurohw.sources import apply_source

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def _reset_snntorch(net):
    for m in net.modules():
        if hasattr(m, "reset_mem"):
            m.reset_mem()


def _run_snntorch(net, x):
    """Output spikes of a Sequential of init_hidden snnTorch neurons, ``(B, T, n)``."""
    _reset_snntorch(net)
    outs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out = net(torch.from_numpy(x[:, t]))
            outs.append((out[0] if isinstance(out, tuple) else out).numpy())
    return np.stack(outs, axis=1).astype(np.float64)


def _robust(graph, x, want, eps=1e-5, **kw):
    """Samples whose reference output does not move when every threshold moves by a factor
    1 +- eps: there float32 (the framework) and float64 (the reference) must agree exactly.
    Returns (reference output, boolean mask of robust samples)."""
    import copy

    out = next(iter(simulate(graph, x, **kw).outputs.values()))
    robust = np.ones(x.shape[0], bool)
    for f in (1 - eps, 1 + eps):
        g = copy.deepcopy(graph)
        for node in g.nodes.values():
            if getattr(node, "v_threshold", None) is not None:
                node.v_threshold = np.asarray(node.v_threshold) * f
        moved = next(iter(simulate(g, x, **kw).outputs.values()))
        robust &= (moved == out).all(axis=(1, 2))
    return out, robust


def _snntorch_net(kind, reset, delay, rng, n_in=6, n=5):
    import snntorch as snn

    kw = dict(threshold=torch.full((n,), 0.5), reset_mechanism=reset, init_hidden=True,
              reset_delay=delay)
    beta = torch.full((n,), 0.8)

    def neuron(out):
        if kind == "Leaky":
            return snn.Leaky(beta=beta, output=out, **kw)
        if kind == "Synaptic":
            return snn.Synaptic(alpha=torch.full((n,), 0.6), beta=beta, output=out, **kw)
        return snn.RLeaky(beta=beta, linear_features=n, output=out, **kw)

    net = torch.nn.Sequential(torch.nn.Linear(n_in, n), neuron(False), torch.nn.Linear(n, n),
                              neuron(True))
    gain = 0.5 if kind == "Synaptic" else 1.0  # its current integrates the input once more
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                w = gain * rng.uniform(-0.3, 0.5, m.weight.shape)
                m.weight.copy_(torch.from_numpy(w.astype(np.float32)))
    return net


@pytest.mark.parametrize("delay", [True, False])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("kind", ["Leaky", "Synaptic", "RLeaky"])
def test_snntorch_neurons_spike_for_spike(kind, reset, delay):
    """Leaky, Synaptic and RLeaky (-> LIF, CubaLIF, LIF on a cycle), both resets, with and
    without reset_delay: source="snntorch" reproduces snnTorch exactly; plain NIR does not
    wherever snnTorch's reset is not NIR's (subtract; zero with delay in Synaptic/RLeaky)."""
    from snntorch.export_nir import export_to_nir

    rng = np.random.default_rng(zlib.crc32(f"{kind}-{reset}-{delay}".encode()))
    torch.manual_seed(0)
    net = _snntorch_net(kind, reset, delay, rng)
    graph = export_to_nir(net, torch.zeros(6))
    x = (rng.random((8, 40, 6)) < 0.5).astype(np.float32)
    s = _run_snntorch(net, x)
    assert 20 < s.sum() < 0.9 * s.size  # neither silent nor saturated
    ref, ok = _robust(graph, x, s, dt=1e-4, source="snntorch", reset=reset, reset_delay=delay)
    assert ok.sum() >= 6
    np.testing.assert_array_equal(ref[ok], s[ok])
    plain = next(iter(simulate(graph, x, dt=1e-4).outputs.values()))
    chip_exact = reset == "zero" and (not delay or kind == "Leaky")
    assert np.array_equal(plain[ok], s[ok]) is chip_exact
    approx = apply_source(graph, "snntorch", 1e-4, reset=reset, reset_delay=delay).approximations()
    assert (approx == []) is chip_exact


def test_snntorch_defaults_are_subtract_with_delay_and_any_dt_keeps_the_network():
    from snntorch.export_nir import export_to_nir

    rng = np.random.default_rng(5)
    net = _snntorch_net("Synaptic", "subtract", True, rng)
    graph = export_to_nir(net, torch.zeros(6))
    x = (rng.random((3, 30, 6)) < 0.5).astype(np.float32)
    s = _run_snntorch(net, x)
    for dt in (1e-4, 1e-3):  # snnTorch's per-step alpha/beta are kept at any dt
        ref = simulate(graph, x, dt=dt, source="snntorch")
        np.testing.assert_array_equal(next(iter(ref.outputs.values())), s)


def test_snntorch_conv_spike_for_spike():
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    shape = (3, 6, 6)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1),
        snn.Leaky(beta=torch.full(shape, 0.7), threshold=torch.full(shape, 0.5), init_hidden=True),
        torch.nn.Flatten(start_dim=-3),  # the same for batched and unbatched (export) input
        torch.nn.Linear(108, 4),
        snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.full((4,), 0.5), init_hidden=True,
                  output=True))
    with torch.no_grad():
        net[0].weight.mul_(2)
    graph = export_to_nir(net, torch.zeros(1, 6, 6))  # unbatched sample
    x = (rng.random((3, 30, 1, 6, 6)) < 0.4).astype(np.float32)
    s = _run_snntorch(net, x)
    assert s.sum() > 10
    ref = simulate(graph, x, dt=1e-4, source="snntorch")
    np.testing.assert_array_equal(next(iter(ref.outputs.values())), s)


# ---------------------------------------------------------------------------
# Norse
# ---------------------------------------------------------------------------
def _norse_model(kind, rng, dt=1e-3, n_in=5, n=6, n_out=3):
    import norse.torch as nt

    lin1, lin2 = torch.nn.Linear(n_in, n), torch.nn.Linear(n, n_out, bias=False)
    with torch.no_grad():
        lin1.weight.copy_(torch.from_numpy(rng.uniform(0, 0.8, (n, n_in)).astype(np.float32)))
        lin2.weight.copy_(torch.from_numpy(rng.uniform(-0.5, 1, (n_out, n)).astype(np.float32)))
    if kind == "LIFCell":
        cell = nt.LIFCell(nt.LIFParameters(tau_syn_inv=torch.full((n,), 200.0),
                                           tau_mem_inv=torch.full((n,), 100.0),
                                           v_th=torch.full((n,), 0.2), v_leak=torch.zeros(n),
                                           v_reset=torch.zeros(n)), dt=dt)
    elif kind == "LIFBoxCell":
        cell = nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.full((n,), 100.0),
                                                 v_th=torch.full((n,), 0.3),
                                                 v_leak=torch.zeros(n)), dt=dt)
    else:
        cell = nt.IAFCell(nt.IAFParameters(v_th=torch.full((n,), 1.5)), dt=dt)
    readout = nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=torch.full((n_out,), 50.0),
                                              v_leak=torch.zeros(n_out)), dt=dt)
    model = nt.SequentialState(lin1, cell, lin2, readout)
    return model, nt.to_nir(model, torch.zeros(n_in), dt=dt)


def _run_norse(model, x):
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = model(torch.from_numpy(x[:, t]), state)
            outs.append(out.numpy())
    return np.stack(outs, axis=1).astype(np.float64)


@pytest.mark.parametrize("kind", ["LIFCell", "LIFBoxCell", "IAFCell"])
def test_norse_lif_with_li_readout(kind):
    """Norse LIFCell/LIFBoxCell/IAFCell hidden layer and an LIBoxCell readout, exported by
    norse.torch.to_nir: source="norse" reproduces the readout's membrane (float32
    precision) with no hand corrections; quantize refuses the file without a source."""
    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    model, graph = _norse_model(kind, rng)
    x = (rng.random((3, 40, 5)) < 0.4).astype(np.float32)
    v = _run_norse(model, x)
    ref = simulate(graph, x, dt=1e-3, source="norse", record=("spikes", "v"))
    (out,) = ref.outputs
    assert sum(int(s.sum()) for s in ref.spikes.values()) > 20
    np.testing.assert_allclose(ref.outputs[out], v, atol=2e-6 * max(1.0, np.abs(v).max()))
    assert not np.allclose(simulate(graph, x, dt=1e-3).outputs[out], v, atol=1e-3)
    with pytest.raises(ValidationError, match=r"--source (sinabs or --source )?norse") as exc:
        quantize(graph)
    assert "smaller --dt" not in str(exc.value)
    m = quantize(graph, source="norse", calibrate=x)
    assert m.dt_s == 1e-3 and m.approximations == []  # Norse resets to zero at once, as the chip


# ---------------------------------------------------------------------------
# Sinabs
# ---------------------------------------------------------------------------
def _sinabs_cnn(batch):
    import sinabs.layers as sl

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), sl.IAFSqueeze(batch_size=batch), sl.SumPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(27, 4), sl.LIFSqueeze(tau_mem=torch.tensor(5.0),
                                                                  batch_size=batch),
        torch.nn.Linear(4, 2, bias=False), sl.ExpLeakSqueeze(tau_mem=torch.tensor(8.0),
                                                             batch_size=batch))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[4].weight.mul_(3)
    return net


def test_sinabs_cnn_matches_sinabs_and_is_refused_as_plain_nir():
    """Sinabs IAF (MultiSpike, subtract) -> SumPool -> LIF -> ExpLeak, exported by
    sinabs.to_nir: source="sinabs" reproduces Sinabs's readout; as plain NIR at the default
    dt its IF never fires (dt*r*x = 1e-4 x), and the quantizer refuses it naming the flag."""
    from sinabs.nir import to_nir

    B, T = 2, 20
    net = _sinabs_cnn(B)
    rng = np.random.default_rng(0)
    x = (rng.random((B, T, 1, 8, 8)) < 0.4).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x.reshape(B * T, 1, 8, 8))).reshape(B, T, -1).numpy()
    for m in net.modules():
        if hasattr(m, "reset_states"):
            m.reset_states()
    graph = to_nir(net, torch.zeros(B, 1, 8, 8))
    ref = simulate(graph, x, dt=1e-3, source="sinabs", record=("spikes",))
    np.testing.assert_allclose(next(iter(ref.outputs.values())), want, atol=1e-5)
    assert ref.spikes["1"].max() > 1  # several spikes in one step (MultiSpike)
    plain = simulate(graph, x, dt=1e-4, record=("spikes",))
    assert plain.spikes["1"].sum() == 0
    with pytest.raises(ValidationError, match=r"--source sinabs or --source norse"):
        quantize(graph)
    m = quantize(graph, source="sinabs", calibrate=x.reshape(B, T, -1))
    assert any("several spikes per step" in a for a in m.approximations)
    assert any("reset by subtraction" in a for a in m.approximations)


# ---------------------------------------------------------------------------
# a trained model: the report's float column and the cost of the chip's reset
# ---------------------------------------------------------------------------
def _task(rng, n, T=25, n_in=16, classes=4):
    """Each class fires its own quarter of the inputs more often."""
    y = rng.integers(0, classes, n)
    p = np.full((n, n_in), 0.05)
    for c in range(classes):
        p[y == c, c * (n_in // classes):(c + 1) * (n_in // classes)] = 0.5
    x = (rng.random((n, T, n_in)) < p[:, None, :]).astype(np.float32)
    return x, y


def _train_snntorch(reset, seed=0, epochs=30):
    import snntorch as snn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = _task(rng, 128)
    net = torch.nn.Sequential(
        torch.nn.Linear(16, 12),
        snn.Leaky(beta=torch.full((12,), 0.85), threshold=torch.full((12,), 1.0), init_hidden=True,
                  reset_mechanism=reset),
        torch.nn.Linear(12, 4),
        snn.Leaky(beta=torch.full((4,), 0.85), threshold=torch.full((4,), 1.0), init_hidden=True,
                  reset_mechanism=reset, output=True))
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        _reset_snntorch(net)
        counts = 0
        for t in range(x.shape[1]):
            counts = counts + net(xt[:, t])[0]
        loss = torch.nn.functional.cross_entropy(counts, yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_trained_snntorch_float_column_is_the_trained_model(reset, tmp_path):
    from snntorch.export_nir import export_to_nir

    net = _train_snntorch(reset)
    x, y = _task(np.random.default_rng(99), 64)
    s = _run_snntorch(net, x)
    acc_snn = float((s.sum(axis=1).argmax(axis=1) == y).mean())
    assert acc_snn > 0.5  # it learned something
    graph = export_to_nir(net, torch.zeros(16))
    nir.write(tmp_path / "m.nir", graph)
    model = quantize(tmp_path / "m.nir", source="snntorch", reset=reset, reset_delay=True,
                     calibrate=x)
    ev = evaluate(model, x, y)
    assert ev.accuracy_float == acc_snn
    out = model.float_graph.outputs["output"]
    np.testing.assert_array_equal(ev.float_spikes[out], s)
    text, data = format_report(model, ev), report_dict(model, ev)
    json.dumps(data)
    if reset == "subtract":
        assert any("reset by subtraction" in a for a in model.approximations)
        cost = ev.accuracy_float_chip_semantics - ev.accuracy_float
        assert "measured cost: float as trained" in text and f"{100 * cost:+.2f} points" in text
        assert data["evaluation"]["approximation_cost_points"] == pytest.approx(100 * cost)
        assert data["approximations"] and data["source"] == "snntorch"
    else:
        assert model.approximations == [] and ev.accuracy_float_chip_semantics is None


def test_cli_source_flags(tmp_path, capsys):
    from neurohw.cli import main

    rng = np.random.default_rng(3)
    model, graph = _norse_model("LIFBoxCell", rng)
    nir.write(tmp_path / "n.nir", graph)
    assert main(["quantize", str(tmp_path / "n.nir"), "-o", str(tmp_path / "q.nir")]) == 2
    err = capsys.readouterr().err
    assert "--source norse" in err and "smaller --dt" not in err and len(err.strip().splitlines()) == 1
    assert main(["quantize", str(tmp_path / "n.nir"), "-o", str(tmp_path / "q.nir"),
                 "--source", "norse", "--reset", "subtract"]) == 0
    out = capsys.readouterr().out
    assert "source: norse" in out and "reset by subtraction -> reset to zero" in out
    assert (tmp_path / "q.nir").exists()


def test_same_padding_is_one_semantics_in_reference_and_quantizer():
    """Conv2d padding "same" (odd kernel: a chip Conv; even kernel: asymmetric, composed into
    a dense map) -- the quantizer's float map equals the reference's node output."""
    from neurohw.floatsem import stateless_op
    from neurohw.quantize.graph import analyze

    rng = np.random.default_rng(0)
    for k, kind in ((3, "conv"), (2, "dense")):
        conv = nir.Conv2d(input_shape=(5, 5), weight=rng.normal(size=(2, 1, k, k)), stride=1,
                          padding="same", dilation=1, groups=1, bias=rng.normal(size=2))
        shape = (2, 5, 5)
        lif = nir.LIF(tau=np.full(shape, 1e-2), r=np.ones(shape), v_leak=np.zeros(shape),
                      v_threshold=np.ones(shape), v_reset=np.zeros(shape))
        g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 5, 5])}),
                                "conv": conv, "lif": lif,
                                "output": nir.Output(output_type={"output": np.array(shape)})},
                         edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")],
                         type_check=False)
        (path,) = analyze(g).paths
        assert path.kind == kind
        xs = rng.random((3, 1, 5, 5))
        want = stateless_op("conv", conv, (1, 5, 5)).apply(xs).reshape(3, -1)
        if kind == "dense":
            got = xs.reshape(3, -1) @ path.A.T + path.bias
        else:
            from neurohw.quantize.graph import conv_float

            c = path.conv
            got = conv_float(xs, c["weight"], c["input_shape"], c["stride"], c["padding"],
                             c["dilation"], c["groups"]).reshape(3, -1) + path.bias
        np.testing.assert_allclose(got, want, atol=1e-12)
        quantize(g, dt=1e-3)  # accepted by the quantizer too


def test_norse_leak_start_and_the_snntorch_note():
    """Norse membranes start at v_leak (source="norse" reproduces an LIBoxCell with
    v_leak != 0 and lists the chip's start at 0 as an approximation); the shipped snnTorch
    digits model, quantized without a source, gets a note naming --source snntorch."""
    import norse.torch as nt
    from pathlib import Path

    rng = np.random.default_rng(4)
    lin = torch.nn.Linear(5, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(rng.uniform(0, 0.6, (3, 5)).astype(np.float32)))
    cell = nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=torch.full((3,), 100.0),
                                           v_leak=torch.full((3,), 0.1)), dt=1e-3)
    model = nt.SequentialState(lin, cell)
    graph = nt.to_nir(model, torch.zeros(5), dt=1e-3)
    x = (rng.random((2, 30, 5)) < 0.5).astype(np.float32)
    v = _run_norse(model, x)
    ref = simulate(graph, x, dt=1e-3, source="norse")
    np.testing.assert_allclose(next(iter(ref.outputs.values())), v, atol=1e-6)
    assert apply_source(graph, "norse", 1e-3).approximations() == [
        "membranes start at v_leak (Norse) -> start at 0"]
    digits = Path(__file__).resolve().parents[1] / "examples" / "models" / "digits.nir"
    notes = quantize(digits).all_notes()
    assert any("--source snntorch" in n for n in notes)
    assert quantize(digits, source="snntorch", reset="zero").approximations == []
