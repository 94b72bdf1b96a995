"""Smoke test of ``bench/distill.py``: ``--quick`` completes and writes its JSON."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.bench._quick import run_quick

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("sklearn") is None,
        reason="the digits data needs scikit-learn: pip install -e '.[demo]'",
    ),
]


def test_distill_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "distill.json"
    stdout, data = run_quick("bench.distill", out)
    assert data["mode"] == "quick"
    assert {"config", "environment", "teachers", "summary", "acceptance", "runs"} <= data.keys()
    assert set(data["teachers"]) == {"cnn", "transformer"}
    arms = {r["arm"] for r in data["runs"]}
    assert arms == {"labels", "kd_random", "kd_teacher_init", "labels_teacher_init"}
    for teacher in data["teachers"].values():
        for budget, student in teacher["students"].items():
            assert student["params"] <= teacher["params"] / int(budget)
    assert "| teacher" in stdout
