"""``AutoSampler``: the documented default choice between the GP and TPE samplers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from slimtune._trial import FrozenTrial, TrialState
from slimtune.space import Categorical, Distribution, SearchSpace

if TYPE_CHECKING:
    from slimtune.samplers._gp import GPSampler
    from slimtune.samplers._tpe import TPESampler

__all__ = ["AutoSampler"]


class AutoSampler:
    """GP for small, continuous budgets; TPE for large, categorical or conditional spaces.

    Per call, the Gaussian process (``GPSampler``, fully Bayesian by default) is used when the
    space is made of ``Float`` and ``Int`` parameters only, has no conditional parameter, at most
    ``gp_max_dims`` dimensions, and the study has fewer than ``gp_max_trials`` finished trials;
    otherwise the tree-structured Parzen estimator (``TPESampler``). The choice depends only on the
    space and the history, so processes sharing a study agree on it.
    """

    def __init__(self, *, gp_max_trials: int = 200, gp_max_dims: int = 16) -> None:
        for name, value in (("gp_max_trials", gp_max_trials), ("gp_max_dims", gp_max_dims)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"`{name}` must be a non-negative int, got {value!r}. Pass e.g. {name}=200 "
                    "(0 turns the GP off)."
                )
        self.gp_max_trials = gp_max_trials
        self.gp_max_dims = gp_max_dims
        self._lock = threading.Lock()
        self._gp: GPSampler | None = None
        self._tpe: TPESampler | None = None

    def _gp_sampler(self) -> GPSampler:
        with self._lock:
            if self._gp is None:
                from slimtune.samplers._gp import GPSampler

                self._gp = GPSampler()
            return self._gp

    def _tpe_sampler(self) -> TPESampler:
        with self._lock:
            if self._tpe is None:
                from slimtune.samplers._tpe import TPESampler

                self._tpe = TPESampler()
            return self._tpe

    def uses_gp(self, space: SearchSpace, trials: Sequence[FrozenTrial]) -> bool:
        """Whether the GP handles ``space`` at this point of the study."""
        if not 0 < len(space) <= self.gp_max_dims or space.conditions:
            return False
        if any(isinstance(d, Categorical) for d in space.values()):
            return False
        finished = sum(t.state is not TrialState.RUNNING for t in trials)
        return finished < self.gp_max_trials

    def sample(
        self,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> dict[str, Any]:
        if self.uses_gp(space, trials):
            return dict(self._gp_sampler().sample(space, trials, rng, directions=directions))
        return dict(self._tpe_sampler().sample(space, trials, rng, directions=directions))

    def sample_independent(
        self,
        name: str,
        distribution: Distribution,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> Any:
        return self._tpe_sampler().sample_independent(
            name, distribution, trials, rng, directions=directions
        )

    def __repr__(self) -> str:
        return f"AutoSampler(gp_max_trials={self.gp_max_trials}, gp_max_dims={self.gp_max_dims})"
