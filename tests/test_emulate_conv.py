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


def _lively_conv_net(rng, profile="loihi2", graded_bits=0):
    """A conv -> LIF -> pool -> LIF -> flatten -> dense -> LIF net tuned so all layers spike."""
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
                     sign_mode=sign_mode, input_shape=(c_in, h, w), stride=int(rng.integers(1, 3)),
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


# --- stride-1 convolutions: one BLAS product per kernel tap (steps.ShiftedConv) -------------


@pytest.mark.parametrize("seed", range(40))
def test_shifted_conv_matches_gather_path_and_direct_loops(seed):
    """Same integers as the im2col path and direct loops: groups, padding, dilation,
    graded payloads, and weights/payloads that push the bound past float32 and float64."""
    from neurohw.emulate.steps import ShiftedConv

    rng = np.random.default_rng(500 + seed)
    groups = int(rng.integers(1, 4))
    c, o = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    h, wd = int(rng.integers(3, 9)), int(rng.integers(3, 9))
    padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    if h + 2 * padding[0] - dilation[0] * (kh - 1) < 1 or wd + 2 * padding[1] - dilation[1] * (kw - 1) < 1:
        padding = (kh * dilation[0], kw * dilation[1])
    scale = seed % 3  # 0: float32 bound, 1: float64, 2: int64
    w = rng.integers(-256, 256, size=(o, c // groups, kh, kw)) << (24 if scale == 2 else 0)
    pmax = [1, 2 ** 24 - 1, 2 ** 24 - 1][scale]
    x = rng.integers(0, pmax + 1, size=(3, c, h, wd))
    sc = ShiftedConv((c, h, wd), w, padding, dilation, groups, 3, pmax)
    assert sc.dtype == [np.float32, np.float64, np.int64][scale]
    got = sc(x.reshape(3, -1))
    idx = conv_gather_index((c, h, wd), (kh, kw), (1, 1), padding, dilation, groups)
    wg = w.reshape(groups, o // groups, -1).transpose(0, 2, 1).astype(np.int64)
    np.testing.assert_array_equal(got, conv_accumulate(x.reshape(3, -1), idx, wg))
    ref = _conv_reference(x[1], w, (1, 1), padding, dilation, groups)
    np.testing.assert_array_equal(got[1], ref.reshape(-1).astype(np.int64))
    # a smaller batch reuses the buffers
    np.testing.assert_array_equal(sc(x[:1].reshape(1, -1)), got[:1])


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
