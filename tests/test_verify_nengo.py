"""`neurohw verify --against nengo-loihi`: the emulator against nengo-loihi 1.1.0's
Loihi 1 emulator (neurohw.backends.nengo_loihi), the divergence report, and the
one-line refusals of what nengo-loihi cannot express."""

import sys

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.backends.nengo_loihi import (check_nengo_loihi, nengo_loihi_available,
                                          require_nengo_loihi, run_nengo_loihi)
from neurohw.cli import main
from neurohw.emulate import run
from neurohw.errors import MissingDependencyError
from neurohw.verify import verify_against_nengo_loihi

needs_nengo = pytest.mark.skipif(not nengo_loihi_available(), reason="needs nengo-loihi")


def lively(profile="loihi1", n_in=8, seed=0, **extra):
    """Input -> Dense -> LIF (recurrent, refractory, v limits, trace) -> Sparse -> LIF."""
    rng = np.random.default_rng(seed)
    h, o = 12, 5
    nodes = {
        "in": ir.InputNode("in", (n_in,)),
        "w_in": ir.Dense("w_in", weight=rng.integers(-40, 120, (h, n_in)), weight_exp=-2),
        "hid": ir.LIFPopulation("hid", (h,), du=rng.integers(0, 800, h), dv=rng.integers(0, 400, h),
                                vth=rng.integers(100, 400, h), bias_mant=rng.integers(-30, 60, h),
                                bias_exp=extra.get("bias_exp", 1),
                                refract_delay=rng.integers(0, 5, h),
                                vmin=-(2 ** 12) + 1, vmax=2 ** 17 - 1,
                                trace_impulse=10, trace_decay=500),
        "w_rec": ir.Dense("w_rec", weight=rng.integers(-90, 40, (h, h)), weight_exp=-3),
        "w_out": ir.Sparse("w_out", weight=np.where(rng.random((o, h)) < 0.5,
                                                    rng.integers(1, 128, (o, h)), 0),
                           weight_exp=0, sign_mode="excitatory", num_weight_bits=6),
        "out": ir.LIFPopulation("out", (o,), du=300, dv=100, vth=3000, refract_delay=2),
        "readout": ir.OutputNode("readout", (o,)),
    }
    edges = [("in", "w_in"), ("w_in", "hid"), ("hid", "w_rec"), ("w_rec", "hid"),
             ("hid", "w_out"), ("w_out", "out"), ("out", "readout")]
    return nh.Network(nodes, edges, profile)


def _files(tmp_path, net, B=3, T=60, seed=1):
    rng = np.random.default_rng(seed)
    x = (rng.random((B, T, net.nodes["in"].shape[0])) < 0.4).astype(np.int8)
    model, xin = tmp_path / "m.q.nir", tmp_path / "x.npy"
    nh.write_network(net, model)
    np.save(xin, x)
    return model, xin, x


