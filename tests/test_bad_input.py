"""A corpus of bad inputs, one file per class: each is refused before any work with
exit status 2 and exactly one line on stderr naming the file, the node and the
parameter -- through the library, the CLI in-process (``quantize``, ``inspect``,
``emulate --input``) and, for a sample, the console script as a subprocess.

Files that ``nir.write`` cannot produce (a neuron node with parameters of
different lengths, a string where numbers belong, a malformed edge list, a
10^9-neuron declaration) are written with h5py directly; huge declared arrays
are chunked and compressed, so they cost nothing on disk.
"""

import os
import subprocess
import sys
import zipfile

import h5py
import nir
import numpy as np
import pytest

import neurohw as nh
from neurohw.cli import main
from neurohw.errors import FileFormatError, NeurohwError, ValidationError
from neurohw.limits import get_limits
from neurohw.nirgraph import load_nir
from neurohw.quantize import quantize
from neurohw.validate import check_array_file, read_float_nir, validate_float_graph

N_IN, N_HID = 4, 3


def _lif(n, **kw):
    p = dict(tau=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
             v_reset=np.zeros(n))
    p.update(kw)
    return nir.LIF(**p)


def _base(**nodes):
    """Input(4) -> fc (Affine 3x4) -> lif (LIF 3) -> output; ``nodes`` replace or add nodes."""
    g = {
        "input": nir.Input(input_type={"input": np.array([N_IN])}),
        "fc": nir.Affine(weight=np.full((N_HID, N_IN), 0.5), bias=np.zeros(N_HID)),
        "lif": _lif(N_HID),
        "output": nir.Output(output_type={"output": np.array([N_HID])}),
    }
    g.update(nodes)
    return g


EDGES = [("input", "fc"), ("fc", "lif"), ("lif", "output")]


def _write(path, nodes=None, edges=None):
    nir.write(path, nir.NIRGraph(nodes=nodes or _base(), edges=list(edges or EDGES),
                                 type_check=False))
    return path


def _patch(path, fn):
    """Write the base graph, then edit the HDF5 file with ``fn(node_group)``."""
    _write(path)
    with h5py.File(path, "r+") as f:
        fn(f["node"])
    return path


def _replace(group, key, data=None, **kw):
    del group[key]
    return group.create_dataset(key, data=data, **kw)


