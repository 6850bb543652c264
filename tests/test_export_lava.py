"""The standalone Lava script export: run in a subprocess, bit-exact vs the emulator.

Each test exports a random network (full parameter ranges, thresholds
lowered so that neurons actually spike), runs the generated ``run_lava.py``
with the venv's Python in isolated mode (``-I``: no PYTHONPATH, no user
site, script directory first on sys.path) from a directory outside the
repository, and compares every array with :func:`neurohw.emulate.engine.run`.
"""

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurohw as nh
from neurohw import ir
from neurohw.emulate.engine import input_payload_bits, run as emulate
from neurohw.errors import FileFormatError, ValidationError
from neurohw.export import export_lava_script, lava_processes
from neurohw.testing import random_network

pytestmark = pytest.mark.lava

REPO = Path(__file__).resolve().parents[1]


def spiking_network(seed: int, conv: bool = False, **kwargs) -> nh.Network:
    """A random network whose thresholds are low enough to make neurons spike."""
    rng = np.random.default_rng(seed)
    net = random_network(rng, "loihi2", conv=conv, **kwargs)
    nodes = {}
    for name, node in net.nodes.items():
        if isinstance(node, ir.LIFPopulation):
            node = dataclasses.replace(node, vth=int(rng.integers(0, 64)),
                                       dv=int(rng.integers(0, 4096)),
                                       bias_exp=np.minimum(node.bias_exp, 3))
        elif isinstance(node, ir.Conv2d) and node.weight_exp < 0:
            # Lava's Conv cannot express a negative weight_exp (test_conv_negative_exp_refused)
            node = dataclasses.replace(node, weight_exp=-node.weight_exp)
        nodes[name] = node
    return nh.Network(nodes, net.edges, net.profile, net.dt_s)


def random_input(net: nh.Network, rng, shape) -> np.ndarray:
    bits = input_payload_bits(net, "input")
    n = int(np.prod(net.nodes["input"].shape))
    hi = 1 if bits == 0 else 2**bits - 1
    return rng.integers(0, hi + 1, tuple(shape) + (n,)).astype(np.int32)


