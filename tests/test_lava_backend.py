"""Lava importable on Python 3.11 through neurohw, and a LIF network run in fixed_pt.

The expected values come from an independent pure-Python-integer model of
Lava's documented fixed-point semantics (written here, per neuron, with
Python ints that cannot overflow), not from neurohw's own code.
"""

import sys

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.backends.lava import _compat, import_lava, run_lava

pytestmark = pytest.mark.lava


def test_import_lava_applies_compat_patch():
    import_lava()
    from lava.magma.compiler import var_model

    assert var_model.ByteEncoder.__dataclass_params__.frozen
    if sys.version_info >= (3, 11):
        assert _compat.was_patched()
    # installing twice leaves a single finder
    _compat.install()
    _compat.install()
    assert sum(isinstance(f, _compat._LavaVarModelFinder) for f in sys.meta_path) == 1


def _trunc_shift(x: int, shift: int = 12) -> int:
    return -((-x) >> shift) if x < 0 else x >> shift


def reference_run(net: nh.Network, x: np.ndarray):
    """Python-int model: Dense delivers one step late; CUBA LIF as Lava's PyLifModelBitAcc."""
    order = [n for n in net.nodes if isinstance(net.nodes[n], ir.LIFPopulation)]
    inp = next(iter(net.of_type(ir.InputNode)))
    T = x.shape[0]
    state = {p: {"u": [0] * net.nodes[p].size, "v": [0] * net.nodes[p].size} for p in order}
    spikes_prev = {p: [0] * net.nodes[p].size for p in order}
    pending = {d: [0] * net.nodes[d].weight.shape[0] for d in net.projections}
    out = {p: {"spikes": [], "v": [], "u": []} for p in order}
    half = 2**23
    for t in range(T):
        src_now = {inp: [int(v) for v in x[t]]}
        # every Dense sends what it accumulated in the previous step
        delivered = {d: list(pending[d]) for d in net.projections}
        acts = {p: [0] * net.nodes[p].size for p in order}
        for d in net.projections:
            (tgt,) = net.successors(d)
            for i, a in enumerate(delivered[d]):
                acts[tgt][i] += a
        new_spikes = {}
        for p in order:
            pop = net.nodes[p]
            s = []
            for i in range(pop.size):
                u, v = state[p]["u"][i], state[p]["v"][i]
                u = _trunc_shift(u * (4096 - (int(pop.du.flat[i]) + 1))) + (acts[p][i] << 6)
                if u > half:
                    u -= 2 * half
                elif u <= -half:
                    u += 2 * half
                b, e = int(pop.bias_mant.reshape(-1)[i]), int(pop.bias_exp.reshape(-1)[i])
                bias = b << e if e >= 0 else b >> -e
                v = _trunc_shift(v * (4096 - int(pop.dv.flat[i]))) + u + bias
                v = max(-(half - 1), min(half - 1, v))
                fire = v > (int(pop.vth.flat[i]) << 6)
                if fire:
                    v = 0
                state[p]["u"][i], state[p]["v"][i] = u, v
                s.append(int(fire))
            new_spikes[p] = s
            out[p]["spikes"].append(s)
            out[p]["u"].append(list(state[p]["u"]))
            out[p]["v"].append(list(state[p]["v"]))
        # accumulate this step's input spikes for delivery next step
        for d, proj in net.projections.items():
            (src,) = net.predecessors(d)
            s_in = src_now[src] if src in src_now else new_spikes[src]
            w = nh.fixedpoint.effective_weights(proj.weight, proj.sign_mode, proj.num_weight_bits)
            acc = [sum(int(w[i, j]) * s_in[j] for j in range(len(s_in))) for i in range(w.shape[0])]
            e = proj.weight_exp
            pending[d] = [a << e if e >= 0 else a >> -e for a in acc]
        spikes_prev = new_spikes
    return {p: {k: np.array(v, dtype=np.int64) for k, v in out[p].items()} for p in order}


