"""BOHB's sampler (Falkner et al. 2018): TPE fitted on the highest budget with enough data.

Pair it with the ``Hyperband`` scheduler (``slimtune.schedulers``) for BOHB; it works with any
scheduler, or none.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from slimtune._trial import FrozenTrial, TrialState
from slimtune.samplers._tpe import TPESampler
from slimtune.space import SearchSpace

__all__ = ["BOHBSampler"]

_FINAL = math.inf  # the budget level of COMPLETE trials that reported no intermediate value


def _levels(trials: Sequence[FrozenTrial]) -> dict[float, list[tuple[FrozenTrial, float]]]:
    """Observations per budget: ``(trial, value)`` for every trial that reported the step (any
    state but FAILED); COMPLETE trials without reports count at the final level."""
    out: dict[float, list[tuple[FrozenTrial, float]]] = {}
    for t in trials:
        if t.state is TrialState.FAILED:
            continue
        if t.intermediate_values:
            for step, v in t.intermediate_values.items():
                if not math.isnan(v):
                    out.setdefault(float(step), []).append((t, v))
        elif (
            t.state is TrialState.COMPLETE
            and t.values is not None
            and len(t.values) == 1
            and not math.isnan(t.values[0])
        ):
            out.setdefault(_FINAL, []).append((t, t.values[0]))
    return out


def _as_complete(t: FrozenTrial, value: float) -> FrozenTrial:
    """A finished stand-in of ``t`` whose single value is its value at the chosen budget."""
    return FrozenTrial(
        number=t.number,
        trial_id=t.trial_id,
        state=TrialState.COMPLETE,
        params=t.params,
        distributions=t.distributions,
        seed=t.seed,
        datetime_start=t.datetime_start,
        values=[value],
        constraints=t.constraints,
        datetime_complete=t.datetime_complete or t.datetime_start,
    )


class BOHBSampler:
    """The model-based half of BOHB.

    Budget levels are the steps trials reported with ``trial.report`` (COMPLETE trials without
    reports form a final level). With probability ``random_fraction`` a configuration is drawn
    uniformly; otherwise a multivariate TPE (the ``TPESampler`` estimators) is fitted on the
    *highest* budget level with at least ``2 * min_points_in_model`` observations, each trial
    scored by the value it reported at that budget, and its proposal is returned. As in BOHB the
    good set holds ``max(min_points_in_model, ceil(top_fraction * n))`` of the ``n``
    observations, so both densities rest on at least ``min_points_in_model`` points. Until some
    level has enough observations the draws are uniform. Several objectives: TPE on the final
    values.

    ``min_points_in_model`` defaults to the number of parameters + 1 (BOHB's default).
    Randomness comes only from the trial's generator.
    """

    def __init__(
        self,
        *,
        random_fraction: float = 1.0 / 3.0,
        min_points_in_model: int | None = None,
        top_fraction: float = 0.15,
        n_ei_candidates: int = 24,
        prior_weight: float = 1.0,
    ) -> None:
        if (
            isinstance(random_fraction, bool)
            or not isinstance(random_fraction, int | float | np.integer | np.floating)
            or not 0.0 <= float(random_fraction) <= 1.0
        ):
            raise ValueError(
                f"BOHBSampler: `random_fraction` must be a number in [0, 1], got "
                f"{random_fraction!r}. Pass e.g. random_fraction=1/3."
            )
        self.random_fraction = float(random_fraction)
        if min_points_in_model is not None and (
            isinstance(min_points_in_model, bool)
            or not isinstance(min_points_in_model, int | np.integer)
            or min_points_in_model < 2
        ):
            raise ValueError(
                f"BOHBSampler: `min_points_in_model` must be an int >= 2 or None, got "
                f"{min_points_in_model!r}. Pass e.g. min_points_in_model=8 (None: dims + 2)."
            )
        self.min_points_in_model = None if min_points_in_model is None else int(min_points_in_model)
        if (
            isinstance(top_fraction, bool)
            or not isinstance(top_fraction, int | float | np.integer | np.floating)
            or not 0.0 < float(top_fraction) < 1.0
        ):
            raise ValueError(
                f"BOHBSampler: `top_fraction` must be a number in (0, 1), got {top_fraction!r}. "
                "Pass e.g. top_fraction=0.15."
            )
        self.top_fraction = float(top_fraction)
        # validates n_ei_candidates and prior_weight with TPESampler's own messages
        TPESampler(n_ei_candidates=n_ei_candidates, prior_weight=prior_weight)
        self.n_ei_candidates = int(n_ei_candidates)
        self.prior_weight = float(prior_weight)
        self._lock = threading.Lock()
        self.last_budget: float | None = None  # the level the last model was fitted on

    def __repr__(self) -> str:
        return (
            f"BOHBSampler(random_fraction={self.random_fraction:.3g}, "
            f"min_points_in_model={self.min_points_in_model}, "
            f"n_ei_candidates={self.n_ei_candidates})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _tpe(self, min_points: int) -> TPESampler:
        # a fresh TPE per call: its incremental cache assumes a history that only grows
        top = self.top_fraction
        return TPESampler(
            n_startup_trials=0,
            n_ei_candidates=self.n_ei_candidates,
            gamma=lambda n: min(max(min_points, math.ceil(top * n)), n - 1),
            prior_weight=self.prior_weight,
            constant_liar=False,
        )

    def sample(
        self,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        min_points = self.min_points_in_model or len(space) + 1
        if rng.random() < self.random_fraction:
            return space.sample(rng)
        if len(directions) > 1:
            finished = [t for t in trials if t.state is TrialState.COMPLETE]
            if len(finished) < 2 * min_points:
                return space.sample(rng)
            return self._tpe(min_points).sample(space, trials, rng, directions=directions)
        levels = _levels(trials)
        eligible = [b for b, obs in levels.items() if len(obs) >= 2 * min_points]
        if not eligible:
            return space.sample(rng)
        budget = max(eligible)
        observed = [_as_complete(t, v) for t, v in levels[budget]]
        with self._lock:
            self.last_budget = budget
        return self._tpe(min_points).sample(space, observed, rng, directions=directions)
