"""The unit-cube view of a search space that the GP works on.

Every parameter is one coordinate in ``[0, 1]`` (``SearchSpace.encode``). Finite parameters live
on a lattice of level centres; categorical coordinates are compared by the Hamming distance.
Inactive conditional coordinates are filled with ``FILL`` so that equal configurations have equal
vectors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from slimtune.space import Categorical, Float, Int, SearchSpace

__all__ = ["FILL", "Dim", "Encoding", "row_key"]

FILL = 0.5
_RELAX_LEVELS = 32  # ordinal dimensions with at least this many levels are also relaxed
_MATCH_TOL = 1e-9

Kind = Literal["cont", "ord", "cat", "fixed"]


def row_key(u: np.ndarray) -> bytes:
    """A hashable key of a canonical unit vector (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
    return (np.round(np.asarray(u, dtype=float), 9) + 0.0).tobytes()


@dataclass(frozen=True)
class Dim:
    """One coordinate: its kind, number of levels and, for log ints, the value bounds."""

    kind: Kind
    n: int = 0
    log_int: bool = False
    low: int = 0
    high: int = 0

    @property
    def relaxed(self) -> bool:
        """Optimised continuously (then snapped) as well as by lattice moves."""
        return self.kind == "cont" or (self.kind == "ord" and self.n >= _RELAX_LEVELS)

    def _log_bounds(self) -> tuple[float, float]:
        return math.log(self.low - 0.5), math.log(self.high + 0.5)

    def snap(self, u: np.ndarray) -> np.ndarray:
        u = np.clip(u, 0.0, 1.0)
        if self.kind == "cont":
            return u
        if self.kind == "fixed":
            return np.full_like(u, FILL)
        if self.log_int:
            lo, hi = self._log_bounds()
            v = np.clip(np.round(np.exp(lo + u * (hi - lo))), self.low, self.high)
            out: np.ndarray = (np.log(v) - lo) / (hi - lo)
            return out
        k = np.minimum(np.floor(u * self.n), self.n - 1)
        snapped: np.ndarray = (k + 0.5) / self.n
        return snapped

    def levels(self) -> np.ndarray:
        """Unit values of every member (finite kinds only)."""
        if self.kind == "fixed":
            return np.array([FILL])
        if self.log_int:
            lo, hi = self._log_bounds()
            values = np.arange(self.low, self.high + 1, dtype=float)
            out: np.ndarray = (np.log(values) - lo) / (hi - lo)
            return out
        return (np.arange(self.n) + 0.5) / self.n

    def neighbours(self, u: float, rng: np.random.Generator) -> np.ndarray:
        """Lattice moves from ``u``: every other category, or the ordinal values one and two
        steps away (plus one random level for long ordinal ranges)."""
        if self.kind == "cat":
            k = min(int(u * self.n), self.n - 1)
            return np.delete((np.arange(self.n) + 0.5) / self.n, k)
        if self.kind != "ord":
            return np.empty(0)
        if self.log_int:
            lo, hi = self._log_bounds()
            v = min(max(round(math.exp(lo + u * (hi - lo))), self.low), self.high)
            vals = [v + s for s in (-2, -1, 1, 2) if self.low <= v + s <= self.high]
            vals.append(int(rng.integers(self.low, self.high + 1)))
            moves: np.ndarray = (np.log(np.array(vals, dtype=float)) - lo) / (hi - lo)
            return moves
        k = min(int(u * self.n), self.n - 1)
        ks = [k + s for s in (-2, -1, 1, 2) if 0 <= k + s < self.n]
        if self.n > 5:
            ks.append(int(rng.integers(self.n)))
        return (np.array(ks, dtype=float) + 0.5) / self.n


def _dim_of(dist: Any) -> Dim:
    if isinstance(dist, Categorical):
        return Dim("cat", n=len(dist.choices)) if len(dist.choices) > 1 else Dim("fixed")
    if isinstance(dist, Int):
        if dist.low == dist.high:
            return Dim("fixed")
        if dist.log:
            return Dim("ord", n=dist.n_values, log_int=True, low=dist.low, high=dist.high)
        return Dim("ord", n=dist.n_values)
    if isinstance(dist, Float):
        if dist.low == dist.high:
            return Dim("fixed")
        if dist.step is not None:
            return Dim("ord", n=dist.n_steps or 1)
        return Dim("cont")
    return Dim("cont")  # an unknown Distribution subclass: treat its unit encoding as continuous


class Encoding:
    """Snapping, conditions, neighbourhoods and enumeration of one search space."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.names = list(space)
        self.dims = [_dim_of(space[n]) for n in self.names]
        self.d = len(self.names)
        self.is_cat = np.array([dm.kind == "cat" for dm in self.dims], dtype=bool)
        self.relaxed = np.array([dm.relaxed for dm in self.dims], dtype=bool)
        self.discrete = np.array([dm.kind in ("ord", "cat") for dm in self.dims], dtype=bool)
        self.finite = all(dm.kind != "cont" for dm in self.dims)
        index = {n: i for i, n in enumerate(self.names)}
        self.conditions: list[tuple[int, int, np.ndarray]] = []
        for child, (parent, values) in space.conditions.items():
            dist = space[parent]
            units = np.array([dist.to_unit(v) for v in values], dtype=float)
            self.conditions.append((index[child], index[parent], units))
        self.conditions.sort(key=lambda c: c[0])  # space order is parents-first

    @property
    def size(self) -> float:
        """Number of lattice points (an upper bound with conditions); ``inf`` if continuous."""
        if not self.finite:
            return math.inf
        return float(np.prod([max(dm.n, 1) for dm in self.dims]))

    def active(self, U: np.ndarray) -> np.ndarray:
        """Which coordinates of the snapped rows ``U`` (m, d) are active."""
        act = np.ones(U.shape, dtype=bool)
        for child, parent, units in self.conditions:
            hit = np.any(np.abs(U[:, parent, None] - units[None, :]) <= _MATCH_TOL, axis=1)
            act[:, child] = act[:, parent] & hit
        return act

    def canonical(self, U: np.ndarray) -> np.ndarray:
        """Snap rows to the lattice and fill inactive coordinates with ``FILL``."""
        U = np.atleast_2d(np.asarray(U, dtype=float))
        out = np.empty_like(U)
        for j, dm in enumerate(self.dims):
            out[:, j] = dm.snap(U[:, j])
        if self.conditions:
            out[~self.active(out)] = FILL
        return out

    def encode(self, params: Mapping[str, Any]) -> np.ndarray | None:
        """The canonical vector of a trial's parameters, or None when an active parameter is
        missing or outside its distribution (for example a different define-by-run range)."""
        space = self.space
        for name in self.names:
            if name in params:
                if space.is_active(name, params) and not space[name].contains(params[name]):
                    return None
            elif space.is_active(name, params):
                return None
        u = space.encode(params)
        u[np.isnan(u)] = FILL
        row: np.ndarray = self.canonical(u)[0]
        return row

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        return self.space.decode(np.asarray(u, dtype=float))

    def random(self, rng: np.random.Generator, m: int) -> np.ndarray:
        return self.canonical(rng.random((m, self.d)))

    def enumerate(self, limit: int) -> np.ndarray | None:
        """Every distinct configuration (canonical rows), if the space is finite and small."""
        if not self.finite or self.size > limit:
            return None
        grids = [dm.levels() for dm in self.dims]
        rows = np.array(list(itertools.product(*grids)), dtype=float).reshape(-1, self.d)
        return np.unique(self.canonical(rows), axis=0)

    def lattice_moves(
        self, u: np.ndarray, rng: np.random.Generator, dims: Sequence[int] | None = None
    ) -> np.ndarray:
        """Canonical rows one lattice move away from ``u`` (active discrete coordinates)."""
        act = self.active(u[None, :])[0]
        rows = []
        for j in range(self.d) if dims is None else dims:
            if not (self.discrete[j] and act[j]):
                continue
            for v in self.dims[j].neighbours(float(u[j]), rng):
                row = u.copy()
                row[j] = v
                rows.append(row)
        if not rows:
            return np.empty((0, self.d))
        return self.canonical(np.array(rows))
