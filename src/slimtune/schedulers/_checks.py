"""Argument checks and history helpers shared by the schedulers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from slimtune._trial import FrozenTrial

__all__ = ["check_int", "crossing_step", "objective_sign", "rung_value"]


def check_int(owner: str, name: str, value: Any, *, low: int, example: int) -> int:
    """``value`` as an int ``>= low``; a one-line error naming ``owner.name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{owner}: `{name}` must be an int, got {value!r} ({type(value).__name__}). "
            f"Pass e.g. {name}={example}."
        )
    if value < low:
        raise ValueError(
            f"{owner}: `{name}` must be >= {low}, got {value}. Pass e.g. {name}={example}."
        )
    return int(value)


def objective_sign(owner: str, directions: Sequence[str]) -> float:
    """+1 to minimise, -1 to maximise: values times the sign are minimised."""
    if len(directions) != 1:
        raise ValueError(
            f"{owner} decides on one objective, but the study has {len(directions)} directions "
            f"{list(directions)!r}. Use NeverStop() for multi-objective studies."
        )
    if directions[0] not in ("minimize", "maximize"):
        raise ValueError(
            f"{owner}: a direction must be 'minimize' or 'maximize', got {directions[0]!r}."
        )
    return 1.0 if directions[0] == "minimize" else -1.0


def rung_value(trial: FrozenTrial, resource: int, sign: float) -> float | None:
    """``sign`` times the value ``trial`` reported when it first reached ``resource`` (its first
    step ``>= resource``), ``+inf`` for NaN, or None when it has not reached it."""
    iv = trial.intermediate_values
    value = iv.get(resource)
    if value is None:
        later = [s for s in iv if s >= resource]
        if not later:
            return None
        value = iv[min(later)]
    return math.inf if math.isnan(value) else sign * value


def crossing_step(trial: FrozenTrial, resource: int) -> int | None:
    """The first step of ``trial`` that is ``>= resource`` (None when it has not reached it)."""
    iv = trial.intermediate_values
    if resource in iv:
        return resource
    later = [s for s in iv if s >= resource]
    return min(later) if later else None
