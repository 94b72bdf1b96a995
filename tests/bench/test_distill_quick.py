"""Smoke test of ``bench/distill.py``: ``--quick`` completes and writes its JSON."""

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
        importlib.util.find_spec("sklearn") is None,
        reason="the digits data needs scikit-learn: pip install -e '.[demo]'",
    ),
]


def test_distill_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "distill.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.distill", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["mode"] == "quick"
    assert {"config", "environment", "teachers", "summary", "acceptance", "runs"} <= data.keys()
    assert set(data["teachers"]) == {"cnn", "transformer"}
    arms = {r["arm"] for r in data["runs"]}
    assert arms == {"labels", "kd_random", "kd_teacher_init", "labels_teacher_init"}
    for teacher in data["teachers"].values():
        for budget, student in teacher["students"].items():
            assert student["params"] <= teacher["params"] / int(budget)
    assert "| teacher" in proc.stdout
