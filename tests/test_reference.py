"""Tests of the float NIR reference simulator (neurohw.reference).

1. The shipped digits model: the reference reproduces snnTorch's spikes.
2. Real Norse models exported with Norse's NIR exporter, against Norse itself.
3. Each node type against an independent computation (torch.nn.functional,
   numpy closed forms) on random cases.
4. Error cases.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
import pytest

from neurohw.errors import ValidationError
from neurohw.reference import graph_schedule, simulate

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"


def chain(in_shape, *nodes, out_shape=None):
    """Input -> nodes... -> Output, named n0, n1, ...; no NIR type check."""
    names = {f"n{k}": n for k, n in enumerate(nodes)}
    all_nodes = {"in": nir.Input(input_type={"input": np.array(in_shape)}), **names,
                 "out": nir.Output(output_type={"output": np.array(out_shape or [1])})}
    keys = list(all_nodes)
    edges = list(zip(keys[:-1], keys[1:]))
    return nir.NIRGraph(nodes=all_nodes, edges=edges, type_check=False)


def arr(*shape, rng, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape)


# ---------------------------------------------------------------------------
# 1. the shipped snnTorch digits model
# ---------------------------------------------------------------------------
def _load_digits():
    graph = nir.read(MODELS / "digits.nir")
    with np.load(MODELS / "digits_data.npz", allow_pickle=False) as d:
        data = {k: d[k] for k in d.files}
    info = json.loads((MODELS / "digits_info.json").read_text())
    return graph, data, info


def test_digits_files_shipped():
    graph, data, info = _load_digits()
    n_test = info["n_test"]
    assert data["x_test"].shape == (n_test, info["T"], 64) and data["x_test"].dtype == np.uint8
    assert data["y_test"].shape == (n_test,) and data["y_test"].dtype == np.int64
    assert set(np.unique(data["x_test"])) <= {0, 1}
    assert data["x_train"].shape[1:] == (info["T"], 64)
    assert (MODELS / "digits_data.npz").stat().st_size < 2 * 2**20
    kinds = {k: type(n).__name__ for k, n in graph.nodes.items()}
    assert sorted(kinds.values()) == ["Input", "LIF", "LIF", "Linear", "Linear", "Output"]
    assert info["float_test_accuracy"] >= 0.90


def test_digits_reference_accuracy_matches_info():
    """Numpy only: the reference's accuracy on the shipped test split equals the one
    snnTorch measured when the model was trained (digits_info.json)."""
    graph, data, info = _load_digits()
    run = simulate(graph, data["x_test"], dt=info["nir_dt_s"])
    counts = run.outputs["output"].sum(axis=1)
    acc = float((counts.argmax(axis=1) == data["y_test"]).mean())
    assert acc == pytest.approx(info["float_test_accuracy"], abs=1e-12)


def _train_module():
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples" / "train_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.torch
def test_digits_reference_matches_live_snntorch():
    """Rebuild the very snnTorch network the model came from (examples/train_digits.py's
    build_net, weights from digits.nir) and run it on the whole test split.

    Tolerance: snnTorch computes in float32 with ``beta`` = float32(0.9); the
    NIR file holds ``tau = dt/(1-beta)`` and ``r = tau/dt`` in float32, so the
    reference's per-step factors differ from snnTorch's by ~1e-7 relative.
    Membranes must agree to 1e-4 (states are O(1), 25 steps); spikes must be
    identical wherever snnTorch's membrane is further than 1e-4 from the
    threshold, and the output spike counts (the readout) must be identical.
    """
    import torch

    graph, data, info = _load_digits()
    td = _train_module()
    net = td.build_net(hidden=graph.nodes["0"].weight.shape[0], beta=info["beta"])
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(np.asarray(graph.nodes["0"].weight)))
        net[2].weight.copy_(torch.from_numpy(np.asarray(graph.nodes["2"].weight)))
        x = torch.from_numpy(data["x_test"].astype(np.float32))
        td.reset_states(net)
        spk, mem = {"1": [], "3": []}, {"1": [], "3": []}
        for t in range(x.shape[1]):
            s1 = net[1](net[0](x[:, t]))
            s3, _ = net[3](net[2](s1))
            for k, s in (("1", s1), ("3", s3)):
                spk[k].append(s.numpy())
                mem[k].append(net[int(k)].mem.numpy().astype(np.float64))  # pre-reset (reset_delay)
    run = simulate(graph, data["x_test"], dt=info["nir_dt_s"], record=("spikes", "v"))
    for k in ("1", "3"):
        s_ref = run.spikes[k]
        s_snn = np.stack(spk[k], axis=1).astype(np.int8)
        m_snn = np.stack(mem[k], axis=1)
        near = np.abs(m_snn - 1.0) < 1e-4
        assert np.array_equal(s_ref[~near], s_snn[~near]), k
        # reference v is after the reset; compare where neither fired
        quiet = (s_ref == 0) & (s_snn == 0)
        np.testing.assert_allclose(run.v[k][quiet], m_snn[quiet], atol=1e-4, rtol=0)
    counts_snn = np.stack(spk["3"], axis=1).sum(axis=1)
    assert np.array_equal(run.spike_counts("3"), counts_snn)
    acc = float((counts_snn.argmax(axis=1) == data["y_test"]).mean())
    assert acc == pytest.approx(info["float_test_accuracy"], abs=1e-12)


@pytest.mark.torch
def test_digits_reference_matches_snntorch_import_from_nir():
    """snnTorch's own importer rebuilds the graph; a few samples, identical spikes."""
    import torch
    from snntorch.import_nir import import_from_nir

    graph, data, info = _load_digits()
    x = data["x_test"][:16]
    module = import_from_nir(nir.read(MODELS / "digits.nir"))
    outs = []
    with torch.no_grad():
        xt = torch.from_numpy(x.astype(np.float32))
        for t in range(x.shape[1]):
            out, _ = module(xt[:, t])
            outs.append(out.numpy())
    ref = simulate(graph, x, dt=info["nir_dt_s"])
    assert np.array_equal(ref.outputs["output"], np.stack(outs, axis=1).astype(np.float64))


