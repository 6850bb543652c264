"""docs/tutorial.md §6 "Bring your own model": every python block runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


def _blocks():
    text = DOC.read_text()
    section = text[text.index("## 6. Bring your own model"):]
    return re.findall(r"### (\w+)\n.*?```python\n(.*?)```", section, flags=re.S)


def test_every_framework_has_a_block():
    assert [name for name, _ in _blocks()] == ["snnTorch", "Norse", "Sinabs"]


@pytest.mark.torch
@pytest.mark.parametrize("name, code", _blocks(), ids=[n for n, _ in _blocks()])
def test_tutorial_block_runs(name, code, tmp_path, monkeypatch):
    pytest.importorskip({"snnTorch": "snntorch", "Norse": "norse", "Sinabs": "sinabs"}[name])
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{DOC.name}:{name}", "exec"), {"__name__": "__tutorial__"})
