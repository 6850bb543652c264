"""Per-neuron du, dv, vth: the IR, the quantized NIR writer, both engines, and real Lava."""

import numpy as np
import pytest

from neurohw.profiles import LOIHI1_LAVA  # Loihi 1 widths, Lava's rules
import neurohw as nh
from neurohw import ir
from neurohw.emulate import run
from neurohw.testing import random_network


def per_neuron(net: nh.Network, rng: np.random.Generator, lively: bool = True) -> nh.Network:
    """``net`` with du, dv, vth drawn per neuron over the profile's whole range.

    Each population gets the extremes (du = 0 and max, dv = 0 and max, vth = 0
    and max) on some neurons; with ``lively`` the other thresholds are drawn
    log-uniformly so that neurons spike.
    """
    prof = net.profile
    nodes = dict(net.nodes)
    for name, pop in net.populations.items():
        shape, n = pop.shape, pop.size

        def draw(param):
            lo, hi = prof.range_of(param)
            if param == "vth" and lively:
                vals = np.minimum(np.floor(2.0 ** rng.uniform(0, np.log2(hi + 1), n)), hi)
                vals = vals.astype(np.int64)
            else:
                vals = rng.integers(lo, hi, n, endpoint=True)
            k = min(n, 2)
            vals[rng.choice(n, k, replace=False)] = [lo, hi][:k]  # both extremes present
            return vals.reshape(shape)

        nodes[name] = ir.LIFPopulation(name, shape, du=draw("du"), dv=draw("dv"),
                                       vth=draw("vth"), bias_mant=pop.bias_mant,
                                       bias_exp=pop.bias_exp)
    return nh.Network(nodes, net.edges, prof, net.dt_s)


# -- the IR ---------------------------------------------------------------------
def test_parameters_are_int32_arrays_of_the_population_shape():
    pop = ir.LIFPopulation("p", (2, 3), du=5, dv=np.arange(6).reshape(2, 3), vth=7)
    for p in ir.NEURON_PARAMS:
        arr = getattr(pop, p)
        assert arr.dtype == np.int32 and arr.shape == (2, 3)
        assert not arr.flags.writeable
    assert pop.uniform("du") == 5 and pop.uniform("vth") == 7 and pop.uniform("bias_exp") == 0
    assert pop.uniform("dv") is None
    with pytest.raises(nh.ValidationError, match="no neuron parameter 'tau'"):
        pop.uniform("tau")
    with pytest.raises(nh.ValidationError,
                       match=r"node 'p': du has shape \(4,\), expected \(2, 3\)"):
        ir.LIFPopulation("p", (2, 3), du=np.arange(4))


def test_per_neuron_range_errors_name_the_element():
    with pytest.raises(nh.ValidationError,
                       match=r"node 'l': dv\[2\]=4096 above allowed range \[0, 4095\]"):
        nh.Network({"in": ir.InputNode("in", (3,)), "d": ir.Dense("d", weight=np.ones((3, 3))),
                    "l": ir.LIFPopulation("l", (3,), dv=[0, 1, 4096])},
                   [("in", "d"), ("d", "l")], "loihi2")


def test_writer_keeps_scalars_for_uniform_and_arrays_for_per_neuron(tmp_path):
    from neurohw.nirio import network_to_nir

    rng = np.random.default_rng(3)
    net = per_neuron(random_network(rng, "loihi2", conv=False), rng)
    g = network_to_nir(net)
    for name, pop in net.populations.items():
        meta = g.nodes[name].metadata["neurohw"]
        for p in ("du", "dv", "vth"):
            if pop.uniform(p) is None:
                assert np.array_equal(np.asarray(meta[p]), getattr(pop, p))
            else:
                assert isinstance(meta[p], int)
        # the float view is per neuron too
        assert np.allclose(g.nodes[name].v_threshold, pop.vth)
        assert np.allclose(g.nodes[name].tau_syn, net.dt_s * 4096 / (pop.du + 1.0))
    uni = random_network(np.random.default_rng(4), "loihi2", conv=False)
    meta = network_to_nir(uni).nodes[next(iter(uni.populations))].metadata["neurohw"]
    assert all(type(meta[p]) is int for p in ("du", "dv", "vth"))


def test_inspect_shows_min_max_of_per_neuron_values():
    from neurohw.summary import _bit_usage

    pop = ir.LIFPopulation("l", (3,), du=[0, 7, 4095], dv=9, vth=[1, 2, 3])
    net = nh.Network({"in": ir.InputNode("in", (3,)), "d": ir.Dense("d", weight=np.ones((3, 3))),
                      "l": pop}, [("in", "d"), ("d", "l")], "loihi2")
    items = {it["param"]: it for it in _bit_usage(net, net.profile)["l"]}
    assert items["du"]["value"] == [0, 4095] and items["du"]["used"] == 12
    assert items["dv"]["value"] == 9 and items["vth"]["value"] == [1, 3]


