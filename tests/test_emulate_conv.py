"""Conv2d, SumPool2d, Flatten and graded spikes: emulator vs independent references and Lava."""

import numpy as np
import pytest

from neurohw.profiles import LOIHI1_LAVA  # Loihi 1 widths, Lava's rules
import neurohw as nh
from neurohw import ir
from neurohw.emulate import run
from neurohw.emulate.steps import conv_accumulate, conv_gather_index
from neurohw.errors import ValidationError
from neurohw.fixedpoint import effective_weights
from neurohw.testing import random_network, random_population


def _conv_reference(x, w, stride, padding, dilation, groups):
    """Direct loop cross-correlation in Python ints: x (C, H, W), w (O, C/g, kh, kw)."""
    c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((o, oh, ow), dtype=object)
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                acc = 0
                for ci in range(cg):
                    for a in range(kh):
                        for b in range(kw):
                            y = i * stride[0] - padding[0] + a * dilation[0]
                            z = j * stride[1] - padding[1] + b * dilation[1]
                            if 0 <= y < h and 0 <= z < wd:
                                acc += int(w[oc, ci, a, b]) * int(x[g * cg + ci, y, z])
                out[oc, i, j] = acc
    return out


@pytest.mark.parametrize("seed", range(12))
def test_conv_accumulate_matches_direct_loops(seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 3))
    c = groups * int(rng.integers(1, 3))
    o = groups * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    h, wd = int(rng.integers(5, 9)), int(rng.integers(5, 9))
    stride = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    w = rng.integers(-256, 256, size=(o, c // groups, kh, kw))
    x = rng.integers(0, 2 ** 20, size=(2, c, h, wd))  # graded payloads
    idx = conv_gather_index((c, h, wd), (kh, kw), stride, padding, dilation, groups)
    wg = w.reshape(groups, o // groups, -1).transpose(0, 2, 1).astype(np.int64)
    for use_float in (False, True):
        got = conv_accumulate(x.reshape(2, -1), idx, wg, wg.astype(np.float64) if use_float else None)
        for b in range(2):
            ref = _conv_reference(x[b], w, stride, padding, dilation, groups)
            np.testing.assert_array_equal(got[b], ref.reshape(-1).astype(np.int64))


def _lively_conv_net(rng, profile="loihi2", graded_bits=0, stride=None):
    """A conv -> LIF -> pool -> LIF -> flatten -> dense -> LIF net tuned so all layers spike
    (``stride``: the conv's, else drawn from 1 and 2)."""
    profile = nh.get_profile(profile)
    groups = int(rng.integers(1, 3))
    c_in = groups * int(rng.integers(1, 3))
    c_out = groups * int(rng.integers(1, 3))
    h, w = int(rng.integers(5, 10)), int(rng.integers(5, 10))
    k = int(rng.integers(1, 4))
    sign_mode = str(rng.choice(ir.SIGN_MODES[:2]))  # mixed or excitatory: enough drive
    lo, hi = profile.weight_range(sign_mode)

    def lif(name, shape):
        return ir.LIFPopulation(name, shape, du=int(rng.integers(0, 4096)),
                                dv=int(rng.integers(0, 4096)), vth=int(rng.integers(0, 40)),
                                bias_mant=rng.integers(-50, 50, size=shape),
                                bias_exp=rng.integers(0, 4, size=shape))

    conv = ir.Conv2d("conv", weight=rng.integers(max(lo, -60), hi + 1, size=(c_out, c_in // groups, k, k)),
                     weight_exp=int(rng.integers(0, 4)), num_weight_bits=int(rng.integers(4, 9)),
                     sign_mode=sign_mode, input_shape=(c_in, h, w),
                     stride=int(rng.integers(1, 3)) if stride is None else stride,
                     padding=int(rng.integers(0, k)), dilation=int(rng.integers(1, 3)) if k > 1 else 1,
                     groups=groups, num_message_bits=graded_bits)
    shape = conv.out_shape
    kp = 2 if min(shape[1:]) >= 2 else 1
    pool = ir.SumPool2d("pool", input_shape=shape, kernel_size=kp, stride=kp,
                        padding=int(rng.integers(0, kp)) if kp > 1 else 0)
    n_flat = int(np.prod(pool.out_shape))
    nodes = [ir.InputNode("input", (c_in, h, w)), conv, lif("conv_lif", shape), pool,
             lif("pool_lif", pool.out_shape), ir.Flatten("flat", input_shape=pool.out_shape),
             ir.Dense("dense", weight=rng.integers(-100, 255, size=(7, n_flat)), weight_exp=1),
             lif("out", (7,)), ir.OutputNode("output", (7,))]
    names = [n.name for n in nodes]
    return nh.Network({n.name: n for n in nodes}, list(zip(names[:-1], names[1:])), profile)


def _compare_with_lava(net, x):
    from test_emulate import _assert_matches_lava

    return _assert_matches_lava(net, x)


def _check_lively(seed, steps):
    rng = np.random.default_rng(seed)
    net = _lively_conv_net(rng, [LOIHI1_LAVA, "loihi2"][seed % 2])
    x = (rng.random((steps, net.nodes["input"].size if hasattr(net.nodes["input"], "size")
                     else int(np.prod(net.nodes["input"].shape)))) < 0.5).astype(np.int8)
    emu = _compare_with_lava(net, x)
    return emu


@pytest.mark.lava
@pytest.mark.parametrize("seed", range(3))
def test_conv_pool_flatten_bit_exact_vs_lava(seed):
    emu = _check_lively(seed, 25)
    # the test means something only if spikes travel through every layer
    assert emu.spikes["conv_lif"].any() and emu.spikes["pool_lif"].any()


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 40))
def test_conv_pool_flatten_bit_exact_vs_lava_slow(seed):
    _check_lively(seed, 40)


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40))
def test_random_conv_networks_full_range_vs_lava(seed):
    """random_network's conv front end draws every parameter over the full profile range."""
    rng = np.random.default_rng(1000 + seed)
    while True:  # draw until the net has a conv front end Lava can express (exp >= 0)
        net = random_network(rng, [LOIHI1_LAVA, "loihi2"][seed % 2], conv=True)
        if "conv" in net.nodes and net.nodes["conv"].weight_exp >= 0:
            break
    x = (rng.random((30, int(np.prod(net.nodes["input"].shape)))) < 0.5).astype(np.int8)
    _compare_with_lava(net, x)


@pytest.mark.lava
def test_conv_output_wraps_at_24_bits_like_lava():
    # 1x1 kernel, weight 255 << 7 = 32640, graded payload 400: 13,056,000 > 2**23 wraps
    nodes = [ir.InputNode("input", (1, 2, 2)),
             ir.Conv2d("conv", weight=np.full((1, 1, 1, 1), 255), weight_exp=7,
                       sign_mode="excitatory", input_shape=(1, 2, 2), num_message_bits=9),
             ir.LIFPopulation("l", (1, 2, 2), du=4095, dv=4095, vth=10)]
    net = nh.Network({n.name: n for n in nodes}, [("input", "conv"), ("conv", "l")], "loihi2")
    x = np.zeros((4, 4), np.int64)
    x[0] = [400, 10, 0, 300]
    emu = _compare_with_lava(net, x)
    # step 1 delivers the wrapped sum: 13,056,000 - 2**24 < 0; u = a << 6 fits int32,
    # then u's own 24-bit wrap applies (du=4095 means u starts from 0 every step)
    a = 400 * (255 << 7)
    assert 2 ** 23 < a < 2 ** 24
    u = (a - 2 ** 24) << 6
    if u <= -2 ** 23:  # Lava's one-shot 24-bit wrap of u
        u += 2 ** 24
    assert emu.u["l"][0, 1, 0] == u


@pytest.mark.lava
@pytest.mark.parametrize("seed", range(3))
def test_graded_input_dense_bit_exact_vs_lava(seed):
    rng = np.random.default_rng(seed)
    bits = int(rng.integers(1, 25))
    n_in, n = int(rng.integers(1, 20)), int(rng.integers(1, 10))
    dense = ir.Dense("d", weight=rng.integers(-256, 256, size=(n, n_in)),
                     weight_exp=int(rng.integers(-8, 8)), num_weight_bits=int(rng.integers(1, 9)),
                     num_message_bits=bits, delay=rng.integers(0, 5, size=(n, n_in)) if seed % 2 else None)
    pop = random_population(rng, "l", (n,), nh.LOIHI2)
    nodes = [ir.InputNode("input", (n_in,)), dense, pop]
    net = nh.Network({x.name: x for x in nodes}, [("input", "d"), ("d", "l")], "loihi2")
    x = rng.integers(0, 2 ** bits, size=(30, n_in))
    _compare_with_lava(net, x)


@pytest.mark.lava
def test_graded_conv_bit_exact_vs_lava():
    rng = np.random.default_rng(7)
    net = _lively_conv_net(rng, "loihi2", graded_bits=6)
    x = rng.integers(0, 64, size=(20, int(np.prod(net.nodes["input"].shape))))
    _compare_with_lava(net, x)


def test_negative_conv_exponent_floors_the_sum():
    rng = np.random.default_rng(3)
    w = rng.integers(-256, 256, size=(2, 1, 3, 3))
    conv = ir.Conv2d("conv", weight=w, weight_exp=-3, input_shape=(1, 5, 5), padding=1)
    nodes = [ir.InputNode("input", (1, 5, 5)), conv,
             ir.LIFPopulation("l", (2, 5, 5), du=4095, dv=4095, vth=(1 << 17) - 1)]
    net = nh.Network({n.name: n for n in nodes}, [("input", "conv"), ("conv", "l")], "loihi2")
    x = (rng.random((3, 25)) < 0.5).astype(np.int64)
    emu = run(net, x, record=("u",))
    w_eff = effective_weights(w, "mixed", 8)
    a = _conv_reference(x[0].reshape(1, 5, 5), w_eff, (1, 1), (1, 1), (1, 1), 1)
    a = np.array([int(v) >> 3 for v in a.reshape(-1)], dtype=np.int64)  # floor shift
    # du=4095: u decays fully each step, so u(1) = a << 6 (no wrap at these sizes)
    np.testing.assert_array_equal(emu.u["l"][0, 1], a << 6)


@pytest.mark.lava
def test_lava_backend_refuses_negative_conv_exponent():
    from neurohw.backends.lava import run_lava

    conv = ir.Conv2d("conv", weight=np.ones((1, 1, 1, 1)), weight_exp=-2, input_shape=(1, 2, 2))
    nodes = [ir.InputNode("input", (1, 2, 2)), conv, ir.LIFPopulation("l", (1, 2, 2), du=1, dv=1, vth=1)]
    net = nh.Network({n.name: n for n in nodes}, [("input", "conv"), ("conv", "l")], "loihi2")
    with pytest.raises(ValidationError, match=r"node 'conv': weight_exp=-2"):
        run_lava(net, np.zeros((2, 4)))


def test_conv_batch_equals_single_samples():
    rng = np.random.default_rng(11)
    net = _lively_conv_net(rng)
    x = (rng.random((5, 15, int(np.prod(net.nodes["input"].shape)))) < 0.4).astype(np.int8)
    batch = run(net, x, record=("spikes", "v", "u"))
    for b in range(5):
        one = run(net, x[b], record=("spikes", "v", "u"))
        for var in ("spikes", "v", "u"):
            for p in net.populations:
                np.testing.assert_array_equal(getattr(batch, var)[p][b], getattr(one, var)[p][0])


def test_projection_must_read_spikes():
    nodes = [ir.InputNode("input", (1, 4, 4)),
             ir.SumPool2d("pool", input_shape=(1, 4, 4)),
             ir.Flatten("flat", input_shape=(1, 2, 2)),
             ir.Dense("d", weight=np.ones((2, 4))),
             ir.LIFPopulation("l", (2,), du=1, dv=1, vth=1)]
    edges = [("input", "pool"), ("pool", "flat"), ("flat", "d"), ("d", "l")]
    with pytest.raises(ValidationError, match=r"node 'd': a Dense reads spikes .* not from SumPool2d 'pool'"):
        nh.Network({n.name: n for n in nodes}, edges, "loihi2")


@pytest.mark.lava
@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_binary_projection_reading_a_graded_input_sees_spikes(engine):
    """One input feeds a graded Dense and a binary Dense (and a binary Conv): the binary
    readers treat any non-zero payload as a spike, as Lava's models do (astype(bool))."""
    from neurohw.backends.lava import run_lava
    from neurohw.emulate import fast

    if engine == "numba" and not fast.available():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(21)
    nodes = [ir.InputNode("input", (1, 3, 3)),
             ir.Flatten("flat", input_shape=(1, 3, 3)),
             ir.Dense("g", weight=rng.integers(-50, 100, (4, 9)), num_message_bits=5),
             ir.LIFPopulation("pg", (4,), du=100, dv=100, vth=5000),
             ir.Dense("b", weight=rng.integers(-50, 100, (4, 9)), weight_exp=3),
             ir.LIFPopulation("pb", (4,), du=100, dv=100, vth=5000),
             ir.Conv2d("c", weight=rng.integers(0, 100, (2, 1, 2, 2)), sign_mode="excitatory",
                       input_shape=(1, 3, 3)),
             ir.LIFPopulation("pc", (2, 2, 2), du=100, dv=100, vth=5000)]
    edges = [("input", "flat"), ("flat", "g"), ("g", "pg"), ("flat", "b"), ("b", "pb"),
             ("input", "c"), ("c", "pc")]
    net = nh.Network({n.name: n for n in nodes}, edges, "loihi2")
    x = rng.integers(0, 32, (15, 9))
    emu = run(net, x, record=("spikes", "v", "u"), engine=engine)
    lava = run_lava(net, x, record=("spikes", "v", "u"))
    for var in ("v", "u", "spikes"):
        for p in ("pg", "pb", "pc"):
            np.testing.assert_array_equal(getattr(emu, var)[p][0], getattr(lava, var)[p],
                                          err_msg=f"{p}.{var}")


# --- per-tap products over stride phases (steps.ShiftedConv): any stride, SumPool2d -------


def _random_conv(rng, max_stride=3, max_og=3):
    """Random ``(in_shape, w, stride, padding, dilation, groups)`` with a non-empty output."""
    while True:
        groups = int(rng.integers(1, 4))
        c, o = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, max_og + 1))
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        h, wd = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        stride = tuple(int(v) for v in rng.integers(1, max_stride + 1, size=2))
        padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
        if min(h + 2 * padding[0] - dilation[0] * (kh - 1),
               wd + 2 * padding[1] - dilation[1] * (kw - 1)) >= 1:
            w = rng.integers(-256, 256, size=(o, c // groups, kh, kw))
            return (c, h, wd), w, stride, padding, dilation, groups


def _gather(x, w, stride, padding, dilation, groups):
    """The im2col gather path on ``x`` ``(B, C, H, W)``: the reference of the fast paths."""
    b, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    idx = conv_gather_index((c, h, wd), (kh, kw), stride, padding, dilation, groups)
    wg = w.reshape(groups, o // groups, -1).transpose(0, 2, 1).astype(np.int64)
    return conv_accumulate(x.reshape(b, -1), idx, wg)


def _expected_dtype(bound, elementwise):
    if elementwise:
        return np.int16 if bound < 2 ** 15 else np.int32 if bound < 2 ** 31 else np.int64
    return np.float32 if bound < 2 ** 24 else np.float64 if bound < 2 ** 53 else np.int64


@pytest.mark.parametrize("seed", range(60))
def test_shifted_conv_matches_gather_path_and_direct_loops(seed):
    """Same integers as the im2col path and direct loops over stride, groups (depthwise
    included: elementwise taps), padding, dilation, graded payloads, and weights/payloads
    that push the bound past float32 and float64 (int16/int32 for elementwise taps)."""
    from neurohw.emulate.steps import ShiftedConv

    rng = np.random.default_rng(500 + seed)
    (c, h, wd), w, stride, padding, dilation, groups = _random_conv(rng)
    if seed % 4 == 0:
        stride = (1, 1)
    scale = seed % 3  # 0: float32 / int16 bound, 1: float64 / int64, 2: int64
    w = w << (24 if scale == 2 else 0)
    pmax = [1, 2 ** 24 - 1, 2 ** 24 - 1][scale]
    x = rng.integers(0, pmax + 1, size=(3, c, h, wd)) * (rng.random((3, c, h, wd)) < 0.6)
    sc = ShiftedConv((c, h, wd), w, padding, dilation, groups, 3, pmax, stride=stride)
    bound = int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) * pmax
    assert sc.dtype == _expected_dtype(bound, w.shape[1] == 1)
    got = sc(x.reshape(3, -1))
    np.testing.assert_array_equal(got, _gather(x, w, stride, padding, dilation, groups))
    ref = _conv_reference(x[1], w, stride, padding, dilation, groups)
    np.testing.assert_array_equal(got[1], ref.reshape(-1).astype(np.int64))
    # a smaller batch reuses the buffers; binary spikes arrive as bool
    np.testing.assert_array_equal(sc(x[:1].reshape(1, -1)), got[:1])
    if pmax == 1:
        np.testing.assert_array_equal(sc(x.reshape(3, -1) != 0), got)
    if w.shape[1] > 1:  # the other of per-tap products and one product of stacked taps
        other = ShiftedConv((c, h, wd), w, padding, dilation, groups, 3, pmax, stride=stride,
                            stack=not sc.stacked)
        assert other.stacked != sc.stacked
        np.testing.assert_array_equal(other(x.reshape(3, -1)), got)


@pytest.mark.parametrize("elementwise", [False, True])
def test_shifted_conv_at_the_exactness_bounds(elementwise):
    """Sums one above a format's exact range must run in the next format and stay exact
    (float32 would turn 2**24 + 1 into 2**24, float64 2**53 + 1 into 2**53)."""
    from neurohw.emulate.steps import ShiftedConv

    edges = [2 ** 15, 2 ** 31, 2 ** 53] if elementwise else [2 ** 24, 2 ** 53]
    for edge in edges:
        for total in (edge - 1, edge + 1):
            if elementwise:  # depthwise 2x2, stride 2: each output sums 4 taps
                w = np.array([[[[total // 4, total // 4], [total // 4, total - 3 * (total // 4)]]],
                              [[[1, 2], [3, 4]]]], np.int64)
                groups, in_shape = 2, (2, 4, 6)
            else:  # two input channels, 1x1, stride 2
                w = np.array([[[[total // 2]], [[total - total // 2]]]], np.int64)
                groups, in_shape = 1, (2, 5, 5)
            for stack in (False, True):
                sc = ShiftedConv(in_shape, w, (0, 0), (1, 1), groups, 1, 1, stride=(2, 2),
                                 stack=stack)
                assert sc.dtype == _expected_dtype(total, elementwise), (edge, total)
                got = sc(np.ones((1, int(np.prod(in_shape))), np.int8))
                assert got.reshape(w.shape[0], -1)[0].tolist() == [total] * sc.oh * sc.ow


def test_shifted_conv_sumpool_and_phases():
    """SumPool2d's weights (ones per channel, one group per channel) take the add-only
    taps; a 1x1 stride-3 conv reads one phase of nine; all equal the gather path."""
    from neurohw.emulate.steps import ShiftedConv

    rng = np.random.default_rng(4)
    x = (rng.random((2, 3, 7, 8)) < 0.5).astype(np.int8)
    for k, st, pad in [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)),
                       ((2, 3), (1, 3), (1, 0))]:
        w = np.ones((3, 1) + k, np.int64)
        sc = ShiftedConv((3, 7, 8), w, pad, (1, 1), 3, 2, 1, stride=st)
        assert sc.ones and sc.elementwise and sc.macs == 0
        np.testing.assert_array_equal(sc(x.reshape(2, -1)), _gather(x, w, st, pad, (1, 1), 3))
    w = rng.integers(-9, 9, (4, 3, 1, 1))
    sc = ShiftedConv((3, 7, 8), w, (0, 0), (1, 1), 1, 2, 1, stride=(3, 3))
    assert len(sc.phases) == 1
    np.testing.assert_array_equal(sc(x.reshape(2, -1)), _gather(x, w, (3, 3), (0, 0), (1, 1), 1))


# --- event-driven scatter for sparse spikes (conv.ConvScatter) -------------------------------


def _needs_numba():
    from neurohw.emulate.conv import scatter_available

    if not scatter_available():
        pytest.skip("numba not installed")


@pytest.mark.parametrize("seed", range(40))
def test_conv_scatter_matches_gather_path(seed, monkeypatch):
    """Both scatter layouts (planes, channel-last) over stride, groups, padding, dilation,
    graded and int64-range payloads, batches, and activity from none to dense."""
    from neurohw.emulate import conv

    _needs_numba()
    rng = np.random.default_rng(700 + seed)
    (c, h, wd), w, stride, padding, dilation, groups = _random_conv(rng, max_og=6)
    monkeypatch.setattr(conv, "_CHANNEL_LAST_MIN", 1 if seed % 2 else 10 ** 6)
    scale = seed % 3
    w = w << (24 if scale == 2 else 0)
    pmax = [1, 2 ** 24 - 1, 2 ** 24 - 1][scale]
    rate = [0.0, 0.02, 0.3, 1.0][seed % 4]
    x = rng.integers(1, pmax + 1, size=(3, c, h, wd)) * (rng.random((3, c, h, wd)) < rate)
    cs = conv.ConvScatter((c, h, wd), w, stride, padding, dilation, groups, 3)
    assert cs.channel_last == bool(seed % 2)
    ref = _gather(x, w, stride, padding, dilation, groups)
    np.testing.assert_array_equal(cs(x.reshape(3, -1)), ref)
    np.testing.assert_array_equal(cs(x[2:].reshape(1, -1)), ref[2:])  # reused buffers
    if pmax == 1:
        np.testing.assert_array_equal(cs(x.reshape(3, -1) != 0), ref)


def test_scatter_cost_model():
    """The scatter is preferred for a handful of spikes on a big conv and not for dense
    activity; tiny convolutions never scatter (counting spikes would cost more)."""
    from neurohw.emulate.conv import ConvScatter, worth_scattering
    from neurohw.emulate.steps import ShiftedConv

    w = np.ones((32, 32, 3, 3), np.int64)
    for stride in ((1, 1), (2, 2)):
        d = ShiftedConv((32, 64, 64), w, (1, 1), (1, 1), 1, 2, 1, stride=stride)
        assert worth_scattering(d, 1)
        cs = ConvScatter((32, 64, 64), w, stride, (1, 1), (1, 1), 1, 2, dense=d)
        n_in = 32 * 64 * 64
        assert cs.prefer(0, 1) and cs.prefer(n_in // 1000, 2)
        assert not cs.prefer(n_in // 5, 1) and not cs.prefer(2 * n_in // 5, 2)
    tiny = ShiftedConv((1, 4, 4), np.ones((1, 1, 2, 2), np.int64), (0, 0), (1, 1), 1, 1, 1)
    assert not worth_scattering(tiny, 1)
    assert ConvScatter((32, 8, 8), w, (1, 1), (1, 1), (1, 1), 1, 1).prefer(0, 1) is False


def _same_size_conv_net(rng, profile="loihi2", graded_bits=0, h=8, w=8, c_mid=4):
    """Input -> 3x3 conv (padding 1) -> LIF -> 3x3 conv -> LIF: the shape of the 1M bench net."""
    profile = nh.get_profile(profile)

    def lif(name, shape):
        return ir.LIFPopulation(name, shape, du=int(rng.integers(0, 4096)),
                                dv=int(rng.integers(0, 4096)), vth=int(rng.integers(1, 60)),
                                bias_mant=rng.integers(-20, 20, size=shape),
                                bias_exp=rng.integers(0, 3, size=shape))

    exp = int(rng.integers(0, 4))
    c1 = ir.Conv2d("c1", weight=rng.integers(-60, 200, size=(c_mid, 2, 3, 3)), weight_exp=exp,
                   num_weight_bits=int(rng.integers(5, 9)), input_shape=(2, h, w), padding=1,
                   dilation=int(rng.integers(1, 3)) if h > 4 else 1, num_message_bits=graded_bits)
    c2 = ir.Conv2d("c2", weight=rng.integers(-60, 200, size=(c_mid, c_mid // 2, 3, 3)),
                   weight_exp=int(rng.integers(0, 3)), input_shape=c1.out_shape, padding=1,
                   groups=2)
    nodes = [ir.InputNode("input", (2, h, w)), c1, lif("l1", c1.out_shape), c2,
             lif("l2", c2.out_shape), ir.OutputNode("output", c2.out_shape)]
    names = [n.name for n in nodes]
    return nh.Network({n.name: n for n in nodes}, list(zip(names[:-1], names[1:])), profile)


@pytest.mark.parametrize("seed", range(6))
def test_shifted_conv_engines_equal_the_gather_path(seed, monkeypatch):
    """numpy engine == numba engine == the im2col path on stride-1 conv nets, batched."""
    from neurohw.emulate import engine as eng

    rng = np.random.default_rng(900 + seed)
    bits = [0, 0, 5][seed % 3]
    net = _same_size_conv_net(rng, "loihi2" if bits else [LOIHI1_LAVA, "loihi2"][seed % 2],
                              graded_bits=bits)
    hi = 2 if bits == 0 else 2 ** bits
    x = rng.integers(0, hi, size=(3, 15, 128)) * (rng.random((3, 15, 128)) < 0.5)
    rec = ("spikes", "u", "v")
    runs = [run(net, x, record=rec, engine="numpy")]
    from neurohw.emulate.engine import numba_available
    if numba_available():
        runs.append(run(net, x, record=rec, engine="numba"))
    monkeypatch.setattr(eng, "ShiftedConv", lambda *a, **k: None)  # force the old path
    runs.append(run(net, x, record=rec, engine="numpy"))
    assert runs[0].spikes["l2"].any()
    for r in runs[1:]:
        for var in rec:
            for k in ("l1", "l2"):
                np.testing.assert_array_equal(getattr(r, var)[k], getattr(runs[0], var)[k])


@pytest.mark.lava
@pytest.mark.parametrize("seed", range(2))
def test_same_size_conv_net_bit_exact_vs_lava(seed):
    rng = np.random.default_rng(70 + seed)
    net = _same_size_conv_net(rng, [LOIHI1_LAVA, "loihi2"][seed % 2], graded_bits=3 * seed)
    x = rng.integers(0, 2 if seed == 0 else 8, size=(20, 128)) * (rng.random((20, 128)) < 0.5)
    emu = _compare_with_lava(net, x)
    assert emu.spikes["l2"].any()


# --- whole networks: strided convs, SumPool2d and the scatter inside run() ------------------


def _force_scatter(monkeypatch, every=1):
    """Make run()'s conv projections scatter on every ``every``-th call (dense otherwise),
    whatever their size; returns the list the scattering calls are counted in."""
    from neurohw.emulate import conv

    monkeypatch.setattr(conv, "_MIN_DENSE_NS", 0.0)
    calls = []

    def prefer(self, nnz, batch):
        calls.append(nnz)
        return len(calls) % every == 0

    monkeypatch.setattr(conv.ConvScatter, "prefer", prefer)
    return calls


@pytest.mark.parametrize("seed", range(6))
def test_strided_conv_and_pool_engines_equal_the_gather_path(seed, monkeypatch):
    """numpy engine (phase products) == numba engine with the scatter on every other step ==
    the im2col path, on conv (stride 2 or 3) -> pool -> dense nets, batched, graded or not."""
    from neurohw.emulate import engine as eng

    _needs_numba()
    rng = np.random.default_rng(300 + seed)
    bits = [0, 0, 4][seed % 3]
    net = _lively_conv_net(rng, "loihi2" if bits else [LOIHI1_LAVA, "loihi2"][seed % 2],
                           graded_bits=bits, stride=2 + seed % 2)
    n_in = int(np.prod(net.nodes["input"].shape))
    hi = 2 if bits == 0 else 2 ** bits
    x = rng.integers(0, hi, size=(3, 20, n_in)) * (rng.random((3, 20, n_in)) < 0.5)
    rec = ("spikes", "u", "v")
    runs = [run(net, x, record=rec, engine="numpy")]
    calls = _force_scatter(monkeypatch, every=2)
    runs.append(run(net, x, record=rec, engine="numba"))
    assert len(calls) == 2 * 20  # conv and pool, every step
    monkeypatch.setattr(eng, "ShiftedConv", lambda *a, **k: None)  # force the old path
    runs.append(run(net, x, record=rec, engine="numpy"))
    assert runs[0].spikes["conv_lif"].any()  # so the pool sums spikes too
    for r in runs[1:]:
        for var in rec:
            for k in net.populations:
                np.testing.assert_array_equal(getattr(r, var)[k], getattr(runs[0], var)[k],
                                              err_msg=f"{k}.{var}")


def _check_scatter_vs_lava(seed, steps, monkeypatch):
    _needs_numba()
    rng = np.random.default_rng(seed)
    bits = 5 if seed % 3 == 2 else 0
    net = _lively_conv_net(rng, "loihi2" if bits else [LOIHI1_LAVA, "loihi2"][seed % 2],
                           graded_bits=bits, stride=1 + seed % 3)
    n_in = int(np.prod(net.nodes["input"].shape))
    x = rng.integers(1, 2 ** max(bits, 1), size=(steps, n_in)) * (rng.random((steps, n_in)) < 0.3)
    calls = _force_scatter(monkeypatch, every=1 + seed % 2)
    from test_emulate import _assert_matches_lava

    emu = _assert_matches_lava(net, x, engine="numba")
    assert calls
    return emu


@pytest.mark.lava
def test_strided_conv_pool_scatter_bit_exact_vs_lava(monkeypatch):
    emu = _check_scatter_vs_lava(1, 25, monkeypatch)  # stride 2, scatter every other step
    assert emu.spikes["conv_lif"].any() and emu.spikes["pool_lif"].any()


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 30))
def test_strided_conv_pool_scatter_bit_exact_vs_lava_slow(seed, monkeypatch):
    _check_scatter_vs_lava(seed, 30, monkeypatch)