@pytest.mark.torch
@pytest.mark.parametrize("reset_delay", [False, True])
def test_snntorch_synaptic_and_rleaky_exports(reset_delay, rng):
    """snnTorch Synaptic (-> CubaLIF) and RLeaky (-> LIF plus its recurrent Affine, a cycle;
    nirtorch inlines the subgraph snnTorch builds).

    With ``reset_delay=False`` (what snnTorch's own importer builds) the reference
    reproduces snnTorch exactly.  With the default ``reset_delay=True``, RLeaky's
    reset-to-zero also discards the input of the step after a spike
    (snntorch/_neurons/rleaky.py ``_base_zero``), which NIR cannot express: the
    spikes differ (docs/reference-sim.md).
    """
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(3)
    n_in, n = 6, 5
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, n),
        snn.Synaptic(alpha=torch.full((n,), 0.8), beta=torch.full((n,), 0.7),
                     threshold=torch.full((n,), 0.5), reset_mechanism="zero", init_hidden=True,
                     reset_delay=reset_delay),
        torch.nn.Linear(n, n, bias=False),
        snn.RLeaky(beta=0.85, threshold=0.5, linear_features=n, reset_mechanism="zero",
                   init_hidden=True, output=True, reset_delay=reset_delay),
    )
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(rng.uniform(-0.2, 1.0, (n, n_in))))
        net[2].weight.copy_(torch.from_numpy(rng.uniform(-0.3, 1.0, (n, n))))
        net[3].recurrent.weight.copy_(torch.from_numpy(rng.uniform(-0.6, 0.6, (n, n))))
    graph = export_to_nir(net, torch.zeros(n_in))
    kinds = sorted(type(v).__name__ for v in graph.nodes.values())
    assert "CubaLIF" in kinds and "LIF" in kinds
    x = (rng.random((4, 30, n_in)) < 0.5).astype(np.float32)
    with torch.no_grad():
        for m in net.modules():
            if hasattr(m, "reset_mem"):
                m.reset_mem()
        outs = []
        for t in range(x.shape[1]):
            s, _ = net(torch.from_numpy(x[:, t]))
            outs.append(s.numpy())
    ref = simulate(graph, x, dt=1e-4)
    assert len(ref.back_edges) == 1  # the RLeaky cycle, cut after the LIF
    assert type(graph.nodes[ref.back_edges[0][0]]).__name__ == "LIF"
    (name,) = ref.outputs
    s_snn = np.stack(outs, axis=1)
    assert s_snn.sum() > 10  # the test exercised spiking
    same = np.array_equal(ref.outputs[name], s_snn)
    assert same is (not reset_delay)


