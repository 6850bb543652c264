"""Batches spread over a Dask cluster (neurohw.distributed, ``--scheduler``): the same
integers as a local run, tested on an in-process LocalCluster with two workers.

Every test here, and the start and stop of the module's cluster, runs under a deadline
(:func:`_deadline`, SIGALRM): a hang -- a lost task, a cluster that does not start or
close -- fails the test instead of stalling the suite."""

import contextlib
import dataclasses
import signal
import sys
import threading

import numpy as np
import pytest

import neurohw as nh
from neurohw.emulate import run
from neurohw.testing import random_network

distributed = pytest.importorskip("distributed")

REC = ("spikes", "v", "u")

#: seconds a test (or the cluster's start or stop) may take before it counts as hung
HANG_S = 120


@contextlib.contextmanager
def _deadline(seconds: int, what: str):
    """Raise TimeoutError in the main thread if the block runs past ``seconds``."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"{what} ran past {seconds} s (hang guard of test_distributed.py)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def _no_hang(request):
    with _deadline(HANG_S, request.node.name):
        yield


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        with _deadline(HANG_S, "starting the LocalCluster"):
            lc = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1,
                                                  processes=False, dashboard_address=":0"))
            client = stack.enter_context(Client(lc))
        try:
            yield lc, client
        finally:
            with _deadline(HANG_S, "closing the LocalCluster"):
                stack.close()


def _lively(net, rng):
    """``net`` with small thresholds (1..63), so its populations spike and order matters."""
    nodes = dict(net.nodes)
    for k, p in net.populations.items():
        nodes[k] = dataclasses.replace(p, vth=rng.integers(1, 64, p.size).reshape(p.shape))
    return nh.Network(nodes, list(net.edges), net.profile)


def _assert_same(a, b, pops, rec=REC):
    assert (a.num_steps, a.batch_size) == (b.num_steps, b.batch_size)
    for var in rec:
        assert set(getattr(a, var)) == set(getattr(b, var))
        for p in getattr(a, var):
            x, y = getattr(a, var)[p], getattr(b, var)[p]
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y, err_msg=f"{p}.{var}")


@pytest.mark.parametrize("seed", range(4))
def test_distributed_equals_local_on_random_networks(cluster, seed):
    """Random networks (delays, both profiles' widths, random batch sizes and piece
    counts, including more pieces than workers and pieces of one sample)."""
    from neurohw.distributed import run as drun

    _, client = cluster
    rng = np.random.default_rng(100 + seed)
    for _ in range(50):  # draw until the network spikes (a silent one compares zeros only)
        net = _lively(random_network(rng, ["loihi1", "loihi2"][seed % 2], conv=False,
                                     delays=True), rng)
        n = net.nodes["input"].shape[0]
        B = int(rng.integers(2, 9))
        x = (rng.random((B, int(rng.integers(5, 40)), n)) < rng.uniform(0.05, 0.9)).astype(np.int8)
        local = run(net, x, record=REC, engine="numpy", count_events=True)
        if all(s.any() for s in local.spikes.values()):
            break
    else:
        pytest.fail("no spiking draw")
    engine = ["numpy", "numba", "auto", "numpy"][seed]
    dist = drun(net, x, client, record=REC, engine=engine, count_events=True,
                pieces=[None, 3, B, 2][seed])
    _assert_same(local, dist, net.populations)
    for p in net.populations:
        for e in ("u_wrap", "v_clip"):
            np.testing.assert_array_equal(local.events[p][e], dist.events[p][e])


def test_distributed_conv_and_lively_spikes(cluster):
    """A conv network that spikes: the spikes and v/u come back in batch order."""
    from neurohw.distributed import run as drun

    _, client = cluster
    rng = np.random.default_rng(7)
    net = _lively(random_network(rng, "loihi2", conv=True), rng)
    n = int(np.prod(net.nodes["input"].shape))
    x = (rng.random((5, 12, n)) < 0.5).astype(np.int8)
    local = run(net, x, record=REC)
    dist = drun(net, x, client, record=REC)
    _assert_same(local, dist, net.populations)
    assert all(s.any() for s in local.spikes.values())
    # a permuted batch gives the permuted answers (order is kept, not just the multiset)
    perm = rng.permutation(5)
    dperm = drun(net, x[perm], client, record=REC, pieces=5)
    for var in REC:
        for p in net.populations:
            np.testing.assert_array_equal(getattr(dperm, var)[p], getattr(local, var)[p][perm])


@pytest.mark.parametrize("spill", [False, True])
def test_cli_emulate_with_scheduler(cluster, tmp_path, monkeypatch, spill):
    """`neurohw emulate --scheduler ADDRESS` writes the same file contents as a local run
    (also when the recording is collected into memory-mapped spill files)."""
    from neurohw.cli import emulate_cmd, main

    if spill:
        monkeypatch.setattr(emulate_cmd, "SPILL_BYTES", 0)

    lc, _ = cluster
    rng = np.random.default_rng(3)
    net = _lively(random_network(rng, "loihi2", conv=False, delays=True), rng)
    model = tmp_path / "m.q.nir"
    nh.write_network(net, model)
    x = (rng.random((4, 20, net.nodes["input"].shape[0])) < 0.4).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    args = [str(model), "--input", str(tmp_path / "x.npy"), "--record", "v,u"]
    assert main(["emulate", *args, "--out", str(tmp_path / "a.npz")]) == 0
    assert main(["emulate", *args, "--out", str(tmp_path / "b.npz"),
                 "--scheduler", lc.scheduler_address]) == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_back_to_back_runs_of_one_network(cluster):
    """Runs of the same network one after another, on different inputs cut into the same
    pieces: each gets its own answers.  (With content-hashed keys the network's bytes of
    a new run were scattered under the key whose release by the previous run was still
    on its way to the scheduler, which then dropped it: "lost dependencies" in 33 of 40
    runs on a loaded machine, in every run here with the releases slowed down.)"""
    from neurohw.distributed import run as drun

    _, client = cluster
    rng = np.random.default_rng(21)
    net = _lively(random_network(rng, "loihi2", conv=False), rng)
    n = net.nodes["input"].shape[0]
    xs = [(rng.random((4, 10, n)) < 0.5).astype(np.int8) for _ in range(2)]
    local = [run(net, x, engine="numpy") for x in xs]
    assert not np.array_equal(local[0].spikes[next(iter(net.populations))],
                              local[1].spikes[next(iter(net.populations))])
    # releases go to the scheduler in batches (every 10 ms); slow them down, as a loaded
    # machine does, so that each run's release is still in flight when the next starts
    bstream = client.scheduler_comm
    interval, bstream.interval = bstream.interval, 0.3
    try:
        for i in range(8):
            got = drun(net, xs[i % 2], client, engine="numpy", pieces=2)
            _assert_same(local[i % 2], got, net.populations, rec=("spikes",))
    finally:
        bstream.interval = interval
    # nothing of these runs stays on the cluster (give the releases a moment)
    import time

    for _ in range(50):
        left = [k for k in client.who_has() if "neurohw-piece" in str(k) or "bytes" in str(k)]
        if not left:
            break
        time.sleep(0.1)
    assert not left


def test_worker_with_another_version_is_refused(cluster, monkeypatch):
    from neurohw import distributed as dist

    _, client = cluster
    rng = np.random.default_rng(0)
    net = random_network(rng, "loihi2", conv=False)
    x = np.zeros((2, 3, net.nodes["input"].shape[0]), np.int8)
    # in-process workers share the module: make the workers report another version
    monkeypatch.setattr(dist, "_worker_version", lambda: "9.9.9")
    with pytest.raises(nh.errors.ValidationError, match="same version"):
        dist.run(net, x, client)


def test_missing_dask_is_one_line(monkeypatch):
    from neurohw import distributed as dist

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    with pytest.raises(nh.errors.MissingDependencyError) as exc:
        dist.connect("tcp://127.0.0.1:1")
    assert "\n" not in str(exc.value) and "dask[distributed]" in str(exc.value)


@pytest.mark.parametrize("address, msg", [("tcp://127.0.0.1:9", "no Dask scheduler answers"),
                                          ("notanaddress", "not a Dask scheduler address")])
def test_bad_scheduler_is_one_line(address, msg):
    from neurohw import distributed as dist

    before = set(threading.enumerate())
    with pytest.raises(nh.errors.ValidationError) as exc:
        dist.connect(address, timeout="1s")
    assert "\n" not in str(exc.value) and msg in str(exc.value) and address in str(exc.value)
    # no Client was started for nothing: its event-loop thread would outlive the test
    assert not [t.name for t in set(threading.enumerate()) - before if t.is_alive()]


def test_quantize_eval_with_scheduler(cluster, tmp_path):
    """`neurohw quantize --eval --scheduler`: the report's chip figures (spikes, v, event
    counts, accuracy) equal those of a local evaluation."""
    import json
    from pathlib import Path

    from neurohw.cli import main

    lc, _ = cluster
    root = Path(__file__).resolve().parents[1] / "examples" / "models"
    model, data = root / "digits.nir", root / "digits_data.npz"
    common = ["--calibrate", f"{data}:x_train", "--eval", f"{data}:x_test",
              "--labels", f"{data}:y_test"]
    assert main(["quantize", str(model), "-o", str(tmp_path / "a.q.nir"), *common,
                 "--report", str(tmp_path / "ra")]) == 0
    assert main(["quantize", str(model), "-o", str(tmp_path / "b.q.nir"), *common,
                 "--report", str(tmp_path / "rb"), "--scheduler", lc.scheduler_address]) == 0
    a = json.loads((tmp_path / "ra" / "report.json").read_text())["evaluation"]
    b = json.loads((tmp_path / "rb" / "report.json").read_text())["evaluation"]
    assert a == b and a["accuracy_chip"] is not None


def test_quantize_scheduler_needs_eval(tmp_path, capsys):
    from pathlib import Path

    from neurohw.cli import main

    model = Path(__file__).resolve().parents[1] / "examples" / "models" / "digits.nir"
    rc = main(["quantize", str(model), "-o", str(tmp_path / "q.nir"),
               "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc == 2 and "--scheduler needs --eval" in err and err.count("\n") == 1


@pytest.mark.slow  # worker processes: can stall after Lava's runs changed multiprocessing state
def test_process_workers_equal_local(tmp_path):
    """Two worker processes (as on a real cluster: the network travels as quantized-NIR
    bytes and is read back in another interpreter)."""
    from distributed import Client, LocalCluster

    from neurohw.distributed import run as drun

    rng = np.random.default_rng(11)
    net = _lively(random_network(rng, "loihi1", conv=True), rng)
    n = int(np.prod(net.nodes["input"].shape))
    x = (rng.random((6, 15, n)) < 0.4).astype(np.int8)
    local = run(net, x, record=REC, engine="numpy")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", local_directory=str(tmp_path)) as lc, \
            Client(lc) as client:
        dist = drun(net, x, client, record=REC, engine="numpy")
    _assert_same(local, dist, net.populations)


def test_dask_is_imported_only_with_scheduler():
    import subprocess

    code = ("import sys, neurohw, neurohw.distributed, neurohw.cli.emulate_cmd, "
            "neurohw.cli.quantize_cmd; print(any(m.split('.')[0] in ('dask', 'distributed') "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_missing_dask_is_one_line(tmp_path, capsys, monkeypatch):
    from neurohw.cli import main

    rng = np.random.default_rng(0)
    net = random_network(rng, "loihi2", conv=False)
    nh.write_network(net, tmp_path / "m.q.nir")
    np.save(tmp_path / "x.npy", np.zeros((2, 3, net.nodes["input"].shape[0]), np.int8))
    monkeypatch.setitem(sys.modules, "distributed", None)
    rc = main(["emulate", str(tmp_path / "m.q.nir"), "--input", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "r.npz"), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc != 0 and "dask[distributed]" in err and err.count("\n") == 1
    assert not (tmp_path / "r.npz").exists()
