"""A declarative search space: named distributions, some active only under a parent's values."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimtune.exceptions import InvalidSpaceError
from slimtune.space._distributions import (
    Categorical,
    Distribution,
    JSONScalar,
    distribution_from_json,
)

__all__ = ["Conditional", "SearchSpace"]


@dataclass(frozen=True, init=False)
class Conditional:
    """A parameter that exists only when ``parent`` takes one of ``values``.

    >>> space = SearchSpace({
    ...     "optimizer": Categorical(["adam", "sgd"]),
    ...     "momentum": Conditional(Float(0.0, 0.99), parent="optimizer", values=["sgd"]),
    ... })
    """

    distribution: Distribution
    parent: str
    values: tuple[JSONScalar, ...]

    def __init__(
        self, distribution: Distribution, *, parent: str, values: Sequence[JSONScalar]
    ) -> None:
        if not isinstance(distribution, Distribution):
            raise InvalidSpaceError(
                f"Conditional: `distribution` must be a Float, Int or Categorical, got "
                f"{distribution!r}."
            )
        if not isinstance(parent, str) or not parent:
            raise InvalidSpaceError(
                f"Conditional: `parent` must be a parameter name, got {parent!r}."
            )
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise InvalidSpaceError(
                f"Conditional: `values` must be a non-empty list of the parent's values, got "
                f"{values!r}. Pass e.g. values=['sgd']."
            )
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "values", tuple(values))


class SearchSpace(Mapping[str, Distribution]):
    """An ordered mapping of parameter names to distributions, with conditions.

    Iteration yields names parents-first. A conditional parameter is *active* when its parent is
    active and takes one of the listed values; inactive parameters are absent from a configuration.
    """

    def __init__(self, params: Mapping[str, Distribution | Conditional]) -> None:
        if isinstance(params, SearchSpace):
            self._dists: dict[str, Distribution] = dict(params._dists)
            self._conditions: dict[str, tuple[str, tuple[Any, ...]]] = dict(params._conditions)
            self._order: list[str] = list(params._order)
            return
        if not isinstance(params, Mapping):
            raise InvalidSpaceError(
                f"search space must be a mapping of names to distributions, got {params!r}. "
                "Pass e.g. {'lr': Float(1e-4, 1e-1, log=True)}."
            )
        dists: dict[str, Distribution] = {}
        conditions: dict[str, tuple[str, tuple[Any, ...]]] = {}
        for name, spec in params.items():
            if not isinstance(name, str) or not name:
                raise InvalidSpaceError(f"parameter names must be non-empty strings, got {name!r}.")
            if isinstance(spec, Conditional):
                dists[name] = spec.distribution
                conditions[name] = (spec.parent, spec.values)
            elif isinstance(spec, Distribution):
                dists[name] = spec
            else:
                raise InvalidSpaceError(
                    f"parameter {name!r}: expected a Float, Int, Categorical or Conditional, got "
                    f"{spec!r}. Wrap a list of choices in Categorical([...])."
                )
        for name, (parent, values) in conditions.items():
            if parent not in dists:
                raise InvalidSpaceError(
                    f"parameter {name!r}: `parent` {parent!r} is not in the space. "
                    f"Declare {parent!r} too."
                )
            if parent == name:
                raise InvalidSpaceError(f"parameter {name!r} cannot be its own parent.")
            for v in values:
                if not dists[parent].contains(v):
                    raise InvalidSpaceError(
                        f"parameter {name!r}: condition value {v!r} is not in parent {parent!r}'s "
                        f"{dists[parent]!r}. Use values the parent can take."
                    )
        self._dists = dists
        self._conditions = conditions
        self._order = self._topological(dists, conditions)

    @staticmethod
    def _topological(
        dists: Mapping[str, Distribution], conditions: Mapping[str, tuple[str, tuple[Any, ...]]]
    ) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join((*path, name))
                raise InvalidSpaceError(f"conditions form a cycle: {cycle}. Remove one condition.")
            state[name] = 1
            if name in conditions:
                visit(conditions[name][0], (*path, name))
            state[name] = 2
            order.append(name)

        for name in dists:
            visit(name, ())
        return order

    # Mapping protocol -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Distribution:
        return self._dists[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._dists)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {self._dists[n]!r}" for n in self._order)
        return f"SearchSpace({{{inner}}})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self._dists == other._dists and self._conditions == other._conditions

    __hash__ = None  # type: ignore[assignment]

    # Conditions -------------------------------------------------------------------------------
    @property
    def conditions(self) -> dict[str, tuple[str, tuple[Any, ...]]]:
        """``{child: (parent, values)}`` for every conditional parameter."""
        return dict(self._conditions)

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the (partial) configuration ``params``."""
        cond = self._conditions.get(name)
        if cond is None:
            return True
        parent, values = cond
        if parent not in params or not self.is_active(parent, params):
            return False
        parent_dist = self._dists[parent]
        return any(_member_equal(parent_dist, params[parent], v) for v in values)

    def active_names(self, params: Mapping[str, Any]) -> list[str]:
        return [n for n in self._order if self.is_active(n, params)]

    # Sampling and checking --------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A configuration drawn uniformly; inactive parameters are left out."""
        out: dict[str, Any] = {}
        for name in self._order:
            if self.is_active(name, out):
                out[name] = self._dists[name].sample(rng)
        return out

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a full configuration; return it normalised and in space order."""
        unknown = set(params) - set(self._dists)
        if unknown:
            raise InvalidSpaceError(
                f"unknown parameters {sorted(unknown)!r}; the space has {list(self._order)!r}."
            )
        out: dict[str, Any] = {}
        for name in self._order:
            active = self.is_active(name, out)
            if active and name not in params:
                raise InvalidSpaceError(
                    f"parameter {name!r} is active but missing. Give it a value."
                )
            if not active and name in params:
                parent = self._conditions[name][0]
                raise InvalidSpaceError(
                    f"parameter {name!r} is inactive for {parent}={out.get(parent)!r} but was "
                    "given. Leave it out."
                )
            if active:
                out[name] = self._dists[name].check(name, params[name])
        return out

    def contains(self, params: Mapping[str, Any]) -> bool:
        try:
            self.check(params)
        except InvalidSpaceError:
            return False
        return True

    # Unit-cube encoding -----------------------------------------------------------------------
    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """A vector in ``[0, 1]^d`` (space order); ``nan`` marks inactive parameters."""
        out = np.full(len(self._order), np.nan)
        for i, name in enumerate(self._order):
            if name in params and self.is_active(name, params):
                out[i] = self._dists[name].to_unit(params[name])
        return out

    def decode(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """The configuration of a unit-cube point; inactive coordinates are ignored."""
        arr = np.asarray(u, dtype=float)
        if arr.shape != (len(self._order),):
            raise InvalidSpaceError(f"`u` must have shape ({len(self._order)},), got {arr.shape}.")
        out: dict[str, Any] = {}
        for i, name in enumerate(self._order):
            if self.is_active(name, out):
                x = 0.5 if np.isnan(arr[i]) else float(arr[i])
                out[name] = self._dists[name].from_unit(x)
        return out

    # JSON -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._order:
            entry = self._dists[name].to_json()
            if name in self._conditions:
                parent, values = self._conditions[name]
                entry = {**entry, "parent": parent, "values": list(values)}
            out[name] = entry
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        params: dict[str, Distribution | Conditional] = {}
        for name, entry in data.items():
            entry = dict(entry)
            parent = entry.pop("parent", None)
            values = entry.pop("values", None)
            dist = distribution_from_json(entry)
            params[name] = (
                dist if parent is None else Conditional(dist, parent=parent, values=values)
            )
        return cls(params)


def _member_equal(dist: Distribution, a: Any, b: Any) -> bool:
    if isinstance(dist, Categorical):
        return dist.contains(a) and dist.contains(b) and dist.index(a) == dist.index(b)
    return bool(a == b)
