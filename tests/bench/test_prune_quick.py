"""Smoke test of ``bench/prune.py``: ``--quick`` completes and writes its JSON."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.bench._quick import run_quick

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("torch_pruning") is None,
        reason="the pruning benchmark compares with Torch-Pruning: pip install -e '.[bench]'",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("sklearn") is None,
        reason="the pruning benchmark trains on scikit-learn's digits: pip install -e '.[bench]'",
    ),
]


def test_prune_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "prune.json"
    stdout, data = run_quick("bench.prune", out)
    assert data["mode"] == "quick"
    models = {r["model"] for r in data["results"]}
    assert models == {"ResNetCNN", "MobileNetV2Like", "TransformerClassifier"}
    for row in data["results"]:
        ours = row["slimtune"]
        assert ours["macs"] < row["base"]["macs"] and ours["params"] < row["base"]["params"]
        assert ours["latency_s"] > 0 and 0.0 <= ours["accuracy"] <= 1.0
    assert "| ResNetCNN" in stdout
