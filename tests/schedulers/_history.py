"""Hand-made trial histories for the scheduler tests."""

from __future__ import annotations

from datetime import datetime

from slimtune._trial import FrozenTrial, TrialState

T0 = datetime(2026, 1, 1)


def trial(
    number: int,
    reports: dict[int, float],
    state: TrialState = TrialState.RUNNING,
) -> FrozenTrial:
    """A trial with intermediate values ``reports``; COMPLETE / STOPPED ones keep the last."""
    values = None
    if state is not TrialState.RUNNING and state is not TrialState.FAILED and reports:
        values = [reports[max(reports)]]
    return FrozenTrial(
        number=number,
        trial_id=f"t{number}",
        state=state,
        params={},
        distributions={},
        seed=number,
        datetime_start=T0,
        values=values,
        intermediate_values=dict(reports),
        datetime_complete=None if state is TrialState.RUNNING else T0,
    )


def ladder(values: list[float], steps: list[int], state: TrialState) -> list[FrozenTrial]:
    """One trial per value, numbered from 0, that reported ``value`` at each of ``steps``."""
    return [trial(i, {s: v for s in steps}, state) for i, v in enumerate(values)]
