"""Module-level objectives run in worker processes, Ray tasks and `slimtune worker`."""

from __future__ import annotations

import os
import time

import slimtune


def quick(trial: slimtune.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    time.sleep(0.05)
    return x * x


def raises_on_5_exits_on_11(trial: slimtune.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    if trial.number == 5:
        raise ValueError("objective raised on trial 5")
    if trial.number == 11:
        os._exit(7)
    time.sleep(0.05)
    return x * x


def slow(trial: slimtune.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    time.sleep(30)
    return x
