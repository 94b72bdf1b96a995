"""An objective that raises, returns garbage or is interrupted loses no completed trial."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import slimtune
from slimtune import TrialState
from tests.study import _objectives

_REPO_ROOT = Path(__file__).resolve().parents[2]


def test_exception_in_catch_is_recorded_and_the_study_goes_on(storage_url):
    study = slimtune.create_study(storage=storage_url, seed=0)
    study.optimize(_objectives.fails_on_odd, n_trials=6, catch=(ValueError,))
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAILED] * 3
    failed = study.trials[1]
    assert failed.error is not None
    assert failed.error["type"] == "ValueError"
    assert failed.error["message"] == "odd trial 1"
    assert "Traceback" in failed.error["traceback"] and "fails_on_odd" in failed.error["traceback"]
    assert failed.values is None


def test_exception_not_in_catch_is_recorded_then_raised(storage_url):
    study = slimtune.create_study(storage=storage_url, seed=0)
    with pytest.raises(ValueError, match="odd trial 1"):
        study.optimize(_objectives.fails_on_odd, n_trials=6)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAILED]


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        (math.nan, "returned NaN"),
        (math.inf, "infinite"),
        (-math.inf, "infinite"),
        ("abc", "non-number 'abc'"),
        (None, "returned None"),
        ([1.0, 2.0], "2 value(s) for 1 objective"),
        (True, "a bool"),
    ],
)
def test_bad_return_values_fail_with_the_reason(returned, reason):
    study = slimtune.create_study(storage="memory")
    study.optimize(lambda t: returned, n_trials=1)
    study.optimize(lambda t: 1.5, n_trials=1)
    bad, good = study.trials
    assert bad.state is TrialState.FAILED
    assert bad.error is not None and reason in bad.error["message"]
    assert good.state is TrialState.COMPLETE and good.value == 1.5


def test_numpy_and_int_returns_are_accepted():
    import numpy as np

    study = slimtune.create_study(storage="memory", directions=["minimize", "minimize"])
    study.optimize(lambda t: np.array([1, 2.5]), n_trials=1)
    assert study.trials[0].values == [1.0, 2.5]


def test_keyboard_interrupt_fails_the_running_trial_and_stops(storage_url):
    study = slimtune.create_study(storage=storage_url, seed=0)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(_objectives.interrupt_on_trial_2, n_trials=10)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [TrialState.FAILED]
    assert trials[2].error is not None and trials[2].error["type"] == "KeyboardInterrupt"


def test_sigint_to_a_running_process_leaves_a_consistent_storage(tmp_path):
    url = f"sqlite:///{tmp_path}/sig.db"
    script = textwrap.dedent(
        f"""
        import signal, time, slimtune
        # a shell that starts us in the background ignores SIGINT; restore Python's handler
        signal.signal(signal.SIGINT, signal.default_int_handler)
        def objective(trial):
            x = trial.suggest_float("x", 0, 1)
            if trial.number >= 3:
                print("ready", flush=True)
                time.sleep(60)
            return x
        study = slimtune.create_study("sig", storage={url!r})
        study.optimize(objective, n_trials=100)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    trials = slimtune.load_study("sig", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.FAILED]
    assert trials[3].error is not None and trials[3].error["type"] == "KeyboardInterrupt"


@pytest.mark.slow
def test_processes_run_exactly_n_trials(tmp_path):
    url = f"sqlite:///{tmp_path}/p.db"
    study = slimtune.create_study(storage=url, seed=0)
    study.optimize(_objectives.quadratic, n_trials=12, n_jobs=2)
    trials = study.trials
    assert len(trials) == 12 and all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.params["x"] for t in trials}) == 12


