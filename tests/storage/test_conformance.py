"""One conformance suite for every storage backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

import pytest

import slimtune
from slimtune import TrialState
from slimtune.exceptions import DuplicatedStudyError, StudyNotFoundError
from slimtune.storage import get_storage
from tests.storage import _workers


def _journal_len(storage) -> int:
    return len(storage.backend.read(0))


def test_create_load_list_delete(storage_url):
    storage = get_storage(storage_url)
    study = slimtune.create_study("s1", storage=storage, direction="maximize", seed=1)
    study.optimize(_workers.random_objective, n_trials=3)
    again = slimtune.load_study("s1", storage=storage)
    assert again.directions == ["maximize"] and again.seed == 1
    assert [t.number for t in again.trials] == [0, 1, 2]
    summary = {s.name: s for s in storage.list_studies()}
    assert summary["s1"].n_trials == 3 and summary["s1"].n_complete == 3
    with pytest.raises(DuplicatedStudyError, match="already exists"):
        slimtune.create_study("s1", storage=storage)
    assert slimtune.create_study("s1", storage=storage, load_if_exists=True).name == "s1"
    slimtune.delete_study("s1", storage=storage)
    with pytest.raises(StudyNotFoundError, match="no study named 's1'"):
        slimtune.load_study("s1", storage=storage)
    # a new study of the same name starts from zero
    fresh = slimtune.create_study("s1", storage=storage)
    assert fresh.trials == []


def test_loading_a_missing_study_writes_nothing(storage_url):
    storage = get_storage(storage_url)
    before = _journal_len(storage)
    with pytest.raises(StudyNotFoundError) as info:
        slimtune.load_study("nope", storage=storage)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="'minimize' or 'maximize'"):
        slimtune.create_study("bad", storage=storage, direction="up")
    assert _journal_len(storage) == before


def test_trial_records_survive_a_new_storage_object(storage_url):
    storage = get_storage(storage_url)
    study = slimtune.create_study("keep", storage=storage, seed=0)
    t = study.ask()
    t.suggest_float("x", 0, 1)
    t.report(0, 0.5)
    t.set_user_attr("note", {"a": [1, 2]})
    t.set_constraints([-1.0, 0.0])
    study.tell(t, 0.25)
    reopened = storage if storage_url == "memory" else get_storage(storage_url)
    (trial,) = slimtune.load_study("keep", storage=reopened).trials
    assert trial.state is TrialState.COMPLETE and trial.value == 0.25
    assert trial.intermediate_values == {0: 0.5}
    assert trial.user_attrs == {"note": {"a": [1, 2]}}
    assert trial.constraints == [-1.0, 0.0] and trial.feasible
    assert trial.seed == slimtune.load_study("keep", storage=reopened).trials[0].seed


def test_first_writer_wins_on_trial_numbers(storage_url):
    storage = get_storage(storage_url)
    study = slimtune.create_study("race", storage=storage)
    sid = storage.study_state("race").study_id
    a = storage.create_trial(sid, number=0, seed=1, params={}, distributions={})
    b = storage.create_trial(sid, number=0, seed=2, params={}, distributions={})
    assert a is not None and b is None
    c = storage.create_trial(sid, number=1, seed=3, params={}, distributions={}, claim="k")
    d = storage.create_trial(sid, number=2, seed=4, params={}, distributions={}, claim="k")
    assert c is not None and d is None
    storage.finish_trial(c.trial_id, TrialState.FAILED)
    e = storage.create_trial(sid, number=2, seed=5, params={}, distributions={}, claim="k")
    assert e is not None  # a FAILED trial frees its claim
    assert [t.number for t in study.trials] == [0, 1, 2]


def test_finish_is_first_writer_wins(storage_url):
    storage = get_storage(storage_url)
    study = slimtune.create_study("fin", storage=storage)
    t = study.ask()
    storage.finish_trial(t.trial_id, TrialState.FAILED)
    done = storage.finish_trial(t.trial_id, TrialState.COMPLETE, values=[1.0])
    assert done.state is TrialState.FAILED and done.values is None


def test_resume_after_the_process_exits(shared_storage_url):
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        assert pool.apply(_workers.create_and_run, (shared_storage_url, "resume", 5)) == 5
    study = slimtune.load_study("resume", storage=shared_storage_url)
    assert len(study.trials) == 5
    study.optimize(_workers.random_objective, n_trials=3)
    assert [t.number for t in study.trials] == list(range(8))
    with ctx.Pool(1) as pool:
        assert pool.apply(_workers.create_and_run, (shared_storage_url, "resume", 2)) == 10


def _n_procs(url: str) -> int:
    return 8 if url.startswith("postgresql") else 4


@pytest.mark.slow
def test_grid_shared_by_processes_evaluates_each_point_once(shared_storage_url):
    slimtune.create_study("grid", storage=shared_storage_url)
    n = _n_procs(shared_storage_url)
    ctx = mp.get_context("spawn")
    with ctx.Pool(n) as pool:
        results = [
            pool.apply_async(_workers.run_grid, (shared_storage_url, "grid")) for _ in range(n)
        ]
        assert [r.get(timeout=300) for r in results] == [0] * n
    trials = slimtune.load_study("grid", storage=shared_storage_url).trials
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 64 == len(trials)
    points = Counter((t.params["x"], t.params["y"]) for t in complete)
    assert len(points) == 64 and set(points.values()) == {1}
    assert sorted(t.number for t in trials) == list(range(64))


@pytest.mark.slow
def test_random_trials_split_across_processes(shared_storage_url):
    slimtune.create_study("split", storage=shared_storage_url, seed=11)
    n = _n_procs(shared_storage_url)
    per = [100 // n + (1 if i < 100 % n else 0) for i in range(n)]
    ctx = mp.get_context("spawn")
    with ctx.Pool(n) as pool:
        results = [
            pool.apply_async(_workers.run_random, (shared_storage_url, "split", k)) for k in per
        ]
        assert [r.get(timeout=300) for r in results] == [0] * n
    trials = slimtune.load_study("split", storage=shared_storage_url).trials
    assert len(trials) == 100
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(100))
    assert len({t.trial_id for t in trials}) == 100
    # seeds are spawned from the study seed by number: distinct, hence distinct configurations
    assert len({t.seed for t in trials}) == 100
    assert len({(t.params["a"], t.params["b"]) for t in trials}) == 100
