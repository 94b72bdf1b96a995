"""Schedulers with two worker processes sharing one SQLite study."""

from __future__ import annotations

import pytest

import slimtune
from slimtune import TrialState
from slimtune.schedulers import ASHA, Hyperband
from tests.schedulers import _objectives


def _check(trials, scheduler_rungs):
    states = {t.state for t in trials}
    assert TrialState.STOPPED in states and TrialState.COMPLETE in states
    for t in trials:
        assert t.params and 0.0 <= t.params["x"] <= 1.0
        if t.state is TrialState.STOPPED:
            # stopped exactly at one of its rungs, with the value it reported there
            assert t.last_step in scheduler_rungs(t)
            assert t.value == t.intermediate_values[t.last_step]
        else:
            assert t.state is TrialState.COMPLETE
            assert t.last_step == _objectives.MAX_STEP


@pytest.mark.slow
def test_asha_with_two_processes_on_sqlite(tmp_path):
    asha = ASHA(max_resource=_objectives.MAX_STEP)
    url = f"sqlite:///{tmp_path}/asha.db"
    study = slimtune.create_study("asha", storage=url, seed=0, scheduler=asha)
    study.optimize(_objectives.curve, n_trials=24, n_jobs=2)
    trials = slimtune.load_study("asha", storage=url).trials
    assert len(trials) == 24
    _check(trials, lambda t: asha.rungs(_objectives.MAX_STEP))
    # every stopped trial really was outside the top third of the trials that had reached its
    # rung by the end: the shared history justifies each decision
    for t in trials:
        if t.state is TrialState.STOPPED:
            r = t.last_step
            at_rung = sorted(u.intermediate_values[r] for u in trials if r in u.intermediate_values)
            assert t.value > at_rung[0]


@pytest.mark.slow
def test_hyperband_with_two_processes_on_sqlite(tmp_path):
    hb = Hyperband(max_resource=_objectives.MAX_STEP)
    url = f"sqlite:///{tmp_path}/hb.db"
    study = slimtune.create_study("hb", storage=url, seed=0, scheduler=hb)
    study.optimize(_objectives.curve, n_trials=24, n_jobs=2)
    trials = study.trials
    assert len(trials) == 24
    _check(trials, lambda t: hb.rungs(hb.bracket_of(t.number), _objectives.MAX_STEP))
