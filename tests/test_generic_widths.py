"""Every profile width the quantizer uses: decay_bits, act_shift, state_bits, vth_shift,
weight and bias ranges; generic(...) profiles on the command line; populations a chip
can never fire; a trained model's accuracy under other widths."""

import json
from pathlib import Path

import nir
import numpy as np
import pytest

from neurohw import read_network
from neurohw.cli import main
from neurohw.emulate import run
from neurohw.errors import ValidationError
from neurohw.floatview import float_view_weight
from neurohw.profiles import LOIHI2, generic, parse_profile
from neurohw.quantize import quantize
from neurohw.quantize.core import usable_vth_max
from neurohw.quantize.report import evaluate, format_report, report_dict

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "digits.nir"
DATA = ROOT / "examples" / "models" / "digits_data.npz"
DT = 1e-3


def _lif(n, tau=2e-3, thr=1.0):
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.full(n, thr), v_reset=np.zeros(n))


def _one_layer(w, neuron=_lif):
    w = np.asarray(w, float)
    nodes = {"input": nir.Input(input_type={"input": np.array([w.shape[1]])}),
             "fc": nir.Linear(w), "l": neuron(w.shape[0]),
             "output": nir.Output(output_type={"output": np.array([w.shape[0]])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "l"), ("l", "output")],
                        type_check=False)


# --- generic(...) from text --------------------------------------------------------------------
def test_parse_profile_names_and_fields():
    assert parse_profile("loihi2") == LOIHI2
    p = parse_profile(" generic( act_shift = 5, decay_bits=10 ,state_bits=16) ")
    assert (p.act_shift, p.decay_bits, p.state_bits) == (5, 10, 16)
    assert p.weight_bits == generic().weight_bits
    assert parse_profile("generic(weight_exp_min=-3)").weight_exp_min == -3
    assert parse_profile("generic()") == generic()


@pytest.mark.parametrize("text, msg", [
    ("generic(foo=1)", "unknown field 'foo'; known: weight_bits"),
    ("generic(act_shift=five)", "act_shift='five' is not an integer"),
    ("generic(act_shift=__import__('os').getpid())", "is not an integer"),
    ("generic(act_shift=1.5)", "is not an integer"),
    ("generic(act_shift=5,act_shift=6)", "act_shift is given twice"),
    ("generic(act_shift)", "is not field=value"),
    ("generic(act_shift=5", "expected a name"),
    ("loihi3", "unknown profile 'loihi3'"),
    ("generic(state_bits=40)", "state_bits=40 exceeds 32"),
])
def test_parse_profile_errors_are_one_line(text, msg):
    with pytest.raises(ValidationError, match=None) as exc:
        parse_profile(text)
    assert msg in str(exc.value) and "\n" not in str(exc.value)


def test_cli_profile_generic(tmp_path, capsys):
    out = tmp_path / "q.nir"
    rc = main(["quantize", str(MODEL), "-o", str(out), "--profile",
               "generic(act_shift=5,decay_bits=10)"])
    assert rc == 0
    net = read_network(out)
    assert (net.profile.act_shift, net.profile.decay_bits) == (5, 10)
    assert all(int(p.du.max()) <= 1023 and int(p.dv.max()) <= 1023 for p in net.populations.values())
    capsys.readouterr()
    rc = main(["quantize", str(MODEL), "-o", str(tmp_path / "r.nir"), "--profile", "generic(bogus=3)"])
    err = capsys.readouterr().err
    assert rc == 2 and "--profile" in err and "unknown field 'bogus'" in err and err.count("\n") == 1
    assert not (tmp_path / "r.nir").exists()


# --- each width ------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 10, 12, 14])
def test_decays_are_fractions_of_two_to_decay_bits(bits):
    rng = np.random.default_rng(bits)
    n = 6
    ts, tm = rng.uniform(2e-3, 2e-2, n), rng.uniform(2e-3, 2e-2, n)
    cuba = lambda k: nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=np.ones(k), v_leak=np.zeros(k),  # noqa: E731
                                 v_threshold=np.ones(k), v_reset=np.zeros(k), w_in=np.ones(k))
    m = quantize(_one_layer(rng.normal(0.3, 1, (n, 5)), cuba), generic(decay_bits=bits), dt=DT)
    pop = m.network.populations["l"]
    assert np.array_equal(pop.dv.reshape(-1), np.rint(2**bits * DT / tm))
    assert np.array_equal(pop.du.reshape(-1), np.rint(2**bits * DT / ts) - 1)
    lif = quantize(_one_layer(np.ones((2, 3))), generic(decay_bits=bits), dt=DT)
    assert lif.network.populations["l"].uniform("du") == 2**bits - 1  # u holds one step's input


