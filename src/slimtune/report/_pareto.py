"""The Pareto front of a two-objective study (or two values chosen from more)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from slimtune._pareto import pareto_front
from slimtune._trial import FrozenTrial, TrialState
from slimtune.report._axes import new_axes, objective_label
from slimtune.study import Study

__all__ = ["plot_pareto_front"]

logger = logging.getLogger(__name__)


def plot_pareto_front(
    study: Study,
    *,
    targets: Callable[[FrozenTrial], Sequence[float]] | None = None,
    target_names: Sequence[str] | None = None,
    include_dominated: bool = True,
    ax: Any = None,
) -> Any:
    """The study's feasible Pareto front (``study.best_trials``) against its other trials.

    A two-objective study is plotted as it is. With more objectives, ``targets`` chooses the
    two values to plot (``targets=lambda t: (t.values[0], t.values[2])``); the front is still
    the study's, over all its objectives. ``include_dominated=False`` draws the front alone;
    infeasible trials are drawn in grey. Returns the matplotlib axes.
    """
    if not isinstance(study, Study):
        raise TypeError(f"`study` must be a slimtune.Study, got {type(study).__name__}.")
    n_obj = len(study.directions)
    if targets is not None and not callable(targets):
        raise TypeError(f"`targets` must be a callable trial -> (x, y) or None, got {targets!r}.")
    if targets is None and n_obj != 2:
        hint = (
            "a single-objective study has no front; use plot_optimization_history"
            if n_obj == 1
            else "pass `targets` to choose two, e.g. targets=lambda t: (t.values[0], t.values[1])"
        )
        raise ValueError(f"study {study.name!r} has {n_obj} objective(s); {hint}.")
    if target_names is None:
        if targets is None:
            target_names = [objective_label(i, d) for i, d in enumerate(study.directions)]
        else:
            target_names = ["Target 0", "Target 1"]
    if isinstance(target_names, str) or len(target_names) != 2:
        raise ValueError(f"`target_names` must be two names, got {target_names!r}.")
    ax = new_axes(ax)
    ax.set_title("Pareto front")
    ax.set_xlabel(target_names[0])
    ax.set_ylabel(target_names[1])
    trials = [t for t in study.get_trials([TrialState.COMPLETE]) if t.values is not None]
    if not trials:
        logger.warning("study %r has no COMPLETE trial to plot", study.name)
        return ax
    front = pareto_front(trials, study.directions)
    on_front = {t.trial_id for t in front}

    def xy(t: FrozenTrial) -> tuple[float, float]:
        values = targets(t) if targets is not None else t.values
        assert values is not None
        if len(values) != 2:
            raise ValueError(
                f"`targets` must return two values, got {values!r} for trial {t.number}."
            )
        return float(values[0]), float(values[1])

    if include_dominated:
        rest = [xy(t) for t in trials if t.trial_id not in on_front and t.feasible]
        infeasible = [xy(t) for t in trials if not t.feasible]
        if rest:
            ax.scatter(*zip(*rest, strict=True), color="C0", alpha=0.5, label="Trial", zorder=2)
        if infeasible:
            ax.scatter(*zip(*infeasible, strict=True), color="0.6", label="Infeasible", zorder=2)
    if front:
        points = sorted(xy(t) for t in front)
        ax.scatter(*zip(*points, strict=True), color="C3", label="Pareto front", zorder=3)
        if targets is None:
            # the edge of the region the front dominates: from each point (sorted by x) the
            # step holds its y until the next x when x is minimised, the next y when maximised
            where = "post" if study.directions[0] == "minimize" else "pre"
            xs, ys = zip(*points, strict=True)
            ax.step(xs, ys, where=where, color="C3", alpha=0.6, zorder=3)
    ax.legend()
    return ax