# ---------------------------------------------------------------------------
# 2. Norse
# ---------------------------------------------------------------------------
def _fix_norse_taus(graph, dt):
    """Norse 1.1.0's exporter writes ``tau = dt / tau_inv`` (the time constant times
    dt/1s; norse/torch/utils/export_nir.py); the true constant is ``tau / dt``."""
    for node in graph.nodes.values():
        for key in ("tau", "tau_mem", "tau_syn"):
            if hasattr(node, key):
                setattr(node, key, np.asarray(getattr(node, key)) / dt)
    return graph


def _run_norse(cells, linears, x, record_v=False):
    import torch

    states = [None] * len(cells)
    zs, vs = [], []
    with torch.no_grad():
        for t in range(x.shape[1]):
            h = torch.from_numpy(x[:, t])
            for k, (lin, cell) in enumerate(zip(linears, cells)):
                h, states[k] = cell(lin(h), states[k])
            zs.append(h.numpy())
            vs.append(states[-1].v.numpy())
    return np.stack(zs, axis=1).astype(np.float64), np.stack(vs, axis=1).astype(np.float64)


def norse_lifbox_model(n_in, n_h, n_out, dt, seed, bias):
    """A real Norse Linear-LIFBox-Linear-LIFBox model and its raw NIR export (taus not fixed)."""
    import norse.torch as nt
    import torch

    torch.manual_seed(seed)
    lin1, lin2 = torch.nn.Linear(n_in, n_h, bias=bias), torch.nn.Linear(n_h, n_out, bias=False)
    with torch.no_grad():
        lin1.weight.mul_(4)
        lin2.weight.mul_(4)

    def cell(n, tau_inv, vth):
        return nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.full((n,), tau_inv),
                                                 v_th=torch.full((n,), vth),
                                                 v_leak=torch.zeros(n)), dt=dt)

    c1, c2 = cell(n_h, 100.0, 0.3), cell(n_out, 50.0, 0.2)
    graph = nt.to_nir(nt.SequentialState(lin1, c1, lin2, c2), torch.zeros(1, n_in), dt=dt)
    return lin1, c1, lin2, c2, graph


