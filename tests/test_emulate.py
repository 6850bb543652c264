"""The emulator against Lava's fixed_pt models, bit for bit."""

import numpy as np
import pytest

from neurohw.profiles import LOIHI1_LAVA  # Loihi 1 widths, Lava's rules
import neurohw as nh
from neurohw import ir
from neurohw.backends.lava import run_lava
from neurohw.emulate import run
from neurohw.testing import random_network
from neurohw.verify import compare, verify_against_lava

pytestmark = pytest.mark.lava


def _assert_matches_lava(net, x, record=("spikes", "v", "u"), engine="auto"):
    emu = run(net, x, record=record, engine=engine)
    lava = run_lava(net, x, record=record)
    for var in record:
        for p in net.populations:
            np.testing.assert_array_equal(getattr(emu, var)[p][0], getattr(lava, var)[p],
                                          err_msg=f"{p}.{var}")
    return emu


def _random_case(seed, steps=30):
    rng = np.random.default_rng(seed)
    net = random_network(rng, [LOIHI1_LAVA, "loihi2"][seed % 2], conv=False, delays=True)
    n = net.nodes["input"].shape[0]
    p = rng.uniform(0.05, 0.9)
    x = (rng.random((steps, n)) < p).astype(np.int8)
    return net, x


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_bit_exact(seed):
    net, x = _random_case(seed)
    _assert_matches_lava(net, x)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 80))
def test_random_networks_bit_exact_slow(seed):
    net, x = _random_case(seed, steps=60)
    _assert_matches_lava(net, x)


def _overflow_net(n_in, weight, weight_exp, du, dv, vth, bias_mant, bias_exp, profile="loihi2"):
    nodes = {
        "in": ir.InputNode("in", (n_in,)),
        "d": ir.Dense("d", weight=np.full((3, n_in), weight), weight_exp=weight_exp,
                      num_weight_bits=8),
        "l": ir.LIFPopulation("l", (3,), du=du, dv=dv, vth=vth, bias_mant=bias_mant,
                              bias_exp=bias_exp),
    }
    return nh.Network(nodes, [("in", "d"), ("d", "l")], profile)


@pytest.mark.parametrize("n_in, weight, weight_exp, du, dv, vth, bias", [
    (300, 254, 7, 0, 0, 131071, (4095, 7)),      # u wraps at 24 bits, v saturates
    (1200, 254, 7, 0, 0, 131071, (4095, 7)),     # (a << 6) exceeds int32: Lava wraps at 32 bits
    (300, -256, 7, 0, 0, 131071, (-4096, 7)),    # negative extremes
    (50, 254, 4, 4095, 0, 131071, (4095, 7)),    # u cleared each step; v clips at +2^23-1
    (64, 200, -8, 17, 4095, 0, (-1, 0)),          # floor shifts of negative values
])
def test_engineered_wrap_and_clip(n_in, weight, weight_exp, du, dv, vth, bias):
    net = _overflow_net(n_in, weight, weight_exp, du, dv, vth, *bias)
    x = np.ones((25, n_in), np.int8)
    x[::3] = 0
    emu = _assert_matches_lava(net, x)
    if weight_exp == 7:
        assert np.abs(emu.u["l"]).max() > 2**22  # the wrap region was reached


def test_batch_equals_single_samples():
    net, _ = _random_case(3)
    rng = np.random.default_rng(9)
    n = net.nodes["input"].shape[0]
    xb = rng.integers(0, 2, (5, 40, n))
    batch = run(net, xb, record=("spikes", "v", "u"))
    for b in range(5):
        single = run(net, xb[b], record=("spikes", "v", "u"))
        for var in ("spikes", "v", "u"):
            for p in net.populations:
                assert np.array_equal(getattr(batch, var)[p][b], getattr(single, var)[p][0])


def test_verify_reports_first_divergence():
    net, x = _random_case(1)
    res = verify_against_lava(net, x)
    assert res.bit_exact, res.describe()
    assert "bit-exact" in res.describe()
    # tamper with the emulator's output at a known place: compare must find it
    emu = run(net, x, record=("spikes", "v", "u"))
    expected = {var: {p: getattr(emu, var)[p].copy() for p in net.populations}
                for var in ("spikes", "v", "u")}
    pop = list(net.populations)[-1]
    expected["v"][pop][0, 17, 0] += 1
    expected["u"][pop][0, 21, 0] += 5
    res = compare(expected, emu)
    assert not res.bit_exact
    d = res.divergence
    assert (d.step, d.node, d.neuron, d.variable) == (17, pop, 0, "v")
    assert d.expected == d.got + 1 and d.last_equal_step == 16
    assert "first divergence at step 17" in res.describe()


def test_input_validation():
    net, x = _random_case(0)
    with pytest.raises(nh.ValidationError, match=r"expected \(T, \d+\) or \(B, T, \d+\)"):
        run(net, x[:, :-1] if x.shape[1] > 1 else np.zeros((3, 2)))
    with pytest.raises(nh.ValidationError, match=r"x\[0, 0, 0\]=3 above allowed range \[0, 1\] \(binary spikes\)"):
        run(net, np.full_like(x, 3))
    with pytest.raises(nh.ValidationError, match="record"):
        run(net, x, record=("w",))


@pytest.mark.parametrize("case", [(300, 254, 7, 0, 0, 131071, (4095, 7)),
                                  (50, 254, 4, 4095, 0, 131071, (4095, 7))])