# (file name, how to make it, fragments the one-line message must contain)
def _corpus(tmp):
    c = []

    def add(name, make, *fragments):
        c.append((tmp / name, make, fragments))

    add("shape_edge.nir", lambda p: _write(p, _base(fc=nir.Affine(np.ones((3, 5)), np.zeros(3)))),
        "node 'fc'", "weight", "(3, 5)", "(4,)")
    add("rank_affine.nir", lambda p: _patch(p, lambda g: _replace(g["nodes/fc"], "weight", np.ones((3, 4, 1)))),
        "node 'fc'", "weight", "2-D")
    conv = dict(input_shape=np.array([5, 5]), weight=np.ones((2, 1, 3, 3)), stride=np.array([1, 1]),
                padding=np.array([0, 0]), dilation=np.array([1, 1]), groups=1, bias=np.zeros(2))
    cnodes = {"input": nir.Input(input_type={"input": np.array([1, 5, 5])}),
              "conv": nir.Conv2d(**conv),
              "lif": nir.LIF(**{k: np.full((2, 3, 3), v) for k, v in dict(
                  tau=1e-2, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()}),
              "output": nir.Output(output_type={"output": np.array([2, 3, 3])})}
    cedges = [("input", "conv"), ("conv", "lif"), ("lif", "output")]

    def conv_patch(fn):
        def make(p):
            _write(p, cnodes, cedges)
            with h5py.File(p, "r+") as f:
                fn(f["node/nodes/conv"])
            return p
        return make

    add("rank_conv.nir", conv_patch(lambda g: _replace(g, "weight", np.ones((2, 1, 3)))),
        "node 'conv'", "weight", "4-D")
    add("stride0.nir", conv_patch(lambda g: _replace(g, "stride", np.array([0, 1]))),
        "node 'conv'", "stride[0]=0", ">= 1")
    add("dilation0.nir", conv_patch(lambda g: _replace(g, "dilation", np.array([1, 0]))),
        "node 'conv'", "dilation[1]=0", ">= 1")
    add("padding_neg.nir", conv_patch(lambda g: _replace(g, "padding", np.array([-1, 0]))),
        "node 'conv'", "padding[0]=-1", ">= 0")
    add("kernel_big.nir", conv_patch(lambda g: _replace(g, "weight", np.ones((2, 1, 7, 3)))),
        "node 'conv'", "kernel 7x3", "padded input")
    add("groups.nir", conv_patch(lambda g: _replace(g, "groups", 3)),
        "node 'conv'", "groups=3", "2 output channels")
    add("edge_missing.nir", lambda p: _patch(p, lambda g: _replace(
        g, "edges", np.array([[b"input", b"fc"], [b"fc", b"ghost"], [b"lif", b"output"]], dtype=object),
        dtype=h5py.string_dtype())), "edge ('fc', 'ghost')", "no node named 'ghost'")
    add("edge_triples.nir", lambda p: _patch(p, lambda g: _replace(
        g, "edges", np.array([[b"input", b"fc", b"lif"]], dtype=object), dtype=h5py.string_dtype())),
        "edges has shape (1, 3)", "pairs")
    add("edge_ints.nir", lambda p: _patch(p, lambda g: _replace(g, "edges", np.array([[0, 1], [1, 2]]))),
        "edges hold int64", "node names")
    add("edge_dup.nir", lambda p: _write(p, edges=EDGES + [("fc", "lif")]),
        "edge ('fc', 'lif') appears twice")
    add("unknown_type.nir", lambda p: _patch(p, lambda g: _replace(g["nodes/fc"], "type", "Gaussian",
                                                                     dtype=h5py.string_dtype())),
        "node 'fc'", "unknown NIR node type 'Gaussian'", "NIR types: Input")
    add("lengths.nir", lambda p: _patch(p, lambda g: _replace(g["nodes/lif"], "v_threshold", np.ones(4))),
        "node 'lif'", "v_threshold", "(4,)", "tau", "(3,)")
    add("missing_param.nir", lambda p: _patch(p, lambda g: g["nodes/lif"].__delitem__("v_threshold")),
        "node 'lif' (LIF)", "parameter v_threshold is missing")
    add("unknown_field.nir", lambda p: _patch(p, lambda g: g["nodes/fc"].create_dataset("gain", data=2.0)),
        "node 'fc' (Affine)", "unknown field 'gain'", "weight, bias")
    add("string_tau.nir", lambda p: _patch(p, lambda g: _replace(g["nodes/lif"], "tau", "fast",
                                                                   dtype=h5py.string_dtype())),
        "node 'lif'", "tau", "string", "'fast'")
    add("tau_zero.nir", lambda p: _write(p, _base(lif=_lif(3, tau=np.array([1e-2, 0.0, 1e-2])))),
        "node 'lif'", "tau[1]=0", "> 0")
    add("tau_neg.nir", lambda p: _write(p, _base(lif=_lif(3, tau=np.array([1e-2, 1e-2, -1e-3])))),
        "node 'lif'", "tau[2]=-0.001", "> 0")
    add("tau_nan.nir", lambda p: _write(p, _base(lif=_lif(3, tau=np.array([np.nan, 1e-2, 1e-2])))),
        "node 'lif'", "tau", "nan", "[0]")
    add("tau_inf.nir", lambda p: _write(p, _base(lif=_lif(3, tau=np.array([1e-2, np.inf, 1e-2])))),
        "node 'lif'", "tau", "inf", "[1]")
    add("weight_nan.nir", lambda p: _write(p, _base(fc=nir.Affine(
        np.where(np.eye(3, 4) > 0, np.nan, 0.5), np.zeros(3)))), "node 'fc'", "weight", "nan", "[0, 0]")
    add("bias_inf.nir", lambda p: _write(p, _base(fc=nir.Affine(np.ones((3, 4)), np.array([0, -np.inf, 0])))),
        "node 'fc'", "bias", "-inf", "[1]")
    add("threshold_nan.nir", lambda p: _write(p, _base(lif=_lif(3, v_threshold=np.array([1, 1, np.nan])))),
        "node 'lif'", "v_threshold", "nan", "[2]")
    add("complex.nir", lambda p: _write(p, _base(fc=nir.Affine(np.ones((3, 4)) * (1 + 1j), np.zeros(3)))),
        "node 'fc'", "weight", "complex")
    loop = _base(fc2=nir.Linear(np.ones((4, 3))), fc3=nir.Linear(np.ones((3, 4))))
    add("stateless_loop.nir", lambda p: _write(p, loop, EDGES + [("fc", "fc2"), ("fc2", "fc3"),
                                                                  ("fc3", "fc")]),
        "loop of stateless nodes", "fc -> fc2 -> fc3 -> fc")
    lfl = _base(flat=nir.Flatten(input_type={"input": np.array([N_HID])}, start_dim=0, end_dim=-1),
                lif2=_lif(N_HID))
    add("lif_flatten_lif.nir", lambda p: _write(p, lfl, [("input", "fc"), ("fc", "lif"), ("lif", "flat"),
                                                         ("flat", "lif2"), ("lif2", "output")]),
        "node 'lif2'", "lif -> flat -> lif2", "no weighted node")
    add("neurons_1e9.nir", lambda p: _patch(p, lambda g: _replace(g["nodes/input"], "shape",
                                                                    np.array([10**9]))),
        "node 'input'", "shape=[1000000000]", "NEUROHW_MAX_NEURONS")
    add("lif_1e9.nir", lambda p: _patch(p, lambda g: [_replace(g["nodes/lif"], k, shape=(10**9,),
                                                               dtype="f8", chunks=(2**20,),
                                                               compression="gzip")
                                                      for k in ("tau", "r", "v_leak", "v_threshold",
                                                                "v_reset")]),
        "node 'lif': parameter", "1000000000 elements", "NEUROHW_MAX_ELEMENTS")
    add("weight_1e10.nir", lambda p: _patch(p, lambda g: _replace(g["nodes/fc"], "weight",
                                                                    shape=(10**5, 10**5), dtype="f8",
                                                                    chunks=(1024, 1024),
                                                                    compression="gzip")),
        "node 'fc': parameter weight", "(100000, 100000)", "10000000000 elements")
    return c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    return [(make(path), fragments) for path, make, fragments in _corpus(tmp)]


def _one_line(err: str):
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "internal error" not in err and "malformed NIR (" not in err, err
    return lines[0]


def test_library_refuses_each_class_with_one_line(corpus):
    for path, fragments in corpus:
        with pytest.raises(NeurohwError) as exc:
            read_float_nir(path)
        msg = str(exc.value)
        assert "\n" not in msg and str(path) in msg, msg
        for frag in fragments:
            assert frag in msg, (path.name, frag, msg)
        with pytest.raises(NeurohwError) as exc2:  # the quantizer reads the same way
            quantize(path, dt=1e-3)
        assert str(exc2.value) == msg


def test_cli_quantize_and_inspect_refuse_each_class(corpus, tmp_path, capsys):
    out = tmp_path / "q.nir"
    for path, fragments in corpus:
        for argv in (["quantize", str(path), "-o", str(out), "--dt", "1e-3"], ["inspect", str(path)]):
            assert main(argv) == 2, (argv, path.name)
            cap = capsys.readouterr()
            line = _one_line(cap.err)
            assert line.startswith(f"neurohw {argv[0]}: error: {path}: "), line
            for frag in fragments:
                assert frag in line, (path.name, frag, line)
            assert not out.exists() and cap.out == ""
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_valid_base_graph_passes(tmp_path, capsys):
    """The corpus's base file itself is fine: the refusals come from the edits."""
    p = _write(tmp_path / "ok.nir")
    shapes = validate_float_graph(load_nir(p), str(p))
    assert shapes["lif"] == (N_HID,) and shapes["fc"] == (N_HID,)
    assert main(["quantize", str(p), "-o", str(tmp_path / "q.nir"), "--dt", "1e-3"]) == 0
    assert main(["inspect", str(p)]) == 0


def test_in_memory_graphs_are_checked_too():
    """Graphs built in memory (not read from a file) get the same checks."""
    class Gaussian(nir.Linear):
        pass

    cases = [
        (_base(fc=Gaussian(np.ones((3, 4)))), EDGES, "node 'fc': NIR node type Gaussian is not supported"),
        (_base(), [("input", "fc"), ("fc", "lif", "x"), ("lif", "output")], "is not a (source, target) pair"),
        (_base(), [("input", "fc"), ("fc", 7), ("lif", "output")], "is not a pair of node names"),
        (_base(lif=_lif(3, tau=np.array([1e-2, 1e-2, 0.0]))), EDGES, "node 'lif': tau[2]=0 s"),
        (_base(rec=nir.Linear(np.ones((3, 3)))), EDGES + [("lif", "rec"), ("rec", "lif")], None),
        (_base(), EDGES + [("lif", "lif")], "input lif -> lif has no weighted node"),
    ]
    mutated = [("tau", "fast", "node 'lif': tau='fast' is a string"),
               ("v_threshold", np.ones(3) * 1j, "node 'lif': v_threshold is complex"),
               ("v_leak", np.zeros(5), "node 'lif': parameter v_leak has shape (5,) but tau has (3,)")]
    for key, value, frag in mutated:
        nodes = _base()
        setattr(nodes["lif"], key, value)
        cases.append((nodes, EDGES, frag))
    for nodes, edges, frag in cases:
        g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
        if frag is None:
            validate_float_graph(g, "g")
            continue
        with pytest.raises(ValidationError) as exc:
            validate_float_graph(g, "g")
        assert frag in str(exc.value), str(exc.value)


def test_geometry_and_shapes_in_memory():
    """Conv/pool geometry and inferred shapes when the file declares no input_shape."""
    def conv(**kw):
        p = dict(input_shape=None, weight=np.ones((2, 1, 5, 5)), stride=1, padding=0, dilation=1,
                 groups=1, bias=np.zeros(2))
        p.update(kw)
        return nir.Conv2d(**p)

    def graph(mid, in_shape=(1, 3, 3), pop=(2,)):
        nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)}), "mid": mid,
                 "flat": nir.Flatten(input_type={"input": None}, start_dim=0, end_dim=-1),
                 "fc": nir.Linear(np.ones((pop[0], 2))), "lif": _lif(pop[0]),
                 "output": nir.Output(output_type={"output": np.array(pop)})}
        edges = [("input", "mid"), ("mid", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")]
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)

    cases = [
        (conv(), "node 'mid': kernel 5x5", "padded input (3 + 2*0 = 3)"),
        (conv(padding=1, dilation=2), "node 'mid': kernel 5x5", "span 9"),
        (conv(stride=np.array([1, 0])), "node 'mid': stride[1]=0 must be >= 1"),
        (conv(weight=np.ones((2, 2, 3, 3))), "input has 1 channels", "takes 2"),
        (conv(weight=np.ones((3, 1, 1, 1)), groups=2), "groups=2 does not divide the 3 output"),
        (nir.SumPool2d(kernel_size=np.array([0, 2]), stride=np.array([1, 1]), padding=np.array([0, 0])),
         "node 'mid': kernel_size[0]=0 must be >= 1"),
        (nir.AvgPool2d(kernel_size=np.array([4, 4]), stride=np.array([1, 1]), padding=np.array([0, 0])),
         "node 'mid': kernel 4x4", "padded input"),
        (nir.Conv1d(input_shape=None, weight=np.ones((2, 1, 3, 3)), stride=1, padding=0, dilation=1,
                    groups=1, bias=np.zeros(2)), "node 'mid': weight has shape (2, 1, 3, 3); expected 3-D"),
    ]
    for mid, *frags in cases:
        with pytest.raises(ValidationError) as exc:
            validate_float_graph(graph(mid), "g")
        for frag in frags:
            assert frag in str(exc.value), (frag, str(exc.value))
    # a fitting pooling: (1, 3, 3) -> 2x2 windows, stride 1 -> (1, 2, 2) = 4 values, fc takes 2
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0]))
    with pytest.raises(ValidationError, match=r"node 'fc': weight \(2, 2\) takes 2 inputs, the input "
                                              r"has shape \(4,\)"):
        validate_float_graph(graph(pool), "g")
    # an inferred output above the per-node limit is refused before anything is allocated
    big = conv(weight=np.ones((2, 1, 1, 1)))
    with pytest.raises(ValidationError, match=r"node 'mid': output shape=\[2, 3000, 3000\] declares "
                                              r"18000000 elements"):
        validate_float_graph(graph(big, in_shape=(1, 3000, 3000)), "g")


