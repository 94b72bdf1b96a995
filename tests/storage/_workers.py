"""Module-level functions run in spawned worker processes by the storage tests."""

from __future__ import annotations

import time

import slimtune


def grid_objective(trial: slimtune.Trial) -> float:
    x = trial.suggest_int("x", 0, 7)
    y = trial.suggest_int("y", 0, 7)
    time.sleep(0.002)
    return float(x * 8 + y)


def random_objective(trial: slimtune.Trial) -> float:
    a = trial.suggest_float("a", -1.0, 1.0)
    b = trial.suggest_float("b", 1e-3, 1.0, log=True)
    return a * a + b


def run_grid(url: str, name: str) -> int:
    sampler = slimtune.GridSampler({"x": list(range(8)), "y": list(range(8))})
    study = slimtune.load_study(name, storage=url, sampler=sampler)
    study.optimize(grid_objective)
    return 0


def run_random(url: str, name: str, n_trials: int) -> int:
    study = slimtune.load_study(name, storage=url)
    study.optimize(random_objective, n_trials=n_trials)
    return 0


def create_and_run(url: str, name: str, n_trials: int) -> int:
    study = slimtune.create_study(name, storage=url, seed=3, load_if_exists=True)
    study.optimize(random_objective, n_trials=n_trials)
    return len(study.trials)
