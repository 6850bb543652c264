import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.testing import random_network

from conftest import small_chain


def test_small_chain_properties():
    net = small_chain()
    assert net.num_neurons == 4
    assert net.predecessors("l") == ["d"]
    assert not net.has_cycle()
    assert net.nodes["l"].bias_mant.dtype == np.int32


def test_arrays_are_read_only_and_nodes_frozen():
    net = small_chain()
    with pytest.raises(ValueError):
        net.nodes["d"].weight[0, 0] = 1
    with pytest.raises(AttributeError):
        net.nodes["l"].vth = 3


@pytest.mark.parametrize(
    "pop_kwargs, message",
    [
        ({"vth": 140000}, r"node 'l': vth=140000 above allowed range \[0, 131071\] \(17-bit unsigned\)"),
        ({"du": 4096}, r"node 'l': du=4096 above allowed range \[0, 4095\]"),
        ({"dv": -1}, r"node 'l': dv=-1 below allowed range \[0, 4095\]"),
        ({"bias_mant": [0, 0, 5000, 0]}, r"node 'l': bias_mant\[2\]=5000 above allowed range \[-4096, 4095\]"),
        ({"bias_exp": -1}, r"node 'l': bias_exp\[0\]=-1 below allowed range \[0, 7\]"),
        ({"vth": np.nan}, r"node 'l': vth=nan is not finite"),
        ({"bias_mant": [1, 2]}, r"node 'l': bias_mant has shape \(2,\), expected \(4,\)"),
    ],
)
def test_population_errors_name_node_param_value_range(pop_kwargs, message):
    with pytest.raises(nh.ValidationError, match=message):
        small_chain(**pop_kwargs)


def test_weight_errors():
    base = dict(weight=np.zeros((2, 3), int))
    with pytest.raises(nh.ValidationError, match=r"node 'w': weight\[0, 1\]=300 above allowed range \[-256, 255\]"):
        nh.Network({"i": ir.InputNode("i", (3,)),
                    "w": ir.Dense("w", weight=[[0, 300, 0], [0, 0, 0]])}, [("i", "w")], "loihi1")
    with pytest.raises(nh.ValidationError, match=r"weight\[0, 0\]=-1 below allowed range \[0, 255\] \(8-bit excitatory"):
        nh.Network({"i": ir.InputNode("i", (3,)),
                    "w": ir.Dense("w", weight=[[-1, 0, 0], [0, 0, 0]], sign_mode="excitatory")},
                   [("i", "w")], "loihi1")
    with pytest.raises(nh.ValidationError, match=r"node 'w': weight_exp=9 above allowed range \[-8, 7\]"):
        nh.Network({"i": ir.InputNode("i", (3,)), "w": ir.Dense("w", weight_exp=9, **base)},
                   [("i", "w")], "loihi2")
    with pytest.raises(nh.ValidationError, match=r"delay\[1, 2\]=63 above allowed range \[0, 62\]"):
        d = np.zeros((2, 3), int)
        d[1, 2] = 63
        nh.Network({"i": ir.InputNode("i", (3,)), "w": ir.Dense("w", delay=d, **base)},
                   [("i", "w")], "loihi2")
    with pytest.raises(nh.ValidationError, match=r"num_message_bits=3 above allowed range \[0, 0\]"):
        nh.Network({"i": ir.InputNode("i", (3,)), "w": ir.Dense("w", num_message_bits=3, **base)},
                   [("i", "w")], "loihi1")
    with pytest.raises(nh.ValidationError, match="sign_mode='both'"):
        ir.Dense("w", sign_mode="both", **base)


