"""TPE's good / bad split of the history: objective ranks, STOPPED trials, constraints, liars.

Trials are ordered best first as Optuna's TPE (and c-TPE / MOTPE) order them:

1. feasible COMPLETE trials by value (several objectives: by non-dominated rank, the last rank
   needed broken by hypervolume contribution (two objectives) or crowding distance);
2. feasible STOPPED trials: those that reached a later step first, then by their value at that
   step (single objective: the intermediate value reported there, NaN last; else the told
   values);
3. infeasible trials (COMPLETE or STOPPED) by total constraint violation.

The first ``gamma(n)`` of them are *good* (``n``: COMPLETE and STOPPED trials); the rest, and the
RUNNING trials under the constant liar, are *bad*. FAILED trials are ignored.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from slimtune._trial import FrozenTrial, TrialState

__all__ = [
    "Scores",
    "default_gamma",
    "default_gamma_multiobjective",
    "default_weights",
    "nondominated_ranks",
    "split",
    "split_trials",
]

RUNNING, COMPLETE, STOPPED, IGNORED = 0, 1, 2, 3


def default_gamma(n: int) -> int:
    """Size of the good set for ``n`` finished trials: ``min(ceil(0.1 n), 25)``."""
    return min(math.ceil(0.1 * n), 25)


def default_gamma_multiobjective(n: int) -> int:
    """Size of the good set with several objectives: ``ceil(0.1 n)``."""
    return math.ceil(0.1 * n)


def default_weights(n: int) -> np.ndarray:
    """Kernel weights of ``n`` observations in trial order: the last 25 weigh 1, older ones ramp
    down linearly (Optuna's default)."""
    if n < 25:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - 25), np.ones(25)])


@dataclass
class Scores:
    """What the split needs of each trial, as arrays in trial order."""

    state: np.ndarray  # RUNNING / COMPLETE / STOPPED / IGNORED (int8)
    values: np.ndarray  # (n, k) raw objective values, nan when missing
    violation: np.ndarray  # total constraint violation, 0 when feasible
    last_step: np.ndarray  # last reported step, -1 when none

    @classmethod
    def empty(cls, k: int) -> Scores:
        return cls(np.empty(0, np.int8), np.empty((0, k)), np.empty(0), np.empty(0))

    @classmethod
    def of(cls, trials: Sequence[FrozenTrial], k: int) -> Scores:
        n = len(trials)
        state = np.empty(n, np.int8)
        values = np.full((n, k), np.nan)
        violation = np.zeros(n)
        last_step = np.full(n, -1.0)
        for i, t in enumerate(trials):
            state[i] = record(t, k, values[i])
            if t.constraints:
                violation[i] = sum(c for c in t.constraints if c > 0)
            if t.state is TrialState.STOPPED and t.intermediate_values:
                last_step[i] = step = max(t.intermediate_values)
                if k == 1:  # ranked by its value at that step, whatever value it was told
                    values[i, 0] = t.intermediate_values[step]
        return cls(state, values, violation, last_step)

    def extend(self, other: Scores) -> Scores:
        return Scores(
            np.concatenate([self.state, other.state]),
            np.concatenate([self.values, other.values]),
            np.concatenate([self.violation, other.violation]),
            np.concatenate([self.last_step, other.last_step]),
        )


def record(t: FrozenTrial, k: int, out: np.ndarray) -> int:
    """The split state of ``t``; writes its values into ``out``."""
    state = t.state
    if state is TrialState.RUNNING:
        return RUNNING
    if state is TrialState.COMPLETE:
        if t.values is None or len(t.values) != k:
            return IGNORED
        out[:] = t.values
        return COMPLETE
    if state is TrialState.STOPPED:
        if t.values is not None and len(t.values) == k:
            out[:] = t.values
        return STOPPED
    return IGNORED


