"""`neurohw inspect` on the newer neuron fields: refractory delay, v limits,
spike traces, the ELIF table, and which parameters are per neuron or shared."""

import json

import nir
import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.cli import main
from neurohw.testing import random_network

from conftest import small_chain


def _net(profile="loihi2", **pop):
    rng = np.random.default_rng(3)
    nodes = {
        "in": ir.InputNode("in", (5,)),
        "d": ir.Dense("d", weight=rng.integers(-256, 256, (4, 5))),
        "l": ir.LIFPopulation("l", (4,), **{"du": 100, "dv": 200, "vth": 50, "bias_mant": 3,
                                             "bias_exp": 1, **pop}),
        "out": ir.OutputNode("out", (4,)),
    }
    return nh.Network(nodes, [("in", "d"), ("d", "l"), ("l", "out")], profile)


def _inspect(tmp_path, capsys, net):
    p = tmp_path / "n.nir"
    nh.write_network(net, p)
    assert main(["inspect", str(p)]) == 0
    text = capsys.readouterr().out
    assert main(["inspect", "--json", str(p)]) == 0
    return text, json.loads(capsys.readouterr().out)


def _line(text, name):
    (line,) = [ln for ln in text.split("neuron fields (per population):")[1].splitlines()
               if ln.strip().startswith(name + ":")]
    return line


def test_plain_lif_defaults(tmp_path, capsys):
    text, data = _inspect(tmp_path, capsys, _net())
    nf = data["neuron_fields"]["l"]
    full = 2 ** 23 - 1  # loihi2 state_bits = 24
    assert nf == {"model": "lif", "neurons": 4, "per_neuron": [],
                  "shared": ["du", "dv", "vth", "bias_mant", "bias_exp", "refract_delay"],
                  "refract_delay": 0, "silent_steps": 0, "vmin": -full, "vmax": full,
                  "v_limits_default": True, "trace": None, "elif": None}
    line = _line(text, "l")
    assert "model lif; refract_delay 0 (none)" in line
    assert f"v in [-{full}, {full}] (profile default)" in line
    assert "trace none" in line and "ELIF" not in line
    assert "per neuron: none; shared: du, dv, vth, bias_mant, bias_exp, refract_delay" in line
    params = [it["param"] for it in data["bits"]["l"]]
    assert params == ["du", "dv", "vth", "bias_mant", "bias_exp"]  # no optional fields shown
    assert all(it["per_neuron"] is False for it in data["bits"]["l"])


def test_every_new_field(tmp_path, capsys):
    lut = np.arange(16) * 7
    net = _net(vth=[10, 20, 30, 40], refract_delay=[0, 2, 5, 1], vmin=-1000, vmax=2 ** 17 - 1,
               trace_impulse=20, trace_decay=300, trace_mode="set",
               elif_lut=lut, elif_lut_lo=-500, elif_lut_shift=4)
    text, data = _inspect(tmp_path, capsys, net)
    nf = data["neuron_fields"]["l"]
    assert nf["model"] == "elif"
    assert nf["per_neuron"] == ["vth", "refract_delay"]
    assert nf["shared"] == ["du", "dv", "bias_mant", "bias_exp"]
    assert nf["refract_delay"] == [0, 5] and nf["silent_steps"] == [0, 4]
    assert (nf["vmin"], nf["vmax"], nf["v_limits_default"]) == (-1000, 2 ** 17 - 1, False)
    assert nf["trace"] == {"impulse": 20, "decay": 300, "decay_bits": 12, "mode": "set",
                           "bits": 7}
    # entry k covers v in [lo + 16 k, lo + 16 (k + 1)): 16 entries span -500 .. -500 + 256 - 1
    assert nf["elif"] == {"table_size": 16, "lo": -500, "shift": 4, "values": [0, 105],
                          "v_span": [-500, -245]}
    bits = {it["param"]: it for it in data["bits"]["l"]}
    assert bits["refract_delay"] == {"param": "refract_delay", "value": [0, 5], "used": 3,
                                     "available": 6, "signed": False, "per_neuron": True}
    assert bits["vth"]["per_neuron"] is True and bits["du"]["per_neuron"] is False
    assert bits["vmin"] == {"param": "vmin", "value": -1000, "range": [-(2 ** 23 - 1), 0]}
    assert bits["vmax"]["value"] == 2 ** 17 - 1
    assert (bits["trace_impulse"]["used"], bits["trace_impulse"]["available"]) == (5, 7)
    assert (bits["trace_decay"]["used"], bits["trace_decay"]["available"]) == (9, 12)
    assert bits["elif_lut"]["value"] == [0, 105] and bits["elif_lut"]["used"] == 7
    line = _line(text, "l")
    for frag in ("model elif", "refract_delay 0..5 (0..4 silent steps, per neuron)",
                 f"v in [-1000, {2 ** 17 - 1}] (vmin/vmax set)",
                 "trace impulse 20, decay 300/2**12 per step, set, 7-bit",
                 "ELIF table 16 entries, lo -500, shift 4 (v -500..-245), values 0..105",
                 "per neuron: vth, refract_delay", "shared: du, dv, bias_mant, bias_exp"):
        assert frag in line, frag
    assert "refract_delay=0..5 (3/6 bits)" in text
    assert "trace_impulse=20 (5/7 bits)" in text
    assert "vmin=-1000 (range -8388607..0)" in text


