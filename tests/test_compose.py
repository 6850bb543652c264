"""SumPool/AvgPool -> Conv composed as one strided Conv (neurohw/quantize/compose.py):
the same integers as the old dense composition, bit-exact in the emulator, and far fewer
synapse-memory bits on the chip."""

import nir
import numpy as np
import pytest

from neurohw import ir
from neurohw.emulate import run
from neurohw.mapping import plan
from neurohw.quantize import compose, quantize


def _lif(shape, rng, thr=1.0):
    return nir.CubaLIF(tau_syn=np.full(shape, 5e-3), tau_mem=np.full(shape, 1e-2),
                       r=np.ones(shape), v_leak=np.zeros(shape),
                       v_threshold=np.full(shape, thr) * rng.uniform(0.8, 1.2, (shape[0],) + (1,) * (len(shape) - 1)),
                       w_in=np.ones(shape))


def _graph(rng, hw=12, pool="SumPool2d", kp=2, sp=2, pc=1, c1=3, c2=5, thr2=1.0):
    w1 = rng.normal(0, 3.0, (c1, 2, 3, 3))
    nodes = {"input": nir.Input(input_type={"input": np.array([2, hw, hw])}),
             "conv1": nir.Conv2d(input_shape=np.array([hw, hw]), weight=w1, stride=np.array([1, 1]),
                                 padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=1,
                                 bias=np.zeros(c1)),
             "lif1": _lif((c1, hw, hw), rng, thr=0.01)}
    cls = nir.SumPool2d if pool == "SumPool2d" else nir.AvgPool2d
    nodes["pool"] = cls(kernel_size=np.array([kp, kp]), stride=np.array([sp, sp]),
                        padding=np.array([0, 0]))
    q = (hw - kp) // sp + 1
    w2 = rng.normal(0, 0.4, (c2, c1, 3, 3))
    nodes["conv2"] = nir.Conv2d(input_shape=np.array([q, q]), weight=w2, stride=np.array([1, 1]),
                                padding=np.array([pc, pc]), dilation=np.array([1, 1]), groups=1,
                                bias=np.zeros(c2))
    o = q + 2 * pc - 2
    nodes["lif2"] = _lif((c2, o, o), rng, thr=thr2)
    nodes["output"] = nir.Output(output_type={"output": np.array([c2, o, o])})
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool"), ("pool", "conv2"),
             ("conv2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _both(graph, x):
    new = quantize(graph, "loihi1", calibrate=x)
    compose.ENABLED = False
    try:
        old = quantize(graph, "loihi1", calibrate=x)
    finally:
        compose.ENABLED = True
    return new.network, old.network


@pytest.mark.parametrize("pool,kp,sp,pc,hw", [("SumPool2d", 2, 2, 1, 12), ("SumPool2d", 2, 2, 0, 12),
                                            ("AvgPool2d", 2, 2, 1, 12), ("SumPool2d", 3, 3, 1, 12),
                                            ("SumPool2d", 3, 2, 0, 11)])
def test_pool_conv_is_one_strided_conv_bit_exact(pool, kp, sp, pc, hw):
    rng = np.random.default_rng(kp * 10 + sp + pc)
    x = (rng.random((3, 15, 2 * hw * hw)) < 0.3).astype(np.int64)
    # thr2 small enough that the dense path's weight exponent is >= 0 too: Lava's Conv
    # takes no negative weight_exp, so only then do both paths have the same integer grid
    graph = _graph(rng, hw=hw, pool=pool, kp=kp, sp=sp, pc=pc, thr2=0.002)
    new, old = _both(graph, x)
    convs = [n for n in new.projections.values() if isinstance(n, ir.Conv2d)]
    assert len(convs) == 2 and not any(isinstance(n, ir.Dense) for n in new.projections.values())
    assert not any(isinstance(n, ir.Conv2d) and n.weight.shape[2] > 3
                   for n in old.projections.values())  # the old path densified it
    comp = max(convs, key=lambda n: n.weight.shape[2])
    assert comp.weight.shape[2:] == ((3 - 1) * sp + kp,) * 2 and comp.stride == (sp, sp)
    # the densified path (mostly zeros: the quantizer may store it as an ir.Sparse)
    dense_old = [n for n in old.projections.values() if isinstance(n, (ir.Dense, ir.Sparse))][0]
    w_old = dense_old.dense_weight() if isinstance(dense_old, ir.Sparse) else dense_old.weight
    assert comp.weight_exp == dense_old.weight_exp
    # the same integer weights: the composed conv, written out as a matrix, is the old matrix
    mat = np.zeros(w_old.shape, np.int64)
    eye = np.eye(int(np.prod(comp.input_shape)), dtype=np.int64)
    for j in range(eye.shape[0]):  # response of the integer conv to each unit input
        mat[:, j] = _int_conv(comp, eye[j])
    assert np.array_equal(mat, w_old)
    # bit-exact: every spike, v and u of every population, every step
    a = run(new, x, record=("spikes", "v", "u"))
    b = run(old, x, record=("spikes", "v", "u"))
    for k in new.populations:
        for var in ("spikes", "v", "u"):
            assert np.array_equal(getattr(a, var)[k], getattr(b, var)[k]), (k, var)
    assert all(int(s.sum()) > 0 for s in a.spikes.values())  # every layer spikes
    # on the chip the conv costs far fewer synapse-memory bits than the dense matrix
    bits_new = [p["synapse_bits"] for p in plan(new).projections if p["name"] == comp.name]
    bits_old = [p["synapse_bits"] for p in plan(old).projections if p["name"] == dense_old.name]
    assert bits_new[0] < bits_old[0]


def _int_conv(conv, x):
    """Integer cross-correlation of one flat input with the conv's integer weights."""
    c, h, w = conv.input_shape
    co, cg, kh, kw = conv.weight.shape
    _, oh, ow = conv.out_shape
    xi = np.pad(x.reshape(c, h, w), ((0, 0), (conv.padding[0],) * 2, (conv.padding[1],) * 2))
    out = np.zeros((co, oh, ow), np.int64)
    for y in range(oh):
        for z in range(ow):
            patch = xi[:, y * conv.stride[0]:y * conv.stride[0] + kh,
                       z * conv.stride[1]:z * conv.stride[1] + kw]
            out[:, y, z] = np.einsum("ocij,cij->o", conv.weight.astype(np.int64), patch)
    return out.reshape(-1)


def test_overlapping_pool_with_padding_stays_dense():
    # kp > sp with conv padding: the conv's padding would read real input -> not composed
    rng = np.random.default_rng(5)
    graph = _graph(rng, hw=12, kp=3, sp=2, pc=1)
    x = (rng.random((2, 6, 2 * 144)) < 0.3).astype(np.int64)
    net = quantize(graph, "loihi1", calibrate=x).network
    assert any(isinstance(n, ir.Dense) for n in net.projections.values())
    d = plan(net)
    dens = [p for p in d.projections if p["densified"]]
    assert dens and dens[0]["synapse_bits"] > 0  # reported with its cost


def test_small_weights_keep_lavas_conv_exponent_floor():
    # with small increments the dense path uses weight_exp < 0; the composed conv keeps
    # weight_exp >= 0 (Lava's Conv) and says so in the quantization notes
    rng = np.random.default_rng(0)
    graph = _graph(rng, thr2=1.0)
    x = (rng.random((2, 8, 2 * 144)) < 0.3).astype(np.int64)
    new = quantize(graph, "loihi1", calibrate=x)
    conv = [n for n in new.network.projections.values() if n.weight.ndim == 4
            and n.weight.shape[2] == 6][0]
    assert conv.weight_exp == 0
    assert any("Lava's Conv" in str(n) for n in _notes(new))


def _notes(model):
    out = []
    for v in vars(model).values():
        if isinstance(v, (list, tuple)):
            out.extend(v)
        elif isinstance(v, dict):
            for w in v.values():
                out.extend(w if isinstance(w, (list, tuple)) else [w])
    return out
