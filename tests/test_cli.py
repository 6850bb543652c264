import json
import subprocess
import sys

import h5py
import nir
import numpy as np
import pytest

import neurohw as nh
from neurohw.cli import main
from neurohw.testing import random_network

from conftest import small_chain


def _float_graph():
    rng = np.random.default_rng(1)
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([10])}),
            "lin": nir.Affine(weight=rng.normal(size=(5, 10)), bias=np.zeros(5)),
            "lif": nir.LIF(tau=np.full(5, 0.01), r=np.ones(5), v_leak=np.zeros(5),
                           v_threshold=np.ones(5), v_reset=np.zeros(5)),
            "output": nir.Output(output_type={"output": np.array([5])}),
        },
        edges=[("input", "lin"), ("lin", "lif"), ("lif", "output")],
    )
    s = (2, 8, 8)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
            "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(size=(2, 1, 3, 3)), stride=1,
                               padding=1, dilation=1, groups=1, bias=np.zeros(2)),
            "cuba": nir.CubaLIF(tau_mem=np.full(s, 0.02), tau_syn=np.full(s, 0.01), r=np.ones(s),
                                v_leak=np.zeros(s), v_threshold=np.ones(s), v_reset=np.zeros(s),
                                w_in=np.ones(s)),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                  padding=np.array([0, 0])),
            "flat": nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0, end_dim=-1),
            "aff": nir.Affine(weight=rng.normal(size=(10, 32)), bias=np.zeros(10)),
            "sub": sub,
            "output": nir.Output(output_type={"output": np.array([5])}),
        },
        edges=[("input", "conv"), ("conv", "cuba"), ("cuba", "pool"), ("pool", "flat"),
               ("flat", "aff"), ("aff", "sub"), ("sub", "output")],
    )


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"neurohw {nh.__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "inspect" in out
    assert main([]) == 2


def test_inspect_float_nested_conv(tmp_path, capsys):
    p = tmp_path / "float.nir"
    nir.write(p, _float_graph())
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "unquantized" in out
    assert "nested graphs" in out
    for name, typ in [("conv", "Conv2d"), ("pool", "SumPool2d"), ("flat", "Flatten"), ("lif", "LIF")]:
        assert any(name in line and typ in line for line in out.splitlines()), name
    # neurons: 2*8*8 CubaLIF + 5 LIF
    assert "133 neurons" in out
    assert main(["inspect", "--json", str(p)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["quantized"] is False and data["neurons"] == 133
    rows = {r["name"]: r for r in data["nodes"]}
    assert rows["sub.lin"]["synapses"] == 50 and rows["sub.lin"]["depth"] == 1
    assert rows["pool"]["out_shape"] == [2, 4, 4]


def test_inspect_quantized_bit_usage(tmp_path, capsys):
    net = small_chain(vth=1000, bias_mant=[-4096, 0, 5, 4095])
    p = tmp_path / "q.nir"
    nh.write_network(net, p)
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "quantized for loihi2" in out
    assert "vth=1000 (10/17 bits)" in out
    assert "bias_mant=-4096..4095 (13/13 bits signed FULL)" in out
    assert main(["inspect", "--json", str(p)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"] == "loihi2"
    assert data["synapses"] == net.num_synapses


@pytest.mark.parametrize("seed", range(5))
def test_inspect_random_quantized(tmp_path, capsys, seed):
    net = random_network(np.random.default_rng(seed))
    p = tmp_path / "r.nir"
    nh.write_network(net, p)
    assert main(["inspect", "--json", str(p)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["neurons"] == net.num_neurons


def _bad_files(tmp_path):
    empty = tmp_path / "empty.nir"
    empty.write_bytes(b"")
    text = tmp_path / "text.nir"
    text.write_text("not nir")
    h5 = tmp_path / "plain.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = 1
    bad_type = tmp_path / "badtype.nir"
    with h5py.File(bad_type, "w") as f:
        f.create_group("node")["type"] = "Wormhole"
    g = nh.network_to_nir(small_chain())
    g.nodes["l"].metadata["neurohw"]["vth"] = 10**6
    out_of_range = tmp_path / "range.nir"
    nir.write(out_of_range, g)
    return [
        (tmp_path / "missing.nir", "no such file"),
        (tmp_path, "is a directory"),
        (empty, "not a NIR file"),
        (text, "not a NIR file"),
        (h5, "not a NIR file"),
        (bad_type, "malformed NIR"),
        (out_of_range, "node 'l': vth=1000000 above allowed range [0, 131071]"),
    ]


def test_bad_input_exit_2_one_line(tmp_path, capsys):
    for path, fragment in _bad_files(tmp_path):
        assert main(["inspect", str(path)]) == 2, path
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert str(path) in err and fragment in err, err
        assert "Traceback" not in err


def test_usage_error_exit_2(capsys):
    assert main(["inspect"]) == 2
    assert main(["frobnicate"]) == 2


def test_console_script_no_traceback(tmp_path):
    p = tmp_path / "x.nir"
    p.write_text("nope")
    proc = subprocess.run([sys.executable, "-m", "neurohw.cli", "inspect", str(p)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"neurohw inspect: error: {p}: not a NIR file (not HDF5)"
    assert proc.stdout == ""
