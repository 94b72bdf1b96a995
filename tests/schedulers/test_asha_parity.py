"""ASHA stops exactly the trials Optuna's SuccessiveHalvingPruner stops (same configurations,
same learning curves, one worker)."""

from __future__ import annotations

import numpy as np
import pytest

import slimtune
from slimtune import TrialState
from slimtune.schedulers import ASHA

optuna = pytest.importorskip("optuna")

STEPS = (1, 3, 9, 27, 81)


def _curve(x: float, y: float, step: int) -> float:
    noise = 0.3 * np.sin(37.0 * x * step + 11.0 * y) / step
    return (x - 0.7) ** 2 + (y - 0.2) ** 2 + 0.5 / step + float(noise)


def _run(report, should_stop, x, y):
    for step in STEPS:
        report(step, _curve(x, y, step))
        if step < STEPS[-1] and should_stop():
            return step, True
    return STEPS[-1], False


def test_same_stops_as_optunas_successive_halving():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(0)
    points = rng.random((150, 2))
    ours = slimtune.create_study(storage="memory", seed=0, scheduler=ASHA(max_resource=81))
    theirs = optuna.create_study(
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    )
    ours_steps, theirs_steps = [], []
    for x, y in points:
        t = ours.ask()
        step, stopped = _run(t.report, t.should_stop, x, y)
        if stopped:
            ours.tell(t, state=TrialState.STOPPED)
        else:
            ours.tell(t, _curve(x, y, step))
        ours_steps.append(step)
        o = theirs.ask()
        step, stopped = _run(lambda s, v, o=o: o.report(v, s), o.should_prune, x, y)
        if stopped:
            theirs.tell(o, state=optuna.trial.TrialState.PRUNED)
        else:
            theirs.tell(o, _curve(x, y, step))
        theirs_steps.append(step)
    assert ours_steps == theirs_steps
    assert len(set(ours_steps)) == len(STEPS)  # every rung stopped someone
