"""Smoke test of ``bench/prune.py``: ``--quick`` completes and writes its JSON."""

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
    proc = subprocess.run(
        [sys.executable, "-m", "bench.prune", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["mode"] == "quick"
    models = {r["model"] for r in data["results"]}
    assert models == {"ResNetCNN", "MobileNetV2Like", "TransformerClassifier"}
    for row in data["results"]:
        ours = row["slimtune"]
        assert ours["macs"] < row["base"]["macs"] and ours["params"] < row["base"]["params"]
        assert ours["latency_s"] > 0 and 0.0 <= ours["accuracy"] <= 1.0
    assert "| ResNetCNN" in proc.stdout
