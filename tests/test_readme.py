import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.lava
def test_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "net.q.nir").exists()


def test_readme_quick_start_has_exactly_the_two_commands():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    cmds = re.findall(r"```\n(.*?)```", quick, re.S)[0].split("\n")
    assert [c for c in cmds if c.strip()] == ["make demo", "make test"]
