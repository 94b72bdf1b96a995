from __future__ import annotations

import json

import pytest

import slimtune
from slimtune import Categorical, Conditional, Float, Int, TrialState, TrialStopped
from slimtune.exceptions import InvalidSpaceError
from slimtune.schedulers import Decision
from slimtune.study import TrialFinishedError


def test_quickstart_minimises(tmp_path):
    study = slimtune.create_study(storage=f"sqlite:///{tmp_path}/q.db", seed=0)
    study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 2) ** 2, n_trials=40)
    assert study.best_value < 0.5
    assert abs(study.best_params["x"] - 2) < 0.75
    assert len(study.trials) == 40


def test_default_storage_is_the_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    slimtune.create_study("here").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert (tmp_path / "slimtune.db").exists()
    assert len(slimtune.load_study("here").trials) == 2


def test_same_seed_same_suggestions():
    def run(seed):
        study = slimtune.create_study(storage="memory", seed=seed)
        study.optimize(
            lambda t: (
                t.suggest_float("a", 0, 1)
                + t.suggest_int("b", 1, 100, log=True)
                + len(t.suggest_categorical("c", ["x", "yy"]))
            ),
            n_trials=15,
        )
        return [(t.params, t.seed) for t in study.trials]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_trial_seed_is_spawned_from_study_seed_and_stored():
    study = slimtune.create_study(storage="memory", seed=5)
    t0, t1 = study.ask(), study.ask()
    assert t0.seed != t1.seed
    other = slimtune.create_study(storage="memory", seed=5)
    assert other.ask().seed == t0.seed
    assert study.trials[0].seed == t0.seed


def test_define_by_run_conditional_parameters():
    def objective(trial):
        opt = trial.suggest_categorical("optimizer", ["adam", "sgd"])
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        if opt == "sgd":
            trial.suggest_float("momentum", 0.0, 0.99)
        return lr

    study = slimtune.create_study(storage="memory", seed=1)
    study.optimize(objective, n_trials=30)
    for t in study.trials:
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
        assert 1e-4 <= t.params["lr"] <= 1e-1
    assert {t.params["optimizer"] for t in study.trials} == {"adam", "sgd"}


def test_declarative_space_with_conditions():
    space = {
        "optimizer": Categorical(["adam", "sgd"]),
        "momentum": Conditional(Float(0.0, 0.99), parent="optimizer", values=["sgd"]),
        "layers": Int(1, 4),
    }
    study = slimtune.create_study(storage="memory", seed=2, space=space)
    study.optimize(lambda t: t.params["layers"] + t.params.get("momentum", 0.0), n_trials=20)
    for t in study.trials:
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
        assert t.distributions["layers"] == Int(1, 4)
    assert slimtune.load_study(study.name, storage=study.storage).space == study.space


def test_suggest_same_name_returns_same_value_and_rejects_conflicts():
    study = slimtune.create_study(storage="memory")
    t = study.ask()
    x = t.suggest_float("x", 0, 1)
    assert t.suggest_float("x", 0, 1) == x
    with pytest.raises(InvalidSpaceError, match="already has value"):
        t.suggest_float("x", 5, 6)
    with pytest.raises(InvalidSpaceError, match=r"parameter 'y': Float: `low` must be <= `high`"):
        t.suggest_float("y", 2, 1)


def test_ask_tell_by_hand_and_by_number():
    study = slimtune.create_study(storage="memory", direction="maximize")
    t = study.ask()
    t.suggest_int("k", 1, 3)
    done = study.tell(t.number, 3.0)
    assert done.state is TrialState.COMPLETE and done.value == 3.0
    with pytest.raises(TrialFinishedError, match="already COMPLETE"):
        study.tell(t, 4.0)
    with pytest.raises(ValueError, match="does not exist"):
        study.tell(99, 1.0)


def test_reports_scheduler_and_stopped_state():
    class StopAfterTwo:
        def decide(self, trial, trials, *, directions):
            return Decision.STOP if len(trial.intermediate_values) >= 2 else Decision.CONTINUE

    def objective(trial):
        for step in range(10):
            trial.report(step, 1.0 / (step + 1))
            if trial.should_stop():
                raise TrialStopped
        return 0.0

    study = slimtune.create_study(storage="memory", scheduler=StopAfterTwo())
    study.optimize(objective, n_trials=2)
    for t in study.trials:
        assert t.state is TrialState.STOPPED
        assert t.intermediate_values == {0: 1.0, 1: 0.5}
        assert t.value == 0.5  # last reported value


def test_default_scheduler_never_stops():
    study = slimtune.create_study(storage="memory")
    t = study.ask()
    t.report(0, 1.0)
    assert t.should_stop() is False
    with pytest.raises(ValueError, match="already reported step 0"):
        t.report(0, 2.0)
    with pytest.raises(ValueError, match="non-negative int"):
        t.report(-1, 2.0)