def nondominated_ranks(y: np.ndarray, n_needed: int | None = None) -> np.ndarray:
    """Non-domination rank (0 = Pareto front) of each row of ``y`` (minimised).

    Rows beyond the first ``n_needed`` ranked may be left with rank ``len(y)``."""
    n = len(y)
    if n == 0:
        return np.empty(0, dtype=np.intp)
    if y.shape[1] == 1:
        dense: np.ndarray = np.unique(y[:, 0], return_inverse=True)[1].astype(np.intp)
        return dense
    if y.shape[1] == 2:
        return _ranks_2d(y)
    ranks = np.full(n, n, dtype=np.intp)
    dominated_by = np.ones((n, n), dtype=bool)  # [i, j]: row j dominates row i
    strictly = np.zeros((n, n), dtype=bool)
    for j in range(y.shape[1]):
        col = y[:, j]
        dominated_by &= col[None, :] <= col[:, None]
        strictly |= col[None, :] < col[:, None]
    dominated_by &= strictly
    count = dominated_by.sum(axis=1)
    left = np.ones(n, dtype=bool)
    rank, done, need = 0, 0, n if n_needed is None else min(n_needed, n)
    while done < need:
        front = left & (count == 0)
        ranks[front] = rank
        left &= ~front
        count -= dominated_by[:, front].sum(axis=1)
        done += int(front.sum())
        rank += 1
    return ranks


def _ranks_2d(y: np.ndarray) -> np.ndarray:
    """Ranks for two objectives in O(n log n): points in (f1, f2) order join the first front
    whose last point does not dominate them (the fronts' last f2 values stay sorted)."""
    order = np.lexsort((y[:, 1], y[:, 0]))
    ranks = np.empty(len(y), dtype=np.intp)
    last_f1: list[float] = []
    last_f2: list[float] = []
    for i, f1, f2 in zip(order.tolist(), y[order, 0].tolist(), y[order, 1].tolist(), strict=True):
        r = bisect.bisect_left(last_f2, f2)
        while r < len(last_f2) and last_f2[r] == f2 and last_f1[r] != f1:
            r += 1  # an equal f2 with a smaller f1 dominates; an identical point does not
        if r == len(last_f2):
            last_f1.append(f1)
            last_f2.append(f2)
        else:
            last_f1[r], last_f2[r] = f1, f2
        ranks[i] = r
    return ranks


def _reference_point(y: np.ndarray) -> np.ndarray:
    worst = y.max(axis=0)
    ref: np.ndarray = np.maximum(1.1 * worst, 0.9 * worst)
    ref[ref == 0] = 1e-12
    return ref


def _hv2d_greedy(y: np.ndarray, size: int) -> list[int]:
    """Greedy hypervolume subset selection for two objectives (rows mutually non-dominated).

    In (f1, f2) order the gain of a point depends only on its chosen neighbours, so each pick
    updates the gains between its neighbours alone."""
    ref = _reference_point(y)
    order = np.lexsort((y[:, 1], y[:, 0]))
    xs, ys = y[order, 0], y[order, 1]
    gain = (ref[0] - xs) * (ref[1] - ys)
    chosen: list[int] = []  # positions in ``order``, ascending
    for _ in range(size):
        b = int(np.argmax(gain))
        k = bisect.bisect_left(chosen, b)
        lo = chosen[k - 1] if k else -1
        hi = chosen[k] if k < len(chosen) else len(xs)
        chosen.insert(k, b)
        gain[b] = -np.inf
        y_left = ys[lo] if lo >= 0 else ref[1]
        seg = slice(lo + 1, b)
        free = np.isfinite(gain[seg])
        gain[seg] = np.where(free, np.clip(xs[b] - xs[seg], 0, None) * (y_left - ys[seg]), -np.inf)
        x_right = xs[hi] if hi < len(xs) else ref[0]
        seg = slice(b + 1, hi)
        free = np.isfinite(gain[seg])
        gain[seg] = np.where(free, (x_right - xs[seg]) * np.clip(ys[b] - ys[seg], 0, None), -np.inf)
    return [int(order[i]) for i in chosen]


