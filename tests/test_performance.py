"""Performance machinery that must not change results: lazy imports, the engine
choice, thread switching during a run, spilled recordings and streamed run files."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest

import neurohw as nh
from neurohw.emulate import run
from neurohw.emulate.engine import choose_engine, numba_available
from neurohw.emulate.runfile import write_run
from neurohw.testing import random_network

HEAVY = ("numba", "torch", "matplotlib", "scipy", "h5py", "lava", "tqdm", "threadpoolctl")


@pytest.mark.parametrize("stmt", ["import neurohw", "import neurohw.cli",
                                  "import neurohw.emulate",
                                  "from neurohw.cli import build_parser; build_parser()"])
def test_imports_stay_light(stmt):
    """Importing the package, the CLI (all parsers built) and the emulator loads none of
    the heavy optional dependencies; each command imports what it needs when it runs."""
    code = (f"import sys; {stmt}; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"{stmt} imported {out}"


def test_auto_engine_picks_numpy_for_small_runs_numba_for_big_ones(monkeypatch):
    from neurohw.emulate import engine

    monkeypatch.setattr(engine, "_kernels_loaded", lambda: False)  # as in a fresh process
    net = random_network(np.random.default_rng(0), "loihi2")
    assert choose_engine(net, 1, 20) == "numpy"
    big = "numba" if numba_available() else "numpy"
    assert choose_engine(net, 256, 100_000) == big


def _lively_batch(seed, B=24, T=120):
    rng = np.random.default_rng(seed)
    net = random_network(rng, ["loihi1", "loihi2"][seed % 2], delays=True)
    n = int(np.prod(net.nodes["input"].shape))
    x = (rng.random((B, T, n)) < rng.uniform(0.05, 0.6)).astype(np.int8)
    return net, x


def _assert_same_run(net, a, b, rec):
    """Runs ``a`` and ``b`` recorded the same integers: every variable in ``rec`` of every
    population, and the wrap/saturation event counts."""
    for var in rec:
        for p in net.populations:
            np.testing.assert_array_equal(getattr(a, var)[p], getattr(b, var)[p],
                                          err_msg=f"{p}.{var}")
    for p in net.populations:
        for e in ("u_wrap", "v_clip"):
            np.testing.assert_array_equal(a.events[p][e], b.events[p][e])


def _force_thread_probes(monkeypatch):
    """Make every run's :class:`fast.Threads` probe serial against parallel kernels every
    few steps (3 steps each, every 7), even on a 1-core machine; returns the list the
    Threads objects made are appended to."""
    from neurohw.emulate import fast

    made = []

    class Probing(fast.Threads):
        WINDOW, PERIOD, SERIAL_PERIOD = 3, 7, 7

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.n, self.adaptive = 2, True
            made.append(self)

    monkeypatch.setattr(fast, "Threads", Probing)
    return made


@pytest.mark.parametrize("seed", range(3))
def test_switching_threads_mid_run_keeps_every_integer(seed, monkeypatch):
    """Probing serial against parallel kernels every few steps (forced here) gives the
    numpy engine's integers: spikes, v, u and event counts."""
    if not numba_available():
        pytest.skip("numba not installed")
    made = _force_thread_probes(monkeypatch)
    net, x = _lively_batch(seed)
    rec = ("spikes", "v", "u")
    a = run(net, x, record=rec, engine="numpy", count_events=True)
    b = run(net, x, record=rec, engine="numba", count_events=True)
    assert made and len(made[-1].probes) >= 5
    _assert_same_run(net, a, b, rec)


