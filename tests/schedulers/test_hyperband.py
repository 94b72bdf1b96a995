"""Hyperband: bracket allocation, per-bracket successive halving, bad input."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest

from slimtune import TrialState
from slimtune.schedulers import Decision, Hyperband, Scheduler
from tests.schedulers._history import trial

C, S = Decision.CONTINUE, Decision.STOP


def test_is_a_scheduler_and_pickles():
    hb = Hyperband(max_resource=27)
    assert isinstance(hb, Scheduler)
    clone = pickle.loads(pickle.dumps(hb))
    assert clone == hb and clone.brackets == hb.brackets


def test_brackets_follow_hyperband_budgets():
    hb = Hyperband(min_resource=1, max_resource=27, reduction_factor=3)
    assert hb.n_brackets == 4
    # ceil(4 * 3**s / (s + 1)) trials for s = 3, 2, 1, 0 halvings
    assert Counter(hb.brackets) == {0: 27, 1: 12, 2: 6, 3: 4}
    hb81 = Hyperband(max_resource=81)
    assert Counter(hb81.brackets) == {0: 81, 1: 34, 2: 15, 3: 8, 4: 5}


def test_brackets_are_interleaved_and_deterministic():
    hb = Hyperband(max_resource=27)
    first = [hb.bracket_of(n) for n in range(49)]
    assert set(first[:12]) == {0, 1, 2, 3}  # every bracket gets trials early on
    assert [hb.bracket_of(n + 49) for n in range(49)] == first
    assert [Hyperband(max_resource=27).bracket_of(n) for n in range(49)] == first


def test_rungs_per_bracket():
    hb = Hyperband(max_resource=27)
    assert hb.rungs(0, 27) == [1, 3, 9]
    assert hb.rungs(1, 27) == [3, 9]
    assert hb.rungs(2, 27) == [9]
    assert hb.rungs(3, 27) == []
    assert Hyperband(max_resource=100).rungs(4, 100) == [81]


def _numbers(hb: Hyperband, bracket: int, count: int) -> list[int]:
    out = [n for n in range(10_000) if hb.bracket_of(n) == bracket]
    return out[:count]


def test_a_trial_competes_only_within_its_bracket():
    hb = Hyperband(max_resource=27)
    b0 = _numbers(hb, 0, 7)
    b1 = _numbers(hb, 1, 7)
    # bracket 1's trials are all excellent at step 1 and 3; bracket 0's are poor
    history = [trial(n, {1: 0.0, 3: 0.0}, TrialState.COMPLETE) for n in b1[:6]]
    history += [trial(n, {1: 10.0 + i}, TrialState.STOPPED) for i, n in enumerate(b0[:6])]
    probe0 = trial(b0[6], {1: 10.5})  # second best of bracket 0's 7 at rung 1: 7 // 3 = 2 go on
    assert hb.decide(probe0, [*history, probe0]) is C
    probe1 = trial(b1[6], {1: 5.0})  # bracket 1 has no rung at 1
    assert hb.decide(probe1, [*history, probe1]) is C
    probe1.intermediate_values[3] = 5.0  # rung 3 against bracket 1's zeros
    assert hb.decide(probe1, [*history, probe1]) is S


def test_the_last_bracket_never_stops():
    hb = Hyperband(max_resource=27)
    top = _numbers(hb, 3, 2)
    history = [trial(top[0], dict.fromkeys(range(1, 28), 0.0), TrialState.COMPLETE)]
    probe = trial(top[1], dict.fromkeys(range(1, 27), 99.0))
    assert hb.decide(probe, [*history, probe]) is C


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"max_resource": 2},
            r"`max_resource` must be >= min_resource \* reduction_factor",
        ),
        ({"max_resource": 27, "min_resource": 0}, "`min_resource` must be >= 1, got 0"),
        ({"max_resource": 27, "reduction_factor": 1}, "`reduction_factor` must be >= 2"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Hyperband(**kwargs)


def test_max_resource_is_required():
    with pytest.raises(TypeError):
        Hyperband()  # type: ignore[call-arg]
