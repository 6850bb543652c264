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
    assert set(cases) == {"single", "batch"}  # --quick skips the 10k network
    for name, c in cases.items():
        assert c["steps"] == steps
        assert c["batch"] == (1 if name == "single" else batch)
        e, lv = c["emulator"], c["lava"]
        assert e["seconds"] > 0 and lv["step_s"] > 0 and lv["startup_s"] >= 0
        assert np.isclose(e["sample_steps_per_s"], steps * c["batch"] / e["seconds"])
        assert np.isclose(c["ratio"], e["sample_steps_per_s"] / lv["steps_per_s"])
        assert c["target"] == bench.TARGETS[name]
        assert c["meets_target"] == (c["ratio"] >= c["target"])
        chk = c["check"]
        assert chk["bit_exact"] and not chk["mismatched"]
        assert chk["steps_compared"] == steps and chk["values_compared"] == steps * 110
        # the networks are neither silent nor saturated
        for rate in c["spike_rates"].values():
            assert 0.01 < rate < 0.5
    assert cases["batch"]["check"]["batch_row0_equals_single_run"] is True


def test_library_quick_bench_bit_exact():
    report = bench.run_bench(bench.BenchConfig.quick())
    _check_report(report, 200, 16)
    table = bench.format_markdown(report)
    assert table.count("\n| single |") == 1 and table.count("\n| batch |") == 1
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
