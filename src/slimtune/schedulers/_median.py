"""Median stopping: stop a trial whose best value so far is worse than the median of the
completed trials at the same step (Golovin et al. 2017; Optuna's ``MedianPruner``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slimtune._trial import FrozenTrial, TrialState
from slimtune.schedulers._base import Decision
from slimtune.schedulers._checks import check_int, objective_sign

__all__ = ["MedianStopping"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MedianStopping:
    """Stop a trial at step ``s`` when its best reported value so far is worse than the median
    of the values that COMPLETE trials reported at step ``s``.

    - ``warmup_steps``: no trial stops before it reports step ``warmup_steps``;
    - ``min_trials``: no decision until at least this many COMPLETE trials reported step ``s``;
    - ``interval_steps``: decide only at steps ``warmup_steps + k * interval_steps``.

    Decisions read only the trial history, so several workers sharing a storage agree.
    """

    warmup_steps: int = 0
    min_trials: int = 5
    interval_steps: int = 1

    def __post_init__(self) -> None:
        check_int("MedianStopping", "warmup_steps", self.warmup_steps, low=0, example=5)
        check_int("MedianStopping", "min_trials", self.min_trials, low=1, example=5)
        check_int("MedianStopping", "interval_steps", self.interval_steps, low=1, example=1)

    def decide(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> Decision:
        sign = objective_sign("MedianStopping", directions)
        step = trial.last_step
        if step is None or step < self.warmup_steps:
            return Decision.CONTINUE
        if (step - self.warmup_steps) % self.interval_steps:
            return Decision.CONTINUE
        peers = [
            t.intermediate_values[step]
            for t in trials
            if t.state is TrialState.COMPLETE
            and t.trial_id != trial.trial_id
            and step in t.intermediate_values
        ]
        finite = [sign * v for v in peers if not math.isnan(v)]
        if len(peers) < self.min_trials or not finite:
            return Decision.CONTINUE
        median = float(np.median(finite))
        own = [sign * v for v in trial.intermediate_values.values() if not math.isnan(v)]
        best = min(own) if own else math.inf
        if best > median:
            logger.debug(
                "trial %d stops at step %d: best %.6g worse than median %.6g of %d trials",
                trial.number,
                step,
                sign * best,
                sign * median,
                len(finite),
            )
            return Decision.STOP
        return Decision.CONTINUE
