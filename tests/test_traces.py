"""Integer spike traces: by hand, against Lava's learning-engine trace functions, both
engines, through the quantized file and ``emulate --record trace``."""

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.cli import main
from neurohw.emulate import fast, run

ENGINES = ["numpy"] + (["numba"] if fast.available() else [])


def _net(profile="loihi2", n=6, impulse=20, decay=300, mode="additive", refract=0, seed=0):
    rng = np.random.default_rng(seed)
    nodes = {"in": ir.InputNode("in", (4,)),
             "d": ir.Dense("d", weight=rng.integers(-60, 255, (n, 4)), weight_exp=0),
             "l": ir.LIFPopulation("l", (n,), du=rng.integers(0, 4096, n), dv=rng.integers(0, 800, n),
                                   vth=rng.integers(1, 400, n), refract_delay=refract,
                                   trace_impulse=impulse, trace_decay=decay, trace_mode=mode)}
    return nh.Network(nodes, [("in", "d"), ("d", "l")], profile)


def _by_hand(spikes, impulse, decay, mode, bits=7, decay_bits=12):
    """x <- floor(x * (2**12 - decay) / 2**12); on a spike x <- min(x + impulse, 127) or impulse."""
    T, n = spikes.shape
    x = [0] * n
    out = np.zeros((T, n), np.int64)
    for t in range(T):
        for i in range(n):
            x[i] = (x[i] * (2 ** decay_bits - decay)) // 2 ** decay_bits
            if spikes[t, i]:
                x[i] = impulse if mode == "set" else min(x[i] + impulse, 2 ** bits - 1)
            out[t, i] = x[i]
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("profile", ["loihi1", "loihi2"])
@pytest.mark.parametrize("mode", ["additive", "set"])
def test_trace_equals_hand_integration(engine, profile, mode):
    rng = np.random.default_rng(3)
    for impulse, decay in ((20, 300), (127, 0), (1, 4095), (64, 2000), (90, 17)):
        net = _net(profile, impulse=impulse, decay=decay, mode=mode, refract=3)
        x = (rng.random((60, 4)) < 0.6).astype(np.int8)
        res = run(net, x, record=("spikes", "trace"), engine=engine)
        s = res.spikes["l"][0]
        assert s.sum() > 5
        np.testing.assert_array_equal(res.trace["l"][0], _by_hand(s, impulse, decay, mode))
    if mode == "additive":  # saturation at 2**7 - 1 occurred in the (127, 0) case
        assert (_by_hand(s, 127, 0, mode) == 127).any()


def test_trace_against_lava_learning_engine_functions():
    """Lava's LearningConnectionModelBitApproximate decays a trace by exp(-1/tau) in float
    and rounds stochastically; with its random number at 1 (never round up: neurohw's
    deterministic choice) and integer impulses it equals neurohw's 12-bit trace wherever
    floor(exp(-1/tau) x) == floor(x (4096 - d) / 4096) over the 7-bit range, d =
    round(4096 (1 - exp(-1/tau))).  Checked step by step on random spike trains."""
    pytest.importorskip("lava")
    from neurohw.backends.lava import import_lava

    import_lava()
    from lava.magma.core.model.py.connection import LearningConnectionModelBitApproximate as M

    rng = np.random.default_rng(7)
    xs = np.arange(128)
    taus = [tau for tau in range(1, 256)
            if np.array_equal(M._decay_trace(xs, 1, np.array([[tau]]), 1.0).reshape(-1),
                              (xs * (4096 - int(round(4096 * (1 - np.exp(-1 / tau)))))) >> 12)]
    assert len(taus) > 100
    for tau in rng.choice(taus, 6, replace=False):
        d = int(round(4096 * (1 - np.exp(-1 / tau))))
        impulse = int(rng.integers(1, 128))
        net = _net("loihi2", impulse=impulse, decay=d, seed=int(tau))
        x = (rng.random((80, 4)) < 0.5).astype(np.int8)
        res = run(net, x, record=("spikes", "trace"), engine="numpy")
        s = res.spikes["l"][0].astype(bool)
        lava = np.zeros(s.shape[1], np.int64)
        for t in range(s.shape[0]):
            lava = M._decay_trace(lava[None], 1, np.array([[tau]]), 1.0).reshape(-1)
            lava[s[t]] = M._add_impulse(lava[s[t]], 0, np.array(impulse), np.array(0))
            np.testing.assert_array_equal(res.trace["l"][0, t], lava, err_msg=f"tau={tau} t={t}")