def test_event_counts_match_an_independent_recount(case):
    """count_events: u wraps and v clips, recounted from Lava-verified traces with Python ints."""
    n_in, weight, weight_exp, du, dv, vth, bias = case
    net = _overflow_net(n_in, weight, weight_exp, du, dv, vth, *bias)
    x = np.ones((25, n_in), np.int8)
    x[::3] = 0
    emu = run(net, x, record=("spikes", "v", "u"), count_events=True)
    pop = net.nodes["l"]
    w_eff = int(nh.fixedpoint.effective_weights(np.array([weight]), "mixed", 8)[0])
    b = int(bias[0]) << int(bias[1])
    u = v = 0
    wraps = clips = 0
    half = 2 ** 23
    for t in range(25):
        a = (int(x[t - 1].sum()) * w_eff << weight_exp) if t > 0 else 0  # one step of Dense latency
        du_ = (4096 - (du + 1))
        uu = int(np.sign(u * du_)) * (abs(u * du_) >> 12) + (a << 6)
        uu = ((uu + 2 ** 31) % 2 ** 32) - 2 ** 31
        if uu > half or uu <= -half:
            wraps += 1
            uu = uu - 2 * half if uu > half else uu + 2 * half
        vv = int(np.sign(v * (4096 - dv))) * (abs(v * (4096 - dv)) >> 12) + uu + b
        vv = ((vv + 2 ** 31) % 2 ** 32) - 2 ** 31
        if abs(vv) > half - 1:
            clips += 1
            vv = max(-(half - 1), min(half - 1, vv))
        if vv > vth << 6:
            vv = 0
        u, v = uu, vv
        assert emu.u["l"][0, t, 0] == u and emu.v["l"][0, t, 0] == v
    assert wraps + clips > 0
    assert emu.events["l"]["u_wrap"][0] == 3 * wraps and emu.events["l"]["v_clip"][0] == 3 * clips


def _assert_engines_agree(net, x):
    """numpy and numba engines: identical spikes, v, u and event counts; returns the numpy run."""
    rec = ("spikes", "v", "u")
    a = run(net, x, record=rec, engine="numpy", count_events=True)
    b = run(net, x, record=rec, engine="numba", count_events=True)
    for var in rec:
        for p in net.populations:
            np.testing.assert_array_equal(getattr(a, var)[p], getattr(b, var)[p], err_msg=f"{p}.{var}")
    for p in net.populations:
        for e in ("u_wrap", "v_clip"):
            np.testing.assert_array_equal(a.events[p][e], b.events[p][e])
    return a


def _lively(rng, profile="loihi2"):
    """A net whose neurons spike often (small thresholds), with recurrence and delays."""
    from neurohw.testing import random_dense

    prof = nh.get_profile(profile)
    n_in, n1, n2 = int(rng.integers(5, 60)), int(rng.integers(5, 60)), int(rng.integers(2, 20))

    def pop(name, n):
        return ir.LIFPopulation(name, (n,), du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)),
                                vth=int(rng.integers(0, 30)), bias_mant=rng.integers(-4096, 4096, n),
                                bias_exp=rng.integers(0, 8, n))

    nodes = [ir.InputNode("input", (n_in,)), random_dense(rng, "d1", n1, n_in, prof),
             pop("l1", n1), random_dense(rng, "d2", n2, n1, prof, delays=bool(rng.random() < 0.5)),
             pop("l2", n2), random_dense(rng, "rec", n1, n1, prof)]
    edges = [("input", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2"), ("l1", "rec"), ("rec", "l1")]
    return nh.Network({n.name: n for n in nodes}, edges, prof)


@pytest.mark.parametrize("seed", range(8))
def test_numba_engine_equals_numpy_engine(seed):
    """The fused kernels (serial for small batches, threaded from 16 samples up, sparse
    spike sums) give exactly the integers of the numpy step functions."""
    from neurohw.emulate import fast

    if not fast.available():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(seed)
    net = _lively(rng, ["loihi1", "loihi2"][seed % 2])
    B = [1, 3, 16, 40][seed % 4]
    x = (rng.random((B, 40, net.nodes["input"].shape[0])) < rng.uniform(0.02, 0.9)).astype(np.int8)
    a = _assert_engines_agree(net, x)
    assert a.spikes["l1"].any()


def test_engine_argument_is_checked():
    net, x = _random_case(0)
    with pytest.raises(nh.ValidationError, match="engine='gpu'"):
        run(net, x, engine="gpu")


@pytest.mark.parametrize("seed", range(6))
def test_numba_engine_equals_numpy_engine_conv_graded_full_range(seed):
    """Conv/pool/flatten front ends and every parameter over its full range (negative
    exponents included), with graded inputs feeding graded and binary readers."""
    from neurohw.emulate import fast
    from neurohw.testing import random_dense

    if not fast.available():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(500 + seed)
    net = random_network(rng, ["loihi1", "loihi2"][seed % 2], conv=bool(seed % 2), delays=True)
    n = int(np.prod(net.nodes["input"].shape))
    if seed % 2 == 0:  # add a graded reader of the input beside the binary one
        prof = net.profile
        nodes = dict(net.nodes)
        g = random_dense(rng, "graded", 5, n, prof, graded=True)
        nodes["graded"] = g
        nodes["gl"] = ir.LIFPopulation("gl", (5,), du=10, dv=10, vth=3)
        net = nh.Network(nodes, list(net.edges) + [("input", "graded"), ("graded", "gl")], prof)
        bits = g.num_message_bits
        x = rng.integers(0, 2 ** bits, (24, 30, n))
    else:
        x = (rng.random((24, 30, n)) < 0.5).astype(np.int8)
    _assert_engines_agree(net, x)