def test_graph_errors():
    i = ir.InputNode("i", (3,))
    d = ir.Dense("d", weight=np.zeros((2, 4), int))
    with pytest.raises(nh.ValidationError, match=r"edge i -> d: shape mismatch \(3,\) -> \(4,\)"):
        nh.Network({"i": i, "d": d}, [("i", "d")], "loihi2")
    with pytest.raises(nh.ValidationError, match="no node named 'x'"):
        nh.Network({"i": i}, [("i", "x")], "loihi2")
    with pytest.raises(nh.ValidationError, match="needs exactly one incoming edge, has 0"):
        nh.Network({"i": i, "d": d}, [], "loihi2")
    with pytest.raises(nh.ValidationError, match="dict key differs"):
        nh.Network({"j": i}, [], "loihi2")
    with pytest.raises(nh.ValidationError, match="dt_s"):
        nh.Network({"i": i}, [], "loihi2", dt_s=0)
    p = ir.LIFPopulation("p", (3,))
    with pytest.raises(nh.ValidationError, match="through a projection"):
        nh.Network({"i": i, "p": p, "q": ir.LIFPopulation("q", (3,))},
                   [("i", "p"), ("p", "q")], "loihi2")


def test_recurrence_is_allowed():
    nodes = {
        "i": ir.InputNode("i", (3,)),
        "d": ir.Dense("d", weight=np.ones((3, 3), int)),
        "p": ir.LIFPopulation("p", (3,)),
        "r": ir.Dense("r", weight=-np.ones((3, 3), int)),
    }
    net = nh.Network(nodes, [("i", "d"), ("d", "p"), ("p", "r"), ("r", "p")], "loihi2")
    assert net.has_cycle()
    assert net.predecessors("p") == ["d", "r"]


def test_conv_geometry():
    c = ir.Conv2d("c", weight=np.ones((6, 1, 3, 3), int), input_shape=(2, 9, 7), stride=2,
                  padding=1, groups=2)
    assert c.out_shape == (6, 5, 4)
    # 1x1 no-padding conv: synapses = out_channels * in_per_group * positions
    c1 = ir.Conv2d("c1", weight=np.ones((3, 2, 1, 1), int), input_shape=(2, 4, 4))
    assert c1.num_synapses == 3 * 2 * 16
    # padding taps are not synapses: 3x3 "same" conv on 3x3 input has 9+... taps
    c2 = ir.Conv2d("c2", weight=np.ones((1, 1, 3, 3), int), input_shape=(1, 3, 3), padding=1)
    assert c2.num_synapses == sum(
        sum(1 for di in (-1, 0, 1) for dj in (-1, 0, 1) if 0 <= i + di < 3 and 0 <= j + dj < 3)
        for i in range(3) for j in range(3))
    with pytest.raises(nh.ValidationError, match="does not fit input channels"):
        ir.Conv2d("c", weight=np.ones((2, 3, 3, 3), int), input_shape=(2, 9, 7))
    assert ir.SumPool2d("p", input_shape=(3, 7, 7)).out_shape == (3, 3, 3)
    assert ir.Flatten("f", input_shape=(3, 4, 5), start_dim=1).out_shape == (3, 20)


def test_validate_against_other_profile():
    net = small_chain(profile="generic", bias_exp=-3)
    with pytest.raises(nh.ValidationError, match=r"bias_exp\[0\]=-3 below allowed range \[0, 7\]"):
        net.validate("loihi2")


@pytest.mark.parametrize("seed", range(30))
def test_random_networks_are_valid(seed):
    net = random_network(np.random.default_rng(seed))
    net.validate()
    assert net.num_neurons > 0


# -- graph rules ---------------------------------------------------------------
def _pop(name, n=4):
    return ir.LIFPopulation(name, (n,), du=1, dv=1, vth=1)


def test_lif_flatten_lif_is_refused_naming_both_populations():
    nodes = {"in": ir.InputNode("in", (4,)), "d": ir.Dense("d", weight=np.ones((4, 4))),
             "a": _pop("a"), "f": ir.Flatten("f", input_shape=(4,)), "b": _pop("b")}
    edges = [("in", "d"), ("d", "a"), ("a", "f"), ("f", "b")]
    with pytest.raises(nh.ValidationError,
                       match=r"edge f -> b: LIF population 'a' reaches LIF population 'b' "
                             r"through Flatten only"):
        nh.Network(nodes, edges, "loihi2")
    # two Flattens in a row are the same
    nodes["g"] = ir.Flatten("g", input_shape=(4,))
    edges = [("in", "d"), ("d", "a"), ("a", "f"), ("f", "g"), ("g", "b")]
    with pytest.raises(nh.ValidationError, match=r"'a' reaches LIF population 'b'"):
        nh.Network(nodes, edges, "loihi2")