@pytest.mark.torch
def test_norse_lifbox_export_matches_norse(rng):
    import norse.torch as nt
    import torch

    dt = 1e-3
    n_in, n_h, n_out = 8, 16, 4
    lin1, c1, lin2, c2, graph = norse_lifbox_model(n_in, n_h, n_out, dt, seed=1, bias=True)
    lif = [n for n in graph.nodes.values() if isinstance(n, nir.LIF)]
    assert np.allclose(lif[0].tau, dt / 100.0)  # the quirk this test works around
    _fix_norse_taus(graph, dt)
    x = (rng.random((3, 40, n_in)) < 0.3).astype(np.float32)
    z, v = _run_norse([c1, c2], [lin1, lin2], x)
    ref = simulate(graph, x, dt=dt, record=("spikes", "v"))
    (out,) = ref.outputs
    assert np.array_equal(ref.outputs[out], z)
    last = [k for k, n in graph.nodes.items() if isinstance(n, nir.LIF)][-1]
    last = [k for k in ref.v if k.endswith(last)][0]
    np.testing.assert_allclose(ref.v[last], v, atol=1e-5)
    assert z.sum() > 5


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["LIFCell", "LIBoxCell", "IAFCell"])
def test_norse_cells_export_quirks(kind, rng):
    """Norse LIFCell -> CubaLIF, LIBoxCell -> LI, IAFCell -> IF: after the documented
    corrections (docs/reference-sim.md) the reference reproduces Norse; without
    them it does not (so the documented quirks are real)."""
    import norse.torch as nt
    import torch

    torch.manual_seed(2)
    dt = 1e-3
    n_in, n = 5, 6
    lin = torch.nn.Linear(n_in, n, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(rng.uniform(0, 0.6, (n, n_in)).astype(np.float32)))
    if kind == "LIFCell":
        cell = nt.LIFCell(nt.LIFParameters(tau_syn_inv=torch.full((n,), 200.0),
                                           tau_mem_inv=torch.full((n,), 100.0),
                                           v_th=torch.full((n,), 0.2), v_leak=torch.zeros(n),
                                           v_reset=torch.zeros(n)), dt=dt)
    elif kind == "LIBoxCell":
        cell = nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=torch.full((n,), 100.0),
                                               v_leak=torch.full((n,), 0.1)), dt=dt)
    else:
        cell = nt.IAFCell(nt.IAFParameters(v_th=torch.full((n,), 1.5)), dt=dt)
    graph = nt.to_nir(nt.SequentialState(lin, cell), torch.zeros(n_in), dt=dt)
    x = (rng.random((2, 30, n_in)) < 0.5).astype(np.float32)
    z, v = _run_norse([cell], [lin], x)
    (neuron,) = [k for k, nd in graph.nodes.items()
                 if type(nd).__name__ in ("CubaLIF", "LI", "IF")]

    def ref_v(g):  # Norse starts membranes at v_leak
        r = simulate(g, x, dt=dt, record=("v", "spikes"), start_at_leak=True)
        return r.v[neuron], r.spikes.get(neuron)

    v_raw, _ = ref_v(graph)
    node = graph.nodes[neuron]
    if kind == "IAFCell":
        node.r = np.asarray(node.r) / dt  # Norse: v += x (no dt); NIR IF: v += dt r x
    else:
        _fix_norse_taus(graph, dt)
        if kind == "LIFCell":  # Norse: i += x; NIR Euler: i += dt/tau_syn w_in x
            node.w_in = np.asarray(node.tau_syn) / dt
    v_fix, s_fix = ref_v(graph)
    assert not np.allclose(v_raw, v, atol=1e-3)
    np.testing.assert_allclose(v_fix, v, atol=1e-5)
    if s_fix is not None:
        assert np.array_equal(s_fix, z.astype(np.int8)) and z.sum() > 0


# ---------------------------------------------------------------------------
# 3. node types against independent computations
# ---------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("case", [
    dict(cin=4, cout=6, k=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
    dict(cin=3, cout=3, k=(3, 3), stride=1, padding=0, dilation=1, groups=3),
    dict(cin=2, cout=4, k=(4, 2), stride=1, padding="same", dilation=(2, 1), groups=1),
    dict(cin=2, cout=2, k=(2, 2), stride=2, padding="valid", dilation=1, groups=1),
])
def test_conv2d_against_torch(case, rng):
    import torch
    import torch.nn.functional as F

    H, W = 7, 9
    w = arr(case["cout"], case["cin"] // case["groups"], *case["k"], rng=rng)
    b = arr(case["cout"], rng=rng)
    node = nir.Conv2d(input_shape=(H, W), weight=w, stride=case["stride"],
                      padding=case["padding"], dilation=case["dilation"], groups=case["groups"],
                      bias=b)
    x = arr(2, 3, case["cin"], H, W, rng=rng)
    run = simulate(chain((case["cin"], H, W), node), x, dt=1.0)
    xt = torch.from_numpy(x.reshape(6, case["cin"], H, W))
    want = F.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride=case["stride"],
                    padding=case["padding"], dilation=case["dilation"], groups=case["groups"])
    np.testing.assert_allclose(run.outputs["out"], want.numpy().reshape(2, 3, -1), rtol=1e-12,
                               atol=1e-12)
    assert run.shapes["n0"] == tuple(want.shape[1:])


@pytest.mark.torch
def test_conv1d_against_torch(rng):
    import torch
    import torch.nn.functional as F

    w, b = arr(4, 1, 3, rng=rng), arr(4, rng=rng)
    node = nir.Conv1d(input_shape=11, weight=w, stride=2, padding=2, dilation=2, groups=2, bias=b)
    x = arr(1, 4, 2, 11, rng=rng)
    run = simulate(chain((2, 11), node), x, dt=1.0)
    want = F.conv1d(torch.from_numpy(x[0]), torch.from_numpy(w), torch.from_numpy(b), stride=2,
                    padding=2, dilation=2, groups=2)
    np.testing.assert_allclose(run.outputs["out"][0], want.numpy().reshape(4, -1), atol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["SumPool2d", "AvgPool2d"])
