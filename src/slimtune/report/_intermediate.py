"""Learning curves: the intermediate values each trial reported, coloured by its state."""

from __future__ import annotations

import logging
from typing import Any

from slimtune._trial import TrialState
from slimtune.report._axes import integer_x, new_axes
from slimtune.study import Study

__all__ = ["plot_intermediate_values"]

logger = logging.getLogger(__name__)

_COLOURS = {
    TrialState.COMPLETE: "C0",
    TrialState.STOPPED: "C1",
    TrialState.RUNNING: "C2",
    TrialState.FAILED: "C3",
}


def plot_intermediate_values(study: Study, *, ax: Any = None) -> Any:
    """One line per trial through the values it reported (``trial.report(step, value)``),
    coloured by state: COMPLETE, STOPPED by the scheduler, RUNNING, FAILED. Returns the
    matplotlib axes."""
    if not isinstance(study, Study):
        raise TypeError(f"`study` must be a slimtune.Study, got {type(study).__name__}.")
    ax = new_axes(ax)
    ax.set_title("Intermediate values")
    ax.set_xlabel("Step")
    integer_x(ax)
    ax.set_ylabel("Intermediate value")
    trials = [t for t in study.trials if t.intermediate_values]
    if not trials:
        logger.warning("no trial of study %r reported an intermediate value", study.name)
        return ax
    labelled: set[TrialState] = set()
    for t in trials:
        steps = sorted(t.intermediate_values)
        label = None
        if t.state not in labelled:
            label = t.state.value.capitalize()
            labelled.add(t.state)
        ax.plot(
            steps,
            [t.intermediate_values[s] for s in steps],
            marker="o",
            markersize=3,
            color=_COLOURS[t.state],
            alpha=0.7,
            label=label,
        )
    ax.legend()
    return ax
