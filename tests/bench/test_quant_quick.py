"""Smoke test of ``bench/quant.py --quick``: it completes, prints its tables and writes JSON."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.bench._quick import run_quick

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("torchao") is None or importlib.util.find_spec("sklearn") is None,
        reason="the quantisation benchmark needs the bench extra: pip install -e '.[bench]'",
    ),
]


def test_quant_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "quant.json"
    stdout, data = run_quick("bench.quant", out, "--skip-minilm", timeout=600)
    assert "| slimtune int8 dynamic (per-channel) |" in stdout
    assert {"benchmark", "mode", "config", "environment", "results"} <= data.keys()
    assert data["mode"] == "quick"
    linear = {row["variant"]: row for row in data["results"]["linear"]["rows"]}
    assert linear["slimtune int8 dynamic (per-channel)"]["file_ratio"] <= 0.3
    models = [res["model"] for res in data["results"]["digits"]]
    assert models == ["SmallCNN (digits 16x16)", "TransformerClassifier (digits rows)"]
