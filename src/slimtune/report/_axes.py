"""matplotlib, imported on first use, and the axes a plot draws on."""

from __future__ import annotations

from typing import Any

from slimtune.exceptions import MissingExtraError

__all__ = ["integer_x", "new_axes", "objective_label"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise MissingExtraError(
            "slimtune.report needs matplotlib, which is not installed. "
            "Install it with: pip install 'slimtune[report]'"
        ) from err
    return plt


def new_axes(ax: Any) -> Any:
    """``ax`` itself when given (checked to be matplotlib axes), else a new figure's axes."""
    if ax is None:
        _, ax = _pyplot().subplots()
        return ax
    try:
        from matplotlib.axes import Axes
    except ImportError as err:  # an object passed as `ax` without matplotlib installed
        raise MissingExtraError(
            "slimtune.report needs matplotlib, which is not installed. "
            "Install it with: pip install 'slimtune[report]'"
        ) from err
    if not isinstance(ax, Axes):
        raise TypeError(
            f"`ax` must be matplotlib Axes or None, got {type(ax).__name__}; pass "
            "plt.subplots()[1] or leave it out for a new figure."
        )
    return ax


def objective_label(index: int, direction: str) -> str:
    return f"Objective {index} ({direction})"


def integer_x(ax: Any) -> None:
    """Whole-number ticks on the x axis (trial numbers, steps)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
