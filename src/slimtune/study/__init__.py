"""Studies and trials: ask-tell is the primitive, ``optimize`` a loop over it."""

from __future__ import annotations

from slimtune._pareto import pareto_front
from slimtune._trial import FrozenTrial, TrialState
from slimtune.study._heartbeat import Heartbeat
from slimtune.study._optimize import ObjectiveError, run_asked_trial, run_trial
from slimtune.study._study import (
    Study,
    TrialFinishedError,
    create_study,
    delete_study,
    load_study,
)
from slimtune.study._trial import Trial
from slimtune.study._worker import TooManyFailures, run_worker

__all__ = [
    "FrozenTrial",
    "Heartbeat",
    "ObjectiveError",
    "Study",
    "TooManyFailures",
    "Trial",
    "TrialFinishedError",
    "TrialState",
    "create_study",
    "delete_study",
    "load_study",
    "pareto_front",
    "run_asked_trial",
    "run_trial",
    "run_worker",
]