@needs_nengo
def test_cli_bit_exact_against_nengo_loihi(tmp_path, capsys):
    net = lively()
    model, xin, _ = _files(tmp_path, net)
    assert main(["verify", str(model), "--input", str(xin), "--against", "nengo-loihi"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{model}: bit-exact: 3 sample(s) x 60 steps, 6 recorded arrays, "
                          f"{3 * 60 * (12 + 5) * 3} values compared; spikes: hid ")
    counts = dict(part.split() for part in out.split("spikes: ")[1].split(", "))
    assert int(counts["hid"]) > 20 and int(counts["out"]) > 5  # not a vacuous comparison


@needs_nengo
def test_cli_reports_a_corrupted_emulator_value(tmp_path, capsys, monkeypatch):
    """One v value of the emulator's run changed by one: exit 1 and the first divergence
    names exactly that step, node, sample, neuron and both values."""
    import neurohw.verify as verify_mod

    real_run = verify_mod.run
    seen = {}

    def corrupted(*args, **kwargs):
        res = real_run(*args, **kwargs)
        v = np.array(res.v["hid"])
        seen["want"] = int(v[1, 17, 4])
        v[1, 17, 4] += 1
        res.v["hid"] = v
        return res

    monkeypatch.setattr(verify_mod, "run", corrupted)
    model, xin, _ = _files(tmp_path, lively())
    assert main(["verify", str(model), "--input", str(xin), "--against", "nengo-loihi"]) == 1
    out = capsys.readouterr().out.strip()
    want = seen["want"]
    assert want != 0  # a live membrane value, not a reset one
    assert out == (f"{model}: first divergence at step 17: node 'hid', sample 1, neuron 4, v: "
                   f"expected {want} (nengo-loihi), got {want + 1} (emulator); "
                   f"last equal step: 16")


@needs_nengo
def test_library_matches_reference_per_sample_and_negative_bias_exp():
    """A generic profile with Loihi 1's datapath and a negative bias exponent (a floor
    shift) verifies too, and the reference's rows are the emulator's rows."""
    prof = nh.generic("l1neg", semantics="loihi1", dendrite_bits=22)
    assert prof.bias_exp_min < 0
    net = lively(prof, bias_exp=-2)
    rng = np.random.default_rng(5)
    x = (rng.random((2, 40, 8)) < 0.5).astype(np.int8)
    res = verify_against_nengo_loihi(net, x)
    assert res.bit_exact, res.describe()
    assert res.spike_counts["hid"] > 0
    ref = run_nengo_loihi(net, x[1])
    emu = run(net, x, record=("spikes", "u", "v"))
    np.testing.assert_array_equal(ref["hid"]["v"], emu.v["hid"][1])
    np.testing.assert_array_equal(ref["out"]["spikes"], emu.spikes["out"][1])


@needs_nengo
def test_two_inputs_and_flatten():
    """Two Input nodes (one (C, H, W) behind a Flatten) into one population, given by name."""
    rng = np.random.default_rng(7)
    nodes = {"img": ir.InputNode("img", (2, 2, 2)),
             "flat": ir.Flatten("flat", input_shape=(2, 2, 2)),
             "da": ir.Dense("da", weight=rng.integers(-100, 128, (6, 8)), weight_exp=0),
             "tone": ir.InputNode("tone", (3,)),
             "db": ir.Dense("db", weight=rng.integers(-128, 128, (6, 3)), weight_exp=-1),
             "l": ir.LIFPopulation("l", (6,), du=500, dv=200, vth=rng.integers(50, 300, 6),
                                   refract_delay=3)}
    edges = [("img", "flat"), ("flat", "da"), ("da", "l"), ("tone", "db"), ("db", "l")]
    net = nh.Network(nodes, edges, "loihi1")
    x = {"img": (rng.random((2, 50, 8)) < 0.3).astype(np.int8),
         "tone": (rng.random((2, 50, 3)) < 0.3).astype(np.int8)}
    res = verify_against_nengo_loihi(net, x)
    assert res.bit_exact, res.describe()
    assert res.spike_counts["l"] > 10
    # the tone input matters: without it the reference differs from this run
    silent = run_nengo_loihi(net, {"img": x["img"][0], "tone": np.zeros((50, 3), np.int8)})
    assert not np.array_equal(silent["l"]["v"], run(net, x, record=("v",)).v["l"][0])


def _refusals():
    base = lively()

    def swap(profile="loihi1", **nodes):
        new = dict(base.nodes)
        new.update(nodes)
        return nh.Network(new, base.edges, profile)

    w = base.nodes["w_in"].weight
    conv = nh.Network(
        {"in": ir.InputNode("in", (1, 4, 4)),
         "c": ir.Conv2d("c", weight=np.ones((2, 1, 3, 3), np.int32), input_shape=(1, 4, 4)),
         "l": ir.LIFPopulation("l", (2, 2, 2), vth=1)},
        [("in", "c"), ("c", "l")], "loihi1")
    elif_pop = ir.LIFPopulation("hid", (12,), vth=50, elif_lut=[0, 1, 2], elif_lut_lo=0)
    graded_prof = nh.generic("graded1", semantics="loihi1", dendrite_bits=22,
                             graded_spike_bits=3)
    graded = nh.Network({"in": ir.InputNode("in", (2,)),
                         "d": ir.Dense("d", weight=[[1, 2]], num_message_bits=3),
                         "l": ir.LIFPopulation("l", (1,), vth=1)},
                        [("in", "d"), ("d", "l")], graded_prof)
    to_output = nh.Network({"in": ir.InputNode("in", (2,)), "d": ir.Dense("d", weight=[[1, 2]]),
                            "o": ir.OutputNode("o", (1,))}, [("in", "d"), ("d", "o")], "loihi1")
    return [
        (lively("loihi2"), "profile 'loihi2': semantics='lava'; nengo-loihi's emulator computes "
                           "semantics='loihi1'"),
        (nh.Network({"in": ir.InputNode("in", (2,)), "d": ir.Dense("d", weight=[[1, 2]]),
                     "l": ir.LIFPopulation("l", (1,), vth=1)}, [("in", "d"), ("d", "l")],
                    nh.generic("narrow1", semantics="loihi1", dendrite_bits=22, state_bits=16)),
         "profile 'narrow1': state_bits=16; nengo-loihi's emulator computes state_bits=24"),
        (swap(w_in=ir.Dense("w_in", weight=w, weight_exp=1, delay=np.ones(w.shape, int))),
         "node 'w_in': synaptic delays (max 1 steps); nengo-loihi's emulator has no synaptic "
         "delays"),
        (swap(w_out=ir.Sparse("w_out", weight=base.nodes["w_out"].weight, sign_mode="excitatory",
                              num_weight_bits=6, delay=3)),
         "node 'w_out': synaptic delays (max 3 steps)"),
        (conv, "node 'c': Conv2d; nengo-loihi's emulator is compared on Input -> Dense/Sparse -> "
               "LIF networks only"),
        (swap(hid=elif_pop), "node 'hid': ELIF"),
        (graded, "node 'd': num_message_bits=3 (graded spikes); nengo-loihi's emulator carries "
                 "binary spikes only"),
        (to_output, "node 'd': feeds OutputNode 'o'; a nengo-loihi Synapse feeds exactly one LIF "
                    "population"),
    ]


@pytest.mark.parametrize("k", range(8))
def test_refusals_name_node_and_reason(k):
    net, msg = _refusals()[k]
    with pytest.raises(nh.ValidationError) as err:
        check_nengo_loihi(net)
    assert msg in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("k", [0, 2, 4, 5])
def test_cli_refusal_is_one_line_before_the_emulator_runs(tmp_path, capsys, monkeypatch, k):
    import neurohw.verify as verify_mod

    def boom(*a, **kw):
        raise AssertionError("the emulator ran")

    monkeypatch.setattr(verify_mod, "run", boom)
    net, msg = _refusals()[k]
    model = tmp_path / "m.q.nir"
    nh.write_network(net, model)
    n = int(np.prod(net.nodes["in"].shape))
    np.save(tmp_path / "x.npy", np.zeros((5, n), np.int8))
    assert main(["verify", str(model), "--input", str(tmp_path / "x.npy"),
                 "--against", "nengo-loihi"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"neurohw verify: error: {model}: ") and msg in err


def test_missing_nengo_loihi_is_one_line_with_the_install_command(tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.setitem(sys.modules, "nengo_loihi", None)  # import nengo_loihi -> ImportError
    with pytest.raises(MissingDependencyError, match="pip install nengo==4.1.0 nengo-loihi==1.1.0"):
        require_nengo_loihi()
    model, xin, _ = _files(tmp_path, lively(), B=1, T=5)
    assert main(["verify", str(model), "--input", str(xin), "--against", "nengo-loihi"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("neurohw verify: error: verify --against nengo-loihi needs nengo-loihi "
                          "1.1.0, which is not importable")
    assert "install it with: pip install nengo==4.1.0 nengo-loihi==1.1.0" in err


def test_against_choices(tmp_path, capsys):
    model, xin, _ = _files(tmp_path, lively(), B=1, T=5)
    assert main(["verify", str(model), "--input", str(xin), "--against", "brian2"]) == 2
    assert "invalid choice: 'brian2'" in capsys.readouterr().err
    # the default is still Lava, which refuses the loihi1 profile (exit 2, one line)
    assert main(["verify", str(model), "--input", str(xin)]) == 2
    assert "Lava's fixed_pt models compute semantics='lava'" in capsys.readouterr().err
