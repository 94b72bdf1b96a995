"""Uniform random search (log-uniform for log distributions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from slimtune._trial import FrozenTrial
from slimtune.space import SearchSpace

__all__ = ["RandomSampler"]


class RandomSampler:
    """Each parameter drawn independently and uniformly from its distribution."""

    def sample(
        self,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> dict[str, Any]:
        return space.sample(rng)

    def __repr__(self) -> str:
        return "RandomSampler()"
