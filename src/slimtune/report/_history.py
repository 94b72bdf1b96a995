"""Optimisation history: every COMPLETE trial's value and the best value so far."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from slimtune._trial import FrozenTrial, TrialState
from slimtune.report._axes import integer_x, new_axes, objective_label
from slimtune.study import Study

__all__ = ["plot_optimization_history"]

logger = logging.getLogger(__name__)


def plot_optimization_history(
    study: Study,
    *,
    target: Callable[[FrozenTrial], float] | None = None,
    target_name: str | None = None,
    ax: Any = None,
) -> Any:
    """Each COMPLETE trial's value against its number, and the best feasible value so far.

    A multi-objective study needs ``target``, the value to plot (for example
    ``target=lambda t: t.values[1]``); the best-so-far line is drawn only for the study's own
    single objective, whose direction is known. Infeasible trials (constraints above 0) are
    drawn in grey and never count as best. Returns the matplotlib axes.
    """
    if not isinstance(study, Study):
        raise TypeError(f"`study` must be a slimtune.Study, got {type(study).__name__}.")
    if target is not None and not callable(target):
        raise TypeError(f"`target` must be a callable trial -> float or None, got {target!r}.")
    if target is None and len(study.directions) != 1:
        raise ValueError(
            f"study {study.name!r} has {len(study.directions)} objectives; pass `target` to "
            "choose the value to plot, e.g. target=lambda t: t.values[0]."
        )
    ax = new_axes(ax)
    trials = [t for t in study.get_trials([TrialState.COMPLETE]) if t.values is not None]
    value = target if target is not None else (lambda t: t.values[0])
    if target_name is None:
        target_name = (
            "Objective value" if target is not None else objective_label(0, study.direction)
        )
    ax.set_title("Optimization history")
    ax.set_xlabel("Trial")
    integer_x(ax)
    ax.set_ylabel(target_name)
    if not trials:
        logger.warning("study %r has no COMPLETE trial to plot", study.name)
        return ax
    points = [(t.number, float(value(t)), t.feasible) for t in trials]
    feasible = [(n, v) for n, v, ok in points if ok]
    infeasible = [(n, v) for n, v, ok in points if not ok]
    if feasible:
        ax.scatter(*zip(*feasible, strict=True), color="C0", label=target_name, zorder=2)
    if infeasible:
        ax.scatter(*zip(*infeasible, strict=True), color="0.6", label="Infeasible", zorder=2)
    if target is None and feasible:
        sign = 1.0 if study.direction == "minimize" else -1.0
        best, xs, ys = math.inf, [], []
        for n, v in feasible:
            if math.isfinite(v) and sign * v < best:
                best = sign * v
            if math.isfinite(best):
                xs.append(n)
                ys.append(sign * best)
        if xs:
            ax.step(xs, ys, where="post", color="C3", label="Best value", zorder=3)
    ax.legend()
    return ax
