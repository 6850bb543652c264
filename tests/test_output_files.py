"""Every output neurohw writes is created atomically with the user's umask.

Quantized NIR, reports, figures, run files, exports (Lava script directory,
netx HDF5, NIR) and bench reports get the mode a plain ``open(path, "w")``
(or ``mkdir``) gives: ``0o666 & ~umask`` for files (``0644`` under umask
022), ``0o777 & ~umask`` for directories and the executable script.  The
commands run in child processes started with the umask set, as a user's
shell would start them.  A failed write leaves neither the output nor a
temporary file behind, and an existing output untouched.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import neurohw as nh
from neurohw.cli import main
from neurohw.fileio import atomic_write, current_umask, output_mode

from conftest import small_chain

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "digits.nir"
DATA = ROOT / "examples" / "models" / "digits_data.npz"

# one child process per umask runs every command that writes a file
_DRIVER = textwrap.dedent("""
    import sys
    import numpy as np
    from neurohw.cli import main

    model, data, out = sys.argv[1:4]
    steps = [
        ["quantize", model, "-o", f"{out}/m.q.nir", "--calibrate", f"{data}:x_train",
         "--eval", f"{data}:x_test", "--report", f"{out}/rep"],
        ["export", f"{out}/m.q.nir", "--to", "lava", "-o", f"{out}/lava"],
        ["export", f"{out}/m.q.nir", "--to", "nir", "-o", f"{out}/again.nir"],
        ["export", f"{out}/m.q.nir", "--to", "nir", "--flavor", "snntorch",
         "-o", f"{out}/snn.nir"],
        ["bench", "--quick", "--skip-lava", "--steps", "10", "--batch", "2",
         "--json", f"{out}/bench.json"],
    ]
    x = np.load(data)["x_test"][:2]
    np.save(f"{out}/x.npy", x.astype(np.int8))
    steps.append(["emulate", f"{out}/m.q.nir", "--input", f"{out}/x.npy",
                  "--out", f"{out}/run.npz", "--record", "v,u"])
    for argv in steps:
        code = main(argv)
        if code != 0:
            sys.exit(f"{argv[0]} failed with {code}")