@pytest.mark.slow
def test_worker_exception_is_raised_in_the_parent(tmp_path):
    url = f"sqlite:///{tmp_path}/p.db"
    study = slimtune.create_study(storage=url, seed=0)
    with pytest.raises(ValueError, match="odd trial"):
        study.optimize(_objectives.fails_on_odd, n_trials=20, n_jobs=2)
    assert any(t.state is TrialState.FAILED for t in study.trials)
    assert all(t.state is not TrialState.RUNNING for t in study.trials)


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_trial(tmp_path):
    url = f"sqlite:///{tmp_path}/k.db"
    study = slimtune.create_study(storage=url, seed=0)
    study.optimize(_objectives.kills_itself_on_trial_3, n_trials=8, n_jobs=2)
    trials = study.trials
    assert len(trials) == 8
    assert trials[3].state is TrialState.FAILED  # its worker process died mid-trial
    assert trials[3].error is not None and trials[3].error["type"] == "WorkerLostError"
    assert "exit code 13" in trials[3].error["message"]
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 7
    assert all(t.value is not None for t in complete)


@pytest.mark.slow
def test_a_trial_past_the_executors_timeout_fails_and_the_study_goes_on(tmp_path):
    from slimtune.executors import ProcessExecutor

    study = slimtune.create_study(storage=f"sqlite:///{tmp_path}/t.db", seed=0)
    with ProcessExecutor(2, timeout=3.0) as executor:
        study.optimize(_objectives.hangs_on_trial_1, n_trials=6, executor=executor)
    trials = study.trials
    assert len(trials) == 6
    assert trials[1].state is TrialState.FAILED
    assert trials[1].error is not None and trials[1].error["type"] == "WorkerLostError"
    assert "timeout=3.0" in trials[1].error["message"]
    assert [t.state for t in trials if t.number != 1] == [TrialState.COMPLETE] * 5


def test_unpicklable_objective_with_processes_is_a_clear_error(tmp_path):
    study = slimtune.create_study(storage=f"sqlite:///{tmp_path}/u.db")
    with pytest.raises(slimtune.SlimtuneError, match="cannot be pickled"):
        study.optimize(lambda t: 0.0, n_trials=4, n_jobs=2)
    assert study.trials == []


@pytest.mark.slow
def test_sigint_to_a_driver_with_worker_processes_fails_its_running_trials(tmp_path):
    url = f"sqlite:///{tmp_path}/pool.db"
    script = textwrap.dedent(
        f"""
        import signal, slimtune
        from tests.study import _objectives
        signal.signal(signal.SIGINT, signal.default_int_handler)
        study = slimtune.create_study("pool", storage={url!r})
        print("ready", flush=True)
        study.optimize(_objectives.sleeps_from_trial_2, n_trials=20, n_jobs=2)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=_REPO_ROOT
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    study = slimtune.load_study("pool", storage=url)
    deadline = time.time() + 60
    while [t.state for t in study.trials][:2] != [TrialState.COMPLETE] * 2 or (
        sum(t.state is TrialState.RUNNING for t in study.trials) < 2
    ):
        assert time.time() < deadline, "the workers never started trials 2 and 3"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    trials = study.trials
    assert all(t.state is not TrialState.RUNNING for t in trials)
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE] * 2
    for t in trials[2:]:
        assert t.state is TrialState.FAILED
        assert t.error is not None and t.error["type"] == "KeyboardInterrupt"


def test_run_worker_trial_timeout_needs_a_shared_storage_and_a_picklable_objective(tmp_path):
    from slimtune.exceptions import SlimtuneError
    from slimtune.study import run_worker

    memory = slimtune.create_study(storage="memory")
    with pytest.raises(ValueError, match="cannot see the in-memory storage"):
        run_worker(memory, _objectives.quadratic, n_trials=1, trial_timeout=5)
    study = slimtune.create_study(storage=f"sqlite:///{tmp_path}/w.db")
    with pytest.raises(SlimtuneError, match="the objective cannot be pickled"):
        run_worker(study, lambda t: 1.0, n_trials=1, trial_timeout=5)
    with pytest.raises(ValueError, match="`trial_timeout` must be None or a finite number"):
        run_worker(study, _objectives.quadratic, n_trials=1, trial_timeout=float("inf"))
    assert study.trials == []
