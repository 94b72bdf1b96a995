from __future__ import annotations

import numpy as np
import pytest

import slimtune
from slimtune import Float, Int, TrialState
from slimtune.exceptions import SearchSpaceExhausted
from slimtune.samplers import GridSampler, Sampler


def test_grid_is_a_sampler():
    assert isinstance(GridSampler({"a": [1]}), Sampler)


def test_grid_visits_every_point_once_then_raises():
    grid = GridSampler({"a": Int(0, 2), "b": ["x", "y"], "c": Float(0.0, 1.0, step=0.5)})
    assert len(grid) == 18
    study = slimtune.create_study(storage="memory", seed=0, sampler=grid)
    study.optimize(lambda t: 0.0)
    combos = {(t.params["a"], t.params["b"], t.params["c"]) for t in study.trials}
    assert len(study.trials) == 18 == len(combos)
    with pytest.raises(SearchSpaceExhausted):
        grid.sample(grid.space, study.trials, np.random.default_rng(0))


def test_grid_retries_points_whose_trial_failed():
    study = slimtune.create_study(storage="memory", seed=0, sampler=GridSampler({"a": [1, 2, 3]}))
    first = study.ask()
    study.tell(first, state=TrialState.FAILED)
    study.optimize(lambda t: 0.0)
    complete = [t.params["a"] for t in study.trials if t.state is TrialState.COMPLETE]
    assert sorted(complete) == [1, 2, 3]


def test_grid_rejects_bad_grids():
    with pytest.raises(slimtune.InvalidSpaceError, match="non-empty mapping"):
        GridSampler({})
    with pytest.raises(slimtune.InvalidSpaceError, match="no finite grid"):
        GridSampler({"x": Float(0, 1)})


def test_define_by_run_parameters_outside_the_grid_are_drawn_at_random():
    study = slimtune.create_study(storage="memory", seed=0, sampler=GridSampler({"a": [1, 2]}))
    study.optimize(lambda t: t.suggest_int("a", 1, 2) + t.suggest_float("extra", 0.0, 1.0))
    assert len(study.trials) == 2
    assert all(0.0 <= t.params["extra"] <= 1.0 for t in study.trials)