@pytest.mark.parametrize("act_shift", [0, 3, 5, 6, 7, 9])
def test_weights_follow_act_shift(act_shift):
    rng = np.random.default_rng(act_shift)
    w = rng.normal(0.2, 1.0, (8, 12))
    profile = generic(act_shift=act_shift)
    m = quantize(_one_layer(w), profile, dt=DT)
    nm = m.neurons["l"]
    (proj,) = m.network.projections.values()
    # what the chip adds to u per spike, back in float units, is the float weight
    eff = float_view_weight(proj, profile) * 2.0**act_shift / (nm.scale * nm.gain)[:, None]
    assert np.sqrt(np.mean((eff - w) ** 2)) / np.sqrt(np.mean(w**2)) < 0.02
    x = (rng.random((4, 60, 12)) < 0.3).astype(np.int8)
    assert evaluate(m, x).layers["l"]["count_corr"] > 0.95


@pytest.mark.parametrize("state_bits, vth_shift, top", [(24, 6, 131071), (16, 6, 511), (12, 6, 31),
                                                        (16, 0, 32766), (20, 10, 511)])
def test_usable_threshold_ceiling(state_bits, vth_shift, top):
    p = generic(state_bits=state_bits, vth_shift=vth_shift)
    limit = 2 ** (state_bits - 1) - 1
    top = min(top, 2**p.vth_bits - 1)
    assert usable_vth_max(p) == top
    assert top << vth_shift < limit and (top + 1) << vth_shift >= limit


@pytest.mark.parametrize("state_bits", [12, 16, 20])
def test_narrow_state_keeps_thresholds_reachable(state_bits):
    """The 9-bit threshold floor once gave vth=512, i.e. 512 << 6 = 2**15 > 2**15 - 1 with 16-bit
    state: nothing could ever fire. Floor and ceiling now follow state_bits."""
    rng = np.random.default_rng(state_bits)
    w = np.abs(rng.normal(0.5, 0.5, (6, 400)))  # wide: the worst-case bound asks for a tiny vth
    profile = generic(state_bits=state_bits)
    m = quantize(_one_layer(w), profile, dt=DT)
    pop = m.network.populations["l"]
    assert int(pop.vth.max()) << profile.vth_shift < 2 ** (state_bits - 1) - 1
    assert not m.warnings
    x = (rng.random((2, 50, 400)) < 0.2).astype(np.int8)
    assert run(m.network, x).spikes["l"].sum() > 0


def test_no_usable_threshold_is_an_error():
    with pytest.raises(ValidationError, match="population 'l'.*no usable threshold"):
        quantize(_one_layer(np.ones((2, 3))), generic(state_bits=8, vth_shift=7), dt=DT)


def _starved(n_dead, n_ok, rng):
    """Rows with one huge inhibitory weight and many tiny excitatory ones: with the weight
    exponent pinned to 0, the tiny ones round to 0 although together they fire the float neuron."""
    n_in = 2001
    w = np.zeros((n_dead + n_ok, n_in))
    w[:n_dead, 0] = -1000.0
    w[:n_dead, 1:] = 1e-3
    w[n_dead:] = np.abs(rng.normal(0.02, 0.01, (n_ok, n_in)))
    # a different threshold makes the healthy rows a neuron type of their own (one vth per type)
    return _one_layer(w, lambda n: nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n),
                                          v_threshold=np.r_[np.ones(n_dead), np.full(n_ok, 1.2)],
                                          v_reset=np.zeros(n)))


def test_population_that_can_never_fire_is_an_error():
    prof = generic(weight_exp_min=0, weight_exp_max=0)
    with pytest.raises(ValidationError) as exc:
        quantize(_starved(3, 0, np.random.default_rng(0)), prof, dt=DT, source="m.nir")
    msg = str(exc.value)
    assert "m.nir: population 'l' can never fire on the chip although the float model can" in msg
    assert "state_bits=24" in msg and "\n" not in msg


