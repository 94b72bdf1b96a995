"""bench/_mf_pbt.py: PBT simulated inline on the multi-fidelity benchmark problems."""

from __future__ import annotations

import math

from bench._mf_pbt import ladder, run_pbt
from bench._mf_problems import HartmannMF


def test_simulated_pbt_trace_on_hartmann_is_deterministic_and_monotone():
    problem = HartmannMF(preset="default")
    assert ladder(problem) == [1, 3, 9, 27, 81]
    trace = run_pbt(problem, seed=0, max_cost=12.0)
    assert trace == run_pbt(problem, seed=0, max_cost=12.0)
    costs = [c for c, _ in trace]
    errors = [e for _, e in trace]
    assert costs == sorted(costs) and errors == sorted(errors, reverse=True)
    assert len(trace) >= 8  # two populations of 4 reached full fidelity
    assert all(math.isfinite(e) and e >= problem.best_error for e in errors)
    assert trace != run_pbt(problem, seed=1, max_cost=12.0)
