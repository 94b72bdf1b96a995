"""Smoke tests of the benchmark scripts: ``--quick`` completes and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("optuna") is None,
        reason="the benchmarks compare with Optuna: pip install -e '.[bench]'",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("sklearn") is None,
        reason="the HPO benchmark's ML problems need scikit-learn: pip install -e '.[bench]'",
    ),
]


def _run(module: str, out: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data: dict[str, object] = json.loads(out.read_text())
    return data


def test_hpo_quick_writes_json(tmp_path: Path) -> None:
    data = _run("bench.hpo", tmp_path / "hpo.json")
    expected = {"benchmark", "mode", "config", "environment", "analytic", "ml", "cpu", "runs"}
    assert expected <= data.keys()
    assert data["mode"] == "quick"


def test_overhead_quick_writes_json(tmp_path: Path) -> None:
    data = _run("bench.overhead", tmp_path / "overhead.json")
    assert {"benchmark", "mode", "config", "environment", "results"} <= data.keys()
    assert data["mode"] == "quick"
