"""``Trial``: the live handle an objective receives (define-by-run suggestions, reports)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from slimtune._trial import FrozenTrial
from slimtune.exceptions import InvalidSpaceError
from slimtune.schedulers import Decision
from slimtune.space import Categorical, Distribution, Float, Int
from slimtune.space._distributions import JSONScalar

if TYPE_CHECKING:
    from slimtune.study._study import Study

__all__ = ["Trial"]


def _named(name: str, build: Any) -> Distribution:
    try:
        dist: Distribution = build()
    except InvalidSpaceError as err:
        raise InvalidSpaceError(f"parameter {name!r}: {err}") from None
    return dist


class Trial:
    """One evaluation of the objective. Obtain it from ``study.ask()`` or inside ``optimize``.

    Parameters are suggested define-by-run (``suggest_float`` and friends, with ordinary ``if``
    statements for conditional parameters) or read from ``trial.params`` when the study has a
    declarative ``space``.
    """

    def __init__(
        self,
        study: Study,
        frozen: FrozenTrial,
        *,
        pending: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        self.study = study
        self._frozen = frozen  # the storage's live record: replay updates it in place
        self._pending = pending  # sampled at ask time, written when suggested
        self._rng = rng

    # identity ---------------------------------------------------------------------------------
    @property
    def number(self) -> int:
        return self._frozen.number

    @property
    def trial_id(self) -> str:
        return self._frozen.trial_id

    @property
    def seed(self) -> int:
        """This trial's seed, spawned from the study seed; use it to seed torch or numpy."""
        return self._frozen.seed

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._frozen.params)

    @property
    def distributions(self) -> dict[str, Distribution]:
        return dict(self._frozen.distributions)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._frozen.user_attrs)

    @property
    def intermediate_values(self) -> dict[int, float]:
        return dict(self._frozen.intermediate_values)

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self._frozen.params})"

    # suggestions ------------------------------------------------------------------------------
    def suggest_float(
        self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None
    ) -> float:
        value = self.suggest(name, _named(name, lambda: Float(low, high, log=log, step=step)))
        return float(value)

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        value = self.suggest(name, _named(name, lambda: Int(low, high, step=step, log=log)))
        return int(value)

    def suggest_categorical(self, name: str, choices: Sequence[JSONScalar]) -> Any:
        return self.suggest(name, _named(name, lambda: Categorical(choices)))

    def suggest(self, name: str, distribution: Distribution) -> Any:
        """Value of ``name`` drawn from ``distribution``; the same value if asked again."""
        if not isinstance(name, str) or not name:
            raise InvalidSpaceError(f"parameter names must be non-empty strings, got {name!r}.")
        frozen = self._frozen
        if name in frozen.params:
            value = frozen.params[name]
            if not distribution.contains(value):
                raise InvalidSpaceError(
                    f"parameter {name!r} already has value {value!r} from "
                    f"{frozen.distributions.get(name)!r}, which {distribution!r} does not contain. "
                    "Use one distribution per name within a study."
                )
            return value
        if name in self._pending and distribution.contains(self._pending[name]):
            value = distribution.check(name, self._pending.pop(name))
        else:
            independent = getattr(self.study.sampler, "sample_independent", None)
            if independent is not None:
                trials = self.study._trials_for_sampling()  # a storage read: only when needed
                directions = tuple(self.study.directions)
                value = independent(name, distribution, trials, self._rng, directions=directions)
            else:  # outside the space the sampler models: a uniform draw
                value = distribution.sample(self._rng)
            value = distribution.check(name, value)
        if isinstance(value, np.generic):
            value = value.item()
        self.study._storage.set_param(self.trial_id, name, value, distribution)
        return value

    # reporting --------------------------------------------------------------------------------
    def report(self, step: int, value: float) -> None:
        """Record an intermediate value (for example validation loss after epoch ``step``)."""
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
            raise ValueError(f"`step` must be a non-negative int, got {step!r}.")
        try:
            v = float(value)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"`value` must be a real number, got {value!r} ({type(value).__name__})."
            ) from err
        if int(step) in self._frozen.intermediate_values:
            raise ValueError(
                f"trial {self.number} already reported step {int(step)}. Report each step once."
            )
        self.study._storage.report(self.trial_id, int(step), v)

    def should_stop(self) -> bool:
        """Ask the study's scheduler whether this trial should stop (raise ``TrialStopped``)."""
        trials = self.study._trials_for_sampling()
        decision = self.study.scheduler.decide(
            self._frozen, trials, directions=tuple(self.study.directions)
        )
        return decision is Decision.STOP

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-able value to the trial."""
        if not isinstance(key, str):
            raise TypeError(f"`key` must be a str, got {key!r}.")
        self.study._storage.set_trial_attr(self.trial_id, key, value)

    def set_constraints(self, values: Sequence[float]) -> None:
        """Constraint values of this trial; it is feasible when every one is <= 0."""
        try:
            vals = [float(v) for v in values]
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"`values` must be a sequence of real numbers, got {values!r}."
            ) from err
        if any(math.isnan(v) for v in vals):
            raise ValueError(f"constraint values must not be NaN, got {vals!r}.")
        self.study._storage.set_constraints(self.trial_id, vals)

    def frozen(self) -> FrozenTrial:
        """A snapshot of the trial as stored."""
        return self.study._storage.get_trial(self.trial_id).copy()
