"""Heartbeats, lost-trial failure (exactly once, settled by journal order), retries and
study-wide budget slots, on every backend."""

from __future__ import annotations

import time

import pytest

import slimtune
from slimtune import TrialState
from slimtune.storage import get_storage
from slimtune.study import Heartbeat
from slimtune.study._heartbeat import reap_lost_trials


def _lost_trial(url: str, *, max_retries: int = 1) -> tuple[slimtune.Study, str]:
    """A study with one trial asked under a heartbeat policy and then abandoned."""
    study = slimtune.create_study("hb", storage=url, seed=0)
    study._heartbeat = Heartbeat(interval=0.05, grace=0.2, max_retries=max_retries)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    study._heartbeat = None
    return study, trial.trial_id


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"interval": 0}, "`interval` must be a positive number"),
        ({"grace": -1.0}, "`grace` must be a positive number"),
        ({"interval": 5.0, "grace": 5.0}, "`grace` must be longer than `interval`"),
        ({"max_retries": -1}, "`max_retries` must be a non-negative int"),
        ({"max_retries": 1.5}, "`max_retries` must be a non-negative int"),
    ],
)
def test_heartbeat_config_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Heartbeat(**kwargs)


def test_heartbeat_config_is_frozen_and_keyword_only():
    hb = Heartbeat(interval=1.0, grace=4.0, max_retries=2)
    assert hb.to_json() == {"interval": 1.0, "grace": 4.0, "max_retries": 2}
    with pytest.raises(TypeError):
        Heartbeat(1.0, 4.0)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        hb.grace = 9.0  # type: ignore[misc]


def test_heartbeats_keep_a_trial_alive(storage_url):
    study, trial_id = _lost_trial(storage_url)
    for _ in range(6):
        study.storage.heartbeat([trial_id])
        time.sleep(0.05)
        assert study.storage.lost_trials(study._study_id) == []
    time.sleep(0.3)
    assert [t.trial_id for t in study.storage.lost_trials(study._study_id)] == [trial_id]


def test_a_lost_trial_fails_and_is_retried_exactly_once_by_racing_processes(shared_storage_url):
    study, trial_id = _lost_trial(shared_storage_url, max_retries=1)
    time.sleep(0.3)
    # two independent storages (two "processes") notice the lost trial at the same time
    others = [get_storage(shared_storage_url) for _ in range(2)]
    lost = [s.lost_trials(study._study_id) for s in others]
    assert all(len(x) == 1 for x in lost)
    for s in others:  # both write a finish; journal order makes the first one win
        s.finish_trial(
            trial_id,
            TrialState.FAILED,
            error={"type": "WorkerLost", "message": "lost", "traceback": ""},
            retry={"params": {"x": 0.5}, "system_attrs": {"retries": 1}},
        )
    st = study.storage.study_by_id(study._study_id)
    assert len(st.queue) == 1  # one retry, not two
    assert study.trials[0].state is TrialState.FAILED
    retried = study.ask()
    assert retried.number == 1
    assert retried.frozen().system_attrs["retries"] == 1
    assert study.storage.study_by_id(study._study_id).queue == {}


def test_ask_reaps_lost_trials_and_retries_their_parameters(storage_url):
    study, _ = _lost_trial(storage_url, max_retries=1)
    x = study.trials[0].params["x"]
    time.sleep(0.3)
    retry = study.ask()  # notices trial 0 is lost first
    first = study.trials[0]
    assert first.state is TrialState.FAILED
    assert first.error is not None and first.error["type"] == "WorkerLost"
    assert "no heartbeat" in first.error["message"]
    assert retry.suggest_float("x", 0.0, 1.0) == x
    assert retry.seed == first.seed  # the retry runs with the lost trial's seed
    attrs = retry.frozen().system_attrs
    assert attrs["retries"] == 1 and attrs["retry_of"] == 0 and attrs["retry_history"] == [0]


def test_retries_stop_at_max_retries(storage_url):
    study, _ = _lost_trial(storage_url, max_retries=1)
    time.sleep(0.3)
    study._heartbeat = Heartbeat(interval=0.05, grace=0.2, max_retries=1)
    retry = study.ask()  # the retry, itself abandoned
    study._heartbeat = None
    time.sleep(0.3)
    assert [t.number for t in reap_lost_trials(study.storage, study._study_id)] == [retry.number]
    assert study.storage.study_by_id(study._study_id).queue == {}  # no second retry
    nxt = study.ask()
    assert "retries" not in nxt.frozen().system_attrs


def test_trials_without_a_policy_are_never_reaped(storage_url):
    study = slimtune.create_study(storage=storage_url)
    study.ask()
    assert study.storage.lost_trials(study._study_id) == []


def test_budget_slots_are_exclusive_until_their_trial_fails(storage_url):
    study = slimtune.create_study(storage=storage_url, seed=0)
    a = study._ask(budget=2)
    b = study._ask(budget=2)
    assert a is not None and b is not None
    assert study._ask(budget=2) is None  # both slots held by running trials
    study.tell(a, 1.0)
    assert study._ask(budget=2) is None  # a COMPLETE trial keeps its slot
    study.tell(b, state=TrialState.FAILED)
    c = study._ask(budget=2)  # b's slot is free again
    assert c is not None
    assert study._ask(budget=2) is None


def test_a_late_tell_after_the_trial_was_reaped_is_dropped(storage_url, caplog):
    from slimtune.study import run_asked_trial

    study = slimtune.create_study(storage=storage_url, seed=0)
    study._heartbeat = Heartbeat(interval=0.05, grace=0.1)
    trial = study.ask()

    def objective(t: slimtune.Trial) -> float:
        time.sleep(0.3)  # no heartbeat thread: another process reaps the trial meanwhile
        other = study.storage if storage_url == "memory" else get_storage(storage_url)
        reap_lost_trials(other, study._study_id)
        return 1.0

    frozen = run_asked_trial(study, trial, objective, (), ())
    assert frozen.state is TrialState.FAILED
    assert frozen.error is not None and frozen.error["type"] == "WorkerLost"
    assert "Its result is dropped" in caplog.text


def test_old_journals_without_heartbeat_records_still_replay(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    study = slimtune.create_study("old", storage=url, seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    fresh = slimtune.load_study("old", storage=url)
    assert [t.state for t in fresh.trials] == [TrialState.COMPLETE] * 3
    st = fresh.storage.study_by_id(fresh._study_id)
    assert st.watched == {} and st.slots == {}


def test_optimize_with_heartbeat_writes_heartbeats(tmp_path):
    url = f"sqlite:///{tmp_path}/beat.db"
    study = slimtune.create_study(storage=url, seed=0)

    def objective(t: slimtune.Trial) -> float:
        time.sleep(0.25)
        return t.suggest_float("x", 0, 1)

    study.optimize(objective, n_trials=2, heartbeat=Heartbeat(interval=0.05, grace=1.0))
    records = [r for _, r in study.storage.backend.read(0) if r["op"] == "heartbeat"]
    assert len(records) >= 2
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert study.trials[0].system_attrs["heartbeat"]["grace"] == 1.0