# -- both engines against real Lava -----------------------------------------------
def _case(seed, steps=25, overflow=False):
    rng = np.random.default_rng(1000 + seed)
    net = per_neuron(random_network(rng, [LOIHI1_LAVA, "loihi2"][seed % 2], conv=False,
                                    delays=True), rng, lively=not overflow)
    n = int(np.prod(net.nodes["input"].shape))
    x = (rng.random((steps, n)) < rng.uniform(0.1, 0.9)).astype(np.int8)
    return net, x


def _overflow_case(seed, steps=25):
    """Per-neuron extremes with inputs that push u past 24 bits and v into saturation."""
    rng = np.random.default_rng(2000 + seed)
    n_in, n = 400, 8
    du = rng.integers(0, 4096, n)
    du[:3] = [0, 4095, 1]
    dv = rng.integers(0, 4096, n)
    dv[:3] = [0, 0, 4095]
    vth = rng.integers(0, 2**17, n)
    vth[:3] = [131071, 0, 131071]
    nodes = {
        "in": ir.InputNode("in", (n_in,)),
        "d": ir.Dense("d", weight=rng.choice([-256, 254, 200, -3], (n, n_in)), weight_exp=7),
        "l": ir.LIFPopulation("l", (n,), du=du, dv=dv, vth=vth,
                              bias_mant=rng.integers(-4096, 4096, n), bias_exp=7),
        "d2": ir.Dense("d2", weight=rng.integers(-256, 256, (4, n)), weight_exp=7),
        "l2": ir.LIFPopulation("l2", (4,), du=[4095, 0, 10, 100], dv=[0, 4095, 1, 2],
                               vth=[0, 1, 131071, 5]),
    }
    net = nh.Network(nodes, [("in", "d"), ("d", "l"), ("l", "d2"), ("d2", "l2")], "loihi2")
    x = (rng.random((steps, n_in)) < 0.7).astype(np.int8)
    return net, x


def _engines():
    from neurohw.emulate import fast

    return ["numpy"] + (["numba"] if fast.available() else [])


def _assert_matches_lava(net, x):
    from neurohw.backends.lava import run_lava

    rec = ("spikes", "v", "u")
    lava = run_lava(net, x, record=rec)
    for engine in _engines():
        emu = run(net, x, record=rec, engine=engine)
        for var in rec:
            for p in net.populations:
                np.testing.assert_array_equal(getattr(emu, var)[p][0], getattr(lava, var)[p],
                                              err_msg=f"{engine}: {p}.{var}")
    return emu


@pytest.mark.lava
@pytest.mark.parametrize("seed", range(3))
def test_per_neuron_random_networks_bit_exact_with_lava(seed):
    net, x = _case(seed)
    assert any(p.uniform("du") is None for p in net.populations.values())
    _assert_matches_lava(net, x)


@pytest.mark.lava
def test_per_neuron_extremes_and_24_bit_overflow_bit_exact_with_lava():
    net, x = _overflow_case(0)
    emu = run(net, x, record=("u", "v"), count_events=True)
    assert emu.events["l"]["u_wrap"].sum() > 0 and emu.events["l"]["v_clip"].sum() > 0
    _assert_matches_lava(net, x)


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 40))
def test_per_neuron_random_networks_bit_exact_with_lava_slow(seed):
    net, x = _case(seed, steps=50)
    _assert_matches_lava(net, x)


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 10))
def test_per_neuron_overflow_bit_exact_with_lava_slow(seed):
    net, x = _overflow_case(seed, steps=40)
    _assert_matches_lava(net, x)


def test_float_nir_variants_are_per_neuron():
    from neurohw.export.nir import SIM_DT_S, float_nir_graph

    pop = ir.LIFPopulation("l", (3,), du=[0, 7, 4095], dv=[0, 9, 100], vth=[1, 2, 3],
                           bias_mant=[1, 2, 3], bias_exp=1)
    net = nh.Network({"in": ir.InputNode("in", (3,)), "d": ir.Dense("d", weight=np.ones((3, 3))),
                      "l": pop}, [("in", "d"), ("d", "l")], "loihi2")
    for flavor, dt in SIM_DT_S.items():
        g = float_nir_graph(net, flavor)
        node = g.nodes["l"]
        a_u = (np.array([0, 7, 4095]) + 1) / 4096
        np.testing.assert_allclose(node.tau_syn, dt / a_u)
        np.testing.assert_allclose(node.tau_mem[1:], dt / (np.array([9, 100]) / 4096))
        np.testing.assert_array_equal(node.v_threshold, [1, 2, 3])
        # the bias rides on the Dense as a_u * bias / 64, per neuron
        np.testing.assert_allclose(g.nodes["d"].bias, a_u * np.array([2, 4, 6]) / 64)