def test_nested_graphs_still_validate(tmp_path, capsys):
    sub = nir.NIRGraph(nodes=_base(), edges=list(EDGES), type_check=False)
    outer = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([N_IN])}),
                                "sub": sub,
                                "output": nir.Output(output_type={"output": np.array([N_HID])})},
                         edges=[("input", "sub"), ("sub", "output")], type_check=False)
    p = tmp_path / "nested.nir"
    nir.write(p, outer)
    shapes = validate_float_graph(read_float_nir(p), str(p))
    assert shapes["sub.lif"] == (N_HID,)
    # a nested graph's Input declares a shape other than what arrives: refused, naming it
    # (inlining drops the nested Input node, so this is checked separately)
    with h5py.File(p, "r+") as f:
        _replace(f["node/nodes/sub/nodes/input"], "shape", np.array([N_IN + 1]))
    with pytest.raises(ValidationError, match=r"node 'sub.input' \(Input of nested graph 'sub'\): "
                                              r"declares shape \[5\] but 'input' carries \(4,\)"):
        read_float_nir(p)
    for argv in (["inspect", str(p)], ["quantize", str(p), "-o", str(tmp_path / "q.nir")]):
        assert main(argv) == 2
        assert "node 'sub.input'" in _one_line(capsys.readouterr().err)
    bad = nir.NIRGraph(nodes=_base(lif=_lif(3, tau=np.array([1e-2, -1.0, 1e-2]))), edges=list(EDGES),
                       type_check=False)
    outer.nodes["sub"] = bad
    with pytest.raises(ValidationError, match=r"node 'sub.lif': tau\[1\]=-1 s"):
        validate_float_graph(outer, "g")


