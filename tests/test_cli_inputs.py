"""Every command and run_lava.py read inputs the same way; emulate --align/--labels/--populations;
outputs create missing parent directories; --profile 'generic(...)' wherever --profile is taken."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurohw as nh
from neurohw.cli import main
from neurohw.cli._common import flatten_input, load_input
from neurohw.errors import ValidationError

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "models" / "digits.nir"
DATA = ROOT / "examples" / "models" / "digits_data.npz"


def _script_module(tmp_path, shape):
    """The rendered run_lava.py of a tiny network with Input ``shape``, imported as a module."""
    from neurohw.export.lava_script import render_script

    spec = {"input": {"name": "input", "shape": list(shape), "max_value": 1},
            "populations": [], "sizes": {}}
    path = tmp_path / f"run_lava_{'x'.join(map(str, shape))}.py"
    path.write_text(render_script(spec))
    mod_spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


SHAPES = [(6,), (2, 3, 4), (3, 4)]


def _layouts(shape, rng):
    """Arrays of every layout, accepted or not, for an Input of ``shape``."""
    n = int(np.prod(shape))
    out = [(5, n), (3, 5, n), (5,) + shape, (3, 5) + shape, (3, 5, n, 1), (n,), (5, n + 1),
           (0, 5, n), (3, 0, n), (3, 5) + shape[::-1], (2, 3, 5, n)]
    if len(shape) == 1:
        out += [(3, 5, 2, 3), (3, 5, 3, 2)]
    return [(rng.random(s) < 0.5).astype(np.int8) for s in out]


@pytest.mark.parametrize("shape", SHAPES)
def test_run_lava_flattens_as_the_commands_do(tmp_path, shape, rng):
    """Same accepted layouts, same (B, T, n) arrays, same refusals: _common vs run_lava.py."""
    mod = _script_module(tmp_path, shape)
    n = int(np.prod(shape))
    accepted = 0
    for x in _layouts(shape, rng):
        try:
            want = flatten_input(x, shape, "x")
        except ValidationError as exc:
            with pytest.raises(mod.InputError) as got:
                mod.flatten_input(x, shape, "x")
            assert f"shape {x.shape}" in str(got.value) and f"shape {x.shape}" in str(exc)
            continue
        got = mod.flatten_input(x, shape, "x")
        assert got.shape == want.shape and got.shape[2] == n and np.array_equal(got, want), x.shape
        # row-major: step t of sample b is x[b, t] flattened in C order
        full = x if x.ndim >= 3 and got.shape[0] == x.shape[0] and x.shape[1] == got.shape[1] \
            else x[None]
        assert np.array_equal(got[-1, -1], full[-1, -1].reshape(-1)), x.shape
        accepted += 1
    assert accepted >= 4


def test_run_lava_and_commands_load_npz_keys_alike(tmp_path, rng):
    shape = (2, 3, 4)
    mod = _script_module(tmp_path, shape)
    a = (rng.random((3, 5) + shape) < 0.5).astype(np.int8)
    np.savez(tmp_path / "in.npz", a=a, b=np.zeros((2, 24), np.int8))
    np.save(tmp_path / "one.npy", a)
    for spec in (f"{tmp_path}/in.npz:a", f"{tmp_path}/in.npz:b", f"{tmp_path}/one.npy"):
        want = load_input(spec, shape=shape)
        assert np.array_equal(mod.load_input(spec), want) and want.shape[2] == 24, spec
    for spec, text in ((f"{tmp_path}/in.npz", "pick one as"), (f"{tmp_path}/in.npz:c", "no array 'c'"),
                       (f"{tmp_path}/one.npy:a", "this is a .npy")):
        with pytest.raises(nh.NeurohwError, match=text):
            load_input(spec, shape=shape)
        with pytest.raises(mod.InputError, match=text):
            mod.load_input(spec)


@pytest.fixture(scope="module")
def digits_q(tmp_path_factory):
    """digits quantized into a directory that does not exist yet (created by the command)."""
    d = tmp_path_factory.mktemp("digits")
    out = d / "new" / "deeper" / "d.q.nir"
    sub = d / "sub.npz"
    data = np.load(DATA)
    np.savez(sub, x=data["x_test"][:60], y=data["y_test"][:60],
             img=data["x_test"][:60].reshape(60, 25, 8, 8))
    return d, out, sub


def test_quantize_creates_parents_and_emulate_labels_equal_the_report(digits_q, capsys):
    d, out, sub = digits_q
    assert main(["quantize", str(DIGITS), "-o", str(out), "--source", "snntorch", "--reset", "zero",
                 "--eval", f"{sub}:img", "--labels", f"{sub}:y"]) == 0
    report = capsys.readouterr().out
    chip = float(re.search(r"chip ([\d.]+)%", report).group(1))
    assert out.exists()
    assert main(["emulate", str(out), "--input", f"{sub}:img", "--labels", f"{sub}:y",
                 "--out", str(d / "a" / "b" / "run.npz")]) == 0
    printed = capsys.readouterr().out
    acc = float(re.search(r"accuracy of '\w+': ([\d.]+) %", printed).group(1))
    assert acc == pytest.approx(chip, abs=0.006)  # both rounded to 2 decimals
    assert (d / "a" / "b" / "run.npz").exists()


def test_align_shifts_each_population_by_its_latency(digits_q, capsys):
    d, out, sub = digits_q
    if not out.exists():
        pytest.skip("needs the quantized digits model")
    net = nh.read_network(out)
    from neurohw.quantize import latencies

    lat = latencies(net)
    assert main(["emulate", str(out), "--input", f"{sub}:x", "--out", str(d / "plain.npz"),
                 "--record", "v"]) == 0
    readout = list(net.populations)[-1]
    assert main(["emulate", str(out), "--input", f"{sub}:x", "--out", str(d / "al.npz"),
                 "--align", "--record", "v", "--populations", readout]) == 0
    capsys.readouterr()
    plain, al = np.load(d / "plain.npz"), np.load(d / "al.npz")
    assert sorted(al.files) == [f"{readout}.spikes", f"{readout}.v"]
    k = lat[readout]
    assert k >= 1 and al[f"{readout}.v"].shape == plain[f"{readout}.v"].shape
    T = plain[f"{readout}.v"].shape[1]
    # the aligned run's first T - k rows are the plain run's rows k..T-1; the last k rows are new
    assert np.array_equal(al[f"{readout}.v"][:, :T - k], plain[f"{readout}.v"][:, k:])
    assert np.array_equal(al[f"{readout}.spikes"][:, :T - k], plain[f"{readout}.spikes"][:, k:])


def test_bad_populations_labels_and_layouts_one_line(digits_q, capsys):
    d, out, sub = digits_q
    if not out.exists():
        pytest.skip("needs the quantized digits model")
    np.save(d / "hwc.npy", np.zeros((2, 5, 64, 1), np.int8))
    np.save(d / "y3.npy", np.zeros(3, np.int64))
    cases = [
        (["--input", f"{sub}:x", "--populations", "nope"], "unknown population(s) nope"),
        (["--input", f"{sub}:x", "--labels", str(d / "y3.npy")], "3 labels for 60 samples"),
        (["--input", f"{sub}:x", "--labels", f"{sub}:img"], "labels"),
        (["--input", str(sub)], "pick one as"),
        (["--input", str(d / "y3.npy")], "expected (T, 64)"),
    ]
    for extra, text in cases:
        assert main(["emulate", str(out), "--out", str(d / "bad.npz")] + extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err, (extra, err)
    assert main(["emulate", str(out), "--out", str(d / "ok.npz"), "--input", str(d / "hwc.npy")]) == 0


def test_generic_profile_wherever_profile_is_taken(digits_q, capsys):
    d, out, sub = digits_q
    prof = "generic(state_bits=24,weight_bits=8)"
    assert main(["quantize", str(DIGITS), "-o", str(d / "g.q.nir"), "--source", "snntorch",
                 "--profile", prof]) == 0
    assert nh.read_network(d / "g.q.nir").profile.name.startswith("generic")
    assert main(["map", str(d / "g.q.nir"), "--profile", prof]) == 0
    capsys.readouterr()
    for cmd in (["quantize", str(DIGITS), "-o", str(d / "h.q.nir")], ["map", str(d / "g.q.nir")]):
        assert main(cmd + ["--profile", "generic(nope=1)"]) == 2
        assert "nope" in capsys.readouterr().err


@pytest.mark.lava
def test_run_lava_reads_keys_and_images_into_new_dirs(digits_q, tmp_path):
    d, out, sub = digits_q
    if not out.exists():
        pytest.skip("needs the quantized digits model")
    assert main(["export", str(out), "--to", "lava", "-o", str(tmp_path / "x" / "lava")]) == 0
    small = tmp_path / "s.npz"
    data = np.load(sub)
    np.savez(small, img=data["img"][:2], y=data["y"][:2])
    run = tmp_path / "p" / "q" / "run.npz"
    proc = subprocess.run([sys.executable, str(tmp_path / "x" / "lava" / "run_lava.py"),
                           "--input", f"{small}:img", "--out", str(run)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert main(["emulate", str(out), "--input", f"{small}:img", "--out", str(tmp_path / "e.npz")]) == 0
    lava, emu = np.load(run), np.load(tmp_path / "e.npz")
    assert sorted(lava.files) == sorted(emu.files)
    for k in lava.files:
        assert np.array_equal(lava[k], emu[k]), k


def test_cli_md_describes_every_command_and_option():
    """docs/cli.md has a section per subcommand naming each of its long options."""
    import argparse

    from neurohw.cli import build_parser

    doc = (ROOT / "docs" / "cli.md").read_text()
    assert "to come" not in doc and "arrive\nwith their issues" not in doc
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        head = f"## `neurohw {name}"
        assert head in doc, name
        section = doc.split(head, 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help":
                    assert opt in section, (name, opt)


@pytest.mark.lava
def test_tutorial_sections_0_to_4_run_from_a_fresh_clone(tmp_path):
    """Every shell command of docs/tutorial.md §0-§4, as written, in a directory with the
    examples and the virtualenv but no out/ (exit 0 each), then every python block."""
    text = (ROOT / "docs" / "tutorial.md").read_text()
    part = text[text.index("## 0. The model"):text.index("## 5.")]
    commands, block, lang = [], None, None
    for line in part.splitlines():
        if line.strip().startswith("```"):
            if block is None:
                block, lang = [], line.strip()[3:]
            else:
                if lang == "":  # shell blocks (python blocks are §6's test)
                    joined = "\n".join(block).replace("\\\n", " ")
                    commands += [c for c in joined.splitlines() if c.startswith(".venv/bin/")]
                block = None
        elif block is not None:
            block.append(line.strip())
    assert len(commands) >= 8 and any("--labels" in c for c in commands)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "examples" / "models").mkdir(parents=True)
    for f in ("digits.nir", "digits_data.npz"):
        (tmp_path / "examples" / "models" / f).symlink_to(ROOT / "examples" / "models" / f)
    assert not (tmp_path / "out").exists()
    for cmd in commands:
        proc = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, (cmd, proc.stderr[-2000:])
    assert (tmp_path / "out" / "digits_lava" / "run_lava.py").exists()
    # the python blocks (§1 quantizes in Python, §4 loads the flavored export in snnTorch)
    codes = re.findall(r"```python\n(.*?)```", "\n".join(ln.strip() for ln in part.splitlines()),
                       flags=re.S)
    assert len(codes) >= 2
    import os

    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        for i, code in enumerate(codes):
            scope = {"__name__": "__tutorial__"}
            exec(compile(code, f"tutorial.md:python block {i}", "exec"), scope)
    finally:
        os.chdir(old)
    assert scope["module"] is not None
