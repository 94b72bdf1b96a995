"""The README's Python examples run as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    # the multi-host sketch needs a PostgreSQL server and a user module
    return [textwrap.dedent(b) for b in blocks if "my_project" not in b]


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _python_blocks()[index]
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, f"README block {index}", "exec"), namespace)


def test_readme_has_the_two_setup_commands():
    text = README.read_text()
    assert '.venv/bin/pip install -e ".[demo]" && .venv/bin/slimtune demo' in text
    ci = (README.parent / ".ci" / "run").read_text()
    test_cmd = re.search(r"^python -m venv .*pytest$", ci, flags=re.M)
    assert test_cmd is not None and test_cmd.group(0) in text
