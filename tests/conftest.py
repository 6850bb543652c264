import numpy as np
import pytest

import neurohw as nh
from neurohw import ir


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def assert_networks_equal(a: nh.Network, b: nh.Network) -> None:
    """Every integer, shape, edge and setting of two networks is identical."""
    assert a.profile == b.profile
    assert a.dt_s == b.dt_s
    assert set(a.edges) == set(b.edges) and len(a.edges) == len(b.edges)
    assert set(a.nodes) == set(b.nodes)
    for name, x in a.nodes.items():
        y = b.nodes[name]
        assert type(x) is type(y), name
        assert x.in_shape == y.in_shape and x.out_shape == y.out_shape, name
        for field in ("weight_exp", "num_weight_bits", "sign_mode",
                      "num_message_bits", "stride", "padding", "dilation", "groups",
                      "kernel_size", "start_dim", "end_dim"):
            if hasattr(x, field):
                assert getattr(x, field) == getattr(y, field), (name, field)
                assert type(getattr(x, field)) is type(getattr(y, field)), (name, field)
        for field in ("du", "dv", "vth", "bias_mant", "bias_exp", "weight", "delay"):
            if hasattr(x, field):
                xa, ya = getattr(x, field), getattr(y, field)
                if xa is None or ya is None:
                    assert xa is None and ya is None, (name, field)
                    continue
                assert xa.dtype == ya.dtype == np.int32, (name, field)
                assert np.array_equal(xa, ya), (name, field)


def small_chain(profile="loihi2", n_in=5, n_hidden=4, seed=0, **pop_kwargs) -> nh.Network:
    rng = np.random.default_rng(seed)
    pop = dict(du=100, dv=200, vth=100, bias_mant=rng.integers(0, 4096, n_hidden), bias_exp=2)
    pop.update(pop_kwargs)
    nodes = {
        "in": ir.InputNode("in", (n_in,)),
        "d": ir.Dense("d", weight=rng.integers(-256, 256, (n_hidden, n_in))),
        "l": ir.LIFPopulation("l", (n_hidden,), **pop),
        "out": ir.OutputNode("out", (n_hidden,)),
    }
    return nh.Network(nodes, [("in", "d"), ("d", "l"), ("l", "out")], profile)
