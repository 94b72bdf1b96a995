"""The sampler protocol: what to try next, from data only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from slimtune._trial import FrozenTrial
from slimtune.space import SearchSpace

__all__ = ["Sampler"]


@runtime_checkable
class Sampler(Protocol):
    """Proposes a configuration of ``space`` given every trial of the study so far.

    ``trials`` holds all trials in number order, RUNNING ones included (read-only). ``rng`` is the
    generator of the trial being created; a sampler that draws only from it is reproducible.
    ``directions`` says, per objective, whether lower or higher values are better
    (``"minimize"`` / ``"maximize"``). The returned mapping holds exactly the active parameters of
    ``space``.

    Two optional methods:

    - ``claim(params) -> str | None``: trials whose claims are equal are never live at the same
      time, across every process sharing the storage (journal order decides);
    - ``sample_independent(name, distribution, trials, rng, *, directions)``: a value for one
      define-by-run parameter outside the space the sampler was last asked about (when absent,
      such a parameter is drawn uniformly from its distribution).
    """

    def sample(
        self,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        *,
        directions: Sequence[str],
    ) -> Mapping[str, Any]: ...
