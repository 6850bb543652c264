import os

import numpy as np
import pytest

import neurohw as nh
from neurohw.backends.lava import run_lava
from neurohw.cli import main
from neurohw.testing import random_network

pytestmark = pytest.mark.lava


@pytest.fixture
def model(tmp_path):
    net = random_network(np.random.default_rng(5), "loihi2", conv=False)
    path = tmp_path / "m.q.nir"
    nh.write_network(net, path)
    return net, path


def test_emulate_writes_contract_layout(model, tmp_path, capsys):
    net, path = model
    n = net.nodes["input"].shape[0]
    x = np.random.default_rng(0).integers(0, 2, (2, 15, n)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "run.npz"
    assert main(["emulate", str(path), "--input", str(tmp_path / "x.npy"), "--out", str(out),
                 "--record", "v,u"]) == 0
    assert "2 sample(s) x 15 steps" in capsys.readouterr().out
    data = np.load(out)
    assert set(data.files) == {f"{p}.{v}" for p in net.populations for v in ("spikes", "v", "u")}
    for p, pop in net.populations.items():
        assert data[f"{p}.spikes"].shape == (2, 15, pop.size)
    # row t equals index t of a Lava Monitor for the same input
    lava = run_lava(net, x[1], record=("spikes", "v"))
    for p in net.populations:
        np.testing.assert_array_equal(data[f"{p}.v"][1], lava.v[p])
        np.testing.assert_array_equal(data[f"{p}.spikes"][1], lava.spikes[p])


def test_verify_exit_codes(model, tmp_path, capsys):
    net, path = model
    n = net.nodes["input"].shape[0]
    np.save(tmp_path / "x.npy", np.random.default_rng(1).integers(0, 2, (20, n)))
    assert main(["verify", str(path), "--input", str(tmp_path / "x.npy")]) == 0
    assert "bit-exact" in capsys.readouterr().out


def test_bad_inputs_exit_2(model, tmp_path, capsys):
    net, path = model
    n = net.nodes["input"].shape[0]
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "shape.npy", np.zeros((5, n + 1), np.int8))
    np.save(tmp_path / "vals.npy", np.full((5, n), 2))
    np.save(tmp_path / "nan.npy", np.full((5, n), np.nan))
    (tmp_path / "text.npy").write_text("hello")
    cases = [
        ("obj.npy", "pickle"),
        ("shape.npy", f"expected (T, {n}) or (B, T, {n})"),
        ("vals.npy", "above allowed range [0, 1] (binary spikes)"),
        ("nan.npy", "is not finite"),
        ("text.npy", "not a .npy/.npz array"),
        ("missing.npy", "no such file"),
    ]
    out = tmp_path / "run.npz"
    for name, fragment in cases:
        rc = main(["emulate", str(path), "--input", str(tmp_path / name), "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2, name
        assert fragment in err and name in err and err.count("\n") == 1, err
        assert not out.exists()
        assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    rc = main(["emulate", str(path), "--input", str(tmp_path / "vals.npy"), "--out", str(out),
               "--record", "w"])
    assert rc == 2 and "--record" in capsys.readouterr().err