@pytest.mark.parametrize("batch", [20, 48])
def test_switching_threads_in_chain_blocks_keeps_every_integer(batch, monkeypatch):
    """The chain loop cut at every probe window (3 steps parallel, 3 serial, every 7):
    per-sample loop and chunks give the numpy engine's integers."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.emulate import engine

    made = _force_thread_probes(monkeypatch)
    calls = []
    orig = engine._run_chain
    monkeypatch.setattr(engine, "_run_chain", lambda *a, **k: calls.append(1) or orig(*a, **k))
    rng = np.random.default_rng(batch)
    net = _chain_net(rng, "loihi2", 2)
    x = (rng.random((batch, 150, net.nodes["input"].shape[0])) < 0.4).astype(np.int8)
    rec = ("spikes", "v", "u")
    a = run(net, x, record=rec, engine="numpy", count_events=True)
    b = run(net, x, record=rec, engine="numba", count_events=True)
    assert calls == [1] and len(made[-1].probes) >= 5
    _assert_same_run(net, a, b, rec)


def test_switching_chain_loops_keeps_every_integer(monkeypatch):
    """A batch run that times its two chain loops (per-sample rows, chunks with BLAS
    products) every few steps, running blocks in both: the numpy engine's integers."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.emulate import engine

    made = []

    class Probe(engine._LoopProbe):
        WINDOW, PERIOD, MIN_VECTORS = 3, 5, 0

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(engine, "_LoopProbe", Probe)
    rng = np.random.default_rng(8)
    net = _chain_net(rng, "loihi2", 3)
    x = (rng.random((40, 200, net.nodes["input"].shape[0])) <
         rng.uniform(0.02, 0.9, (40, 1, 1))).astype(np.int8)
    rec = ("spikes", "v", "u")
    a = run(net, x, record=rec, engine="numpy", count_events=True)
    b = run(net, x, record=rec, engine="numba", count_events=True)
    (probe,) = made
    assert probe.active and None not in probe.est.values() and len(probe.switches) >= 3
    assert min(probe.steps.values()) >= 3 * probe.WINDOW and sum(probe.steps.values()) == 200
    _assert_same_run(net, a, b, rec)


def test_thread_cap_and_small_batches():
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.emulate import fast

    assert fast.Threads(1, 10_000).n == 1 and not fast.Threads(1, 10_000).parallel
    assert fast.Threads(8, 10_000).n == 1
    assert fast.Threads(256, 10_000, threads=1).n == 1
    t = fast.Threads(256, 10_000)
    assert 1 <= t.n <= fast.usable_cores() and 1 <= fast.free_cores() <= fast.usable_cores()


@pytest.mark.parametrize("engine", ["numpy"] + (["numba"] if numba_available() else []))
def test_spilled_recording_equals_in_memory(engine, tmp_path):
    net, x = _lively_batch(4, B=5, T=60)
    rec = ("spikes", "v", "u")
    a = run(net, x, record=rec, engine=engine)
    b = run(net, x, record=rec, engine=engine, spill_dir=tmp_path)
    assert any(tmp_path.iterdir())
    for var in rec:
        for p in net.populations:
            assert isinstance(getattr(b, var)[p].base, np.memmap) or \
                isinstance(getattr(b, var)[p], np.memmap)
            np.testing.assert_array_equal(getattr(a, var)[p], getattr(b, var)[p])


