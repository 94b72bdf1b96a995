"""The benchmark problems: known optima, asymmetric boxes, ML problems that evaluate."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from bench._problems import ANALYTIC, DEFAULT_ML, all_ml_problems, get_problem

from slimtune.space import SearchSpace

ARGMIN = {
    "branin": [np.pi, 2.275],
    "hartmann6": [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573],
    "levy5": [1.0] * 5,
    "rosenbrock4": [1.0] * 4,
    "styblinski_tang8": [-2.903534] * 8,
    "ackley5": [0.0] * 5,
}


@pytest.mark.parametrize("name", ANALYTIC)
def test_analytic_optimum_is_known_and_off_centre(name: str) -> None:
    problem = get_problem(name)
    assert problem.optimum is not None
    x = ARGMIN[name]
    params = {f"x{i}": v for i, v in enumerate(x)}
    assert problem.evaluate(params) == pytest.approx(problem.optimum, abs=1e-5)
    centre = {k: (d.low + d.high) / 2 for k, d in problem.space.items()}
    assert problem.evaluate(centre) > problem.optimum + 1e-3
    rng = np.random.default_rng(0)
    space = SearchSpace(problem.space)
    assert all(problem.evaluate(space.sample(rng)) >= problem.optimum for _ in range(50))


def test_ml_problem_names_parse() -> None:
    names = all_ml_problems()
    assert len(names) == 80 and set(DEFAULT_ML) <= set(names)
    assert get_problem("MLP-adam-iris-nll").space.keys() >= {"alpha", "beta_2"}
    with pytest.raises(ValueError, match="metric"):
        get_problem("kNN-iris-mse")


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn")
@pytest.mark.parametrize("name", ["kNN-iris-nll", "lasso-diabetes-mse", "DT-wine-error"])
def test_ml_problem_is_deterministic_loss(name: str) -> None:
    problem = get_problem(name)
    params = SearchSpace(problem.space).sample(np.random.default_rng(1))
    first = problem.evaluate(params)
    assert np.isfinite(first) and first >= 0
    assert problem.evaluate(params) == first
