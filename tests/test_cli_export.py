"""`neurohw export`: targets, atomic outputs, one-line errors with exit status 2."""

import subprocess
import sys

import numpy as np
import pytest

import neurohw as nh
from neurohw.cli import main
from neurohw.emulate.engine import run as emulate
from neurohw.testing import random_network

from conftest import assert_networks_equal


@pytest.fixture
def model(tmp_path):
    net = random_network(np.random.default_rng(11), "loihi2", conv=False)
    path = tmp_path / "m.q.nir"
    nh.write_network(net, path)
    return net, path


def test_export_nir_round_trips(model, tmp_path, capsys):
    net, path = model
    out = tmp_path / "copy.nir"
    assert main(["export", str(path), "--to", "nir", "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert_networks_equal(net, nh.read_network(out))


def test_export_nir_flavor_is_float_only(model, tmp_path):
    net, path = model
    out = tmp_path / "m.norse.nir"
    assert main(["export", str(path), "--to", "nir", "--flavor", "norse", "-o", str(out)]) == 0
    graph = nh.load_nir(out, infer_types=False)
    assert not nh.is_quantized(graph)
    assert graph.metadata["neurohw"]["flavor"] == "norse"
    assert set(graph.nodes) == set(net.nodes)


def test_export_lava_writes_script_dir(model, tmp_path, capsys):
    net, path = model
    out = tmp_path / "lava_out"
    assert main(["export", str(path), "--to", "lava", "-o", str(out)]) == 0
    assert "run_lava.py" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["run_lava.py", "weights.npz"]
    # a second export into the same non-empty directory needs --force
    assert main(["export", str(path), "--to", "lava", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and len(err.splitlines()) == 1
    assert main(["export", str(path), "--to", "lava", "-o", str(out), "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lava_out", "m.q.nir"]


@pytest.mark.lava
@pytest.mark.slow
def test_exported_script_matches_emulate_cli(model, tmp_path):
    net, path = model
    out = tmp_path / "lava_out"
    assert main(["export", str(path), "--to", "lava", "-o", str(out)]) == 0
    x = np.random.default_rng(2).integers(0, 2, (2, 12, net.nodes["input"].shape[0]))
    np.save(tmp_path / "x.npy", x)
    assert main(["emulate", str(path), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "emu.npz"), "--record", "v,u"]) == 0
    proc = subprocess.run([sys.executable, "-I", str(out / "run_lava.py"), "--input",
                           str(tmp_path / "x.npy"), "--out", str(tmp_path / "lava.npz"),
                           "--record", "v,u"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    emu, lava = np.load(tmp_path / "emu.npz"), np.load(tmp_path / "lava.npz")
    assert set(emu.files) == set(lava.files)
    for key in emu.files:
        assert emu[key].dtype == lava[key].dtype
        np.testing.assert_array_equal(emu[key], lava[key], err_msg=key)


def test_export_bad_inputs_exit_2(model, tmp_path, capsys):
    import nir

    net, path = model
    float_nir = tmp_path / "float.nir"
    graph = nh.network_to_nir(net)
    graph.metadata = {}
    nir.write(float_nir, graph)
    (tmp_path / "text.nir").write_text("hello")
    cases = [
        (["export", str(float_nir), "--to", "nir", "-o", str(tmp_path / "o.nir")], "unquantized"),
        (["export", str(tmp_path / "text.nir"), "--to", "lava", "-o", str(tmp_path / "d")],
         "not a NIR file"),
        (["export", str(tmp_path / "none.nir"), "--to", "nir", "-o", str(tmp_path / "o.nir")],
         "no such file"),
        (["export", str(path), "--to", "nir", "-o", str(tmp_path / "text.nir" / "o.nir")],
         "is not a directory"),  # a missing parent is created; a file in the way is refused
        (["export", str(path), "--to", "onnx", "-o", str(tmp_path / "o")], "invalid choice"),
    ]
    for argv, text in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert text in err, (argv, err)
        assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "o.nir").exists() and not (tmp_path / "d").exists()


def test_export_netx(model, tmp_path, capsys):
    net, path = model
    out = tmp_path / "m.net"
    try:
        import neurohw.export.netx  # noqa: F401  (written in parallel; may be absent)
    except ModuleNotFoundError:
        assert main(["export", str(path), "--to", "netx", "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "netx" in err and len(err.splitlines()) == 1
        return
    code = main(["export", str(path), "--to", "netx", "-o", str(out)])
    err = capsys.readouterr().err
    if code == 2:  # a network netx cannot express: one line, no file
        assert len(err.strip().splitlines()) == 1 and not out.exists()
    else:
        assert code == 0, err
        import h5py

        assert h5py.is_hdf5(out)
    assert sorted(p.name for p in tmp_path.iterdir()) in (["m.q.nir"], ["m.net", "m.q.nir"])
