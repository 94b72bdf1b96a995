"""Studies and trials: ask-tell is the primitive, ``optimize`` a loop over it."""

from __future__ import annotations

from slimtune._pareto import pareto_front
from slimtune._trial import FrozenTrial, TrialState
from slimtune.study._optimize import ObjectiveError, run_trial
from slimtune.study._study import (
    Study,
    TrialFinishedError,
    create_study,
    delete_study,
    load_study,
)
from slimtune.study._trial import Trial

__all__ = [
    "FrozenTrial",
    "ObjectiveError",
    "Study",
    "Trial",
    "TrialFinishedError",
    "TrialState",
    "create_study",
    "delete_study",
    "load_study",
    "pareto_front",
    "run_trial",
]
