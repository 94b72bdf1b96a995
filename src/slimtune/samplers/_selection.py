"""Selection from a study's history: the ageing population, Deb's constraint rules, NSGA-II
non-dominated fronts and crowding distance, and tournaments.

Pure functions of the trials, shared by the evolution sampler and architecture search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import InvalidSpaceError
from slimtune.space import SearchSpace

__all__ = [
    "Genome",
    "crowding_distance",
    "fitness_rank",
    "members",
    "non_dominated_fronts",
    "population",
    "tournament",
    "violation",
]

_MEMBER_STATES = (TrialState.COMPLETE, TrialState.STOPPED)

Genome = dict[str, Any]  # one configuration: the active parameters of a space


def members(
    trials: Sequence[FrozenTrial],
    space: SearchSpace,
    n_objectives: int,
    *,
    limit: int | None = None,
) -> list[tuple[FrozenTrial, Genome]]:
    """Finished trials (COMPLETE, or STOPPED with a value) with finite values and a full
    configuration of ``space``, in number order; only the last ``limit`` when given (the scan
    starts from the newest trial, so its cost does not grow with the history)."""
    out: list[tuple[FrozenTrial, Genome]] = []
    for t in reversed(trials):
        if limit is not None and len(out) >= limit:
            break
        if t.state not in _MEMBER_STATES or t.values is None or len(t.values) != n_objectives:
            continue
        if not all(math.isfinite(v) for v in t.values):
            continue
        genome = _genome(space, t.params)
        if genome is not None:
            out.append((t, genome))
    return out[::-1]


def population(
    trials: Sequence[FrozenTrial], space: SearchSpace, size: int, *, n_objectives: int = 1
) -> list[FrozenTrial]:
    """The current population: the last ``size`` members in number order (older ones aged out)."""
    return [t for t, _ in members(trials, space, n_objectives, limit=size)]


def _genome(space: SearchSpace, params: Mapping[str, Any]) -> Genome | None:
    out: Genome = {}
    for name in space:
        if not space.is_active(name, out):
            continue
        if name not in params:
            return None
        try:
            out[name] = space[name].check(name, params[name])
        except InvalidSpaceError:
            return None
    return out


def violation(trial: FrozenTrial) -> float:
    if trial.constraints is None:
        return 0.0
    total = 0.0
    for c in trial.constraints:
        if math.isnan(c):
            return math.inf
        total += max(c, 0.0)
    return total


def fitness_rank(
    values: np.ndarray, violations: np.ndarray, directions: Sequence[str]
) -> np.ndarray:
    """Position of each member in a total order, 0 the best.

    Feasible members (violation 0) first, ranked by value (one objective) or by non-dominated
    front then crowding distance (several); infeasible ones after, by total violation. Ties go to
    the younger member (higher index).
    """
    n = len(values)
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    y = values.reshape(n, len(directions)) * signs
    feasible = violations <= 0
    primary = np.where(feasible, 0.0, violations)
    front = np.zeros(n)
    crowd = np.zeros(n)
    if len(directions) == 1:
        front = np.where(feasible, y[:, 0], 0.0)
    elif feasible.any():
        idx = np.flatnonzero(feasible)
        fronts = non_dominated_fronts(y[idx])
        for level, members in enumerate(fronts):
            front[idx[members]] = level
            crowd[idx[members]] = crowding_distance(y[idx[members]])
    order = np.lexsort((-np.arange(n), -crowd, front, primary))
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    return rank


def non_dominated_fronts(y: np.ndarray) -> list[np.ndarray]:
    """Indices of each non-dominated front of ``y`` (rows minimised), best front first."""
    le = np.all(y[:, None, :] <= y[None, :, :], axis=2)
    lt = np.any(y[:, None, :] < y[None, :, :], axis=2)
    dominates = le & lt  # dominates[i, j]: i dominates j
    count = dominates.sum(axis=0)
    fronts = []
    remaining = np.ones(len(y), dtype=bool)
    while remaining.any():
        current = np.flatnonzero(remaining & (count == 0))
        fronts.append(current)
        remaining[current] = False
        count = count - dominates[current].sum(axis=0)
        count[~remaining] = -1
    return fronts


def crowding_distance(y: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the points of one front (boundary points: infinity)."""
    n, m = y.shape
    out = np.zeros(n)
    if n <= 2:
        out[:] = np.inf
        return out
    for j in range(m):
        order = np.argsort(y[:, j], kind="stable")
        col = y[order, j]
        out[order[[0, -1]]] = np.inf
        span = col[-1] - col[0]
        if span > 0:
            out[order[1:-1]] += (col[2:] - col[:-2]) / span
    return out


def tournament(rank: np.ndarray, size: int, rng: np.random.Generator) -> int:
    """Index of the best of ``size`` members drawn without replacement (all if fewer)."""
    k = min(size, len(rank))
    picked = rng.choice(len(rank), size=k, replace=False)
    return int(picked[np.argmin(rank[picked])])