@pytest.mark.parametrize("batch", [1, 40])
def test_chain_spills_block_by_block(batch, tmp_path):
    """A chain run (per-sample loop or chunks) spilled to disk, over several blocks of
    steps with a ragged last one, equals the in-memory chain run and the numpy engine;
    the chain path is really taken."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.emulate import engine

    rng = np.random.default_rng(31 + batch)
    net = _chain_net(rng, "loihi2", 2)
    x = (rng.random((batch, 300, net.nodes["input"].shape[0])) < 0.3).astype(np.int8)
    rec = ("spikes", "v", "u")
    calls = []
    orig = engine._run_chain
    engine._run_chain = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        a = run(net, x, record=rec, engine="numba")
        b = run(net, x, record=rec, engine="numba", spill_dir=tmp_path)
    finally:
        engine._run_chain = orig
    c = run(net, x, record=rec, engine="numpy")
    assert calls == [1, 1]
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        f"{v}.{i}.npy" for v in rec for i in range(len(net.populations)))
    for var in rec:
        for p in net.populations:
            got = getattr(b, var)[p]
            assert isinstance(got.base, np.memmap) or isinstance(got, np.memmap)
            assert got.shape == (batch, 300, net.populations[p].size)
            np.testing.assert_array_equal(getattr(a, var)[p], got)
            np.testing.assert_array_equal(getattr(c, var)[p], got)


@pytest.mark.parametrize("level", [0, 1, 9])
def test_write_run_equals_savez(level, tmp_path, monkeypatch):
    """Streamed members (small blocks forced) read back equal, dtypes and shapes kept;
    strided views are written in C order."""
    import neurohw.emulate.runfile as rf

    monkeypatch.setattr(rf, "_BLOCK_BYTES", 64)
    rng = np.random.default_rng(level)
    buf = (rng.random((50, 7, 13)) < 0.1).astype(np.int8)
    arrays = {"a.spikes": buf.transpose(1, 0, 2),
              "a.v": rng.integers(-2**31, 2**31, (3, 11, 5), dtype=np.int64).astype(np.int32),
              "empty.u": np.zeros((2, 0, 4), np.int32)}
    path = tmp_path / "run.npz"
    write_run(str(path), arrays, compresslevel=level)
    with np.load(path) as d:
        assert sorted(d.files) == sorted(arrays)
        for k, v in arrays.items():
            assert d[k].dtype == v.dtype and d[k].shape == v.shape
            np.testing.assert_array_equal(d[k], v)
    with zipfile.ZipFile(path) as z:
        kinds = {i.filename: i.compress_type for i in z.infolist()}
        assert z.testzip() is None  # every member's CRC
    deflated = zipfile.ZIP_STORED if level == 0 else zipfile.ZIP_DEFLATED
    # v and u are stored (they barely compress); spikes and others are deflated
    assert kinds == {"a.spikes.npy": deflated, "a.v.npy": zipfile.ZIP_STORED,
                     "empty.u.npy": zipfile.ZIP_STORED}
    write_run(str(path), arrays, compresslevel=level, stored=())
    with zipfile.ZipFile(path) as z:
        assert {i.compress_type for i in z.infolist()} == {deflated}
    with np.load(path) as d:
        for k, v in arrays.items():
            np.testing.assert_array_equal(d[k], v)


def test_cli_emulate_spills_and_compresses(tmp_path, monkeypatch):
    """A recording over the spill threshold goes through memory-mapped files (removed
    afterwards) and the run file is compressed; its arrays equal an in-memory run."""
    from neurohw.cli import emulate_cmd, main

    net, x = _lively_batch(5, B=4, T=80)
    model, xin, out = tmp_path / "m.nir", tmp_path / "x.npy", tmp_path / "run.npz"
    nh.write_network(net, model)
    np.save(xin, x)
    monkeypatch.setattr(emulate_cmd, "SPILL_BYTES", 1)
    assert main([("emulate"), str(model), "--input", str(xin), "--out", str(out),
                 "--record", "v,u"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nir", "run.npz", "x.npy"]
    ref = run(net, x, record=("spikes", "v", "u"), engine="numpy").to_npz_dict()
    with np.load(out) as d:
        assert sorted(d.files) == sorted(ref)
        for k, v in ref.items():
            np.testing.assert_array_equal(d[k], v)
    with zipfile.ZipFile(out) as z:
        for i in z.infolist():
            spikes = i.filename.endswith(".spikes.npy")
            assert i.compress_type == (zipfile.ZIP_DEFLATED if spikes else zipfile.ZIP_STORED)


def test_bench_reports_gemm_bound_and_load_ratios():
    from neurohw import bench

    report = bench.run_bench(bench.BenchConfig.quick(steps=30, batch=4, skip_lava=True,
                                                     under_load=True))
    g = report["gemm"]
    assert g["gflops_float32"] > 0
    # 100-100-10: 11,000 synapses, 22,000 flops per sample-step
    assert g["bound_sample_steps_per_s"] == pytest.approx(g["gflops_float32"] * 1e9 / 22000)
    for c in report["cases"]:
        assert c["fraction_of_gemm_bound"] == pytest.approx(
            c["emulator"]["sample_steps_per_s"] / g["bound_sample_steps_per_s"])
    ul = report["under_load"]
    assert {"single", "batch"} <= set(ul) and ul["batch"]["batch"] == 4
    for r in ul.values():
        assert r["ratio"] == pytest.approx(r["loaded"] / r["quiet"]) and r["quiet"] > 0
    text = bench.format_markdown(report)
    assert "float32 GEMM" in text and "under load" in text


def test_serial_and_parallel_kernels_are_cached_apart():
    """numba keys its on-disk cache by function name and signature, not by ``parallel``:
    compiling one function both ways let the serial dispatcher load the threaded
    variant from the cache (whichever was compiled first), so single-sample runs ran
    threaded kernels.  The variants are distinct functions with their own cache files."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.emulate import fast

    for pair in (fast._kernels, fast._kernels_uniform, fast._kernels_ext, fast._sums):
        names = [k.py_func.__qualname__ for k in pair]
        assert names[0] != names[1] and names[0].endswith("_serial")
        assert [k.targetoptions.get("parallel") for k in pair] == [False, True]


