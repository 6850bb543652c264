import os

import h5py
import nir
import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.nirgraph import flatten_graph
from neurohw.nirio import FORMAT, network_from_nir, network_to_nir
from neurohw.profiles import generic
from neurohw.testing import random_network

from conftest import assert_networks_equal, small_chain


@pytest.mark.parametrize("seed", range(40))
def test_random_roundtrip_through_file(seed, tmp_path):
    rng = np.random.default_rng(seed)
    profile = ["loihi1", "loihi2", generic(name="g6", weight_bits=6, bias_exp_min=-4)][seed % 3]
    net = random_network(rng, profile)
    path = tmp_path / "q.nir"
    nh.write_network(net, path)
    # the file is plain NIR, readable by nir itself, carrying the contract metadata
    g = nh.load_nir(path)  # nir.read, falling back to no type check (grouped convs)
    meta = g.metadata["neurohw"]
    assert meta["format"] == FORMAT and int(meta["version"]) == 1
    assert meta["profile"] == net.profile.name and float(meta["dt"]) == net.dt_s
    assert_networks_equal(net, nh.read_network(path))
    # in-memory round trip too
    assert_networks_equal(net, network_from_nir(network_to_nir(net)))


def test_nir_read_write_keeps_integers_exactly(tmp_path):
    # extremes of every range
    nodes = {
        "i": ir.InputNode("i", (3,)),
        "d": ir.Dense("d", weight=[[-256, 255, 0], [1, -1, 254]], weight_exp=-8,
                      num_weight_bits=1, delay=[[0, 62, 1], [2, 3, 4]]),
        "l": ir.LIFPopulation("l", (2,), du=4095, dv=0, vth=131071,
                              bias_mant=[-4096, 4095], bias_exp=[0, 7]),
    }
    net = nh.Network(nodes, [("i", "d"), ("d", "l")], "loihi2", dt_s=1e-4)
    nh.write_network(net, tmp_path / "x.nir")
    g = nir.read(tmp_path / "x.nir")
    m = g.nodes["d"].metadata["neurohw"]
    assert m["weight"].dtype == np.int32
    assert m["weight"].tolist() == [[-256, 255, 0], [1, -1, 254]]
    assert m["delay"].tolist() == [[0, 62, 1], [2, 3, 4]]
    assert int(m["weight_exp"]) == -8
    ml = g.nodes["l"].metadata["neurohw"]
    assert int(ml["vth"]) == 131071 and ml["bias_mant"].tolist() == [-4096, 4095]
    assert_networks_equal(net, nh.read_network(tmp_path / "x.nir"))


def test_float_fields_are_dequantized_values():
    net = small_chain(du=1023, dv=2048, vth=77, bias_mant=[8, -8, 0, 1], bias_exp=3)
    g = network_to_nir(net)
    lif = g.nodes["l"]
    assert isinstance(lif, nir.CubaLIF)
    np.testing.assert_allclose(lif.tau_syn, net.dt_s * 4096 / 1024)
    np.testing.assert_allclose(lif.tau_mem, net.dt_s * 2)
    np.testing.assert_allclose(lif.v_threshold, 77)
    np.testing.assert_allclose(lif.v_leak, np.array([64, -64, 0, 8]) / (64 * 0.5))
    w = net.nodes["d"].weight.astype(np.int64)
    # Lava drops the LSB of 8-bit mixed-sign mantissas
    np.testing.assert_array_equal(g.nodes["d"].weight, (w >> 1) << 1)


def test_unquantized_graph_is_reported(tmp_path):
    g = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([3])}),
        nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
        nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2),
                v_reset=np.zeros(2)),
        nir.Output(output_type={"output": np.array([2])}),
    )
    nir.write(tmp_path / "f.nir", g)
    assert not nh.is_quantized(nh.load_nir(tmp_path / "f.nir"))
    with pytest.raises(nh.UnquantizedError, match=r"f\.nir: unquantized NIR graph"):
        nh.read_network(tmp_path / "f.nir")


def _write_raw(path, graph):
    nir.write(path, graph)


