"""Exhaustive grid search; every point evaluated once, even by processes sharing a storage."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import InvalidSpaceError, SearchSpaceExhausted
from slimtune.space import Categorical, Distribution, SearchSpace

__all__ = ["GridSampler"]


def _key(params: Mapping[str, Any], names: Sequence[str]) -> str:
    return json.dumps([params.get(n) for n in names], separators=(",", ":"))


class GridSampler:
    """Walks the Cartesian product of ``grid`` in a random order (given by each trial's rng).

    ``grid`` maps names to lists of values, or to finite distributions (``Int``, ``Categorical``,
    ``Float`` with a step). Each point is *claimed* by the trial that evaluates it; a point is
    free again only if its trial FAILED. When every point is claimed, ``sample`` raises
    :class:`~slimtune.exceptions.SearchSpaceExhausted` and ``optimize`` stops.
    """

    def __init__(self, grid: Mapping[str, Sequence[Any] | Distribution]) -> None:
        if not isinstance(grid, Mapping) or not grid:
            raise InvalidSpaceError(
                f"GridSampler: `grid` must be a non-empty mapping of names to value lists, got "
                f"{grid!r}. Pass e.g. GridSampler({{'x': [1, 2, 3]}})."
            )
        values: dict[str, list[Any]] = {}
        for name, spec in grid.items():
            if isinstance(spec, Distribution):
                values[name] = spec.grid()
            else:
                values[name] = Categorical(list(spec)).grid()
        self.grid = values
        self.names = list(values)
        self.space = SearchSpace({n: Categorical(v) for n, v in values.items()})
        self._points = [
            dict(zip(self.names, combo, strict=True))
            for combo in itertools.product(*values.values())
        ]
        self._index = {_key(p, self.names): i for i, p in enumerate(self._points)}

    def __len__(self) -> int:
        return len(self._points)

    def claim(self, params: Mapping[str, Any]) -> str | None:
        return "grid:" + _key(params, self.names)

    def free_points(self, trials: Sequence[FrozenTrial]) -> list[int]:
        taken = set()
        for t in trials:
            if t.state is TrialState.FAILED:
                continue
            i = self._index.get(_key(t.params, self.names))
            if i is not None:
                taken.add(i)
        return [i for i in range(len(self._points)) if i not in taken]

    def sample(
        self,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> dict[str, Any]:
        free = self.free_points(trials)
        if not free:
            raise SearchSpaceExhausted(
                f"GridSampler: all {len(self._points)} grid points are taken or done."
            )
        return dict(self._points[free[int(rng.integers(len(free)))]])

    def __repr__(self) -> str:
        return f"GridSampler({len(self._points)} points over {self.names})"