def _crowding(y: np.ndarray, size: int) -> list[int]:
    dist = np.zeros(len(y))
    for j in range(y.shape[1]):
        order = np.argsort(y[:, j], kind="stable")
        span = y[order[-1], j] - y[order[0], j]
        dist[order[[0, -1]]] = np.inf
        if len(y) > 2 and span > 0:
            dist[order[1:-1]] += (y[order[2:], j] - y[order[:-2], j]) / span
    return [int(i) for i in np.argsort(-dist, kind="stable")[:size]]


def _order_multi(y: np.ndarray, n_below: int) -> np.ndarray:
    """Rows of ``y`` best first down to ``n_below`` (the rest follows in row order)."""
    ranks = nondominated_ranks(y, n_below)
    order = np.argsort(ranks, kind="stable")
    counts = np.cumsum(np.bincount(ranks, minlength=len(y) + 1))
    full = int(np.searchsorted(counts, n_below, side="right"))  # ranks 0..full-1 fit entirely
    taken = int(counts[full - 1]) if full else 0
    if taken < n_below:
        tie = np.flatnonzero(ranks == full)
        size = n_below - taken
        pick = _hv2d_greedy(y[tie], size) if y.shape[1] == 2 else _crowding(y[tie], size)
        rest = np.setdiff1d(tie, tie[pick], assume_unique=True)
        later = order[taken + len(tie) :]
        order = np.concatenate([order[:taken], tie[pick], rest, later])
    return order


def split(
    scores: Scores,
    directions: Sequence[str],
    gamma: Callable[[int], int],
    *,
    constant_liar: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Trial positions (ascending) of the good and the bad set."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    y = scores.values * signs
    finished = (scores.state == COMPLETE) | (scores.state == STOPPED)
    n = int(finished.sum())
    n_below = gamma(n)
    if isinstance(n_below, bool) or not isinstance(n_below, int | np.integer) or n_below < 0:
        raise ValueError(
            f"`gamma` must return a non-negative int, got {n_below!r} for n={n}. "
            "Return e.g. min(math.ceil(0.1 * n), 25)."
        )
    n_below = min(int(n_below), n)
    feasible = scores.violation <= 0
    done = np.flatnonzero(finished & feasible & (scores.state == COMPLETE))
    stopped = np.flatnonzero(finished & feasible & (scores.state == STOPPED))
    infeasible = np.flatnonzero(finished & ~feasible)
    if y.shape[1] == 1:
        done = done[np.argsort(y[done, 0], kind="stable")]
        primary = y[stopped, 0]
    else:
        done = done[_order_multi(y[done], min(n_below, len(done)))]
        have = ~np.isnan(y[stopped]).any(axis=1)
        primary = np.full(len(stopped), np.inf)
        primary[have] = nondominated_ranks(y[stopped[have]])
    primary = np.where(np.isnan(primary), np.inf, primary)
    stopped = stopped[np.lexsort((primary, -scores.last_step[stopped]))]
    infeasible = infeasible[np.argsort(scores.violation[infeasible], kind="stable")]
    ranked = np.concatenate([done, stopped, infeasible])
    good = np.sort(ranked[:n_below])
    bad = ranked[n_below:]
    if constant_liar:
        bad = np.concatenate([bad, np.flatnonzero(scores.state == RUNNING)])
    return good, np.sort(bad)


def split_trials(
    trials: Sequence[FrozenTrial],
    directions: Sequence[str],
    *,
    gamma: Callable[[int], int] | None = None,
    constant_liar: bool = True,
) -> tuple[list[int], list[int]]:
    """Numbers of the good and the bad trials (a convenience over :func:`split`)."""
    if gamma is None:
        gamma = default_gamma if len(directions) == 1 else default_gamma_multiobjective
    good, bad = split(
        Scores.of(trials, len(directions)), directions, gamma, constant_liar=constant_liar
    )
    return [trials[i].number for i in good], [trials[i].number for i in bad]
