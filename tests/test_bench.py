"""The quick benchmark, in-process: structure of the report and bit-exactness
of the emulator against Lava on the benchmark networks.  No speed is asserted
here: the speed targets live in the benchmark (docs/performance.md)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from neurohw import bench
from neurohw.cli import main
from neurohw.emulate import run as emulate

pytestmark = pytest.mark.lava

ROOT = Path(__file__).resolve().parents[1]


def _check_report(report, steps, batch):
    assert report["all_bit_exact"] is True
    m = report["machine"]
    for key in ("date", "cpu", "cores", "python", "numpy", "lava"):
        assert m[key], key
    cases = {c["case"]: c for c in report["cases"]}
    # --quick skips the 10k network (and the conv and sparse sections)
    assert set(cases) == {"single", "batch", "dense_single", "dense_batch"}
    assert "sparse" not in report and "conv" not in report
    for name, c in cases.items():
        assert c["steps"] == steps
        assert c["batch"] == (1 if name.endswith("single") else batch)
        e, lv = c["emulator"], c["lava"]
        assert e["seconds"] > 0 and lv["step_s"] > 0 and lv["startup_s"] >= 0
        assert np.isclose(e["sample_steps_per_s"], steps * c["batch"] / e["seconds"])
        assert np.isclose(c["ratio"], e["sample_steps_per_s"] / lv["steps_per_s"])
        assert c["target"] == bench.TARGETS[name]
        assert c["meets_target"] == (c["ratio"] >= c["target"])
        chk = c["check"]
        assert chk["bit_exact"] and not chk["mismatched"]
        assert chk["steps_compared"] == steps and chk["values_compared"] == steps * 110
        if name.startswith("dense"):  # the same net driven hard: most neurons spike
            assert all(0.6 < r < 0.98 for r in c["spike_rates"].values()), c["spike_rates"]
        else:  # neither silent nor saturated
            assert all(0.01 < r < 0.5 for r in c["spike_rates"].values()), c["spike_rates"]
    for name in ("batch", "dense_batch"):
        assert cases[name]["check"]["batch_row0_equals_single_run"] is True
    # the dense cases: Lava's own steps on the dense input, the same across both rows
    assert cases["dense_single"]["lava"] == cases["dense_batch"]["lava"]
    assert cases["dense_single"]["lava"] is not cases["single"]["lava"]
    assert "fraction_of_gemm_bound" in cases["dense_batch"]


def test_library_quick_bench_bit_exact():
    report = bench.run_bench(bench.BenchConfig.quick())
    _check_report(report, 200, 16)
    table = bench.format_markdown(report)
    assert table.count("\n| single |") == 1 and table.count("\n| batch |") == 1
    assert "| dense_batch | 100-100-10 LIF, input rate 0.5 | 16 x 200 |" in table
    assert "(>= 5,000x: " in table.split("| dense_batch |")[1].splitlines()[0]
    json.dumps(report)  # JSON-ready


def test_cli_quick_bench_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--steps", "60", "--batch", "3", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| single | 100-100-10 LIF | 1 x 60 |" in text
    assert "| batch | 100-100-10 LIF | 3 x 60 |" in text
    _check_report(json.loads(out.read_text()), 60, 3)


def test_run_bench_script(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("run_bench", ROOT / "benchmarks" / "run_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--quick", "--steps", "30", "--batch", "2", "--out-dir", str(tmp_path)]) == 0
    _check_report(json.loads((tmp_path / "bench.json").read_text()), 30, 2)
    assert "| batch | 100-100-10 LIF | 2 x 30 |" in (tmp_path / "bench.md").read_text()


def test_batch_rows_equal_single_runs():
    """The batch the benchmark times gives, row by row, the single-sample results."""
    net = bench.bench_network((100, 100, 10), seed=3)
    x = bench.bench_input(100, 40, 5, seed=4)
    batch = emulate(net, x)
    for b in range(5):
        one = emulate(net, x[b])
        for k in batch.spikes:
            assert np.array_equal(batch.spikes[k][b], one.spikes[k][0])


@pytest.mark.parametrize("args, fragment", [
    (["--steps", "3"], "steps=3 must be an integer >= 10"),
    (["--batch", "0"], "batch=0 must be an integer >= 1"),
    (["--conv-steps", "3"], "conv_steps=3 must be an integer >= 10"),
    (["--sparse-neurons", "50"], "sparse_neurons=50 must be an integer >= 100"),
    (["--sparse-steps", "5"], "sparse_steps=5 must be an integer >= 10"),
    (["--sparse-vth", "200000"], "sparse_vth=200000 must be at most 131071"),
    (["--large-steps", "50", "--large-lava-steps", "60"], "large_lava_steps=60 must be at most"),
    (["--json", "/dev/null/b.json"], "/dev/null is not a directory"),  # missing dirs are created
])
def test_bad_options_exit_2(args, fragment, capsys):
    assert main(["bench", "--quick", "--skip-lava"] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_skip_lava_has_no_ratios():
    report = bench.run_bench(bench.BenchConfig.quick(steps=20, batch=2, skip_lava=True))
    assert report["all_bit_exact"] is None
    for c in report["cases"]:
        assert c["lava"] is None and c["ratio"] is None and c["check"] is None
    assert "not run" in bench.format_markdown(report)


def test_conv_network_is_the_1m_neuron_net():
    net = bench.conv_network(0)
    assert sum(p.size for p in net.populations.values()) == 2 * 32 * 128 * 128
    assert net.nodes["conv2"].out_shape == (32, 128, 128)
    # every conv of it runs the per-tap BLAS path
    from neurohw.emulate.engine import _ConvProj

    for k in ("conv1", "conv2"):
        assert _ConvProj(net.nodes[k], net.profile, 1).shifted is not None


@pytest.mark.slow
def test_measure_conv_reports_speed_memory_and_target(capsys):
    r = bench.measure_conv(steps=10, batch=2)
    assert 0 < r["peak_rss_gib"] <= r["target_gib"] and r["single"]["sample_steps_per_s"] > 0
    assert r["meets_target"] == (r["single"]["sample_steps_per_s"] >= r["target_steps_per_s"]
                                 and r["peak_rss_gib"] <= r["target_gib"])
    assert 0 < r["single"]["spike_rates"]["lif2"] < 1
    report = {"machine": bench.machine_info(), "cases": [], "conv": r}
    assert "1M-neuron conv" in bench.format_markdown(report)


def test_dense_input_drives_the_bench_net_hard():
    """The dense cases' input: rate DENSE_INPUT_RATE, same net; the batch gives, row by
    row, the single-sample runs (both engines, the same integers)."""
    net = bench.bench_network((100, 100, 10), seed=0)
    x = bench.bench_input(100, 60, 3, rate=bench.DENSE_INPUT_RATE, seed=4)
    assert abs(x.mean() - bench.DENSE_INPUT_RATE) < 0.02
    batch = emulate(net, x, record=("spikes", "v"), engine="numba")
    ref = emulate(net, x, record=("spikes", "v"), engine="numpy")
    for k in batch.spikes:
        assert batch.spikes[k].mean() > 0.5
        assert np.array_equal(batch.spikes[k], ref.spikes[k])
        assert np.array_equal(batch.v[k], ref.v[k])
        for b in range(3):
            assert np.array_equal(batch.spikes[k][b], emulate(net, x[b]).spikes[k][0])


def test_sparse_network_is_the_scale_net():
    net = bench.sparse_network(2000, 30, vth=4000)
    assert net.nodes["pop"].size == 2000
    # FAN columns per row drawn with repetition: repeated ones are merged
    assert 0.98 * 2000 * 30 < net.nodes["rec"].num_synapses <= 2000 * 30
    assert list(net.edges).count(("pop", "rec")) == 1 and ("rec", "pop") in net.edges


def test_measure_sparse_small_reports_speed_memory_and_target():
    """The sparse section at 20k neurons (a fresh process, ~2 s): the target applies only
    at 1M neurons x 100 synapses, so it is not judged here."""
    r = bench.measure_sparse(20_000, 100, 20)
    assert r["synapses"] > 1_990_000 and r["steps"] == 20
    assert r["steps_per_s"] > 0 and 0 < r["peak_rss_gib"] < 2
    assert 0.01 < r["spike_rate"] < 0.2  # vth 4000: ~5 %
    assert r["engine_used"] in ("numpy", "numba")
    assert r["target_size"] is False and r["meets_target"] is None
    report = {"machine": bench.machine_info(), "cases": [], "sparse": r}
    text = bench.format_markdown(report)
    assert "| sparse synapses (recurrent ir.Sparse, 20,000 LIF x 100 synapses) |" in text
    assert "n/a, the target is for 1,000,000 neurons x 100 synapses" in text
    json.dumps(r)


def test_sparse_verdict_at_target_size(monkeypatch):
    """At the target's size ``meets_target`` is both targets together."""
    for speed, gib, want in ((6.0, 4.3, True), (4.9, 4.3, False), (60.0, 6.5, False)):
        monkeypatch.setattr(bench, "_child", lambda *a, s=speed, g=gib: {
            "neurons": 1_000_000, "fan": 100, "synapses": 100_000_000, "steps": 50,
            "steps_per_s": s, "peak_rss_gib": g, "spike_rate": 0.05, "engine_used": "numba",
            "build_s": 1.0, "first_run_s": 2.0})
        r = bench.measure_sparse()
        assert r["target_size"] is True and r["meets_target"] is want
        line = [ln for ln in bench.format_markdown(
            {"machine": bench.machine_info(), "cases": [], "sparse": r}).splitlines()
            if ln.startswith("| 1 sample")][0]
        assert line.endswith(("met |" if want else "MISSED |"))