def test_limits_come_from_the_environment(tmp_path, monkeypatch):
    p = _write(tmp_path / "ok.nir")
    monkeypatch.setenv("NEUROHW_MAX_ELEMENTS", "11")  # the 3x4 weight has 12
    with pytest.raises(FileFormatError, match=r"node 'fc': parameter weight declares \(3, 4\) = 12 elements, "
                                              r"above the limit 11 \(NEUROHW_MAX_ELEMENTS"):
        load_nir(p)
    monkeypatch.setenv("NEUROHW_MAX_ELEMENTS", "12")
    load_nir(p)
    monkeypatch.setenv("NEUROHW_MAX_NEURONS", "2")
    with pytest.raises(FileFormatError, match=r"node 'input' \(Input\): shape=\[4\] declares 4"):
        load_nir(p)
    monkeypatch.setenv("NEUROHW_MAX_NEURONS", "10")
    monkeypatch.setenv("NEUROHW_MAX_TOTAL_NEURONS", "5")
    nodes = _base(fc2=nir.Linear(np.ones((3, 3))), lif2=_lif(3))
    _write(p, nodes, [("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "lif2"),
                      ("lif2", "output")])
    with pytest.raises(FileFormatError, match=r"node 'lif2' \(LIF\): the network has more than 5 "
                                              r"neurons in all \(NEUROHW_MAX_TOTAL_NEURONS"):
        load_nir(p)
    monkeypatch.setenv("NEUROHW_MAX_NEURONS", "lots")
    with pytest.raises(ValidationError, match=r"NEUROHW_MAX_NEURONS='lots' is not an integer"):
        get_limits()


# ---------------------------------------------------------------------------
# .npy / .npz inputs: headers first
# ---------------------------------------------------------------------------
def _npy_header_only(path, shape, descr="<f8"):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False,
                                                 "shape": shape})
    return path


