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
from slimtune.samplers._parzen import ParzenEstimator, decode, dim_of, encode
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
    uniformly; otherwise a model is fitted on the *highest* budget level with at least
    ``2 * min_points_in_model`` observations, each trial scored by the value it reported at that
    budget. As in BOHB the good set holds ``max(min_points_in_model, ceil(top_fraction * n))``
    of the ``n`` observations (both densities rest on at least ``min_points_in_model`` points),
    Parzen estimators ``l(x)`` / ``g(x)`` (the ``TPESampler`` kernels) are fitted on the good and
    bad sets, ``n_ei_candidates`` points are drawn from ``l`` with its bandwidths widened by
    ``bandwidth_factor``, and the one with the largest ``l(x) / g(x)`` is proposed. Until some
    level has enough observations the draws are uniform. Conditional spaces use the
    ``TPESampler`` model (grouped by condition) on the same budget level; several objectives:
    TPE on the final values.

    ``min_points_in_model`` defaults to the number of parameters + 1 (BOHB's default).
    Randomness comes only from the trial's generator.
    """

    def __init__(
        self,
        *,
        random_fraction: float = 1.0 / 3.0,
        min_points_in_model: int | None = None,
        top_fraction: float = 0.15,
        bandwidth_factor: float = 3.0,
        n_ei_candidates: int = 64,
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
        if (
            isinstance(bandwidth_factor, bool)
            or not isinstance(bandwidth_factor, int | float | np.integer | np.floating)
            or not 0.0 < float(bandwidth_factor) < math.inf
        ):
            raise ValueError(
                f"BOHBSampler: `bandwidth_factor` must be a finite number > 0, got "
                f"{bandwidth_factor!r}. Pass e.g. bandwidth_factor=3."
            )
        self.bandwidth_factor = float(bandwidth_factor)
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
        with self._lock:
            self.last_budget = budget
        sign = -1.0 if directions[0] == "maximize" else 1.0
        proposal = self._propose(space, levels[budget], rng, sign, min_points)
        if proposal is not None:
            return proposal
        observed = [_as_complete(t, v) for t, v in levels[budget]]
        return self._tpe(min_points).sample(space, observed, rng, directions=directions)

    def _propose(
        self,
        space: SearchSpace,
        observed: Sequence[tuple[FrozenTrial, float]],
        rng: np.random.Generator,
        sign: float,
        min_points: int,
    ) -> dict[str, Any] | None:
        """BOHB's step on a space without conditions: Parzen estimators of the good and bad
        configurations (uniform weights), ``n_ei_candidates`` draws from the good one widened by
        ``bandwidth_factor``, the draw with the largest ``l(x) / g(x)`` returned. None for a
        conditional space or too few usable observations (the caller then uses TPE)."""
        if space.conditions:
            return None
        fixed = {n: space[n].from_unit(0.5) for n in space if dim_of(space[n]) is None}
        modelled = [(n, d) for n in space if (d := dim_of(space[n])) is not None]
        if not modelled:
            return fixed
        rows: list[list[float]] = []
        values: list[float] = []
        for t, v in observed:
            if all(n in t.params and d.dist.contains(t.params[n]) for n, d in modelled):
                rows.append([encode(d, t.params[n]) for n, d in modelled])
                values.append(sign * v)
        n = len(rows)
        if n < 2 * min_points:
            return None
        order = np.argsort(np.asarray(values), kind="stable")
        n_good = min(max(min_points, math.ceil(self.top_fraction * n)), n - min_points)
        x = np.asarray(rows)
        good, bad = x[order[:n_good]], x[order[n_good:]]
        dims = [d for _, d in modelled]
        kw: dict[str, Any] = {"prior_weight": self.prior_weight, "consider_endpoints": False}
        draw = ParzenEstimator(
            good, np.ones(len(good)), dims, bandwidth_scale=self.bandwidth_factor, **kw
        )
        below = ParzenEstimator(good, np.ones(len(good)), dims, **kw)
        above = ParzenEstimator(bad, np.ones(len(bad)), dims, **kw)
        cand = draw.sample(rng, self.n_ei_candidates)
        with np.errstate(invalid="ignore"):
            acq = below.log_pdf(cand) - above.log_pdf(cand)
        best = cand[int(np.argmax(np.where(np.isnan(acq), -np.inf, acq)))]
        out = dict(fixed)
        for (name, dim), xv in zip(modelled, best, strict=True):
            out[name] = decode(dim, float(xv))
        return {name: out[name] for name in space}
