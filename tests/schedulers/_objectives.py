"""Module-level objectives for the scheduler tests that run trials in worker processes."""

from __future__ import annotations

import slimtune
from slimtune.exceptions import TrialStopped

MAX_STEP = 9


def curve(trial: slimtune.Trial) -> float:
    """A learning curve ``(x - 0.3)^2 + 1 / step``; asks the scheduler after every step."""
    x = trial.suggest_float("x", 0.0, 1.0)
    value = 0.0
    for step in range(1, MAX_STEP + 1):
        value = (x - 0.3) ** 2 + 1.0 / step
        trial.report(step, value)
        if trial.should_stop():
            raise TrialStopped
    return value