def test_auto_engine_compiles_big_networks_even_for_few_steps():
    """Many synapses make numpy's per-step matrix products dominate: 10k neurons and
    30 M synapses pick the compiled engine for 200 single-sample steps."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.bench import bench_network
    from neurohw.emulate import engine, fast

    monkeypatch = pytest.MonkeyPatch()
    with monkeypatch.context() as m:
        m.setattr(engine, "_kernels_loaded", lambda: False)  # as in a fresh process
        assert choose_engine(bench_network((1000, 5000, 5000)), 1, 200) == "numba"
        assert choose_engine(bench_network((100, 100, 10)), 1, 100) == "numpy"
    # once the kernels are loaded in this process, even short runs use them
    run(bench_network((20, 20, 5)), np.zeros((1, 5, 20), np.int8), engine="numba")
    assert fast.loaded()
    assert choose_engine(bench_network((100, 100, 10)), 1, 1000) == "numba"


def test_probing_threads_and_spilled_recording_match_lava(tmp_path, monkeypatch):
    """Row 0 of a 16-sample compiled run that switches serial/parallel kernels every
    few steps and spills its recording to disk equals real Lava on that sample."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.backends.lava import run_lava
    from neurohw.emulate import fast
    from neurohw.profiles import LOIHI1_LAVA

    class Probing(fast.Threads):
        WINDOW, PERIOD = 2, 5

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.n, self.adaptive = 2, True

    monkeypatch.setattr(fast, "Threads", Probing)
    rng = np.random.default_rng(13)
    net = random_network(rng, LOIHI1_LAVA, conv=False, delays=True)
    n = net.nodes["input"].shape[0]
    x = (rng.random((16, 40, n)) < 0.4).astype(np.int8)
    rec = ("spikes", "v", "u")
    emu = run(net, x, record=rec, engine="numba", spill_dir=tmp_path)
    lava = run_lava(net, x[0], record=rec)
    for var in rec:
        for p in net.populations:
            np.testing.assert_array_equal(getattr(emu, var)[p][0], getattr(lava, var)[p],
                                          err_msg=f"{p}.{var}")


def _chain_net(rng, profile, layers):
    from neurohw.testing import random_dense

    prof = nh.get_profile(profile)
    sizes = [int(rng.integers(3, 40)) for _ in range(layers + 1)]
    nodes = [nh.InputNode("input", (sizes[0],))]
    edges, last = [], "input"
    for i in range(layers):
        d = random_dense(rng, f"d{i}", sizes[i + 1], sizes[i], prof)
        n = sizes[i + 1]
        shared = bool(rng.random() < 0.5)

        def par(lo, hi):
            return int(rng.integers(lo, hi)) if shared else rng.integers(lo, hi, n)

        pop = nh.LIFPopulation(f"l{i}", (n,), du=par(0, 4096), dv=par(0, 4096), vth=par(0, 40),
                               bias_mant=rng.integers(-4096, 4096, n),
                               bias_exp=rng.integers(0, 8, n))
        nodes += [d, pop]
        edges += [(last, d.name), (d.name, pop.name)]
        last = pop.name
    return nh.Network({n.name: n for n in nodes}, edges, prof)


