"""Sleep-based objectives for ``bench/distributed.py`` (importable by worker processes)."""

from __future__ import annotations

import os
import time
from typing import Any

ENV = "SLIMTUNE_BENCH_SLEEP"


class SleepObjective:
    """Suggest two floats (random sampler), sleep ``seconds``, return a quadratic."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, trial: Any) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        time.sleep(self.seconds)
        return float(x * x + y * y)


def from_env(trial: Any) -> float:
    """The objective of ``slimtune worker --objective bench._dist_objective:from_env``."""
    return SleepObjective(float(os.environ[ENV]))(trial)
