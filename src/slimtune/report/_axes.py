"""matplotlib, imported on first use, and the axes a plot draws on."""

from __future__ import annotations

import importlib
from typing import Any

from slimtune.exceptions import MissingExtraError

__all__ = ["integer_x", "matplotlib_module", "new_axes", "objective_label"]


def matplotlib_module(name: str = "matplotlib") -> Any:
    """The matplotlib module ``name``, imported now; ``MissingExtraError`` naming the report
    extra when matplotlib is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise MissingExtraError(
            "slimtune.report needs matplotlib, which is not installed. "
            "Install it with: pip install 'slimtune[report]'"
        ) from err


def new_axes(ax: Any) -> Any:
    """``ax`` itself when given (checked to be matplotlib axes), else a new figure's axes."""
    if ax is None:
        _, ax = matplotlib_module("matplotlib.pyplot").subplots()
        return ax
    if not isinstance(ax, matplotlib_module("matplotlib.axes").Axes):
        raise TypeError(
            f"`ax` must be matplotlib Axes or None, got {type(ax).__name__}; pass "
            "plt.subplots()[1] or leave it out for a new figure."
        )
    return ax


def objective_label(index: int, direction: str) -> str:
    return f"Objective {index} ({direction})"


def integer_x(ax: Any) -> None:
    """Whole-number ticks on the x axis (trial numbers, steps)."""
    ax.xaxis.set_major_locator(matplotlib_module("matplotlib.ticker").MaxNLocator(integer=True))