@pytest.mark.parametrize("seed", range(6))
def test_fused_chain_equals_numpy_engine(seed, batch=None):
    """The chain loop (random chains of 1-3 layers, weights, exponents and per-neuron
    parameters over their full ranges; one sample or a batch, whose samples run on
    parallel threads): spikes, v, u and events equal the numpy engine's, and the chain
    path is really taken."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.emulate import engine

    rng = np.random.default_rng(900 + seed)
    net = _chain_net(rng, "loihi2", 1 + seed % 3)
    B = (1, 3, 40)[seed % 3] if batch is None else batch
    x = (rng.random((B, 300, net.nodes["input"].shape[0])) < rng.uniform(0.05, 0.9)
         ).astype(np.int8)
    calls = []
    orig = engine._run_chain
    engine._run_chain = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        rec = ("spikes", "v", "u")
        a = run(net, x, record=rec, engine="numpy", count_events=True)
        b = run(net, x, record=rec, engine="numba", count_events=True)
    finally:
        engine._run_chain = orig
    assert calls == [1]
    for var in rec:
        assert list(getattr(a, var)) == list(getattr(b, var))
    _assert_same_run(net, a, b, rec)


@pytest.mark.parametrize("wmax,batch,ratio", [
    (2**27, 5, None),  # per-sample rows, int64 sums
    (2**20, 5, None),  # per-sample rows, int32 sums
    (2**9, 5, None),  # per-sample rows, int16 sums (every sum of |w| < 2**15)
    (2**9, 40, 0),  # chunks, always rows (int16 sums)
    (2**27, 40, 0),  # chunks, always rows (int64 sums)
    (2**27, 40, 10**9),  # chunks, always float64 products
    (2**20, 40, 80),  # chunks, float64 products or int32 rows as the spikes go
    (2**12, 64, 10**9),  # chunks, float32 products
])
def test_chain_runner_wide_sums_and_exponents(wmax, batch, ratio, monkeypatch):
    """The chain kernels' sums -- per-sample rows in int16, int32 or int64, and for batches the
    chunked BLAS products in float32 or float64 -- with both exponent signs, against the
    numpy step functions: Dense sums, ``apply_exp``, Lava's int32 wrap, ``lif_step``."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.emulate import fast
    from neurohw.emulate.steps import LIFParams, LIFState, apply_exp, lif_step, wrap32

    if ratio is not None:
        monkeypatch.setattr(fast.ChainRunner, "GEMM_RATIO", ratio)
    rng = np.random.default_rng(5 + wmax % 7 + batch)
    sizes = [37, 23, 9]
    layers = []
    for i, e in enumerate((3, -5)):
        w = rng.integers(-wmax, wmax, (sizes[i + 1], sizes[i]), dtype=np.int64)
        n = sizes[i + 1]
        p = LIFParams(decay_u=rng.integers(0, 4097, n), decay_v=rng.integers(0, 4097, n),
                      bias=rng.integers(-2**20, 2**20, n), vth_scaled=rng.integers(0, 2**23, n))
        layers.append((w, e, True, p))
    B, T = batch, 120
    runner = fast.ChainRunner(layers, B)
    bound = max(int(np.abs(w).sum(axis=1).max()) for w, *_ in layers)
    sdt = np.int16 if bound < 2**15 else np.int32 if bound < 2**31 else np.int64
    assert runner.scratch.dtype == sdt
    if ratio is None:
        assert runner.chunk is None
    else:
        assert runner.chunk is not None and runner.chunk < B
        assert runner.accs.dtype == sdt
        runner.use_chunks = True
        assert runner.wfloat.dtype == (np.float32 if bound < 2**24 else np.float64)
    x = (rng.random((B, T, sizes[0])) < 0.5).astype(np.int8)
    rec = [np.zeros((T, B, runner.N), dt) for dt in (np.int8, np.int32, np.int32)]
    runner.run(x, 0, 50, *rec)
    runner.run(x, 50, T, *rec)
    # the same steps with the numpy functions, in the engine's order
    st = [LIFState(np.zeros((B, n), np.int64), np.zeros((B, n), np.int64)) for n in sizes[1:]]
    buf = [np.zeros((B, n), np.int64) for n in sizes[1:]]
    for t in range(T):
        spikes = []
        for i, (w, e, _, p) in enumerate(layers):
            st[i], s = lif_step(st[i], buf[i], p)
            o = int(runner.noff[i])  # populations padded to whole vectors
            np.testing.assert_array_equal(rec[0][t, :, o:o + sizes[i + 1]], s, f"step {t}")
            np.testing.assert_array_equal(rec[1][t, :, o:o + sizes[i + 1]], st[i].v)
            np.testing.assert_array_equal(rec[2][t, :, o:o + sizes[i + 1]], st[i].u)
            spikes.append(s)
        for i, (w, e, _, p) in enumerate(layers):
            src = x[:, t] if i == 0 else spikes[i - 1]
            buf[i] = wrap32(apply_exp(src.astype(np.int64) @ w.T, e))
    assert rec[0].any() and (rec[0] == 0).any()