def test_direct_lif_to_lif_is_refused():
    nodes = {"in": ir.InputNode("in", (4,)), "d": ir.Dense("d", weight=np.ones((4, 4))),
             "a": _pop("a"), "b": _pop("b")}
    with pytest.raises(nh.ValidationError, match=r"edge a -> b: populations connect through"):
        nh.Network(nodes, [("in", "d"), ("d", "a"), ("a", "b")], "loihi2")


def test_input_flatten_lif_is_allowed():
    nodes = {"in": ir.InputNode("in", (2, 2)), "f": ir.Flatten("f", input_shape=(2, 2)),
             "a": _pop("a")}
    net = nh.Network(nodes, [("in", "f"), ("f", "a")], "loihi2")
    assert net.through_flatten("f") == "in"


@pytest.mark.parametrize("loop", [
    ["f1", "f2"],                      # Flatten <-> Flatten
    ["f1"],                            # a Flatten feeding itself
    ["f1", "p1", "f2"],                # Flatten -> SumPool -> Flatten -> ...
    ["d1", "f1"],                      # Dense -> Flatten -> Dense: no spike source
])
def test_stateless_loops_are_refused_and_do_not_hang(loop):
    import signal

    nodes = {"in": ir.InputNode("in", (1, 2, 2)), "a": _pop("a", 4)}
    for name in loop:
        if name.startswith("d"):  # (1, 2, 2) -> 4 -> Flatten (4,) is not (1, 2, 2): use (4,)
            nodes[name] = ir.Dense(name, weight=np.ones((4, 4)))
        elif name.startswith("f") and "d1" in loop:
            nodes[name] = ir.Flatten(name, input_shape=(4,))
        elif name.startswith("f"):
            nodes[name] = ir.Flatten(name, input_shape=(1, 2, 2), start_dim=0, end_dim=0)
        else:
            nodes[name] = ir.SumPool2d(name, input_shape=(1, 2, 2), kernel_size=1, stride=1)
    edges = [(loop[i], loop[(i + 1) % len(loop)]) for i in range(len(loop))]
    old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("hang")))
    signal.alarm(5)
    try:
        with pytest.raises(nh.ValidationError) as err:
            nh.Network(nodes, edges, "loihi2")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    msg = str(err.value)
    assert "\n" not in msg
    assert "a loop without a LIF population" in msg
    for name in loop:
        assert f"'{name}'" in msg


def test_loop_through_a_population_is_recurrence_and_allowed():
    nodes = {"in": ir.InputNode("in", (4,)), "d": ir.Dense("d", weight=np.ones((4, 4))),
             "a": _pop("a"), "r": ir.Dense("r", weight=np.ones((4, 4)))}
    net = nh.Network(nodes, [("in", "d"), ("d", "a"), ("a", "r"), ("r", "a")], "loihi2")
    assert net.has_cycle()


def test_projection_without_input_is_a_validation_error():
    nodes = {"in": ir.InputNode("in", (4,)), "d": ir.Dense("d", weight=np.ones((4, 4)))}
    with pytest.raises(nh.ValidationError,
                       match="node 'd': Dense needs exactly one incoming edge, has 0"):
        nh.Network(nodes, [], "loihi2")


def test_long_chains_validate_without_recursion_limits():
    n, k = 4, 1500  # 3000 nodes in a row: deeper than Python's default recursion limit
    nodes = {"in": ir.InputNode("in", (n,))}
    edges, last = [], "in"
    for i in range(k):
        d, p = f"d{i}", f"p{i}"
        nodes[d] = ir.Dense(d, weight=np.ones((n, n)))
        nodes[p] = _pop(p, n)
        edges += [(last, d), (d, p)]
        last = p
    net = nh.Network(nodes, edges, "loihi2")
    assert not net.has_cycle()
    nodes["back"] = ir.Dense("back", weight=np.ones((n, n)))
    net = nh.Network(nodes, edges + [(last, "back"), ("back", "p0")], "loihi2")
    assert net.has_cycle()
