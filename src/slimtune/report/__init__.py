"""Plots of a study with matplotlib (the ``report`` extra: ``pip install 'slimtune[report]'``).

Each function takes a :class:`slimtune.Study`, draws on ``ax`` (a new figure's axes when
``None``) and returns the axes; nothing is shown or saved (``ax.figure.savefig(path)`` does).
matplotlib is imported only when a plot is drawn.

- :func:`plot_optimization_history`: every trial's value and the best value so far.
- :func:`plot_pareto_front`: two objectives, the feasible Pareto front against the rest.
- :func:`plot_intermediate_values`: the learning curve each trial reported, by final state.
"""

from __future__ import annotations

from slimtune.report._history import plot_optimization_history
from slimtune.report._intermediate import plot_intermediate_values
from slimtune.report._pareto import plot_pareto_front

__all__ = ["plot_intermediate_values", "plot_optimization_history", "plot_pareto_front"]
