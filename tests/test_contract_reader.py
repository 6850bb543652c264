"""Quantized-NIR files written by another tool, to the contract alone, read and
run bit-exactly as Lava runs the same numbers.

``write_contract_file`` below is a small independent writer: it uses the
``nir`` package directly (not neurohw's writer) and writes the file the way
another tool's author would from docs/file-formats.md and the design
contract: ``sign_mode`` and ``num_message_bits`` omitted, scalar or
per-neuron neuron integers, ``LIF``/``CubaLIF``/``IF`` nodes, ``Linear`` and
``Affine`` projections, numbers in whatever numpy/python form comes to hand.

Each file is then checked three ways on the same input spikes:

1. Lava itself, with processes built here from the raw file values
   (``Dense`` without ``sign_mode``, so Lava derives it; ``LIF`` with the
   scalars or arrays as stored) -- Lava's interpretation of the file;
2. neurohw's emulator (numpy and numba engines) on the network the reader
   returns -- must equal (1) in spikes, ``v`` and ``u`` at every step;
3. neurohw's Lava backend on the network the reader returns (loihi2 files).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

nir = pytest.importorskip("nir")

import neurohw as nh  # noqa: E402
from neurohw.emulate import run as emulate  # noqa: E402

# Loihi 2 ranges, from Lava's LIF/Dense bit-accurate models
DU_MAX = DV_MAX = 4095
VTH_MAX = 2**17 - 1
BIAS_MAX = 2**12 - 1


def _lava():
    from neurohw.backends.lava import import_lava

    try:
        import_lava()
    except nh.MissingDependencyError as exc:  # pragma: no cover - dev env has Lava
        pytest.skip(str(exc))


# ---------------------------------------------------------------------------
# the independent writer
# ---------------------------------------------------------------------------
def _as_stored(rng, value, kinds=("int", "np64", "list1", "float")):
    """One integer scalar in one of the forms a writer might use (``nir.write``
    cannot store 0-d arrays; those are tested in memory)."""
    kind = kinds[rng.integers(len(kinds))]
    v = int(value)
    return {"int": v, "np64": np.int64(v), "0d": np.array(v, dtype=np.int32),
            "list1": np.array([v], dtype=np.int64), "float": float(v)}[kind]


def _neuron_param(rng, lo, hi, n, per_neuron_p=0.5, extremes=()):
    """A scalar or a per-neuron array in ``[lo, hi]`` (sometimes an extreme value)."""
    if rng.random() < per_neuron_p:
        arr = rng.integers(lo, hi + 1, n)
        if extremes and rng.random() < 0.5:
            arr[rng.integers(n)] = extremes[rng.integers(len(extremes))]
        return arr.astype([np.int64, np.int32, np.int16][rng.integers(3)]) \
            if max(abs(lo), abs(hi)) < 2**15 else arr.astype(np.int64)
    v = extremes[rng.integers(len(extremes))] if extremes and rng.random() < 0.3 \
        else rng.integers(lo, hi + 1)
    return _as_stored(rng, v)


def _weights(rng, n_out, n_in, kind):
    if kind == "mixed":
        w = rng.integers(-256, 256, (n_out, n_in))
        w[0, 0], w[-1, -1] = -256, 255  # both ends, so the derived mode is mixed
        return w.astype(np.int64)
    if kind == "excitatory":
        w = rng.integers(0, 256, (n_out, n_in))
        w[0, 0] = 255
        return w.astype(np.uint8) if rng.random() < 0.5 else w.astype(np.int64)
    if kind == "inhibitory":
        w = -rng.integers(0, 256, (n_out, n_in))
        w[0, 0] = -255
        return w.astype(np.int16)
    return np.zeros((n_out, n_in), dtype=np.int32)  # all zero: Lava derives excitatory


def _neuron_node(rng, kind, n, meta, dt):
    """A NIR neuron node of ``kind`` with float fields of shape ``(n,)``."""
    du = np.broadcast_to(np.asarray(meta["du"], dtype=np.float64).reshape(-1), (n,)) \
        if np.size(meta["du"]) > 1 else np.full(n, float(np.asarray(meta["du"]).reshape(-1)[0]))
    dv = np.broadcast_to(np.asarray(meta["dv"], dtype=np.float64).reshape(-1), (n,)) \
        if np.size(meta["dv"]) > 1 else np.full(n, float(np.asarray(meta["dv"]).reshape(-1)[0]))
    vth = np.full(n, 1.0) * np.asarray(meta["vth"], dtype=np.float64).reshape(-1)
    a_u = (du + 1) / 4096.0
    a_v = np.maximum(dv, 1e-3) / 4096.0
    zeros = np.zeros(n)
    md = {"neurohw": meta}
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=dt / a_u, tau_mem=dt / a_v, r=1 / a_v, v_leak=zeros,
                           v_threshold=vth, v_reset=zeros, w_in=1 / a_u, metadata=md)
    if kind == "LIF":
        return nir.LIF(tau=dt / a_v, r=1 / a_v, v_leak=zeros, v_threshold=vth, v_reset=zeros,
                       metadata=md)
    return nir.IF(r=np.ones(n), v_threshold=vth, v_reset=zeros, metadata=md)


def random_contract_graph(rng, profile="loihi2"):
    """A random layered network as another tool would write it.

    Returns ``(graph, spec)``: the ``nir.NIRGraph`` and, per layer, the raw
    values as written (what Lava is given).
    """
    dt = float(rng.choice([1e-3, 1e-4]))
    n_layers = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 9)) for _ in range(n_layers + 1)]
    bias_exp_lo = -8 if profile == "generic" else 0
    nodes = {"in": nir.Input(input_type={"input": np.array([sizes[0]])})}
    edges = []
    prev = "in"
    layers = []
    for i in range(n_layers):
        n_in, n = sizes[i], sizes[i + 1]
        wkind = ["mixed", "excitatory", "inhibitory", "zero"][
            rng.choice(4, p=[0.45, 0.25, 0.2, 0.1])]
        w = _weights(rng, n, n_in, wkind)
        pmeta = {
            "weight": w if rng.random() < 0.8 else w.tolist(),
            "weight_exp": _as_stored(rng, rng.integers(-8, 8)),
            "num_weight_bits": _as_stored(rng, rng.integers(1, 9)),
        }
        if rng.random() < 0.15:
            pmeta["num_message_bits"] = 0
        if rng.random() < 0.15:  # some writers do state it; bytes as h5py returns them
            derived = "excitatory" if w.min() >= 0 else "inhibitory" if w.max() <= 0 else "mixed"
            pmeta["sign_mode"] = derived if rng.random() < 0.5 else derived.encode()
        nmeta = {
            "du": _neuron_param(rng, 0, DU_MAX, n, extremes=(0, DU_MAX)),
            "dv": _neuron_param(rng, 0, DV_MAX, n, extremes=(0, DV_MAX)),
            "vth": _neuron_param(rng, 0, [VTH_MAX, 2000, 200][rng.integers(3)], n,
                                 extremes=(0,)),
            "bias_mant": _neuron_param(rng, -BIAS_MAX - 1, BIAS_MAX, n, per_neuron_p=0.3,
                                       extremes=(-BIAS_MAX - 1, BIAS_MAX)),
            "bias_exp": _neuron_param(rng, bias_exp_lo, 7, n, per_neuron_p=0.3,
                                      extremes=(bias_exp_lo, 7)),
        }
        pname, lname = f"w{i}", f"lif{i}"
        fw = np.asarray(pmeta["weight"], dtype=np.float64) * 2.0 ** _raw(pmeta["weight_exp"])
        if rng.random() < 0.5:
            nodes[pname] = nir.Linear(weight=fw, metadata={"neurohw": pmeta})
        else:
            nodes[pname] = nir.Affine(weight=fw, bias=np.zeros(n), metadata={"neurohw": pmeta})
        kind = ["CubaLIF", "LIF", "IF"][rng.integers(3)]
        nodes[lname] = _neuron_node(rng, kind, n, nmeta, dt)
        edges += [(prev, pname), (pname, lname)]
        prev = lname
        layers.append((pname, lname, pmeta, nmeta))
    if rng.random() < 0.7:
        nodes["out"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
        edges.append((prev, "out"))
    gmeta = {"format": "neurohw.quantized", "version": 1, "profile": profile, "dt": dt}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurohw": gmeta},
                         type_check=False)
    return graph, {"n_in": sizes[0], "layers": layers}


def write_contract_file(path, rng, profile="loihi2"):
    graph, spec = random_contract_graph(rng, profile)
    nir.write(path, graph)
    return spec


# ---------------------------------------------------------------------------
# Lava from the raw file values
# ---------------------------------------------------------------------------
def _raw(value):
    """A stored number as Lava is given it: a Python int for a scalar, else an array."""
    arr = np.asarray(value)
    if arr.size == 1:
        return int(arr.reshape(-1)[0])
    return arr.astype(np.int32)


def lava_from_raw(spec, x, record=("spikes", "v", "u")):
    """Build and run Lava processes straight from the values in the file."""
    _lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    T = x.shape[0]
    src = RingBuffer(data=np.ascontiguousarray(x.T.astype(np.int32)))
    port = src.s_out
    lifs = []
    for pname, lname, pmeta, nmeta in spec["layers"]:
        w = np.asarray(pmeta["weight"]).astype(np.int32)
        dense = Dense(weights=w, weight_exp=_raw(pmeta["weight_exp"]),
                      num_weight_bits=_raw(pmeta["num_weight_bits"]),
                      num_message_bits=_raw(pmeta.get("num_message_bits", 0)))
        n = w.shape[0]
        lif = LIF(shape=(n,), **{k: _raw(nmeta[k]) for k in
                                 ("du", "dv", "vth", "bias_mant", "bias_exp")})
        port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        port = lif.s_out
        lifs.append((lname, lif))
    mons = []
    for lname, lif in lifs:
        for var in record:
            target = {"spikes": lif.s_out, "v": lif.v, "u": lif.u}[var]
            m = Monitor()
            m.probe(target, T)
            mons.append((lname, var, lif, target, m))
    out = {}
    anchor = mons[0][4]
    try:
        anchor.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        for lname, var, lif, target, m in mons:
            arr = np.asarray(m.get_data()[lif.name][target.name]).reshape(T, -1)
            out[(lname, var)] = np.rint(arr).astype(np.int64)
    finally:
        anchor.stop()
    return out


def _input(rng, n_in, T):
    return (rng.random((T, n_in)) < rng.choice([0.2, 0.5, 0.9])).astype(np.int8)


def check_file_against_lava(path, spec, rng, T=24, backend=True):
    net = nh.read_network(path)  # must accept the file as written
    x = _input(rng, spec["n_in"], T)
    want = lava_from_raw(spec, x)
    for engine in ("numpy", "numba"):
        got = emulate(net, x, record=("spikes", "v", "u"), engine=engine)
        for (lname, var), arr in want.items():
            mine = getattr(got, var)[lname][0].astype(np.int64)
            if var == "spikes":
                mine = (mine != 0).astype(np.int64)
                arr = (arr != 0).astype(np.int64)
            assert np.array_equal(mine, arr), (path.name, engine, lname, var,
                                               np.argwhere(mine != arr)[:3].tolist())
    if backend and net.profile.name == "loihi2":
        from neurohw.backends.lava import run_lava

        run = run_lava(net, x, record=("spikes", "v", "u"))
        for (lname, var), arr in want.items():
            mine = getattr(run, var)[lname].astype(np.int64)
            if var == "spikes":
                arr = (arr != 0).astype(np.int64)
            assert np.array_equal(mine, arr), (path.name, "lava backend", lname, var)
    return net


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_random_contract_files_match_lava(seed, tmp_path):
    rng = np.random.default_rng(1000 + seed)
    profile = "generic" if seed % 3 == 2 else "loihi2"
    path = tmp_path / f"c{seed}.nir"
    spec = write_contract_file(path, rng, profile)
    check_file_against_lava(path, spec, rng, backend=seed % 2 == 0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(60))
def test_random_contract_corpus_matches_lava(seed, tmp_path):
    rng = np.random.default_rng(5000 + seed)
    profile = "generic" if seed % 4 == 3 else "loihi2"
    path = tmp_path / f"c{seed}.nir"
    spec = write_contract_file(path, rng, profile)
    check_file_against_lava(path, spec, rng, T=40)


def _one_layer(weight, nmeta, pmeta_extra=None, n_in=None, kind="CubaLIF", profile="loihi2"):
    w = np.asarray(weight)
    n, n_in = w.shape
    pmeta = {"weight": w, "weight_exp": 0, "num_weight_bits": 8}
    pmeta.update(pmeta_extra or {})
    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "w0": nir.Linear(weight=w.astype(np.float64), metadata={"neurohw": pmeta}),
        "lif0": _neuron_node(np.random.default_rng(0), kind, n, nmeta, 1e-3),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "w0"), ("w0", "lif0")],
                     metadata={"neurohw": {"format": "neurohw.quantized", "version": 1,
                                           "profile": profile, "dt": 1e-3}},
                     type_check=False)
    return g, {"n_in": n_in, "layers": [("w0", "lif0", pmeta, nmeta)]}


@pytest.mark.parametrize("case", [
    "per_neuron_decays", "du_4095_dv_0", "overflow", "inhibitory_only", "excitatory_only",
    "all_zero", "negative_weight_exp", "scalar_bias",
])
def test_extremes_match_lava(case, tmp_path):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    n, n_in = 6, 5
    nmeta = {"du": 0, "dv": 0, "vth": 10, "bias_mant": 0, "bias_exp": 0}
    w = rng.integers(-256, 256, (n, n_in))
    pmeta = {}
    if case == "per_neuron_decays":
        nmeta.update(du=np.array([0, 1, 100, 2048, 4094, 4095]),
                     dv=np.array([4095, 0, 7, 300, 4000, 1]),
                     vth=np.array([0, 5, 50, 500, 5000, 131071]),
                     bias_mant=np.array([-4096, 4095, 0, 1, -1, 100]),
                     bias_exp=np.array([7, 0, 1, 2, 3, 7]))
    elif case == "du_4095_dv_0":
        nmeta.update(du=4095, dv=0, vth=300, bias_mant=3, bias_exp=2)
    elif case == "overflow":  # u wraps at 24 bits, v saturates
        w = np.full((n, n_in), 255)
        pmeta = {"weight_exp": 7}
        nmeta.update(du=0, dv=0, vth=VTH_MAX, bias_mant=4095, bias_exp=7)
    elif case == "inhibitory_only":
        w = -rng.integers(0, 256, (n, n_in))
        w[0, 0] = -255
        nmeta.update(bias_mant=2000, bias_exp=3, vth=50, du=500, dv=500)
    elif case == "excitatory_only":
        w = rng.integers(0, 256, (n, n_in))  # 8 bits kept: no LSB dropped (not mixed)
        w |= 1
        nmeta.update(du=300, dv=200, vth=100)
    elif case == "all_zero":
        w = np.zeros((n, n_in), dtype=np.int64)
        nmeta.update(bias_mant=np.arange(n) * 500 - 1000, bias_exp=2, vth=100, dv=100)
    elif case == "negative_weight_exp":
        pmeta = {"weight_exp": -8, "num_weight_bits": 7}
        nmeta.update(du=10, dv=10, vth=0)
    elif case == "scalar_bias":
        nmeta.update(bias_mant=np.int64(-77), bias_exp=np.int32(5), vth=1000, du=2000, dv=3000)
    g, spec = _one_layer(w, nmeta, pmeta)
    path = tmp_path / f"{case}.nir"
    nir.write(path, g)
    net = check_file_against_lava(path, spec, rng, T=30)
    derived = {"inhibitory_only": "inhibitory", "excitatory_only": "excitatory",
               "all_zero": "excitatory", "overflow": "excitatory"}.get(case, "mixed")
    assert net.nodes["w0"].sign_mode == derived


def test_negative_bias_exponent_matches_lava(tmp_path):
    # generic profile: bias_exp down to -8 (a floor shift), as Lava's LIF computes it
    nmeta = {"du": 100, "dv": 50, "vth": 20, "bias_mant": np.array([-4096, -7, 4095, 9]),
             "bias_exp": np.array([-8, -1, -3, -8])}
    g, spec = _one_layer(np.ones((4, 3), dtype=np.int64) * 40, nmeta, profile="generic")
    nir.write(tmp_path / "neg.nir", g)
    check_file_against_lava(tmp_path / "neg.nir", spec, np.random.default_rng(3))


def test_reader_interpretation_of_optional_fields(tmp_path):
    """What the reader makes of omitted and scalar fields, checked value by value."""
    rng = np.random.default_rng(7)
    graph, spec = random_contract_graph(rng)
    nir.write(tmp_path / "x.nir", graph)
    net = nh.read_network(tmp_path / "x.nir")
    for pname, lname, pmeta, nmeta in spec["layers"]:
        d, pop = net.nodes[pname], net.nodes[lname]
        w = np.asarray(pmeta["weight"])
        assert np.array_equal(d.weight, w) and d.weight.dtype == np.int32
        assert d.num_message_bits == 0 and d.delay is None
        assert d.sign_mode == ("excitatory" if w.min() >= 0 else
                               "inhibitory" if w.max() <= 0 else "mixed")
        assert pop.shape == (w.shape[0],)
        for p in ("du", "dv", "vth", "bias_mant", "bias_exp"):
            want = np.broadcast_to(np.asarray(nmeta[p]).reshape(-1) if np.size(nmeta[p]) > 1
                                   else np.asarray(nmeta[p]).reshape(()), pop.shape)
            assert np.array_equal(np.broadcast_to(np.asarray(getattr(pop, p)), pop.shape), want), p


def test_population_shape_comes_from_the_graph_not_one_metadata_field(tmp_path):
    # every metadata field scalar: the size (8) comes from the projection and the float fields
    n = 8
    nmeta = {"du": 4095, "dv": 0, "vth": 3, "bias_mant": 1, "bias_exp": 0}
    g, spec = _one_layer(np.ones((n, 2), dtype=np.int64), nmeta, kind="LIF")
    nir.write(tmp_path / "s.nir", g)
    net = nh.read_network(tmp_path / "s.nir")
    assert net.nodes["lif0"].shape == (n,)
    # a population without any edge into it takes its size from its float fields
    g.nodes["lone"] = _neuron_node(np.random.default_rng(0), "CubaLIF", 3, dict(nmeta), 1e-3)
    nir.write(tmp_path / "t.nir", g)
    assert nh.read_network(tmp_path / "t.nir").nodes["lone"].shape == (3,)


def test_scalar_delay_and_stated_fields(tmp_path):
    _lava()
    nmeta = {"du": 10, "dv": 20, "vth": 5, "bias_mant": 0, "bias_exp": 0}
    w = np.random.default_rng(1).integers(-256, 256, (3, 4))
    g, spec = _one_layer(w, nmeta, {"delay": np.int64(2), "sign_mode": b"mixed",
                                    "num_message_bits": np.uint8(0)})
    nir.write(tmp_path / "d.nir", g)
    net = nh.read_network(tmp_path / "d.nir")
    assert np.array_equal(net.nodes["w0"].delay, np.full((3, 4), 2, dtype=np.int32))
    assert net.nodes["w0"].sign_mode == "mixed"


def test_in_memory_forms_zero_d_arrays_and_lists():
    # nir.write cannot store 0-d arrays, but an in-memory graph may hold them
    from neurohw.nirio import network_from_nir

    nmeta = {"du": np.array(7), "dv": [9], "vth": np.array(12, dtype=np.uint16),
             "bias_mant": np.array(-3, dtype=np.int8), "bias_exp": 4.0}
    g, _ = _one_layer([[1, -2], [3, 4]], nmeta, {"weight_exp": np.array(-2),
                                                   "num_weight_bits": np.array([6])})
    net = network_from_nir(g)
    pop, d = net.nodes["lif0"], net.nodes["w0"]
    assert [int(np.asarray(getattr(pop, p)).reshape(-1)[0]) for p in
            ("du", "dv", "vth", "bias_mant", "bias_exp")] == [7, 9, 12, -3, 4]
    assert (d.weight_exp, d.num_weight_bits, d.sign_mode) == (-2, 6, "mixed")


# ---------------------------------------------------------------------------
# malformed files: one line naming file, node, parameter, value and range
# ---------------------------------------------------------------------------
def _base_graph():
    nmeta = {"du": 100, "dv": 200, "vth": 50, "bias_mant": np.array([1, 2, 3, 4]),
             "bias_exp": 0}
    w = np.array([[1, -2, 3], [4, 5, -6], [7, 8, 9], [-10, 11, 12]])
    g, _ = _one_layer(w, nmeta)
    return g


def _lif(g):
    return g.nodes["lif0"].metadata["neurohw"]


def _proj(g):
    return g.nodes["w0"].metadata["neurohw"]


def _set(getter, key, value):
    def mutate(g):
        getter(g)[key] = value
    return mutate


def _delete(getter, key):
    def mutate(g):
        del getter(g)[key]
    return mutate


def _graph_meta(g):
    return g.metadata["neurohw"]


BAD_FILES = {
    # missing required fields
    "missing_du": (_delete(_lif, "du"), r"node 'lif0': metadata neurohw\.du is missing"),
    "missing_bias_exp": (_delete(_lif, "bias_exp"),
                         r"node 'lif0': metadata neurohw\.bias_exp is missing"),
    "missing_weight": (_delete(_proj, "weight"), r"node 'w0': metadata neurohw\.weight is missing"),
    "missing_weight_exp": (_delete(_proj, "weight_exp"),
                           r"node 'w0': metadata neurohw\.weight_exp is missing"),
    "missing_num_weight_bits": (_delete(_proj, "num_weight_bits"),
                                r"node 'w0': metadata neurohw\.num_weight_bits is missing"),
    "missing_dt": (_delete(_graph_meta, "dt"), r"metadata neurohw\.dt is missing"),
    "missing_profile": (_delete(_graph_meta, "profile"), r"metadata neurohw\.profile is missing"),
    "missing_version": (_delete(_graph_meta, "version"), r"metadata neurohw\.version is missing"),
    # wrong shapes
    "bias_shape": (_set(_lif, "bias_mant", np.array([1, 2, 3])),
                   r"node 'lif0': bias_mant has shape \(3,\); expected \(4,\) "
                   r"\(the output of 'w0'\) or a scalar"),
    "du_shape": (_set(_lif, "du", np.ones((2, 2), dtype=np.int64)),
                 r"node 'lif0': du has shape \(2, 2\); expected \(4,\)"),
    "weight_vs_nir_weight": (_set(_proj, "weight", np.ones((4, 2), dtype=np.int64)),
                             r"node 'w0': weight has shape \(4, 2\); expected \(4, 3\) "
                             r"\(the shape of the node's NIR weight\)"),
    "weight_rank": (_set(_proj, "weight", np.ones(3, dtype=np.int64)),
                    r"node 'w0': weight has shape \(3,\); a Linear needs a 2-D weight"),
    "delay_shape": (_set(_proj, "delay", np.ones((2, 3), dtype=np.int64)),
                    r"node 'w0': delay has shape \(2, 3\); expected \(4, 3\)"),
    # every float field of 5 neurons behind a 4-row weight (the file loader may catch it first)
    "float_field_size": (lambda g: [setattr(g.nodes["lif0"], f, np.ones(5)) for f in
                                    ("tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold",
                                     "v_reset")],
                         r"node 'lif0'.*\(5,\).*\(4,\)|node 'lif0'.*\(4,\).*\(5,\)"),
    # NaN and non-integers
    "nan_vth": (_set(_lif, "vth", float("nan")), r"node 'lif0': vth=nan is not finite"),
    "nan_weight": (_set(_proj, "weight", np.where(np.eye(4, 3) > 0, np.nan, 1.0)),
                   r"node 'w0': weight\[0, 0\]=nan is not finite"),
    "fraction_du": (_set(_lif, "du", 10.5), r"node 'lif0': du=10\.5 is not an integer"),
    "fraction_bias": (_set(_lif, "bias_mant", np.array([1.0, 2.0, 2.5, 4.0])),
                      r"node 'lif0': bias_mant\[2\]=2\.5 is not an integer"),
    # out of range (for the profile; elements named)
    "du_4096": (_set(_lif, "du", 4096),
                r"node 'lif0': du=4096 above allowed range \[0, 4095\] \(12-bit unsigned\)"),
    "dv_negative": (_set(_lif, "dv", np.array([0, 1, -1, 2])),
                    r"node 'lif0': dv\[2\]=-1 below allowed range \[0, 4095\]"),
    "vth_big": (_set(_lif, "vth", 2**17), r"node 'lif0': vth=131072 above allowed range "
                                          r"\[0, 131071\] \(17-bit unsigned\)"),
    "bias_mant_big": (_set(_lif, "bias_mant", np.array([1, 5000, 3, 4])),
                      r"node 'lif0': bias_mant\[1\]=5000 above allowed range \[-4096, 4095\]"),
    "bias_exp_8": (_set(_lif, "bias_exp", 8),
                   r"node 'lif0': bias_exp=8 above allowed range \[0, 7\]"),
    "huge_int": (_set(_lif, "vth", np.int64(2**62)), r"node 'lif0': vth=4611686018427387904 "
                                                     r"above allowed range \[0, 131071\]"),
    "weight_mixed_300": (_set(_proj, "weight", np.array([[300, -1, 0]] * 4)),
                         r"node 'w0': weight\[0, 0\]=300 above allowed range \[-256, 255\] "
                         r"\(8-bit mixed weight mantissa; sign_mode not given, derived"),
    "weight_inhibitory_256": (_set(_proj, "weight", np.array([[-256, -1, 0]] * 4)),
                              r"node 'w0': weight\[0, 0\]=-256 below allowed range \[-255, 0\] "
                              r"\(8-bit inhibitory weight mantissa; sign_mode not given, "
                              r"derived from the weights as Lava's Dense does\)"),
    "weight_vs_stated_sign": (lambda g: _proj(g).update(sign_mode="excitatory"),
                              r"node 'w0': weight\[0, 1\]=-2 below allowed range \[0, 255\] "
                              r"\(8-bit excitatory weight mantissa\)"),
    "weight_exp_9": (_set(_proj, "weight_exp", 9),
                     r"node 'w0': weight_exp=9 above allowed range \[-8, 7\]"),
    "num_weight_bits_0": (_set(_proj, "num_weight_bits", 0),
                          r"node 'w0': num_weight_bits=0 below allowed range \[1, 8\]"),
    "num_message_bits_99": (_set(_proj, "num_message_bits", 99),
                            r"node 'w0': num_message_bits=99 above allowed range"),
    "delay_63": (_set(_proj, "delay", 63), r"node 'w0': delay\[0, 0\]=63 above allowed range "
                                           r"\[0, 62\]"),
    # strings where numbers belong
    "string_du": (_set(_lif, "du", "fast"),
                  r"node 'lif0': du='fast' is a string; expected an integer"),
    "string_weight_exp": (_set(_proj, "weight_exp", "3"),
                          r"node 'w0': weight_exp='3' is a string; expected an integer"),
    "bool_vth": (_set(_lif, "vth", True), r"node 'lif0': vth=.* is a boolean; expected an integer"),
    "string_dt": (_set(_graph_meta, "dt", "1ms"),
                  r"metadata neurohw\.dt='1ms' is not a number \(seconds per step\)"),
    "negative_dt": (_set(_graph_meta, "dt", -1e-3),
                    r"metadata neurohw\.dt=-0\.001 must be a positive"),
    # sign mode, profile, version
    "unknown_sign_mode": (_set(_proj, "sign_mode", "positive"),
                          r"node 'w0': sign_mode='positive' is not one of mixed, excitatory, "
                          r"inhibitory"),
    "sign_mode_null": (_set(_proj, "sign_mode", 0),
                       r"node 'w0': sign_mode=0 is not a Lava SignMode value"),
    "unknown_profile": (_set(_graph_meta, "profile", "truenorth"),
                        r"unknown profile 'truenorth'; choose one of"),
    "version_2": (_set(_graph_meta, "version", 2),
                  r"unsupported neurohw format version 2 \(this neurohw reads version 1\)"),
    "version_text": (_set(_graph_meta, "version", "one"),
                     r"unsupported neurohw format version 'one'"),
    # what the integer network cannot hold
    "affine_bias": (lambda g: g.nodes.__setitem__("w0", nir.Affine(
        weight=g.nodes["w0"].weight, bias=np.array([0, 0.5, 0, 0]),
        metadata=g.nodes["w0"].metadata)),
        r"node 'w0': Affine bias has a non-zero element \(0\.5\)"),
    "refractory": (_set(_lif, "refractory_period", 2),
                   r"node 'lif0': refractory_period is not supported"),
    "model": (_set(_lif, "model", "izhikevich"), r"node 'lif0': model='izhikevich' is not "
                                                 r"supported"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_contract_file_is_refused_in_one_line(case, tmp_path):
    mutate, pattern = BAD_FILES[case]
    g = _base_graph()
    mutate(g)
    path = tmp_path / f"{case}.nir"
    nir.write(path, g)
    with pytest.raises(nh.FileFormatError) as info:
        nh.read_network(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    import re

    assert re.search(pattern, msg), msg


@pytest.mark.parametrize("case", ["missing_du", "bias_shape", "nan_vth", "du_4096",
                                  "weight_inhibitory_256", "string_du", "unknown_sign_mode",
                                  "unknown_profile", "version_2", "fraction_bias"])
def test_malformed_file_through_the_cli(case, tmp_path, capsys):
    from neurohw.cli import main

    mutate, pattern = BAD_FILES[case]
    g = _base_graph()
    mutate(g)
    path = tmp_path / f"{case}.nir"
    nir.write(path, g)
    np.save(tmp_path / "x.npy", np.zeros((4, 3), dtype=np.int8))
    code = main(["emulate", str(path), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "run.npz")])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    import re

    assert lines[0].startswith(f"neurohw emulate: error: {path}: ") and re.search(pattern, lines[0])
    assert not (tmp_path / "run.npz").exists()


def test_malformed_file_in_a_real_process(tmp_path):
    """The installed entry point: exit status 2, one line on stderr, nothing written."""
    import subprocess
    import sys

    mutate, _ = BAD_FILES["weight_inhibitory_256"]
    g = _base_graph()
    mutate(g)
    nir.write(tmp_path / "bad.nir", g)
    np.save(tmp_path / "x.npy", np.zeros((4, 3), dtype=np.int8))
    proc = subprocess.run([sys.executable, "-m", "neurohw.cli", "emulate", str(tmp_path / "bad.nir"),
                           "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r.npz")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "bad.nir: node 'w0': weight[0, 0]=-256 below allowed range [-255, 0]" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nir", "x.npy"]