def test_pooling_against_torch(kind, rng):
    import torch
    import torch.nn.functional as F

    k, s, p = np.array([3, 2]), np.array([2, 2]), np.array([1, 0])
    node = getattr(nir, kind)(kernel_size=k, stride=s, padding=p)
    x = arr(2, 2, 3, 7, 6, rng=rng)
    run = simulate(chain((3, 7, 6), node), x, dt=1.0)
    want = F.avg_pool2d(torch.from_numpy(x.reshape(4, 3, 7, 6)), tuple(k), tuple(s), tuple(p),
                        count_include_pad=True).numpy()
    if kind == "SumPool2d":
        want = want * k.prod()
    np.testing.assert_allclose(run.outputs["out"], want.reshape(2, 2, -1), atol=1e-12)


def test_affine_linear_scale_flatten(rng):
    x = arr(3, 4, 2, 3, 2, rng=rng)
    w, b, s = arr(5, 12, rng=rng), arr(5, rng=rng), arr(5, rng=rng)
    g = chain((2, 3, 2), nir.Flatten(input_type={"input": np.array([2, 3, 2])}, start_dim=0,
                                     end_dim=-1),
              nir.Affine(weight=w, bias=b), nir.Scale(scale=s), nir.Linear(weight=w[:, :5].T))
    run = simulate(g, x, dt=1.0, record=("values",))
    flat = x.reshape(3, 4, 12)
    np.testing.assert_allclose(run.values["n0"], flat, atol=0)
    h = (flat @ w.T + b) * s
    np.testing.assert_allclose(run.values["n2"], h, atol=1e-12)
    np.testing.assert_allclose(run.outputs["out"], h @ w[:, :5], atol=1e-12)
    # partial flatten keeps the other dims
    g2 = chain((2, 3, 2), nir.Flatten(input_type={"input": np.array([2, 3, 2])}, start_dim=1,
                                      end_dim=2))
    assert simulate(g2, x, dt=1.0).shapes["n0"] == (2, 6)


def test_delay_against_shift(rng):
    dt = 1e-3
    k = np.array([0, 1, 3, 5])
    x = arr(2, 12, 4, rng=rng)
    run = simulate(chain((4,), nir.Delay(delay=k * dt)), x, dt=dt)
    want = np.zeros_like(x)
    for j, kj in enumerate(k):
        want[:, kj:, j] = x[:, :x.shape[1] - kj, j]
    np.testing.assert_array_equal(run.outputs["out"], want)


def test_threshold_and_integrator(rng):
    th = arr(6, rng=rng)
    x = arr(2, 9, 6, rng=rng)
    run = simulate(chain((6,), nir.Threshold(threshold=th)), x, dt=1.0, record=("spikes",))
    np.testing.assert_array_equal(run.spikes["n0"], (x > th).astype(np.int8))
    dt, r = 0.01, arr(6, rng=rng, lo=0.5, hi=2)
    run = simulate(chain((6,), nir.I(r=r)), x, dt=dt, record=("v",))
    np.testing.assert_allclose(run.outputs["out"], dt * r * np.cumsum(x, axis=1), atol=1e-12)


def test_li_closed_form(rng):
    """Constant input c from rest: v_t = v_inf (1 - (1 - dt/tau)^(t+1)), v_inf = v_leak + r c."""
    n, T, dt = 5, 50, 1e-3
    tau, r, vl = arr(n, rng=rng, lo=2e-3, hi=2e-2), arr(n, rng=rng, lo=0.5, hi=2), arr(n, rng=rng)
    c = arr(n, rng=rng)
    run = simulate(chain((n,), nir.LI(tau=tau, r=r, v_leak=vl)), np.tile(c, (T, 1)), dt=dt)
    t = np.arange(T)[:, None]
    want = (vl + r * c) * (1 - (1 - dt / tau) ** (t + 1))
    np.testing.assert_allclose(run.outputs["out"][0], want, rtol=1e-10, atol=1e-12)


