"""Search spaces: distributions of one parameter and declarative, conditional spaces."""

from __future__ import annotations

from slimtune.space._distributions import (
    Categorical,
    Distribution,
    Float,
    Int,
    distribution_from_json,
)
from slimtune.space._space import Conditional, SearchSpace

__all__ = [
    "Categorical",
    "Conditional",
    "Distribution",
    "Float",
    "Int",
    "SearchSpace",
    "distribution_from_json",
]
