"""BOHBSampler: which budget it fits on, what it proposes, bad input."""

from __future__ import annotations

import pickle
from datetime import datetime

import numpy as np
import pytest

import slimtune
from slimtune import Float, TrialState, TrialStopped
from slimtune._trial import FrozenTrial
from slimtune.samplers import BOHBSampler, Sampler
from slimtune.schedulers import Hyperband
from slimtune.space import SearchSpace

SPACE = SearchSpace({"x": Float(0.0, 1.0)})
T0 = datetime(2026, 1, 1)


def _trial(number: int, x: float, reports: dict[int, float]) -> FrozenTrial:
    return FrozenTrial(
        number=number,
        trial_id=f"t{number}",
        state=TrialState.STOPPED,
        params={"x": x},
        distributions={"x": SPACE["x"]},
        seed=number,
        datetime_start=T0,
        values=[reports[max(reports)]],
        intermediate_values=reports,
        datetime_complete=T0,
    )


def _history(n_low: int, n_high: int) -> list[FrozenTrial]:
    """At budget 1 the best x is near 0.2; at budget 3 (the truth) near 0.8."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n_low):
        x = float(rng.random())
        reports = {1: (x - 0.2) ** 2}
        if i < n_high:
            reports[3] = (x - 0.8) ** 2
        out.append(_trial(i, x, reports))
    return out


def _proposals(sampler: BOHBSampler, trials: list[FrozenTrial], n: int = 40) -> np.ndarray:
    return np.array(
        [sampler.sample(SPACE, trials, np.random.default_rng(s))["x"] for s in range(n)]
    )


def test_is_a_sampler_and_pickles():
    s = BOHBSampler()
    assert isinstance(s, Sampler)
    assert repr(pickle.loads(pickle.dumps(s))) == repr(s)


def test_fits_on_the_highest_budget_with_enough_points():
    sampler = BOHBSampler(random_fraction=0.0, min_points_in_model=5)
    trials = _history(n_low=40, n_high=24)
    xs = _proposals(sampler, trials)
    assert sampler.last_budget == 3
    assert abs(float(np.median(xs)) - 0.8) < 0.15


def test_a_budget_with_min_points_is_modelled_and_lower_trials_stay_bad():
    # 5 observations at budget 3 are enough; the 25 trials stopped at budget 1 (with x < 0.5,
    # better there than any of the 5) rank below them, so proposals stay with budget 3's x
    low = [_trial(i, 0.02 * i, {1: 0.0}) for i in range(25)]
    high = [_trial(25 + i, 0.6 + 0.08 * i, {1: 1.0, 3: (0.68 - 0.08 * i) ** 2}) for i in range(5)]
    sampler = BOHBSampler(random_fraction=0.0, min_points_in_model=5)
    xs = _proposals(sampler, [*low, *high])
    assert sampler.last_budget == 3
    assert float(np.mean(xs > 0.5)) > 0.8


def test_falls_back_to_a_lower_budget():
    sampler = BOHBSampler(random_fraction=0.0, min_points_in_model=5)
    trials = _history(n_low=30, n_high=4)  # too few at budget 3
    xs = _proposals(sampler, trials)
    assert sampler.last_budget == 1
    assert abs(float(np.median(xs)) - 0.2) < 0.15


def test_uniform_before_any_model_and_with_random_fraction_one():
    for sampler, trials in [
        (BOHBSampler(random_fraction=0.0), _history(1, 0)),
        (BOHBSampler(random_fraction=1.0), _history(30, 30)),
    ]:
        xs = _proposals(sampler, trials, n=200)
        assert 0.35 < float(np.mean(xs)) < 0.65
        assert float(xs.min()) < 0.1 and float(xs.max()) > 0.9


def test_random_fraction_mixes_uniform_draws():
    sampler = BOHBSampler(random_fraction=0.5, min_points_in_model=5)
    xs = _proposals(sampler, _history(30, 12), n=200)
    far = np.mean(np.abs(xs - 0.8) > 0.3)
    assert 0.15 < far < 0.6


def test_failed_trials_are_ignored():
    trials = _history(3, 0)
    failed = [
        FrozenTrial(
            number=10 + i,
            trial_id=f"f{i}",
            state=TrialState.FAILED,
            params={"x": 0.5},
            distributions={"x": SPACE["x"]},
            seed=i,
            datetime_start=T0,
            intermediate_values={1: 0.0},
        )
        for i in range(20)
    ]
    sampler = BOHBSampler(random_fraction=0.0, min_points_in_model=5)
    sampler.sample(SPACE, [*trials, *failed], np.random.default_rng(0))
    assert sampler.last_budget is None  # still uniform: 3 usable points


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"random_fraction": 1.5}, "`random_fraction` must be a number in \\[0, 1\\], got 1.5"),
        ({"min_points_in_model": 1}, "`min_points_in_model` must be an int >= 2 or None, got 1"),
        ({"n_ei_candidates": 0}, "`n_ei_candidates` must be >= 1"),
        ({"gamma": 0.1}, "`gamma` must be a callable n -> int"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        BOHBSampler(**kwargs)


def test_bohb_study_with_hyperband():
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        value = 0.0
        for step in range(1, 10):
            value = (x - 0.7) ** 2 + (y - 0.2) ** 2 + 0.5 / step
            trial.report(step, value)
            if trial.should_stop():
                raise TrialStopped
        return value

    sampler = BOHBSampler(random_fraction=0.2)
    study = slimtune.create_study(
        storage="memory", seed=0, sampler=sampler, scheduler=Hyperband(max_resource=9)
    )
    study.optimize(objective, n_trials=60)
    states = {t.state for t in study.trials}
    assert states == {TrialState.COMPLETE, TrialState.STOPPED}
    assert sampler.last_budget is not None
    assert study.best_value < 0.5 / 9 + 0.02


def test_stopped_as_bad_false_is_the_papers_rule():
    # 5 observations at budget 3 are not enough under Falkner et al.'s 2 * min_points rule, and
    # the model then sees budget 1 alone, where the best x is near 0.2
    sampler = BOHBSampler(random_fraction=0.0, min_points_in_model=5, stopped_as_bad=False)
    xs = _proposals(sampler, _history(n_low=30, n_high=5))
    assert sampler.last_budget == 1
    assert abs(float(np.median(xs)) - 0.2) < 0.15
    sampler = BOHBSampler(random_fraction=0.0, min_points_in_model=5, stopped_as_bad=False)
    _proposals(sampler, _history(n_low=40, n_high=10))
    assert sampler.last_budget == 3
    with pytest.raises(TypeError, match="`stopped_as_bad` must be True or False, got 'no'"):
        BOHBSampler(stopped_as_bad="no")  # type: ignore[arg-type]