def _npz_member_header_only(path, member, shape):
    header = tmp = path.with_suffix(".hdr")
    _npy_header_only(tmp, shape)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member + ".npy", header.read_bytes())
        z.writestr("ok.npy", _ok_npy_bytes(path.parent))
    tmp.unlink()
    return path


def _ok_npy_bytes(d):
    p = d / "ok_tmp.npy"
    np.save(p, np.zeros((2, N_IN), np.int8))
    data = p.read_bytes()
    p.unlink()
    return data


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("q")
    p = _write(tmp / "float.nir")
    q = tmp / "q.nir"
    nh.write_network(quantize(p, dt=1e-3).network, q)
    return p, q


def test_array_headers_declaring_too_much_are_refused(tmp_path, quantized, capsys):
    float_nir, q = quantized
    tb = _npy_header_only(tmp_path / "terabyte.npy", (10**6, 10**6))
    npz = _npz_member_header_only(tmp_path / "big.npz", "x", (10**5, 10**5))
    small_but_wide = _npy_header_only(tmp_path / "bytes.npy", (5000, 5000), descr="<c16")
    out = tmp_path / "run.npz"
    cases = [
        (["emulate", str(q), "--input", str(tb), "--out", str(out)],
         [str(tb), "(1000000, 1000000)", "1000000000000 elements", "NEUROHW_MAX_ELEMENTS"]),
        (["emulate", str(q), "--input", f"{npz}:x", "--out", str(out)],
         [str(npz), "array 'x'", "(100000, 100000)", "NEUROHW_MAX_ELEMENTS"]),
        (["quantize", str(float_nir), "-o", str(out.with_suffix(".nir")), "--dt", "1e-3",
          "--eval", str(tb)], [str(tb), "1000000000000 elements"]),
        (["quantize", str(float_nir), "-o", str(out.with_suffix(".nir")), "--dt", "1e-3",
          "--calibrate", f"{npz}:x"], [str(npz), "array 'x'"]),
    ]
    for argv, frags in cases:
        assert main(argv) == 2, argv
        line = _one_line(capsys.readouterr().err)
        for frag in frags:
            assert frag in line, (frag, line)
        assert not out.exists() and not out.with_suffix(".nir").exists()
    # bytes limit (elements within the default limit): checked from the header too
    with pytest.raises(FileFormatError, match=r"400000000 bytes, above the limit 1000 bytes "
                                              r"\(NEUROHW_MAX_INPUT_BYTES"):
        check_array_file(small_but_wide, limits=get_limits({"NEUROHW_MAX_INPUT_BYTES": "1000"}))
    # the other member of the archive is fine on its own
    assert check_array_file(npz, "ok") == {"ok": ((2, N_IN), np.dtype(np.int8))}