def test_shared_refractory_and_loihi1_limits(tmp_path, capsys):
    net = _net("loihi1", refract_delay=3, vmin=-(2 ** 10) + 1, vmax=2 ** 11 - 1,
               trace_impulse=1, trace_decay=0)
    text, data = _inspect(tmp_path, capsys, net)
    nf = data["neuron_fields"]["l"]
    assert nf["refract_delay"] == 3 and nf["silent_steps"] == 2
    assert "refract_delay" in nf["shared"]
    assert (nf["vmin"], nf["vmax"]) == (-1023, 2047)
    assert nf["trace"]["mode"] == "additive"
    line = _line(text, "l")
    assert "refract_delay 3 (2 silent steps)" in line
    assert "v in [-1023, 2047] (vmin/vmax set)" in line
    assert "refract_delay=3 (2/6 bits)" in text


def test_only_vmax_set(tmp_path, capsys):
    _, data = _inspect(tmp_path, capsys, _net(vmax=5000))
    nf = data["neuron_fields"]["l"]
    assert nf["vmin"] == -(2 ** 23 - 1) and nf["vmax"] == 5000 and not nf["v_limits_default"]
    params = [it["param"] for it in data["bits"]["l"]]
    assert "vmax" in params and "vmin" not in params


@pytest.mark.parametrize("seed", range(4))
def test_per_neuron_lists_match_the_arrays(tmp_path, capsys, seed):
    rng = np.random.default_rng(seed)
    net = random_network(rng)
    _, data = _inspect(tmp_path, capsys, net)
    assert set(data["neuron_fields"]) == set(net.populations)
    for name, pop in net.populations.items():
        nf = data["neuron_fields"][name]
        per = [p for p in ("du", "dv", "vth", "bias_mant", "bias_exp", "refract_delay")
               if np.unique(np.asarray(getattr(pop, p))).size > 1]
        assert nf["per_neuron"] == per, name
        assert nf["neurons"] == pop.size
        rd = np.asarray(pop.refract_delay)
        want = int(rd.flat[0]) if np.unique(rd).size == 1 else [int(rd.min()), int(rd.max())]
        assert nf["refract_delay"] == want
        for it in data["bits"][name]:
            if it["param"] in per:
                assert it["per_neuron"] is True


def test_float_file_has_no_neuron_fields(tmp_path, capsys):
    p = tmp_path / "f.nir"
    nir.write(p, nh.network_to_nir(small_chain()))  # a quantized file ...
    assert main(["inspect", "--json", str(p)]) == 0
    assert "neuron_fields" in json.loads(capsys.readouterr().out)
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([3])}),
               "lin": nir.Linear(weight=np.ones((3, 3))),
               "lif": nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3),
                              v_threshold=np.ones(3), v_reset=np.zeros(3)),
               "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "lin"), ("lin", "lif"), ("lif", "output")])
    nir.write(p, g)  # ... and a float one
    assert main(["inspect", "--json", str(p)]) == 0
    assert "neuron_fields" not in json.loads(capsys.readouterr().out)
    assert main(["inspect", str(p)]) == 0
    assert "neuron fields" not in capsys.readouterr().out