def test_user_attrs_and_study_attrs():
    study = slimtune.create_study(storage="memory")
    study.set_user_attr("dataset", "digits")
    t = study.ask()
    t.set_user_attr("acc", 0.9)
    with pytest.raises(slimtune.SlimtuneError, match="JSON-able"):
        t.set_user_attr("obj", object())
    study.tell(t, 1.0)
    assert study.user_attrs == {"dataset": "digits"}
    assert study.trials[0].user_attrs == {"acc": 0.9}


def test_constraints_and_best_trial_is_feasible():
    study = slimtune.create_study(storage="memory")
    for value, c in [(0.0, 1.0), (1.0, -1.0), (2.0, 0.0)]:
        t = study.ask()
        t.set_constraints([c])
        study.tell(t, value)
    assert study.best_trial.value == 1.0
    assert [t.feasible for t in study.trials] == [False, True, True]


def test_best_trials_is_the_feasible_pareto_front():
    study = slimtune.create_study(storage="memory", directions=["minimize", "maximize"])
    points = [(1, 1), (2, 3), (3, 3), (0, 0), (4, 5), (2, 2), (1, 9)]
    for i, (a, b) in enumerate(points):
        t = study.ask()
        t.set_constraints([1.0 if i == 6 else -1.0])  # (1, 9) would dominate, but is infeasible
        study.tell(t, [a, b])
    front = sorted(tuple(t.values) for t in study.best_trials)
    assert front == [(0.0, 0.0), (1.0, 1.0), (2.0, 3.0), (4.0, 5.0)]
    with pytest.raises(ValueError, match="2 objectives"):
        _ = study.best_trial


def test_enqueue_is_evaluated_first_and_exactly_once():
    study = slimtune.create_study(storage="memory", seed=0)
    study.enqueue({"x": 0.125})
    study.enqueue({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    xs = [t.params["x"] for t in study.trials]
    assert xs[:2] == [0.125, 0.5]
    assert study.trials[0].system_attrs["fixed_params"] == {"x": 0.125}
    assert 0.125 not in xs[2:] and 0.5 not in xs[2:]


def test_enqueue_validates_against_a_declared_space():
    study = slimtune.create_study(storage="memory", space={"x": Float(0, 1)})
    with pytest.raises(InvalidSpaceError, match="not in Float"):
        study.enqueue({"x": 3.0})


def test_exports(tmp_path):
    study = slimtune.create_study("exp", storage="memory", seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    study.set_user_attr("owner", "me")
    csv_text = study.to_csv(tmp_path / "t.csv")
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("number,state,value,params_x")
    assert len(lines) == 6
    data = json.loads(study.to_json(tmp_path / "t.json"))
    assert data["name"] == "exp" and len(data["trials"]) == 5
    assert data["trials"][0]["params"]["x"] == study.trials[0].params["x"]
    df = study.to_dataframe()
    assert list(df["number"]) == [0, 1, 2, 3, 4]
    assert df["value"].min() == study.best_value


def test_optimize_argument_checks():
    study = slimtune.create_study(storage="memory")
    for kwargs, fragment in [
        ({"n_trials": -1}, "n_trials"),
        ({"timeout": -1}, "timeout"),
        ({"n_jobs": 0}, "n_jobs"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            study.optimize(lambda t: 0.0, **kwargs)


def test_timeout_stops_asking():
    study = slimtune.create_study(storage="memory")
    study.optimize(lambda t: 0.0, timeout=0.0)
    assert study.trials == []


def test_grid_sampler_exhausts_and_stops():
    study = slimtune.create_study(
        storage="memory", sampler=slimtune.GridSampler({"a": [1, 2], "b": ["x", "y"]})
    )
    study.optimize(lambda t: float(t.suggest_int("a", 1, 2)), n_trials=10)
    assert len(study.trials) == 4
    assert {(t.params["a"], t.params["b"]) for t in study.trials} == {
        (1, "x"),
        (1, "y"),
        (2, "x"),
        (2, "y"),
    }


def test_threads_with_memory_storage_run_exactly_n_trials():
    study = slimtune.create_study(storage="memory", seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=20, n_jobs=3)
    assert len(study.trials) == 20
    assert sorted(t.number for t in study.trials) == list(range(20))


def test_callbacks_see_every_finished_trial():
    seen = []
    study = slimtune.create_study(storage="memory")
    study.optimize(lambda t: 1.0, n_trials=3, callbacks=[lambda s, t: seen.append(t.number)])
    assert seen == [0, 1, 2]


def test_stopped_trial_with_a_nan_last_report_keeps_no_value():
    study = slimtune.create_study(storage="memory")
    t = study.ask()
    t.report(0, float("nan"))
    done = study.tell(t, state=TrialState.STOPPED)
    assert done.state is TrialState.STOPPED and done.values is None
