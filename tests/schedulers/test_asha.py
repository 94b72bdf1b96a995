"""ASHA decisions on hand-made histories: rungs, promotion ladders, directions, bad input."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import slimtune
from slimtune import TrialState, TrialStopped
from slimtune.schedulers import ASHA, Decision, Scheduler
from tests.schedulers._history import ladder, trial

C, S = Decision.CONTINUE, Decision.STOP


def test_is_a_scheduler_and_pickles():
    asha = ASHA(min_resource=1, max_resource=27, reduction_factor=3)
    assert isinstance(asha, Scheduler)
    assert pickle.loads(pickle.dumps(asha)) == asha


def test_rungs():
    assert ASHA(max_resource=27).rungs(100) == [1, 3, 9]
    assert ASHA(max_resource=100).rungs(100) == [1, 3, 9, 27, 81]
    assert ASHA(min_resource=2, reduction_factor=2).rungs(20) == [2, 4, 8, 16]
    assert ASHA(max_resource=27, min_early_stopping_rate=1).rungs(27) == [3, 9]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_resource": 0}, "`min_resource` must be >= 1, got 0"),
        ({"reduction_factor": 1}, "`reduction_factor` must be >= 2, got 1"),
        ({"max_resource": 1}, "`max_resource` must be > `min_resource`"),
        ({"min_early_stopping_rate": -1}, "`min_early_stopping_rate` must be >= 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ASHA(**kwargs)


def test_wrong_types():
    with pytest.raises(TypeError, match=r"`reduction_factor` must be an int, got 2\.5"):
        ASHA(reduction_factor=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`min_resource` must be an int, got True"):
        ASHA(min_resource=True)
    with pytest.raises(TypeError):
        ASHA(1, 27)  # type: ignore[misc]  # keyword-only


def test_top_third_of_the_rung_goes_on():
    asha = ASHA(max_resource=27)
    history = ladder([float(v) for v in range(9)], [1], TrialState.STOPPED)
    # 10 trials at rung 1 -> the best 10 // 3 = 3 go on: 0, 1, 2 (and a newcomer better than 2)
    good, bad = trial(9, {1: 1.5}), trial(10, {1: 2.5})
    assert asha.decide(good, [*history, good]) is C
    assert asha.decide(bad, [*history, bad]) is S
    tie = trial(11, {1: 2.0})
    assert asha.decide(tie, [*history, tie]) is C


def test_first_trials_go_on_only_when_best():
    asha = ASHA(max_resource=27)
    first = trial(0, {1: 5.0})
    assert asha.decide(first, [first]) is C
    second = trial(1, {1: 6.0})
    assert asha.decide(second, [first, second]) is S
    third = trial(1, {1: 4.0})
    assert asha.decide(third, [first, third]) is C


def test_between_rungs_and_at_max_resource_it_continues():
    asha = ASHA(max_resource=9)
    history = ladder([0.0] * 6, [1, 2, 3, 4, 9], TrialState.COMPLETE)
    bad = trial(6, {1: 0.0, 2: 99.0})  # promoted at rung 1; step 2 is not a rung
    assert asha.decide(bad, [*history, bad]) is C
    bad.intermediate_values[3] = 99.0  # rung 3: worst of 7
    assert asha.decide(bad, [*history, bad]) is S
    last = trial(7, {1: 0.0, 3: 0.0, 9: 99.0})  # 9 is max_resource: never a rung
    assert asha.decide(last, [*history, last]) is C


def test_a_rung_is_decided_once():
    """A trial promoted at rung 1 is not re-judged at rung 1 when later trials arrive."""
    asha = ASHA(max_resource=27)
    t = trial(0, {1: 5.0, 2: 5.0})
    better = [trial(i, {1: 0.0}) for i in range(1, 10)]
    assert asha.decide(t, [t, *better]) is C


def test_sparse_reports_use_the_first_step_past_the_rung():
    asha = ASHA(max_resource=27)
    history = ladder([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 3], TrialState.COMPLETE)
    jump = trial(6, {5: 0.5})  # crosses rungs 1 and 3 at step 5 with value 0.5: best at both
    assert asha.decide(jump, [*history, jump]) is C
    late = trial(7, {5: 5.5})  # worse than the top 7 // 3 = 2 at both rungs
    assert asha.decide(late, [*history, late]) is S
    # the value a peer reported when it passed the rung is its rung value
    peer = trial(8, {4: 0.1, 6: 100.0})
    probe = trial(9, {3: 0.2})
    assert asha.decide(probe, [*history, peer, probe]) is C  # second best of 8 at rung 3


def test_maximize_flips_the_order():
    asha = ASHA(max_resource=27)
    history = ladder([float(v) for v in range(9)], [1], TrialState.STOPPED)
    high, low = trial(9, {1: 7.5}), trial(10, {1: 5.5})
    assert asha.decide(high, [*history, high], directions=("maximize",)) is C
    assert asha.decide(low, [*history, low], directions=("maximize",)) is S


def test_nan_is_worst():
    asha = ASHA(max_resource=27)
    history = ladder([1.0, 2.0, 3.0], [1], TrialState.COMPLETE)
    nan = trial(3, {1: math.nan})
    assert asha.decide(nan, [*history, nan]) is S


def test_several_objectives_are_refused():
    t = trial(0, {1: 1.0})
    with pytest.raises(ValueError, match="decides on one objective, but the study has 2"):
        ASHA().decide(t, [t], directions=("minimize", "maximize"))


def test_asynchronous_ladder_promotes_about_one_in_eta():
    """81 trials run one after the other: each rung keeps roughly a third of the one below (more
    than synchronous halving would: early trials meet few competitors) and trials stop only at
    rungs."""
    rng = np.random.default_rng(0)
    asha = ASHA(max_resource=27)
    history = []
    for n in range(81):
        quality = float(rng.random())
        t = trial(n, {})
        history.append(t)
        for step in range(1, 28):
            t.intermediate_values[step] = quality + 1.0 / step
            if asha.decide(t, history) is S:
                t.state = TrialState.STOPPED
                break
        else:
            t.state = TrialState.COMPLETE
    reached = {r: sum(r in t.intermediate_values for t in history) for r in (1, 3, 9, 27)}
    assert reached[1] == 81
    assert 15 <= reached[3] <= 45
    assert 3 <= reached[9] <= reached[3] // 2
    assert 1 <= reached[27] <= reached[9]
    stopped = [t for t in history if t.state is TrialState.STOPPED]
    assert all(t.last_step in (1, 3, 9) for t in stopped)


def test_drives_a_study():
    def objective(t):
        x = t.suggest_float("x", 0.0, 1.0)
        value = 0.0
        for step in range(1, 10):
            value = (x - 0.3) ** 2 + 1.0 / step
            t.report(step, value)
            if t.should_stop():
                raise TrialStopped
        return value

    study = slimtune.create_study(storage="memory", seed=0, scheduler=ASHA(max_resource=9))
    study.optimize(objective, n_trials=30)
    states = [t.state for t in study.trials]
    assert TrialState.STOPPED in states and TrialState.COMPLETE in states
    for t in study.trials:
        if t.state is TrialState.STOPPED:
            assert t.last_step in (1, 3)
            assert t.value == t.intermediate_values[t.last_step]
        else:
            assert t.last_step == 9