def test_cubali_impulse_response(rng):
    """A unit impulse at step 0: i_t = a_i w (1 - a_i)^t, v = (i * a_v r (1-a_v)^k) causal
    convolution (numpy's convolve, not the simulator's recursion)."""
    n, T, dt = 3, 40, 1e-3
    ts, tm = arr(n, rng=rng, lo=2e-3, hi=1e-2), arr(n, rng=rng, lo=2e-3, hi=1e-2)
    r, w = arr(n, rng=rng, lo=0.5, hi=2), arr(n, rng=rng, lo=0.5, hi=2)
    node = nir.CubaLI(tau_syn=ts, tau_mem=tm, r=r, v_leak=np.zeros(n), w_in=w)
    x = np.zeros((T, n))
    x[0] = 1.0
    run = simulate(chain((n,), node), x, dt=dt, record=("v", "i"))
    a_i, a_v = dt / ts, dt / tm
    t = np.arange(T)[:, None]
    i_want = a_i * w * (1 - a_i) ** t
    np.testing.assert_allclose(run.i["n0"][0], i_want, rtol=1e-10)
    v_want = np.stack([np.convolve(i_want[:, j], a_v[j] * r[j] * (1 - a_v[j]) ** np.arange(T))[:T]
                       for j in range(n)], axis=1)
    np.testing.assert_allclose(run.outputs["out"][0], v_want, rtol=1e-9, atol=1e-14)


def test_if_and_lif_firing_period(rng):
    """Constant drive: IF fires every floor(th / inc) + 1 steps (strict >, reset to 0);
    LIF likewise with v_k = v_inf (1 - (1-a)^k)."""
    dt, T = 1e-3, 60
    th = np.array([1.0, 0.7, 2.0])
    r, c = np.array([100.0, 150.0, 400.0]), np.array([1.0, 1.0, 1.0])
    run = simulate(chain((3,), nir.IF(r=r, v_threshold=th)), np.tile(c, (T, 1)), dt=dt,
                   record=("spikes", "v"))
    inc = dt * r * c
    period = np.floor(th / inc + 1e-9).astype(int) + 1
    for j in range(3):
        want = np.zeros(T, np.int8)
        want[period[j] - 1::period[j]] = 1
        np.testing.assert_array_equal(run.spikes["n0"][0, :, j], want)
    tau, vinf = 5e-3, 2.0
    a = dt / tau
    k = int(np.floor(np.log(1 - 1.0 / vinf) / np.log(1 - a))) + 1  # first k with v_k > 1
    lif = nir.LIF(tau=np.array([tau]), r=np.array([vinf]), v_leak=np.zeros(1),
                  v_threshold=np.ones(1), v_reset=np.zeros(1))
    s = simulate(chain((1,), lif), np.ones((T, 1)), dt=dt).outputs["out"][0, :, 0]
    want = np.zeros(T)
    want[k - 1::k] = 1
    np.testing.assert_array_equal(s, want)


def test_lif_v_reset_and_leak(rng):
    """Non-zero v_leak and v_reset, random input: against a plain numpy loop."""
    n, T, dt = 4, 30, 1e-3
    tau, r = arr(n, rng=rng, lo=2e-3, hi=1e-2), arr(n, rng=rng, lo=0.5, hi=2)
    vl, vth, vr = arr(n, rng=rng, lo=-0.2, hi=0.2), arr(n, rng=rng, lo=0.3, hi=1), arr(n, rng=rng, lo=-0.3, hi=0)
    x = arr(2, T, n, rng=rng, lo=0, hi=5)
    node = nir.LIF(tau=tau, r=r, v_leak=vl, v_threshold=vth, v_reset=vr)
    run = simulate(chain((n,), node), x, dt=dt, record=("spikes", "v"))
    v = np.zeros((2, n))
    for t in range(T):
        v = v + dt / tau * (vl - v + r * x[:, t])
        z = v > vth
        v[z] = np.broadcast_to(vr, v.shape)[z]
        np.testing.assert_array_equal(run.spikes["n0"][:, t], z.astype(np.int8))
        np.testing.assert_allclose(run.v["n0"][:, t], v, atol=1e-12)
    assert run.spikes["n0"].sum() > 0