""")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run_with_umask(mask: int, argv, cwd=None, timeout=600):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, umask=mask,
                          cwd=cwd)


def _outputs(out: Path):
    """(path, expected kind) for every output the driver writes."""
    files = ["m.q.nir", "again.nir", "snn.nir", "bench.json", "run.npz",
             "rep/report.txt", "rep/report.json", "lava/weights.npz"]
    figures = sorted(p.relative_to(out).as_posix() for p in (out / "rep").glob("*.png"))
    return ([(out / f, "file") for f in files + figures]
            + [(out / "lava" / "run_lava.py", "exec"), (out / "lava", "dir"),
               (out / "rep", "dir")]), figures


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_every_cli_output_gets_the_umask_mode(mask, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = _run_with_umask(mask, [sys.executable, "-c", _DRIVER, str(MODEL), str(DATA), str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    outputs, figures = _outputs(out)
    assert figures, "the report wrote no figures"
    for path, kind in outputs:
        want = (0o777 if kind in ("dir", "exec") else 0o666) & ~mask
        assert _mode(path) == want, (str(path.relative_to(out)), oct(_mode(path)), oct(want))
    # nothing half-written or temporary anywhere
    leftovers = [p for p in out.rglob(".*")]
    assert not leftovers, leftovers


def test_netx_export_gets_the_umask_mode(tmp_path):
    pytest.importorskip("h5py")
    try:
        from neurohw.export import export_netx  # noqa: F401
    except nh.MissingDependencyError as exc:  # pragma: no cover - dev env has lava-dl
        pytest.skip(str(exc))
    net = small_chain(bias_mant=0, bias_exp=0)  # a network netx holds exactly
    nh.write_network(net, tmp_path / "m.q.nir")
    for mask in (0o022, 0o077):
        target = tmp_path / f"m{mask:o}.net"
        proc = _run_with_umask(mask, [sys.executable, "-m", "neurohw.cli", "export",
                                      str(tmp_path / "m.q.nir"), "--to", "netx", "-o", str(target)])
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert _mode(target) == 0o666 & ~mask, oct(_mode(target))


def test_exported_lava_script_writes_its_run_file_with_the_umask(tmp_path):
    from neurohw.backends.lava import import_lava

    try:
        import_lava()
    except nh.MissingDependencyError as exc:  # pragma: no cover - dev env has Lava
        pytest.skip(str(exc))
    net = small_chain(n_in=3, n_hidden=2)
    nh.write_network(net, tmp_path / "m.q.nir")
    assert main(["export", str(tmp_path / "m.q.nir"), "--to", "lava", "-o", str(tmp_path / "ex")]) == 0
    np.save(tmp_path / "x.npy", np.ones((3, 3), dtype=np.int8))
    proc = _run_with_umask(0o027, [sys.executable, str(tmp_path / "ex" / "run_lava.py"),
                                   "--input", str(tmp_path / "x.npy"),
                                   "--out", str(tmp_path / "r.npz")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _mode(tmp_path / "r.npz") == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ex", "m.q.nir", "r.npz", "x.npy"]


# ---------------------------------------------------------------------------
# the library function, in this process
# ---------------------------------------------------------------------------
@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o027, 0o077, 0o002])
def test_atomic_write_mode_and_umask_reader(mask, tmp_path, umask):
    umask(mask)
    assert current_umask() == mask
    assert output_mode() == 0o666 & ~mask and output_mode(executable=True) == 0o777 & ~mask
    p = atomic_write(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
    assert _mode(p) == 0o666 & ~mask
    # replacing an existing file with other permissions gives the umask mode too
    os.chmod(p, 0o600)
    atomic_write(p, lambda tmp: Path(tmp).write_text("y"))
    assert _mode(p) == 0o666 & ~mask and p.read_text() == "y"
    assert os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_write_leaves_nothing_behind(exc, tmp_path):
    def fail(tmp):
        Path(tmp).write_bytes(b"half")
        raise exc

    with pytest.raises(type(exc)):
        atomic_write(tmp_path / "new.bin", fail)
    assert os.listdir(tmp_path) == []
    old = tmp_path / "old.bin"
    old.write_bytes(b"previous")
    with pytest.raises(type(exc)):
        atomic_write(old, fail)
    assert old.read_bytes() == b"previous" and os.listdir(tmp_path) == ["old.bin"]


def test_atomic_write_refuses_bad_targets(tmp_path):
    with pytest.raises(nh.FileFormatError, match="does not exist"):
        atomic_write(tmp_path / "no" / "x", lambda tmp: None)
    with pytest.raises(nh.FileFormatError, match="is a directory"):
        atomic_write(tmp_path, lambda tmp: None)


def test_cli_emulate_failing_write_leaves_no_file(tmp_path, monkeypatch, capsys):
    net = small_chain()
    nh.write_network(net, tmp_path / "m.q.nir")
    np.save(tmp_path / "x.npy", np.ones((4, 5), dtype=np.int8))
    (tmp_path / "run.npz").write_bytes(b"previous run")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    from neurohw.cli import emulate_cmd

    monkeypatch.setattr(emulate_cmd, "write_run", full)  # run files are streamed .npz
    code = main(["emulate", str(tmp_path / "m.q.nir"), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "run.npz")])
    assert code != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert (tmp_path / "run.npz").read_bytes() == b"previous run"
    assert sorted(os.listdir(tmp_path)) == ["m.q.nir", "run.npz", "x.npy"]


def test_cli_lava_export_failing_write_leaves_no_directory(tmp_path, monkeypatch, capsys):
    net = small_chain()
    nh.write_network(net, tmp_path / "m.q.nir")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    code = main(["export", str(tmp_path / "m.q.nir"), "--to", "lava", "-o", str(tmp_path / "ex")])
    assert code != 0
    assert sorted(os.listdir(tmp_path)) == ["m.q.nir"]