# Runs a script with `import neurohw` made impossible (the venv has neurohw
# installed, so isolation alone would not prove the script does without it).
_NO_NEUROHW = """
import importlib.abc, runpy, sys
class NoNeurohw(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "neurohw":
            raise ImportError("neurohw is blocked in this test")
sys.meta_path.insert(0, NoNeurohw())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_script(out_dir: Path, x: np.ndarray, tmp: Path, record="v,u") -> dict:
    np.save(tmp / "x.npy", x)
    cmd = [sys.executable, "-I", "-c", _NO_NEUROHW, str(out_dir / "run_lava.py"),
           "--input", str(tmp / "x.npy"), "--out", str(tmp / "run.npz")]
    if record:
        cmd += ["--record", record]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tmp / "run.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def assert_bit_exact(net, x, got: dict, record=("spikes", "v", "u")) -> int:
    expected = emulate(net, x, record=record).to_npz_dict()
    assert set(got) == set(expected)
    for key, arr in expected.items():
        assert got[key].dtype == arr.dtype, key
        assert got[key].shape == arr.shape, key
        np.testing.assert_array_equal(got[key], arr, err_msg=key)
    return sum(int(v.sum()) for k, v in expected.items() if k.endswith(".spikes"))


def test_script_is_standalone(tmp_path):
    net = spiking_network(1)
    out = export_lava_script(net, tmp_path / "exp")
    assert sorted(p.name for p in out.iterdir()) == ["run_lava.py", "weights.npz"]
    source = (out / "run_lava.py").read_text()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "argparse", "importlib", "json", "os", "sys",
                        "tempfile", "numpy", "lava",
                        "scipy"}, imported  # scipy: a lava-nc dependency (Sparse)
    # integers only, readable without pickles
    with np.load(out / "weights.npz", allow_pickle=False) as w:
        assert all(w[k].dtype.kind == "i" for k in w.files)
    # the runner used by the other tests really blocks neurohw
    blocked = subprocess.run([sys.executable, "-I", "-c", _NO_NEUROHW.replace(
        'runpy.run_path(sys.argv[0], run_name="__main__")', "import neurohw")],
        cwd=tmp_path, capture_output=True, text=True)
    assert blocked.returncode != 0 and "neurohw is blocked" in blocked.stderr


def test_feed_forward_batch_bit_exact(tmp_path):
    net = spiking_network(3, recurrent=False)
    out = export_lava_script(net, tmp_path / "exp")
    x = random_input(net, np.random.default_rng(0), (2, 25))
    got = run_script(out, x, tmp_path)
    assert assert_bit_exact(net, x, got) > 0


def test_recurrent_delays_single_sample_bit_exact(tmp_path):
    # seed chosen so the network has a recurrent Dense and a DelayDense
    for seed in range(100):
        net = spiking_network(seed)
        dense = net.of_type(ir.Dense)
        if "recurrent" in dense and any(d.delay is not None for d in dense.values()):
            break
    out = export_lava_script(net, tmp_path / "exp")
    x = random_input(net, np.random.default_rng(seed), (30,))
    got = run_script(out, x, tmp_path, record="u")
    assert assert_bit_exact(net, x[None], got, record=("spikes", "u")) > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_random_networks_bit_exact(tmp_path, seed):
    net = spiking_network(100 + seed, conv=seed % 3 == 0)
    out = export_lava_script(net, tmp_path / "exp")
    x = random_input(net, np.random.default_rng(seed), (2, 20))
    got = run_script(out, x, tmp_path)
    assert_bit_exact(net, x, got)


@pytest.mark.slow
def test_graded_input_bit_exact(tmp_path):
    rng = np.random.default_rng(7)
    net = spiking_network(7, recurrent=False)
    nodes = dict(net.nodes)
    nodes["dense0"] = dataclasses.replace(nodes["dense0"], num_message_bits=5)
    net = nh.Network(nodes, net.edges, net.profile, net.dt_s)
    out = export_lava_script(net, tmp_path / "exp")
    x = random_input(net, rng, (1, 20))
    assert x.max() > 1
    assert_bit_exact(net, x, run_script(out, x, tmp_path))


def test_script_rejects_bad_input(tmp_path):
    net = spiking_network(2)
    out = export_lava_script(net, tmp_path / "exp")
    n = net.nodes["input"].shape[0]
    np.save(tmp_path / "bad.npy", np.full((4, n + 1), 0))
    np.save(tmp_path / "vals.npy", np.full((4, n), 7))
    for name, text in (("bad.npy", f"expected (T, {n}) or (B, T, {n})"),
                       ("vals.npy", "outside 0..1"), ("missing.npy", "no such file")):
        proc = subprocess.run([sys.executable, "-I", str(out / "run_lava.py"), "--input",
                               str(tmp_path / name), "--out", str(tmp_path / "r.npz")],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert text in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.npz").exists()


def test_export_dir_is_atomic_and_refuses_overwrite(tmp_path):
    net = spiking_network(4)
    out = export_lava_script(net, tmp_path / "exp")
    before = (out / "weights.npz").read_bytes()
    with pytest.raises(FileFormatError, match="not empty"):
        export_lava_script(spiking_network(5), out)
    assert (out / "weights.npz").read_bytes() == before
    export_lava_script(spiking_network(5), out, overwrite=True)
    assert (out / "weights.npz").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # no temp dirs left
    with pytest.raises(FileFormatError, match="does not exist"):
        export_lava_script(net, tmp_path / "no" / "such")


def test_conv_negative_exp_refused(tmp_path):
    for seed in range(200):
        net = random_network(np.random.default_rng(seed), "loihi2", conv=True)
        if "conv" in net.nodes and net.nodes["conv"].weight_exp < 0:
            break
    with pytest.raises(ValidationError, match="node 'conv': weight_exp=-"):
        export_lava_script(net, tmp_path / "exp")
    assert list(tmp_path.iterdir()) == []


def test_multiple_inputs_refused(tmp_path):
    rng = np.random.default_rng(0)
    nodes = {
        "a": ir.InputNode("a", (3,)), "b": ir.InputNode("b", (3,)),
        "da": ir.Dense("da", weight=rng.integers(-5, 5, (2, 3))),
        "db": ir.Dense("db", weight=rng.integers(-5, 5, (2, 3))),
        "l": ir.LIFPopulation("l", (2,), vth=10),
    }
    net = nh.Network(nodes, [("a", "da"), ("b", "db"), ("da", "l"), ("db", "l")], "loihi2")
    with pytest.raises(ValidationError, match="2 Input nodes"):
        export_lava_script(net, tmp_path / "exp")


def test_lava_processes_runs_in_lava():
    from neurohw.backends.lava import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.monitor.process import Monitor

    net = spiking_network(3, recurrent=False)
    x = random_input(net, np.random.default_rng(1), (15,))
    procs = lava_processes(net, x)
    assert set(procs) == {k for k, n in net.nodes.items()
                          if not isinstance(n, (ir.OutputNode, ir.Flatten))}
    pop = next(iter(net.populations))
    mon = Monitor()
    mon.probe(procs[pop].v, 15)
    try:
        mon.run(condition=RunSteps(num_steps=15), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        v = np.asarray(mon.get_data()[procs[pop].name]["v"]).reshape(15, -1)
    finally:
        mon.stop()
    np.testing.assert_array_equal(v, emulate(net, x, record=("v",)).v[pop][0])
