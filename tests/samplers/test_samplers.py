"""Conformance suite shared by every sampler, plus sampler-specific behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import slimtune
from slimtune import Categorical, Conditional, Float, Int, TrialState
from slimtune.exceptions import SearchSpaceExhausted
from slimtune.samplers import GridSampler, QMCSampler, RandomSampler, Sampler
from slimtune.space import SearchSpace

SPACE = {
    "opt": Categorical(["adam", "sgd"]),
    "momentum": Conditional(Float(0.0, 0.99), parent="opt", values=["sgd"]),
    "lr": Float(1e-5, 1.0, log=True),
    "units": Int(8, 512, log=True),
    "layers": Int(1, 9, step=2),
    "drop": Float(0.0, 0.5, step=0.1),
}

SAMPLERS = {
    "random": RandomSampler,
    "qmc": QMCSampler,
}


@pytest.fixture(params=sorted(SAMPLERS))
def make_sampler(request):
    return SAMPLERS[request.param]


def test_samplers_follow_the_protocol(make_sampler):
    assert isinstance(make_sampler(), Sampler)
    assert isinstance(GridSampler({"a": [1]}), Sampler)


def test_configurations_lie_in_the_space(make_sampler):
    space = SearchSpace(SPACE)
    study = slimtune.create_study(storage="memory", seed=0, sampler=make_sampler(), space=SPACE)
    study.optimize(lambda t: 0.0, n_trials=64)
    for t in study.trials:
        assert space.contains(t.params)
        assert ("momentum" in t.params) == (t.params["opt"] == "sgd")


def test_define_by_run_lies_in_the_space(make_sampler):
    def objective(trial):
        kind = trial.suggest_categorical("kind", ["a", "b"])
        if kind == "a":
            trial.suggest_int("n", 1, 5)
        return trial.suggest_float("x", -1.0, 1.0)

    study = slimtune.create_study(storage="memory", seed=0, sampler=make_sampler())
    study.optimize(objective, n_trials=40)
    for t in study.trials:
        assert -1.0 <= t.params["x"] <= 1.0
        assert ("n" in t.params) == (t.params["kind"] == "a")


def test_same_seed_same_suggestions(make_sampler):
    def run():
        study = slimtune.create_study(storage="memory", seed=4, sampler=make_sampler(), space=SPACE)
        study.optimize(lambda t: 0.0, n_trials=20)
        return [t.params for t in study.trials]

    assert run() == run()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 40))
def test_qmc_points_are_members_at_any_index(seed, n):
    space = SearchSpace(SPACE)
    sampler = QMCSampler(seed=seed)
    history = [None] * n
    params = sampler.sample(space, history, np.random.default_rng(0))  # type: ignore[arg-type]
    assert space.contains(params)


def test_qmc_covers_the_space_more_evenly_than_random():
    space = SearchSpace({"x": Float(0, 1), "y": Float(0, 1)})

    def discrepancy(sampler):
        study = slimtune.create_study(storage="memory", seed=0, sampler=sampler, space=dict(space))
        study.optimize(lambda t: 0.0, n_trials=64)
        pts = np.array([[t.params["x"], t.params["y"]] for t in study.trials])
        from scipy.stats import qmc

        return qmc.discrepancy(pts)

    assert discrepancy(QMCSampler()) < discrepancy(RandomSampler())


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


def test_qmc_define_by_run_first_trials_are_not_in_lockstep():
    study = slimtune.create_study(storage="memory", seed=0, sampler=QMCSampler())
    trials = [study.ask() for _ in range(8)]  # none complete: all parameters independent
    pairs = [(t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)) for t in trials]
    assert any(abs(x - y) > 1e-6 for x, y in pairs)
