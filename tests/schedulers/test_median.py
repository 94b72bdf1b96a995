"""Median stopping on hand-made histories: warm-up, minimum trials, interval, directions."""

from __future__ import annotations

import math

import pytest

import slimtune
from slimtune import TrialState, TrialStopped
from slimtune.schedulers import Decision, MedianStopping, Scheduler
from tests.schedulers._history import ladder, trial

C, S = Decision.CONTINUE, Decision.STOP
STEPS = list(range(10))


def test_is_a_scheduler():
    assert isinstance(MedianStopping(), Scheduler)


def test_worse_than_the_median_stops():
    ms = MedianStopping(min_trials=5)
    history = ladder([1.0, 2.0, 3.0, 4.0, 5.0], STEPS, TrialState.COMPLETE)
    bad, good = trial(5, {0: 3.5}), trial(6, {0: 2.5})
    assert ms.decide(bad, [*history, bad]) is S
    assert ms.decide(good, [*history, good]) is C
    on_median = trial(7, {0: 3.0})
    assert ms.decide(on_median, [*history, on_median]) is C


def test_best_value_so_far_counts():
    ms = MedianStopping(min_trials=5)
    history = ladder([1.0, 2.0, 3.0, 4.0, 5.0], STEPS, TrialState.COMPLETE)
    t = trial(5, {0: 1.0, 1: 9.0})  # worse now, but its best (1.0) beats the median
    assert ms.decide(t, [*history, t]) is C


def test_only_complete_trials_are_compared():
    ms = MedianStopping(min_trials=5)
    complete = ladder([1.0, 2.0, 3.0, 4.0], STEPS, TrialState.COMPLETE)
    others = [
        trial(10, {0: 100.0}, TrialState.STOPPED),
        trial(11, {0: 100.0}),
        trial(12, {0: 100.0}, TrialState.FAILED),
    ]
    t = trial(13, {0: 50.0})
    assert ms.decide(t, [*complete, *others, t]) is C  # 4 < min_trials
    fifth = trial(14, dict.fromkeys(STEPS, 5.0), TrialState.COMPLETE)
    assert ms.decide(t, [*complete, fifth, *others, t]) is S


def test_warmup_and_interval():
    ms = MedianStopping(warmup_steps=3, min_trials=1, interval_steps=2)
    history = ladder([0.0], STEPS, TrialState.COMPLETE)
    t = trial(1, {})
    decisions = []
    for step in range(8):
        t.intermediate_values[step] = 1.0
        decisions.append(ms.decide(t, [*history, t]))
    assert decisions == [C, C, C, S, C, S, C, S]


def test_maximize_and_nan():
    ms = MedianStopping(min_trials=3)
    history = ladder([1.0, 2.0, 3.0], STEPS, TrialState.COMPLETE)
    low = trial(3, {0: 1.5})
    assert ms.decide(low, [*history, low], directions=("maximize",)) is S
    assert ms.decide(low, [*history, low], directions=("minimize",)) is C
    nan = trial(4, {0: math.nan})
    assert ms.decide(nan, [*history, nan]) is S


def test_no_reports_no_peers_continue():
    ms = MedianStopping(min_trials=1)
    t = trial(0, {})
    assert ms.decide(t, [t]) is C
    t.intermediate_values[5] = 1.0
    assert ms.decide(t, [t]) is C


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"warmup_steps": -1}, "`warmup_steps` must be >= 0, got -1"),
        ({"min_trials": 0}, "`min_trials` must be >= 1, got 0"),
        ({"interval_steps": 0}, "`interval_steps` must be >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MedianStopping(**kwargs)
    with pytest.raises(TypeError, match="must be an int"):
        MedianStopping(min_trials=2.0)  # type: ignore[arg-type]


def test_drives_a_study():
    def objective(t):
        x = t.suggest_float("x", 0.0, 1.0)
        value = 0.0
        for step in range(5):
            value = x + 1.0 / (step + 1)
            t.report(step, value)
            if t.should_stop():
                raise TrialStopped
        return value

    ms = MedianStopping(warmup_steps=1, min_trials=3)
    study = slimtune.create_study(storage="memory", seed=0, scheduler=ms)
    study.optimize(objective, n_trials=30)
    stopped = [t for t in study.trials if t.state is TrialState.STOPPED]
    assert stopped and len(stopped) < 30
    assert all(t.last_step >= 1 and t.value == t.intermediate_values[t.last_step] for t in stopped)
    complete = [t.params["x"] for t in study.trials if t.state is TrialState.COMPLETE]
    assert min(complete) < min(t.params["x"] for t in stopped)  # the best x is never stopped