def test_fused_chain_matches_lava(monkeypatch):
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.backends.lava import run_lava
    from neurohw.emulate import fast

    # the 60-step batch is too short to time both loops: it starts (and stays) in chunks
    monkeypatch.setattr(fast.ChainRunner, "PREFER_CHUNKS", True)

    rng = np.random.default_rng(77)
    net = _chain_net(rng, "loihi2", 2)
    x = (rng.random((60, net.nodes["input"].shape[0])) < 0.3).astype(np.int8)
    # a batch of 48 runs in chunks (sample 0 = x, the others denser or sparser)
    xb = (rng.random((48,) + x.shape) < rng.uniform(0.02, 0.9, (48, 1, 1))).astype(np.int8)
    xb[0] = x
    rec = ("spikes", "v", "u")
    emu = run(net, x, record=rec, engine="numba")
    emu_b = run(net, xb, record=rec, engine="numba")
    lava = run_lava(net, x, record=rec)
    for var in rec:
        for p in net.populations:
            np.testing.assert_array_equal(getattr(emu, var)[p][0], getattr(lava, var)[p])
            np.testing.assert_array_equal(getattr(emu_b, var)[p][0], getattr(lava, var)[p])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 46))
def test_fused_chain_equals_numpy_engine_slow(seed):
    test_fused_chain_equals_numpy_engine(seed, batch=(1, 2, 17, 64)[seed % 4])


def test_bench_times_whole_process_startup():
    from neurohw import bench

    net = bench.bench_network((20, 20, 5))
    st = bench.measure_startup(net, bench.bench_input(20, 30, 1)[0], repeats=1)
    assert 0 < st["python_seconds"] < st["seconds"] and st["steps"] == 30
    assert st["meets_target"] == (st["seconds"] <= bench.STARTUP_TARGET_S)


@pytest.mark.parametrize("dtype,compress", [(np.int16, True), (np.int32, True),
                                            (np.int64, True), (np.int16, False)])
