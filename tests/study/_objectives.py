"""Module-level objectives for tests that run trials in worker processes."""

from __future__ import annotations

import os
import time

import slimtune


def quadratic(trial: slimtune.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    return (x - 1.0) ** 2


def fails_on_odd(trial: slimtune.Trial) -> float:
    x = trial.suggest_int("x", 0, 100)
    if trial.number % 2:
        raise ValueError(f"odd trial {trial.number}")
    return float(x)


def kills_itself_on_trial_3(trial: slimtune.Trial) -> float:
    if trial.number == 3:
        os._exit(13)
    return trial.suggest_float("x", 0.0, 1.0)


def interrupt_on_trial_2(trial: slimtune.Trial) -> float:
    if trial.number == 2:
        raise KeyboardInterrupt
    return trial.suggest_float("x", 0.0, 1.0)


def sleeps_from_trial_2(trial: slimtune.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    if trial.number >= 2:
        time.sleep(60)
    return x


def hangs_on_trial_1(trial: slimtune.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    if trial.number == 1:
        time.sleep(120)
    return x
