"""Distributions of one hyperparameter: Float, Int, Categorical.

Each distribution validates itself on construction, knows whether a value belongs to it, and maps
values to and from the unit interval ``[0, 1]`` so model-based samplers can work on a unit cube.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from slimtune.exceptions import InvalidSpaceError

__all__ = [
    "Categorical",
    "Distribution",
    "Float",
    "Int",
    "distribution_from_json",
]

JSONScalar = None | bool | int | float | str

_REL_TOL = 1e-9


def _finite_number(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidSpaceError(
            f"{owner}: `{name}` must be a real number, got {value!r} "
            f"({type(value).__name__}). Pass a float."
        )
    out = float(value)
    if not math.isfinite(out):
        raise InvalidSpaceError(
            f"{owner}: `{name}` must be finite, got {value!r}. Pass a finite bound."
        )
    return out


class Distribution(ABC):
    """Base of the distributions of one hyperparameter."""

    kind: ClassVar[str]

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a member of this distribution."""

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """Map a member to ``[0, 1]``."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """Map a point of ``[0, 1]`` back to a member (inverse of :meth:`to_unit` on members)."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict that :func:`distribution_from_json` turns back into this object."""

    @abstractmethod
    def grid(self) -> list[Any]:
        """Every member, in order; only for finite distributions."""

    @property
    @abstractmethod
    def is_finite(self) -> bool:
        """Whether the distribution has finitely many members."""

    def sample(self, rng: np.random.Generator) -> Any:
        """One member drawn uniformly (in log space for log distributions)."""
        return self.from_unit(float(rng.random()))

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` normalised to this distribution's type, or raise naming ``name``."""
        if not self.contains(value):
            raise InvalidSpaceError(
                f"parameter {name!r}: value {value!r} is not in {self!r}. "
                "Pass a value inside the distribution."
            )
        return self._normalise(value)

    def _normalise(self, value: Any) -> Any:
        return value


@dataclass(frozen=True)
class Float(Distribution):
    """A real number in ``[low, high]``; ``log=True`` samples uniformly in log space.

    ``step`` restricts values to ``low + k * step``; it must divide ``high - low``.
    """

    low: float
    high: float
    log: bool = field(default=False, kw_only=True)
    step: float | None = field(default=None, kw_only=True)
    kind: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        low = _finite_number("Float", "low", self.low)
        high = _finite_number("Float", "high", self.high)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if low > high:
            raise InvalidSpaceError(
                f"Float: `low` must be <= `high`, got low={low!r}, high={high!r}. Swap the bounds."
            )
        if not isinstance(self.log, bool):
            raise InvalidSpaceError(f"Float: `log` must be a bool, got {self.log!r}.")
        if self.log and low <= 0:
            raise InvalidSpaceError(
                f"Float: `low` must be > 0 when log=True, got low={low!r}. "
                "Use a positive lower bound or log=False."
            )
        if self.step is not None:
            step = _finite_number("Float", "step", self.step)
            object.__setattr__(self, "step", step)
            if self.log:
                raise InvalidSpaceError(
                    f"Float: `step` and log=True cannot be combined, got step={step!r}. "
                    "Drop one of them."
                )
            if step <= 0:
                raise InvalidSpaceError(f"Float: `step` must be > 0, got step={step!r}.")
            n = (high - low) / step
            if abs(n - round(n)) > 1e-6 * max(1.0, abs(n)):
                raise InvalidSpaceError(
                    f"Float: `step` must divide high - low, got low={low!r}, high={high!r}, "
                    f"step={step!r} ((high - low) / step = {n:g}). Adjust `high` to "
                    f"{low + math.floor(n) * step:g} or choose another step."
                )

    @property
    def n_steps(self) -> int | None:
        if self.step is None:
            return None
        return round((self.high - self.low) / self.step) + 1

    @property
    def is_finite(self) -> bool:
        return self.step is not None or self.low == self.high

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            return False
        v = float(value)
        if not math.isfinite(v):
            return False
        tol = _REL_TOL * max(1.0, abs(self.low), abs(self.high))
        if not self.low - tol <= v <= self.high + tol:
            return False
        if self.step is not None:
            k = (v - self.low) / self.step
            return abs(k - round(k)) <= 1e-6 * max(1.0, abs(k))
        return True

    def _normalise(self, value: Any) -> float:
        v = min(max(float(value), self.low), self.high)
        if self.step is not None:
            v = self._snap(round((v - self.low) / self.step))
        return v

    def _snap(self, k: int) -> float:
        assert self.step is not None
        return min(self.low + k * self.step, self.high)

    def to_unit(self, value: Any) -> float:
        v = float(value)
        if self.low == self.high:
            return 0.5
        if self.step is not None:
            n = self.n_steps or 1
            k = round((v - self.low) / self.step)
            return (min(max(k, 0), n - 1) + 0.5) / n
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return min(max((math.log(v) - lo) / (hi - lo), 0.0), 1.0)
        return min(max((v - self.low) / (self.high - self.low), 0.0), 1.0)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.low == self.high:
            return self.low
        if self.step is not None:
            n = self.n_steps or 1
            return self._snap(min(int(u * n), n - 1))
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            v = math.exp(lo + u * (hi - lo))
        else:
            v = self.low + u * (self.high - self.low)
        return min(max(v, self.low), self.high)

    def grid(self) -> list[Any]:
        if self.low == self.high:
            return [self.low]
        if self.step is None:
            raise InvalidSpaceError(
                f"{self!r} has no finite grid. Give it a `step` or list the grid values explicitly."
            )
        return [self._snap(k) for k in range(self.n_steps or 1)]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
        }


@dataclass(frozen=True)
class Int(Distribution):
    """An integer in ``[low, high]`` on the lattice ``low + k * step``.

    ``log=True`` samples uniformly in log space and needs ``low >= 1``.
    """

    low: int
    high: int
    log: bool = field(default=False, kw_only=True)
    step: int = field(default=1, kw_only=True)
    kind: ClassVar[str] = "int"

    def __post_init__(self) -> None:
        for name in ("low", "high", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                if isinstance(value, float) and value.is_integer():
                    object.__setattr__(self, name, int(value))
                    continue
                raise InvalidSpaceError(
                    f"Int: `{name}` must be an integer, got {value!r}. Use Float for real numbers."
                )
            object.__setattr__(self, name, int(value))
        low, high, step = self.low, self.high, self.step
        if low > high:
            raise InvalidSpaceError(
                f"Int: `low` must be <= `high`, got low={low}, high={high}. Swap the bounds."
            )
        if not isinstance(self.log, bool):
            raise InvalidSpaceError(f"Int: `log` must be a bool, got {self.log!r}.")
        if step < 1:
            raise InvalidSpaceError(f"Int: `step` must be >= 1, got step={step}.")
        if self.log and low < 1:
            raise InvalidSpaceError(
                f"Int: `low` must be >= 1 when log=True, got low={low}. "
                "Use a positive lower bound or log=False."
            )
        if self.log and step != 1:
            raise InvalidSpaceError(
                f"Int: `step` must be 1 when log=True, got step={step}. Drop one of them."
            )
        if (high - low) % step:
            raise InvalidSpaceError(
                f"Int: `step` must divide high - low, got low={low}, high={high}, step={step}. "
                f"Use high={low + (high - low) // step * step} or another step."
            )

    @property
    def n_values(self) -> int:
        return (self.high - self.low) // self.step + 1

    @property
    def is_finite(self) -> bool:
        return True

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if isinstance(value, float | np.floating):
            if not float(value).is_integer():
                return False
        elif not isinstance(value, int | np.integer):
            return False
        v = int(value)
        return self.low <= v <= self.high and (v - self.low) % self.step == 0

    def _normalise(self, value: Any) -> int:
        return int(value)

    def _log_bounds(self) -> tuple[float, float]:
        return math.log(self.low - 0.5), math.log(self.high + 0.5)

    def to_unit(self, value: Any) -> float:
        v = int(value)
        if self.log and self.low != self.high:
            lo, hi = self._log_bounds()
            return min(max((math.log(v) - lo) / (hi - lo), 0.0), 1.0)
        k = (v - self.low) // self.step
        return (min(max(k, 0), self.n_values - 1) + 0.5) / self.n_values

    def from_unit(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0)
        if self.log and self.low != self.high:
            lo, hi = self._log_bounds()
            return min(max(round(math.exp(lo + u * (hi - lo))), self.low), self.high)
        k = min(int(u * self.n_values), self.n_values - 1)
        return self.low + k * self.step

    def grid(self) -> list[Any]:
        return list(range(self.low, self.high + 1, self.step))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
        }


def _same_choice(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (
        a == b
        or (isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b))
    )


@dataclass(frozen=True)
class Categorical(Distribution):
    """One of a finite list of JSON-able choices (None, bool, int, float or str)."""

    choices: tuple[JSONScalar, ...]
    kind: ClassVar[str] = "categorical"

    def __init__(self, choices: Sequence[JSONScalar]) -> None:
        if isinstance(choices, str | bytes) or not isinstance(choices, Sequence):
            raise InvalidSpaceError(
                f"Categorical: `choices` must be a list or tuple, got {choices!r}. "
                "Pass e.g. Categorical(['adam', 'sgd'])."
            )
        items = tuple(choices)
        if not items:
            raise InvalidSpaceError(
                "Categorical: `choices` must not be empty, got []. Pass at least one choice."
            )
        for c in items:
            if c is not None and not isinstance(c, bool | int | float | str):
                raise InvalidSpaceError(
                    f"Categorical: every choice must be None, bool, int, float or str (JSON-able), "
                    f"got {c!r} ({type(c).__name__}). Pass its name and build the object inside "
                    "the objective."
                )
            if isinstance(c, float) and not math.isfinite(c):
                raise InvalidSpaceError(f"Categorical: choices must be finite, got {c!r}.")
        for i, c in enumerate(items):
            if any(_same_choice(c, d) for d in items[:i]):
                raise InvalidSpaceError(
                    f"Categorical: choices must be distinct, got {c!r} twice. Remove the duplicate."
                )
        object.__setattr__(self, "choices", items)

    @property
    def is_finite(self) -> bool:
        return True

    def index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            if _same_choice(c, value):
                return i
        # ints read back from JSON as floats and vice versa are not members; numpy scalars are
        if isinstance(value, np.generic):
            return self.index(value.item())
        raise InvalidSpaceError(f"{value!r} is not one of the choices {list(self.choices)!r}.")

    def contains(self, value: Any) -> bool:
        try:
            self.index(value)
        except InvalidSpaceError:
            return False
        return True

    def _normalise(self, value: Any) -> Any:
        return self.choices[self.index(value)]

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def from_unit(self, u: float) -> Any:
        u = min(max(float(u), 0.0), 1.0)
        return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]

    def grid(self) -> list[Any]:
        return list(self.choices)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "choices": list(self.choices)}


def distribution_from_json(data: dict[str, Any]) -> Distribution:
    """Rebuild a distribution from :meth:`Distribution.to_json` (an allow-list of kinds)."""
    kind = data.get("kind")
    if kind == "float":
        return Float(data["low"], data["high"], log=data.get("log", False), step=data.get("step"))
    if kind == "int":
        return Int(data["low"], data["high"], log=data.get("log", False), step=data.get("step", 1))
    if kind == "categorical":
        return Categorical(data["choices"])
    raise InvalidSpaceError(
        f"unknown distribution kind {kind!r}; expected 'float', 'int' or 'categorical'."
    )