def test_trace_round_trips_and_cli_records_it(tmp_path, capsys):
    net = _net("loihi1", refract=2, mode="set")
    path = tmp_path / "m.q.nir"
    nh.write_network(net, path)
    back = nh.read_network(path)
    pop = back.nodes["l"]
    assert (pop.trace_impulse, pop.trace_decay, pop.trace_mode) == (20, 300, "set")
    assert int(pop.refract_delay.reshape(-1)[0]) == 2 and back.profile.semantics == "loihi1"
    x = (np.random.default_rng(1).random((2, 30, 4)) < 0.5).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "run.npz"
    assert main(["emulate", str(path), "--input", str(tmp_path / "x.npy"), "--out", str(out),
                 "--record", "v,trace"]) == 0
    data = np.load(out)
    assert set(data.files) == {"l.spikes", "l.v", "l.trace"}
    direct = run(net, x, record=("spikes", "trace"))
    np.testing.assert_array_equal(data["l.trace"], direct.trace["l"])
    assert data["l.trace"].any()
    with pytest.raises(nh.ValidationError, match="trace_mode='both' is not one of"):
        ir.LIFPopulation("l", (2,), trace_mode="both")
    with pytest.raises(nh.ValidationError, match=r"node 'l': trace_impulse=128 above"):
        nh.Network({"in": ir.InputNode("in", (1,)), "d": ir.Dense("d", weight=[[2]]),
                    "l": ir.LIFPopulation("l", (1,), trace_impulse=128)},
                   [("in", "d"), ("d", "l")], "loihi2")


@pytest.mark.parametrize("key, value, message", [
    ("refract_delay", 64, r"node 'l': refract_delay=64 above allowed range \[0, 63\]"),
    ("refract_delay", "two", r"node 'l': refract_delay='two' is a string"),
    ("refract_delay", np.array([1, 2]), r"node 'l': refract_delay has shape \(2,\); expected \(3,\)"),
    ("vmin", 5, r"node 'l': vmin=5 above allowed range"),
    ("vmax", -1, r"node 'l': vmax=-1 below allowed range"),
    ("trace_impulse", 200, r"node 'l': trace_impulse=200 above allowed range \[0, 127\]"),
    ("trace_decay", 1.5, r"node 'l': trace_decay.*not an integer"),
    ("trace_mode", "both", r"node 'l': trace_mode='both' is not one of additive, set"),
])
def test_reader_refuses_bad_optional_neuron_fields(key, value, message):
    from neurohw.nirio import network_from_nir, network_to_nir

    net = nh.Network({"in": ir.InputNode("in", (2,)), "d": ir.Dense("d", weight=np.ones((3, 2), int)),
                      "l": ir.LIFPopulation("l", (3,), vth=4)}, [("in", "d"), ("d", "l")], "loihi2")
    g = network_to_nir(net)
    g.nodes["l"].metadata["neurohw"][key] = value
    from neurohw.errors import FileFormatError

    with pytest.raises(FileFormatError, match="graph: " + message):
        network_from_nir(g)
    del g.nodes["l"].metadata["neurohw"][key]  # absent: defaults
    pop = network_from_nir(g).nodes["l"]
    assert (int(pop.refract_delay.max()), pop.vmin, pop.vmax, pop.trace_impulse) == (0, None, None, 0)
