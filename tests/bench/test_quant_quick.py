"""Smoke test of ``bench/quant.py --quick``: it completes, prints its tables and writes JSON."""

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
        importlib.util.find_spec("torchao") is None or importlib.util.find_spec("sklearn") is None,
        reason="the quantisation benchmark needs the bench extra: pip install -e '.[bench]'",
    ),
]


def test_quant_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "quant.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.quant", "--quick", "--skip-minilm", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| slimtune int8 dynamic (per-channel) |" in proc.stdout
    data = json.loads(out.read_text())
    assert {"benchmark", "mode", "config", "environment", "results"} <= data.keys()
    assert data["mode"] == "quick"
    linear = {row["variant"]: row for row in data["results"]["linear"]["rows"]}
    assert linear["slimtune int8 dynamic (per-channel)"]["file_ratio"] <= 0.3
    models = [res["model"] for res in data["results"]["digits"]]
    assert models == ["SmallCNN (digits 16x16)", "TransformerClassifier (digits rows)"]