def test_neurons_that_can_never_fire_are_a_loud_warning(tmp_path, capsys):
    g = _starved(2, 4, np.random.default_rng(1))
    prof = generic(weight_exp_min=0, weight_exp_max=0)
    m = quantize(g, prof, dt=DT)
    assert len(m.warnings) == 1 and "population 'l': 2 of 6 neurons can never fire" in m.warnings[0]
    text = format_report(m)
    assert text.splitlines()[2].startswith("WARNING: population 'l': 2 of 6")
    assert report_dict(m)["warnings"] == m.warnings
    # the bound is real: the chip never fires them, the float model does
    x = np.ones((1, 40, 2001), np.int8)
    x[..., 0] = 0
    ev = evaluate(m, x)
    assert ev.chip_spikes["l"][..., :2].sum() == 0 and ev.float_spikes["l"][..., :2].sum() > 0
    src = tmp_path / "s.nir"
    nir.write(src, g)
    rc = main(["quantize", str(src), "-o", str(tmp_path / "q.nir"), "--dt", "1e-3", "--profile",
               "generic(weight_exp_min=0,weight_exp_max=0)", "--report", str(tmp_path / "rep")])
    cap = capsys.readouterr()
    assert rc == 0 and "warning: population 'l': 2 of 6 neurons can never fire" in cap.err
    assert cap.out.splitlines()[2].startswith("WARNING:")
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["warnings"] and "2 of 6" in rep["warnings"][0]


def test_float_dead_neurons_are_only_a_note():
    w = np.array([[-1.0, -2.0], [1.0, 2.0]])
    m = quantize(_one_layer(w), "loihi2", dt=DT)
    assert not m.warnings
    assert any("1 of 2 neurons can never reach their threshold in the float model" in n
               for n in m.all_notes())


# --- a trained model under other widths ---------------------------------------------------------
@pytest.mark.parametrize("spec", [
    "generic(act_shift=5)", "generic(act_shift=7)", "generic(decay_bits=10)", "generic(state_bits=16)",
    "generic(act_shift=5,decay_bits=10,state_bits=16)", "generic(act_shift=7,decay_bits=10,state_bits=16)",
])
def test_trained_model_keeps_its_accuracy_under_other_widths(spec):
    data = np.load(DATA)
    profile = parse_profile(spec)
    model = quantize(MODEL, profile, calibrate=data["x_train"])
    assert model.network.profile == profile and not model.warnings
    ev = evaluate(model, data["x_test"], data["y_test"])
    assert ev.accuracy_float > 0.9
    assert ev.accuracy_chip >= ev.accuracy_float - 0.03, (spec, ev.accuracy_chip, ev.accuracy_float)
    for name, r in ev.layers.items():
        assert r["count_corr"] > 0.98, (spec, name, r)


@pytest.mark.parametrize("fields", [dict(weight_bits=4, bias_bits=6),
                                    dict(weight_bits=12, bias_bits=20, bias_exp_min=-2, bias_exp_max=2),
                                    dict(weight_bits=8, weight_exp_min=-2, weight_exp_max=2, bias_bits=9)])
def test_weight_and_bias_ranges_follow_the_profile(fields):
    rng = np.random.default_rng(len(fields))
    n, n_in = 10, 16
    w = rng.normal(0.0, 1.0, (n, n_in))
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc": nir.Affine(w, rng.normal(0.0, 0.3, n)), "l": _lif(n),
             "output": nir.Output(output_type={"output": np.array([n])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "l"), ("l", "output")],
                     type_check=False)
    profile = generic(**fields)
    m = quantize(g, profile, dt=DT)
    (proj,) = m.network.projections.values()
    lo, hi = profile.weight_range(proj.sign_mode)
    assert lo <= proj.weight.min() and proj.weight.max() <= hi
    assert profile.weight_exp_min <= proj.weight_exp <= profile.weight_exp_max
    assert proj.num_weight_bits == profile.weight_bits
    # the wider the mantissa, the smaller the weight error
    assert m.projections[0].weight_error < 2.0 ** (2 - profile.weight_bits)
    pop = m.network.populations["l"]
    b_lo, b_hi = profile.range_of("bias_mant")
    assert b_lo <= pop.bias_mant.min() and pop.bias_mant.max() <= b_hi
    assert profile.bias_exp_min <= pop.bias_exp.min() and pop.bias_exp.max() <= profile.bias_exp_max
    nm = m.neurons["l"]
    eff = pop.bias_mant.astype(float) * 2.0 ** pop.bias_exp.astype(float)
    # rounded to the nearest multiple of 2**bias_exp, the smallest exponent whose mantissa fits
    assert np.all(np.abs(eff - nm.bias_target) <= 0.5 * 2.0 ** pop.bias_exp + 1e-9)
    smaller = pop.bias_exp > profile.bias_exp_min
    assert np.all(np.abs(nm.bias_target[smaller]) / 2.0 ** (pop.bias_exp[smaller] - 1) > b_hi - 0.5)
