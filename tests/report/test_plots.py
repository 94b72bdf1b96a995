"""slimtune.report: what each plot draws, and its errors."""

from __future__ import annotations

import logging
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest

import slimtune
from slimtune import TrialState
from slimtune.exceptions import MissingExtraError
from slimtune.report import (
    plot_intermediate_values,
    plot_optimization_history,
    plot_pareto_front,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _study(values, *, directions=("minimize",), constraints=None):
    study = slimtune.create_study(storage="memory", directions=list(directions), seed=0)
    for i, v in enumerate(values):
        trial = study.ask()
        if constraints is not None:
            trial.set_constraints([constraints[i]])
        study.tell(trial, v)
    return study


def _points(ax, label):
    (coll,) = [c for c in ax.collections if c.get_label() == label]
    return [tuple(p) for p in np.asarray(coll.get_offsets()).tolist()]


def _line(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line


def test_history_draws_every_value_and_the_best_so_far():
    study = _study([3.0, 1.0, 2.0, 0.5, 4.0], constraints=[0, 0, 0, 1.0, 0])
    ax = plot_optimization_history(study)
    assert _points(ax, "Objective 0 (minimize)") == [(0, 3.0), (1, 1.0), (2, 2.0), (4, 4.0)]
    assert _points(ax, "Infeasible") == [(3, 0.5)]  # never the best
    best = _line(ax, "Best value")
    assert best.get_xdata().tolist() == [0, 1, 2, 4]
    assert best.get_ydata().tolist() == [3.0, 1.0, 1.0, 1.0]
    assert ax.get_xlabel() == "Trial"


def test_history_follows_a_maximised_objective_and_skips_unfinished_trials():
    study = _study([1.0, 3.0, 2.0], directions=("maximize",))
    study.ask()  # running
    failed = study.ask()
    study.tell(failed, float("nan"))  # recorded FAILED
    ax = plot_optimization_history(study)
    assert _line(ax, "Best value").get_ydata().tolist() == [1.0, 3.0, 3.0]
    assert len(_points(ax, "Objective 0 (maximize)")) == 3


def test_history_of_several_objectives_needs_a_target():
    study = _study([[1.0, 5.0], [2.0, 4.0]], directions=("minimize", "maximize"))
    with pytest.raises(ValueError, match="has 2 objectives; pass `target`"):
        plot_optimization_history(study)
    ax = plot_optimization_history(study, target=lambda t: t.values[1], target_name="size")
    assert _points(ax, "size") == [(0, 5.0), (1, 4.0)]
    assert not [ln for ln in ax.get_lines() if ln.get_label() == "Best value"]
    assert ax.get_ylabel() == "size"


def test_pareto_front_separates_the_front_from_dominated_and_infeasible_trials():
    study = slimtune.create_study(storage="memory", directions=["minimize", "minimize"], seed=0)
    for values, c in [([1, 5], 0), ([2, 2], 0), ([3, 3], 0), ([5, 1], 0), ([0, 0], 1)]:
        trial = study.ask()
        trial.set_constraints([c])
        study.tell(trial, values)
    ax = plot_pareto_front(study)
    assert sorted(_points(ax, "Pareto front")) == [(1, 5), (2, 2), (5, 1)]
    assert sorted(tuple(t.values) for t in study.best_trials) == [(1, 5), (2, 2), (5, 1)]
    assert _points(ax, "Trial") == [(3, 3)]
    assert _points(ax, "Infeasible") == [(0, 0)]
    assert ax.get_xlabel() == "Objective 0 (minimize)"
    alone = plot_pareto_front(study, include_dominated=False)
    assert {c.get_label() for c in alone.collections} == {"Pareto front"}


def test_pareto_front_of_three_objectives_plots_two_chosen_values():
    study = _study([[1, 2, 3], [2, 1, 3], [3, 3, 3]], directions=("minimize",) * 3)
    with pytest.raises(ValueError, match="has 3 objective\\(s\\); pass `targets`"):
        plot_pareto_front(study)
    ax = plot_pareto_front(
        study, targets=lambda t: (t.values[0], t.values[2]), target_names=["latency", "size"]
    )
    assert sorted(_points(ax, "Pareto front")) == [(1, 3), (2, 3)]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("latency", "size")
    with pytest.raises(ValueError, match="`targets` must return two values"):
        plot_pareto_front(study, targets=lambda t: t.values)
    with pytest.raises(ValueError, match="`target_names` must be two names"):
        plot_pareto_front(study, targets=lambda t: t.values[:2], target_names=["a"])


def test_pareto_front_of_one_objective_points_to_the_history_plot():
    with pytest.raises(ValueError, match="use plot_optimization_history"):
        plot_pareto_front(_study([1.0]))


def test_intermediate_values_draw_one_curve_per_reporting_trial_by_state():
    study = slimtune.create_study(storage="memory", seed=0)
    done = study.ask()
    for step, v in enumerate([0.9, 0.5, 0.3]):
        done.report(step, v)
    study.tell(done, 0.3)
    stopped = study.ask()
    stopped.report(0, 0.95)
    study.tell(stopped, state=TrialState.STOPPED)
    study.tell(study.ask(), 1.0)  # reported nothing: no curve
    ax = plot_intermediate_values(study)
    lines = ax.get_lines()
    assert len(lines) == 2
    assert lines[0].get_ydata().tolist() == [0.9, 0.5, 0.3]
    assert lines[0].get_label() == "Complete" and lines[1].get_label() == "Stopped"


def test_plots_draw_on_given_axes_and_warn_on_an_empty_study(caplog):
    _, ax = plt.subplots()
    study = slimtune.create_study(storage="memory", seed=0)
    with caplog.at_level(logging.WARNING, logger="slimtune.report"):
        assert plot_optimization_history(study, ax=ax) is ax
        assert plot_intermediate_values(study, ax=ax) is ax
    assert "no COMPLETE trial" in caplog.text and "intermediate value" in caplog.text
    assert not ax.collections and not ax.get_lines()
    ax.figure.savefig(_tmp := __import__("io").BytesIO(), format="png")
    assert _tmp.getvalue()[:4] == b"\x89PNG"


def test_bad_arguments_name_the_parameter():
    study = _study([1.0])
    with pytest.raises(TypeError, match=r"`study` must be a slimtune\.Study"):
        plot_optimization_history("study")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`ax` must be matplotlib Axes"):
        plot_optimization_history(study, ax="axes")
    with pytest.raises(TypeError, match="`target` must be a callable"):
        plot_optimization_history(study, target=0)  # type: ignore[arg-type]


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'slimtune\[report\]'"):
        plot_optimization_history(_study([1.0]))
