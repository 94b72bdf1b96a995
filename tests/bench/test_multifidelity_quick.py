"""Smoke test of ``bench/multifidelity.py``: ``--quick`` completes and writes its JSON."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.bench._quick import REPO_ROOT, run_quick

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("optuna") is None,
        reason="the benchmark compares with Optuna: pip install -e '.[bench]'",
    ),
]


def test_multifidelity_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "mf.json"
    stdout, data = run_quick("bench.multifidelity", out)
    assert data["mode"] == "quick"
    assert set(data["problems"]) == {"mlp-digits-table", "hartmann6-default"}
    for entry in data["problems"].values():
        methods = entry["summary"]["methods"]
        assert {"random", "asha", "asha_tpe", "hyperband", "bohb"} <= methods.keys()
        assert all(m["seeds"] == 2 for m in methods.values())
    assert "| method |" in stdout


def test_problems_are_deterministic_and_cost_more_at_higher_fidelity() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    from bench._mf_problems import make_problem

    for name in ("mlp-digits-table", "hartmann6-bad"):
        p = make_problem(name)
        config = {n: d.from_unit(0.3) for n, d in p.space.items()}
        low, full = p.evaluate(config, 1), p.evaluate(config, p.max_fidelity)
        assert p.evaluate(config, 1) == low
        assert full[1] > low[1] > 0
    with pytest.raises(ValueError, match="`fidelity` must be in \\[1, 81\\]"):
        make_problem("hartmann6-default").evaluate(config, 0)
