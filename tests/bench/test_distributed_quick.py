"""Smoke test of ``bench/distributed.py --quick``: every variant runs and the JSON is written."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.bench._quick import run_quick

pytestmark = [
    pytest.mark.slow,
    pytest.mark.distributed,
    pytest.mark.skipif(
        importlib.util.find_spec("optuna") is None,
        reason="the benchmark compares with Optuna: pip install -e '.[bench]'",
    ),
]


def test_distributed_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "distributed.json"
    # Ray is left out here (its start-up is slow; tests/distributed/test_ray.py covers it)
    variants = "slimtune-processes,slimtune-workers,optuna-threads,optuna-rdb-processes"
    stdout, data = run_quick("bench.distributed", out, "--variants", variants)
    assert data["mode"] == "quick"
    assert {"config", "environment", "runs", "results", "checks"} <= data.keys()
    assert data["results"] and all(r["all_complete"] for r in data["results"])
    assert "| variant" in stdout