def test_register_row_sums_every_group_and_tail(dtype, compress, monkeypatch):
    """The SIMD row sums (``fast._vec_row_sums``: inputs listed with vector.compress,
    rows added in 512-bit registers, 1-8 vectors per pass, 4 or 2 rows per iteration)
    against numpy: every group size and unroll tail, inputs not a multiple of 8, none
    or all spiking, sums that wrap in the narrow type and are still exact mod 2**bits."""
    if not numba_available():
        pytest.skip("numba not installed")
    import numba

    from neurohw.emulate import fast

    if compress and not fast.VECTOR_COMPRESS[0]:
        pytest.skip("LLVM before 19: no vector.compress")
    # False: the lane-by-lane listing of LLVM < 19 (read when this function compiles)
    monkeypatch.setattr(fast, "VECTOR_COMPRESS", [compress])

    @numba.njit
    def sums(src, wpad, w0, stride, acc, a0, lanes):
        idx = np.zeros(src.shape[0] + 8, np.int64)
        fast._vec_row_sums(src, src.shape[0], idx, wpad, w0, stride, acc, a0, lanes)

    rng = np.random.default_rng(int(np.dtype(dtype).itemsize))
    lanes = fast.VEC_BYTES // np.dtype(dtype).itemsize
    info = np.iinfo(dtype)
    for nin in (1, 7, 8, 9, 31, 64, 133):
        for nv in (1, 2, 3, 4, 5, 7, 8, 9, 12, 17):
            stride = nv * lanes
            w = rng.integers(info.min, info.max, (nin, stride), dtype=np.int64, endpoint=True)
            w0 = int(rng.integers(0, 5))
            wpad = np.concatenate([np.zeros(w0, dtype), w.astype(dtype).reshape(-1)])
            for rate in (0.0, 0.3, 1.0):
                src = (rng.random(nin) < rate).astype(np.int8) * rng.integers(1, 5, nin,
                                                                             dtype=np.int8)
                a0 = int(rng.integers(0, 3))
                acc = np.full(a0 + stride + 3, 7, dtype)
                sums(src, wpad, w0, stride, acc, a0, lanes)
                want = (src != 0).astype(np.int64) @ w  # modulo 2**64 (numpy wraps)
                if info.bits < 64:  # wrapped to the narrow type
                    want = ((want - info.min) % (1 << info.bits) + info.min).astype(dtype)
                np.testing.assert_array_equal(acc[a0:a0 + stride], want,
                                              f"nin {nin} vectors {nv} rate {rate}")
                assert (acc[:a0] == 7).all() and (acc[a0 + stride:] == 7).all()
    if not compress:  # the fallback really ran
        assert "compress" not in sums.inspect_llvm(sums.signatures[0])


@pytest.mark.parametrize("wmax,n_in", [(100, 300), (100, 2000), (3000, 50), (3000, 3000),
                                       (2**20, 40), (2**30, 7)])
def test_spike_sum_narrow_weights_and_sums(wmax, n_in):
    """SpikeSum stores the weights in the narrowest type that holds them (int8/int16/
    int32) and sums in the narrowest type the bound allows (int16/int32/int64),
    sign-extending each row after the load: equal to the exact numpy sums for bool,
    int8 and strided spikes."""
    if not numba_available():
        pytest.skip("numba not installed")
    from neurohw.emulate import fast

    rng = np.random.default_rng(wmax % 97 + n_in)
    n_out = 45
    wt = rng.integers(-wmax, wmax, (n_in, n_out), dtype=np.int64, endpoint=True)
    bound = int(np.abs(wt).sum(axis=0).max())
    ss = fast.SpikeSum(wt, 9, bound < 2**31)
    assert ss.scratch.dtype == (np.int16 if bound < 2**15 else np.int32 if bound < 2**31
                                else np.int64)
    assert ss.wpad.dtype.itemsize <= ss.scratch.dtype.itemsize
    assert ss.wpad.dtype == (np.int8 if wmax < 2**7 else np.int16 if wmax < 2**15 else
                             np.int32 if ss.scratch.dtype != np.int16 else np.int16)
    big = rng.random((9, 2 * n_in)) < 0.4
    for s in (big[:, :n_in].copy(), big[:, ::2], big[:, :n_in].astype(np.int8),
              np.zeros((9, n_in), bool), np.ones((9, n_in), bool)):
        got = ss(s)
        np.testing.assert_array_equal(got, (s != 0).astype(np.int64) @ wt)