def test_cli_sparse_section_small(capsys):
    """`neurohw bench --sparse-neurons N` runs the sparse section (not skipped: no --quick),
    with the other sections switched off."""
    assert main(["bench", "--skip-lava", "--steps", "20", "--batch", "2", "--repeats", "1",
                 "--no-gemm", "--no-startup", "--no-conv", "--no-dense",
                 "--large-steps", "10", "--large-lava-steps", "10",
                 "--sparse-neurons", "5000", "--sparse-steps", "12"]) == 0
    out = capsys.readouterr().out
    assert "5,000 LIF x 100 synapses" in out and "dense_batch" not in out


def test_failed_section_is_reported_and_exits_1(monkeypatch, capsys):
    """A section whose child process fails is reported in one line; the others still are."""
    def boom(*a, **k):
        raise RuntimeError("bench sparse: child process failed: MemoryError")

    monkeypatch.setattr(bench, "measure_sparse", boom)
    assert main(["bench", "--skip-lava", "--steps", "20", "--batch", "2", "--repeats", "1",
                 "--no-gemm", "--no-startup", "--no-conv", "--no-dense",
                 "--large-steps", "10", "--large-lava-steps", "10"]) == 1
    captured = capsys.readouterr()
    assert "sparse section FAILED: bench sparse: child process failed: MemoryError" in captured.out
    assert "| single |" in captured.out and "section(s) failed: sparse" in captured.err
