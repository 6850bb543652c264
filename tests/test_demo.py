"""`make demo` end to end (slow: about a minute with Lava and netx)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.torch
def test_demo_pipeline_runs_and_is_bit_exact(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), "--lava-samples", "3"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout
    assert "emulator is BIT-EXACT" in text
    assert "bit-exact with the emulator" in text
    assert "[7/7] deployment plan" in text and "energy per inference" in text
    for f in ("digits.q.nir", "digits.net", "digits.snntorch.nir", "digits_lava/run_lava.py",
              "report/report.json", "report/membrane_float_vs_chip.png"):
        assert (tmp_path / "out" / f).exists(), f