def test_recurrent_cycle_uses_previous_step(rng):
    """Input -> W_in -> LIF <-> W_rec (a cycle) against a numpy loop where the recurrent
    input at step t is W_rec @ z(t-1)."""
    n_in, n, T, dt = 3, 4, 25, 1e-3
    w_in, w_rec = arr(n, n_in, rng=rng, lo=0, hi=2), arr(n, n, rng=rng)
    tau = np.full(n, 4e-3)
    lif = nir.LIF(tau=tau, r=np.full(n, 4.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
                  v_reset=np.zeros(n))
    nodes = {"in": nir.Input(input_type={"input": np.array([n_in])}),
             "w_in": nir.Linear(weight=w_in), "lif": lif, "w_rec": nir.Linear(weight=w_rec),
             "out": nir.Output(output_type={"output": np.array([n])})}
    edges = [("in", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "out")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    x = (rng.random((2, T, n_in)) < 0.5).astype(float)
    run = simulate(g, x, dt=dt)
    assert run.back_edges == (("lif", "w_rec"),)
    v, z = np.zeros((2, n)), np.zeros((2, n))
    a = dt / tau
    for t in range(T):
        v = v + a * (-v + 4.0 * (x[:, t] @ w_in.T + z @ w_rec.T))
        z = (v > 1.0).astype(float)
        v[z > 0] = 0
        np.testing.assert_array_equal(run.outputs["out"][:, t], z)
    # nested: the same LIF/W_rec pair as a subgraph gives the same spikes
    sub = nir.NIRGraph(nodes={"i": nir.Input(input_type={"input": np.array([n])}), "lif": lif,
                              "w_rec": nir.Linear(weight=w_rec),
                              "o": nir.Output(output_type={"output": np.array([n])})},
                       edges=[("i", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "o")],
                       type_check=False)
    g2 = nir.NIRGraph(nodes={"in": nodes["in"], "w_in": nodes["w_in"], "rec": sub,
                             "out": nodes["out"]},
                      edges=[("in", "w_in"), ("w_in", "rec"), ("rec", "out")], type_check=False)
    run2 = simulate(g2, x, dt=dt)
    assert run2.back_edges == (("rec.lif", "rec.w_rec"),)
    np.testing.assert_array_equal(run2.outputs["out"], run.outputs["out"])


def test_schedule_orders_feed_forward_before_back_edges():
    nodes = {k: nir.Input(input_type={"input": np.array([1])}) if k == "a" else
             nir.Scale(scale=np.ones(1)) for k in "abcd"}
    order, back = graph_schedule(nodes, [("a", "b"), ("b", "c"), ("c", "b"), ("c", "d")])
    assert order == ["a", "b", "c", "d"] and back == [("c", "b")]  # no neuron: closing edge
    nodes["c"] = _lif(1)
    order, back = graph_schedule(nodes, [("a", "b"), ("b", "c"), ("c", "b"), ("c", "d")])
    assert back == [("c", "b")] and order == ["a", "b", "c", "d"]
    nodes["b"], nodes["c"] = _lif(1), nir.Scale(scale=np.ones(1))  # neuron b: cut b -> c
    order, back = graph_schedule(nodes, [("a", "b"), ("b", "c"), ("c", "b"), ("c", "d")])
    assert back == [("b", "c")] and order == ["a", "c", "b", "d"]


def test_file_round_trip_and_batch_shapes(tmp_path, rng):
    """nir.write/nir.read keeps the simulation; (T, n) input gives B = 1."""
    g = chain((3,), nir.Linear(weight=arr(2, 3, rng=rng)),
              nir.CubaLIF(tau_syn=np.full(2, 2e-3), tau_mem=np.full(2, 5e-3), r=np.ones(2),
                          v_leak=np.zeros(2), v_threshold=np.full(2, 0.1), w_in=np.full(2, 3.0)))
    x = (rng.random((20, 3)) < 0.5).astype(np.uint8)
    a = simulate(g, x, dt=1e-3, record=("spikes", "v", "i"))
    nir.write(tmp_path / "g.nir", g)
    b = simulate(nir.read(tmp_path / "g.nir", type_check=False), x[None], dt=1e-3,
                 record=("spikes", "v", "i"))
    assert a.outputs["out"].shape == (1, 20, 2)
    for k in ("outputs", "spikes", "v", "i"):
        for name in getattr(a, k):
            np.testing.assert_array_equal(getattr(a, k)[name], getattr(b, k)[name])


# ---------------------------------------------------------------------------
# 4. errors
# ---------------------------------------------------------------------------
@dataclass(eq=False)
class Mystery(nir.NIRNode):
    gain: np.ndarray

    def __post_init__(self):
        self.input_type = {"input": np.array(self.gain.shape)}
        self.output_type = {"output": np.array(self.gain.shape)}


def _lif(n=3, **kw):
    p = dict(tau=np.full(n, 1e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
             v_reset=np.zeros(n))
    p.update(kw)
    return nir.LIF(**p)


@pytest.mark.parametrize("graph, x, dt, match", [
    (chain((3,), Mystery(gain=np.ones(3))), np.zeros((2, 3)), 1e-3, r"node 'n0': NIR node type Mystery"),
    (chain((3,), nir.Linear(weight=np.ones((2, 4)))), np.zeros((2, 3)), 1e-3, r"node 'n0' \(Linear\): input shape"),
    (chain((3,), _lif(4)), np.zeros((2, 3)), 1e-3, r"node 'n0' \(LIF\): parameter \w+ has shape \(4,\), input has shape \(3,\)"),
    (chain((3,), _lif(v_threshold=np.array([1.0, np.nan, 1.0]))), np.zeros((2, 3)), 1e-3,
     r"node 'n0' \(LIF\): parameter v_threshold has a non-finite value"),
    (chain((3,), _lif(tau=np.array([1e-3, 0.0, 1e-3]))), np.zeros((2, 3)), 1e-3, r"node 'n0' \(LIF\): tau must be > 0"),
    (chain((3,), _lif()), np.array([[0, np.nan, 0]]), 1e-3, r"x: input for node 'in' has non-finite"),
    (chain((3,), _lif()), np.zeros((2, 4)), 1e-3, r"x: input for node 'in' has shape \(2, 4\)"),
    (chain((3,), _lif()), np.zeros((2, 3)), 0.0, r"dt=0.0 must be"),
    (chain((3,), _lif()), np.zeros((2, 3)), -1e-3, r"dt=-0.001 must be"),
    (chain((3,), _lif()), np.zeros((2, 3)), float("nan"), r"dt=nan must be"),
    (chain((3,), nir.Delay(delay=np.array([1e-3, 1.5e-3, 0]))), np.zeros((2, 3)), 1e-3,
     r"node 'n0' \(Delay\): delay 0.0015 s is 1.5 steps"),
    (chain((2, 5, 5), nir.Conv2d(input_shape=(5, 5), weight=np.ones((2, 3, 3, 3)), stride=1,
                                 padding=0, dilation=1, groups=1, bias=np.zeros(2))),
     np.zeros((2, 2, 5, 5)), 1e-3, r"node 'n0' \(Conv2d\): input shape \(2, 5, 5\) does not fit"),
])
def test_errors(graph, x, dt, match):
    with pytest.raises(ValidationError, match=match) as exc:
        simulate(graph, x, dt=dt)
    assert "\n" not in str(exc.value)


def test_errors_graph_structure():
    g = nir.NIRGraph(nodes={"a": nir.Scale(scale=np.ones(2)), "o": nir.Output(output_type={"output": np.array([2])})},
                     edges=[("a", "o")], type_check=False)
    with pytest.raises(ValidationError, match="graph: no Input node"):
        simulate(g, np.zeros((2, 2)), dt=1.0)
    g = chain((2,), nir.Scale(scale=np.ones(2)))
    g.edges.append(("n0", "ghost"))
    with pytest.raises(ValidationError, match=r"no node named 'ghost'"):
        simulate(g, np.zeros((2, 2)), dt=1.0)
    with pytest.raises(ValidationError, match=r"record: unknown variable\(s\) u"):
        simulate(chain((2,), nir.Scale(scale=np.ones(2))), np.zeros((2, 2)), dt=1.0, record=("u",))
    with pytest.raises(ValidationError, match="expected a nir.NIRGraph"):
        simulate(nir.Scale(scale=np.ones(2)), np.zeros((2, 2)), dt=1.0)
