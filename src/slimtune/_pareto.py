"""Best trials: single-objective best and the feasible Pareto front (used by storage summaries,
the study and the CLI)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slimtune._trial import FrozenTrial

__all__ = ["best_single", "pareto_front"]


def _signed(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> np.ndarray:
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    out: np.ndarray = np.array([t.values for t in trials], dtype=float) * signs
    return out


def best_single(trials: Sequence[FrozenTrial], direction: str) -> FrozenTrial | None:
    """The best feasible trial (ties go to the lower number); None when there is none."""
    feasible = [t for t in trials if t.values is not None and t.feasible]
    if not feasible:
        return None
    sign = 1.0 if direction == "minimize" else -1.0
    return min(feasible, key=lambda t: (sign * t.values[0], t.number))  # type: ignore[index]


def pareto_front(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> list[FrozenTrial]:
    """Feasible trials that no other feasible trial dominates (all minimised after signs)."""
    feasible = [t for t in trials if t.values is not None and t.feasible]
    if not feasible:
        return []
    y = _signed(feasible, directions)
    order = np.lexsort(y.T[::-1])
    keep: list[int] = []
    for i in order:
        dominated = False
        for j in keep:
            if np.all(y[j] <= y[i]) and np.any(y[j] < y[i]):
                dominated = True
                break
        if not dominated:
            keep = [j for j in keep if not (np.all(y[i] <= y[j]) and np.any(y[i] < y[j]))]
            keep.append(int(i))
    return sorted((feasible[i] for i in keep), key=lambda t: t.number)