def _net(rng, n_in=6, n_hidden=5, n_out=3, profile="loihi2"):
    def pop(name, n):
        return ir.LIFPopulation(
            name, (n,), du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)),
            vth=int(rng.integers(0, 2**12)), bias_mant=rng.integers(-4096, 4096, n),
            bias_exp=rng.integers(0, 8, n))

    def dense(name, n_o, n_i):
        mode = str(rng.choice(ir.SIGN_MODES))
        lo, hi = nh.LOIHI2.weight_range(mode)
        return ir.Dense(name, weight=rng.integers(lo, hi + 1, (n_o, n_i)),
                        weight_exp=int(rng.integers(-8, 8)),
                        num_weight_bits=int(rng.integers(1, 9)), sign_mode=mode)

    nodes = {
        "in": ir.InputNode("in", (n_in,)),
        "d1": dense("d1", n_hidden, n_in),
        "h": pop("h", n_hidden),
        "d2": dense("d2", n_out, n_hidden),
        "o": pop("o", n_out),
        "rec": dense("rec", n_hidden, n_out),
    }
    edges = [("in", "d1"), ("d1", "h"), ("h", "d2"), ("d2", "o"), ("o", "rec"), ("rec", "h")]
    return nh.Network(nodes, edges, profile)


def test_lif_network_runs_10_steps_in_lava_fixed_pt():
    rng = np.random.default_rng(7)
    net = _net(rng)
    x = rng.integers(0, 2, (10, 6))
    run = run_lava(net, x, record=("spikes", "v", "u"))
    assert run.num_steps == 10
    want = reference_run(net, x)
    for p in ("h", "o"):
        assert run.spikes[p].shape == (10, net.nodes[p].size)
        np.testing.assert_array_equal(run.u[p], want[p]["u"], err_msg=f"{p}.u")
        np.testing.assert_array_equal(run.v[p], want[p]["v"], err_msg=f"{p}.v")
        np.testing.assert_array_equal(run.spikes[p], want[p]["spikes"], err_msg=f"{p}.spikes")


def test_bias_driven_neuron_spikes_at_analytic_steps():
    # dv = 0 (no leak), no input: v grows by bias each step and fires when v > vth*64
    nodes = {
        "in": ir.InputNode("in", (1,)),
        "d": ir.Dense("d", weight=[[0]]),
        "l": ir.LIFPopulation("l", (1,), du=0, dv=0, vth=10, bias_mant=100, bias_exp=0),
    }
    net = nh.Network(nodes, [("in", "d"), ("d", "l")], "loihi2")
    run = run_lava(net, np.zeros((10, 1), int), record=("spikes", "v"))
    # 640 / 100 -> the 7th step exceeds 640 (v = 700), then v resets to 0
    assert run.spikes["l"][:, 0].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert run.v["l"][:, 0].tolist() == [100, 200, 300, 400, 500, 600, 0, 100, 200, 300]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_random_networks_match_reference_slow(seed):
    rng = np.random.default_rng(1000 + seed)
    net = _net(rng, n_in=int(rng.integers(1, 10)), n_hidden=int(rng.integers(1, 10)),
               n_out=int(rng.integers(1, 6)))
    x = rng.integers(0, 2, (25, net.nodes["in"].shape[0]))
    run = run_lava(net, x, record=("spikes", "v", "u"))
    want = reference_run(net, x)
    for p in ("h", "o"):
        np.testing.assert_array_equal(run.u[p], want[p]["u"])
        np.testing.assert_array_equal(run.v[p], want[p]["v"])
        np.testing.assert_array_equal(run.spikes[p], want[p]["spikes"])


def test_network_without_population_is_refused():
    c = ir.Conv2d("c", weight=np.ones((1, 1, 1, 1), int), input_shape=(1, 2, 2))
    net = nh.Network({"in": ir.InputNode("in", (1, 2, 2)), "c": c}, [("in", "c")], "loihi2")
    with pytest.raises(nh.ValidationError, match="no LIF population to record"):
        run_lava(net, np.zeros((3, 4), int))


def test_bad_input_shape():
    net = _net(np.random.default_rng(0))
    with pytest.raises(nh.ValidationError, match=r"input for node 'in': shape \(10, 5\), expected \(T, 6\)"):
        run_lava(net, np.zeros((10, 5), int))
    with pytest.raises(nh.ValidationError, match=r"x\[0, 0\]=2 above allowed range \[0, 1\] \(binary spikes\)"):
        run_lava(net, np.full((10, 6), 2))


def test_lava_imports_after_the_start_method_was_fixed(tmp_path):
    """Lava sets multiprocessing's start method at import and fails if one is already
    fixed (numba's parallel backend fixes it); neurohw's import_lava copes. Fresh process."""
    import subprocess
    import sys

    code = ("import multiprocessing as mp; mp.get_start_method()\n"
            "from neurohw.backends.lava import import_lava; import_lava()\n"
            "print(mp.get_start_method())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip().endswith("fork")
