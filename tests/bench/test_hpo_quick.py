"""Smoke tests of the benchmark scripts: ``--quick`` completes and writes its JSON."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.bench._quick import run_quick

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


def test_hpo_quick_writes_json(tmp_path: Path) -> None:
    _, data = run_quick("bench.hpo", tmp_path / "hpo.json")
    expected = {"benchmark", "mode", "config", "environment", "analytic", "ml", "cpu", "runs"}
    assert expected <= data.keys()
    assert data["mode"] == "quick"


def test_overhead_quick_writes_json(tmp_path: Path) -> None:
    _, data = run_quick("bench.overhead", tmp_path / "overhead.json")
    assert {"benchmark", "mode", "config", "environment", "results"} <= data.keys()
    assert data["mode"] == "quick"