def test_pickled_inputs_are_never_loaded(tmp_path, quantized, capsys):
    _, q = quantized
    obj = tmp_path / "obj.npz"
    np.savez(obj, x=np.array([{"a": 1}], dtype=object))
    rc = main(["emulate", str(q), "--input", f"{obj}:x", "--out", str(tmp_path / "r.npz")])
    line = _one_line(capsys.readouterr().err)
    assert rc == 2 and "array 'x'" in line and "pickle" in line, line


def test_console_script_sample(corpus, tmp_path, quantized):
    """A few classes through the real console entry point: exit 2, one line, no traceback."""
    _, q = quantized
    by_name = {p.name: p for p, _ in corpus}
    tb = _npy_header_only(tmp_path / "tb.npy", (10**6, 10**6))
    runs = [
        ["quantize", str(by_name["lengths.nir"]), "-o", str(tmp_path / "o.nir")],
        ["inspect", str(by_name["stateless_loop.nir"])],
        ["emulate", str(q), "--input", str(tb), "--out", str(tmp_path / "r.npz")],
    ]
    script = ("import sys\nfrom neurohw.cli import main\nrcs = []\n"
              "for argv in %r:\n    rcs.append(main(argv))\n"
              "print(rcs)\n") % (runs,)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[2, 2, 2]"
    lines = proc.stderr.splitlines()
    assert len(lines) == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert "node 'lif'" in lines[0] and "v_threshold" in lines[0]
    assert "loop of stateless nodes" in lines[1]
    assert "tb.npy" in lines[2] and "NEUROHW_MAX_ELEMENTS" in lines[2]
    # and once as the real console script
    proc = subprocess.run([sys.executable, "-m", "neurohw.cli", "quantize",
                           str(by_name["tau_zero.nir"]), "-o", str(tmp_path / "o.nir")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    line = _one_line(proc.stderr)
    assert "node 'lif'" in line and "tau[1]=0" in line
    assert not (tmp_path / "o.nir").exists()


def test_one_value_fields_in_any_layout_are_read(tmp_path):
    """Fields NIR's constructors want as an int or a pair, stored as 1-element arrays (or a
    shape stored as a scalar), are read as such rather than failing inside nir.read."""
    sub = nir.NIRGraph(nodes=_base(), edges=list(EDGES), type_check=False)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
        "conv": nir.Conv2d(input_shape=np.array([6, 6]), weight=np.ones((2, 1, 3, 3)), stride=1,
                           padding=np.array([1, 1]), dilation=1, groups=1, bias=np.zeros(2)),
        "lif": nir.LIF(**{k: np.full((2, 6, 6), v) for k, v in dict(
            tau=1e-2, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()}),
        "flat": nir.Flatten(input_type={"input": np.array([72])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=np.ones((N_IN, 72)), bias=np.zeros(N_IN)),
        "sub": sub, "output": nir.Output(output_type={"output": np.array([N_HID])})},
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fc"), ("fc", "sub"),
               ("sub", "output")], type_check=False)
    p = tmp_path / "layouts.nir"
    nir.write(p, g)
    with h5py.File(p, "r+") as f:
        conv = f["node/nodes/conv"]
        _replace(conv, "padding", np.array([1]))
        _replace(conv, "groups", np.array([1]))
        _replace(f["node/nodes/flat"], "input_type", np.int64(72))
        _replace(f["node/nodes/flat"], "end_dim", np.array([-1]))
    shapes = validate_float_graph(read_float_nir(p), str(p))
    assert shapes["conv"] == (2, 6, 6) and shapes["flat"] == (72,) and shapes["sub.lif"] == (N_HID,)


_MUTANTS = [np.array([0]), np.array([-1, 2]), np.array([np.nan]), np.array(b"same"), np.ones((2, 2, 2)),
            np.array([1.5, 2.0]), np.array(3), np.zeros((0,)), np.array([1j]), np.array([10**6, 10**6]),
            np.ones(5), np.array([[b"a", b"b"]], dtype=object), np.array(-5), None]


def _mutation_sweep(tmp_path, capsys, seed: int, count: int):
    """Replace or delete random datasets of valid files; every result is either accepted
    (exit 0) or refused with exit 2 and one line, never an internal error or a bare
    'malformed NIR (...)' from inside nir.read."""
    from test_cli import _float_graph  # a nested graph with conv, pooling and flatten

    rng = np.random.default_rng(seed)
    bases = [_write(tmp_path / "base_small.nir"), tmp_path / "base_conv.nir"]
    nir.write(bases[1], _float_graph())
    out = tmp_path / "q.nir"
    for i in range(count):
        p = tmp_path / f"m{i}.nir"
        p.write_bytes(bases[i % 2].read_bytes())
        with h5py.File(p, "r+") as f:
            names = []
            f["node"].visititems(lambda k, v: names.append("node/" + k)
                                 if isinstance(v, h5py.Dataset) else None)
            for _ in range(int(rng.integers(1, 3))):
                key = names[int(rng.integers(len(names)))]
                if key not in f:
                    continue
                del f[key]
                value = _MUTANTS[int(rng.integers(len(_MUTANTS)))]
                if value is None:
                    continue
                if value.dtype.kind in "OS":
                    f.create_dataset(key, data=value, dtype=h5py.string_dtype())
                else:
                    f.create_dataset(key, data=value)
        for argv in (["quantize", str(p), "-o", str(out), "--dt", "1e-3"], ["inspect", str(p)]):
            rc = main(argv)
            err = capsys.readouterr().err
            assert rc in (0, 2), (p.name, argv[0], rc, err)
            if rc == 2:
                line = _one_line(err)
                assert str(p) in line, line
        if out.exists():
            out.unlink()
        p.unlink()


def test_mutated_files_fail_cleanly(tmp_path, capsys):
    _mutation_sweep(tmp_path, capsys, seed=1, count=30)


@pytest.mark.slow
def test_mutated_files_fail_cleanly_sweep(tmp_path, capsys):
    _mutation_sweep(tmp_path, capsys, seed=2, count=600)
