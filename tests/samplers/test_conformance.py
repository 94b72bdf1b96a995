"""Conformance suite run on every sampler that ``slimtune.samplers`` exports.

A new sampler joins by being exported from ``slimtune.samplers`` and listed in ``SAMPLER_NAMES``
(``GridSampler`` has its own tests: it proposes from its grid, not from a space).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import slimtune
import slimtune.samplers as samplers_pkg
from slimtune import Categorical, Conditional, Float, Int, TrialState, TrialStopped
from slimtune.samplers import Sampler
from slimtune.space import SearchSpace

SAMPLER_NAMES = [
    "RandomSampler",
    "QMCSampler",
    "TPESampler",
    "GPSampler",
    "EvolutionSampler",
    "AutoSampler",
    "BOHBSampler",
]
AVAILABLE = [n for n in SAMPLER_NAMES if hasattr(samplers_pkg, n)]
N_TRIALS = 24

MIXED = {
    "opt": Categorical(["adam", "sgd", "rmsprop"]),
    "momentum": Conditional(Float(0.0, 0.99), parent="opt", values=["sgd"]),
    "lr": Float(1e-5, 1.0, log=True),
    "units": Int(8, 512, log=True),
    "layers": Int(1, 9, step=2),
    "drop": Float(0.0, 0.5, step=0.1),
    "x": Float(-3.0, 7.0),
}


def make(name: str, seed: int = 0) -> Any:
    cls = getattr(samplers_pkg, name)
    if "seed" in inspect.signature(cls).parameters:
        return cls(seed=seed)
    return cls()


@pytest.fixture(params=AVAILABLE)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def mixed_objective(trial: slimtune.Trial) -> float:
    p = trial.params
    return (
        (p["x"] - 5.0) ** 2
        + abs(p["lr"] - 0.01)
        + p["layers"] * 0.1
        + p["drop"]
        + (0.5 if p["opt"] == "adam" else p.get("momentum", 0.0))
    )


def test_is_a_sampler(name):
    assert isinstance(make(name), Sampler)


def test_declarative_conditional_space(name):
    space = SearchSpace(MIXED)
    study = slimtune.create_study(storage="memory", seed=0, sampler=make(name), space=MIXED)
    study.optimize(mixed_objective, n_trials=N_TRIALS)
    assert len(study.trials) == N_TRIALS
    for t in study.trials:
        assert t.state is TrialState.COMPLETE
        assert space.contains(t.params)


def test_define_by_run_conditional_space(name):
    def objective(trial):
        kind = trial.suggest_categorical("kind", ["a", "b", "c"])
        if kind == "a":
            trial.suggest_int("n", 1, 5)
        elif kind == "b":
            trial.suggest_float("w", 1e-3, 1.0, log=True)
        return (trial.suggest_float("x", -1.0, 1.0) - 0.3) ** 2

    study = slimtune.create_study(storage="memory", seed=0, sampler=make(name))
    study.optimize(objective, n_trials=N_TRIALS)
    for t in study.trials:
        assert -1.0 <= t.params["x"] <= 1.0
        assert ("n" in t.params) == (t.params["kind"] == "a")
        assert ("w" in t.params) == (t.params["kind"] == "b")
        if "n" in t.params:
            assert t.params["n"] in range(1, 6)


def test_running_failed_and_stopped_trials_in_the_history(name):
    space = SearchSpace(MIXED)
    study = slimtune.create_study(storage="memory", seed=0, sampler=make(name), space=MIXED)
    study.optimize(mixed_objective, n_trials=8)
    running = [study.ask() for _ in range(3)]  # left RUNNING: parallel workers
    failing = study.ask()
    study.tell(failing, float("nan"))
    stopped = study.ask()
    stopped.report(0, 3.0)
    study.tell(stopped, state=TrialState.STOPPED)

    def sometimes_fails(trial):
        if trial.number % 3 == 0:
            raise RuntimeError("boom")
        return mixed_objective(trial)

    study.optimize(sometimes_fails, n_trials=10, catch=(RuntimeError,))
    for t in study.trials:
        assert space.contains(t.params)
    assert {t.state for t in study.trials} == set(TrialState)
    assert all(r.params for r in running)


def test_several_objectives(name):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        k = trial.suggest_int("k", 1, 4)
        return x + k, (1 - x) ** 2 + k

    study = slimtune.create_study(
        storage="memory", seed=0, sampler=make(name), directions=["minimize", "maximize"]
    )
    study.optimize(objective, n_trials=N_TRIALS)
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert study.best_trials


def test_constraints(name):
    def objective(trial):
        x = trial.suggest_float("x", -2.0, 2.0)
        trial.set_constraints([x - 0.5])  # feasible when x <= 0.5
        return -x

    study = slimtune.create_study(storage="memory", seed=0, sampler=make(name))
    study.optimize(objective, n_trials=N_TRIALS)
    assert study.best_trial.params["x"] <= 0.5
    assert all(-2.0 <= t.params["x"] <= 2.0 for t in study.trials)


def test_same_seed_same_suggestions(name):
    def run(seed):
        study = slimtune.create_study(
            storage="memory", seed=seed, sampler=make(name, seed), space=MIXED
        )
        study.optimize(mixed_objective, n_trials=15)
        return [t.params for t in study.trials]

    assert run(3) == run(3)


def test_scheduler_stop_and_intermediate_values_do_not_confuse_the_sampler(name):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(3):
            trial.report(step, x + step)
        if x > 0.8:
            raise TrialStopped
        return x

    study = slimtune.create_study(storage="memory", seed=0, sampler=make(name))
    study.optimize(objective, n_trials=N_TRIALS)
    assert len(study.trials) == N_TRIALS