def test_malformed_metadata_errors_name_file_node_param(tmp_path):
    net = small_chain()
    g = network_to_nir(net)
    g.nodes["l"].metadata["neurohw"]["vth"] = 10**6
    _write_raw(tmp_path / "a.nir", g)
    with pytest.raises(nh.FileFormatError,
                       match=r"a\.nir: node 'l': vth=1000000 above allowed range \[0, 131071\]"):
        nh.read_network(tmp_path / "a.nir")
    g = network_to_nir(net)
    del g.nodes["d"].metadata["neurohw"]["weight_exp"]
    _write_raw(tmp_path / "b.nir", g)
    with pytest.raises(nh.FileFormatError, match=r"b\.nir: node 'd': metadata neurohw.weight_exp is missing"):
        nh.read_network(tmp_path / "b.nir")
    g = network_to_nir(net)
    g.nodes["d"].metadata["neurohw"]["weight"] = g.nodes["d"].metadata["neurohw"]["weight"] + 0.5
    _write_raw(tmp_path / "c.nir", g)
    with pytest.raises(nh.FileFormatError, match=r"c\.nir: node 'd': weight\[0, 0\]=.* is not an integer"):
        nh.read_network(tmp_path / "c.nir")
    g = network_to_nir(net)
    g.metadata["neurohw"]["version"] = 7
    _write_raw(tmp_path / "d.nir", g)
    with pytest.raises(nh.FileFormatError, match="unsupported neurohw format version 7"):
        nh.read_network(tmp_path / "d.nir")
    g = network_to_nir(net)
    g.metadata["neurohw"]["profile"] = "truenorth"
    _write_raw(tmp_path / "e.nir", g)
    with pytest.raises(nh.FileFormatError, match="unknown profile 'truenorth'"):
        nh.read_network(tmp_path / "e.nir")


def test_unsupported_node_in_quantized_graph(tmp_path):
    g = network_to_nir(small_chain())
    g.nodes["x"] = nir.Delay(delay=np.ones(4))
    g.edges.append(("l", "x"))
    _write_raw(tmp_path / "u.nir", g)
    with pytest.raises(nh.FileFormatError, match="node 'x': NIR node type Delay is not supported"):
        nh.read_network(tmp_path / "u.nir")


@pytest.mark.parametrize("content, message", [
    (b"", "not a NIR file"),
    (b"garbage\x00\x01", "not a NIR file"),
])
def test_non_nir_files(tmp_path, content, message):
    p = tmp_path / "bad.nir"
    p.write_bytes(content)
    with pytest.raises(nh.FileFormatError, match=message):
        nh.load_nir(p)


def test_hdf5_that_is_not_nir(tmp_path):
    p = tmp_path / "h.nir"
    with h5py.File(p, "w") as f:
        f["x"] = 1
    with pytest.raises(nh.FileFormatError, match="without a 'node' group"):
        nh.load_nir(p)
    with h5py.File(p, "w") as f:
        f.create_group("node")["type"] = "Wormhole"
    with pytest.raises(nh.FileFormatError, match=r"h\.nir: malformed NIR"):
        nh.load_nir(p)


def test_missing_and_directory(tmp_path):
    with pytest.raises(nh.FileFormatError, match="no such file"):
        nh.load_nir(tmp_path / "nope.nir")
    with pytest.raises(nh.FileFormatError, match="is a directory"):
        nh.load_nir(tmp_path)


def test_write_is_atomic(tmp_path, monkeypatch):
    net = small_chain()
    target = tmp_path / "out.nir"
    target.write_bytes(b"previous")

    def boom(path, graph):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(nir, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        nh.write_network(net, target)
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.nir"]  # no temp file left behind
    with pytest.raises(nh.FileFormatError, match="does not exist"):
        nh.write_network(net, tmp_path / "no" / "dir.nir")


def test_nested_quantized_graph_is_flattened():
    inner_net = small_chain()
    inner = network_to_nir(inner_net)
    inner.nodes = {("input" if k == "in" else "output" if k == "out" else k): v
                   for k, v in inner.nodes.items()}
    inner.edges = [("input", "d"), ("d", "l"), ("l", "output")]
    inner.metadata = {}
    outer = nir.NIRGraph(
        nodes={"src": nir.Input(input_type={"input": np.array([5])}), "block": inner,
               "sink": nir.Output(output_type={"output": np.array([4])})},
        edges=[("src", "block"), ("block", "sink")],
        metadata={"neurohw": network_to_nir(inner_net).metadata["neurohw"]},
        type_check=False,
    )
    nodes, edges = flatten_graph(outer)
    assert set(nodes) == {"src", "block.d", "block.l", "sink"}
    assert set(edges) == {("src", "block.d"), ("block.d", "block.l"), ("block.l", "sink")}
    net = network_from_nir(outer)
    assert np.array_equal(net.nodes["block.d"].weight, inner_net.nodes["d"].weight)
