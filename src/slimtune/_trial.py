"""Trial records shared by storage, samplers, schedulers and the study (the lowest layer)."""

from __future__ import annotations

import copy
import enum
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slimtune.space import Distribution

__all__ = ["FrozenTrial", "TrialState"]


class TrialState(enum.Enum):
    """Where a trial is in its life."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING


@dataclass(eq=False)
class FrozenTrial:
    """A snapshot of one trial as the storage replayed it.

    Samplers and schedulers receive these and must treat them as read-only; ``Study.trials``
    hands out copies.
    """

    number: int
    trial_id: str
    state: TrialState
    params: dict[str, Any]
    distributions: dict[str, Distribution]
    seed: int
    datetime_start: datetime
    values: list[float] | None = None
    intermediate_values: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    constraints: list[float] | None = None
    datetime_complete: datetime | None = None
    error: dict[str, str] | None = None

    @property
    def value(self) -> float | None:
        """The single objective value; an error for multi-objective trials."""
        if self.values is None:
            return None
        if len(self.values) != 1:
            raise ValueError(
                f"trial {self.number} has {len(self.values)} objective values; use `.values`."
            )
        return self.values[0]

    @property
    def feasible(self) -> bool:
        """True when no constraint was set or every constraint value is <= 0."""
        if self.constraints is None:
            return True
        return all(c <= 0 for c in self.constraints)

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate_values) if self.intermediate_values else None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while running."""
        if self.datetime_complete is None:
            return None
        return (self.datetime_complete - self.datetime_start).total_seconds()

    def copy(self) -> FrozenTrial:
        out = copy.copy(self)
        out.params = dict(self.params)
        out.distributions = dict(self.distributions)
        out.intermediate_values = dict(self.intermediate_values)
        out.user_attrs = copy.deepcopy(self.user_attrs)
        out.system_attrs = copy.deepcopy(self.system_attrs)
        out.values = None if self.values is None else list(self.values)
        out.constraints = None if self.constraints is None else list(self.constraints)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (used by exports and the CLI)."""
        return {
            "number": self.number,
            "state": self.state.value,
            "values": self.values,
            "params": dict(self.params),
            "user_attrs": dict(self.user_attrs),
            "constraints": self.constraints,
            "feasible": self.feasible,
            "seed": self.seed,
            "intermediate_values": {str(k): v for k, v in self.intermediate_values.items()},
            "datetime_start": self.datetime_start.isoformat(),
            "datetime_complete": (
                None if self.datetime_complete is None else self.datetime_complete.isoformat()
            ),
            "duration": self.duration,
            "error": self.error,
        }

    def __repr__(self) -> str:
        vals = self.values
        shown = None if vals is None else [v if math.isfinite(v) else str(v) for v in vals]
        return (
            f"FrozenTrial(number={self.number}, state={self.state.value}, values={shown}, "
            f"params={self.params})"
        )
