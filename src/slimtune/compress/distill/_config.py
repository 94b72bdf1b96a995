"""The configuration of a distillation run: a frozen, keyword-only, validated dataclass."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

__all__ = ["DistillConfig"]


def _check_pairs(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    try:
        pairs = tuple(
            (str(s), str(t)) for s, t in value if isinstance(s, str) and isinstance(t, str)
        )
        if len(pairs) != len(tuple(value)):
            raise TypeError
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`{name}` must be a sequence of (student_module, teacher_module) name pairs, got "
            f"{value!r}. Use e.g. {name}=(('blocks.0', 'blocks.1'),)."
        ) from err
    return pairs


def _check_weight(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"`{name}` must be a finite float >= 0, got {value!r}.")
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0, got {value!r}. Use 0 to switch it off.")


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """What the student learns from the teacher and how the losses are mixed.

    The total loss is ``alpha * kd_loss(T) + (1 - alpha) * cross_entropy`` plus
    ``feature_weight`` times the sum of the FitNets hint losses over ``features`` and
    ``attention_weight`` times the sum of the attention-transfer losses over ``attention``.

    ``features`` / ``attention``: pairs ``(student_module, teacher_module)`` of names from
    ``named_modules()``; feature pairs whose widths differ get a learned projection
    (:class:`HintProjection`), attention pairs name modules such as
    :class:`slimtune.testing.SelfAttention`. ``cache_teacher``: in :func:`distill`, compute
    the teacher's outputs on the training set once instead of every step (valid because the
    teacher is frozen and the training inputs are fixed: do not use it with random
    augmentation).
    """

    temperature: float = 4.0
    alpha: float = 0.9
    features: tuple[tuple[str, str], ...] = ()
    feature_weight: float = 1.0
    feature_kind: Literal["mse", "cosine"] = "mse"
    attention: tuple[tuple[str, str], ...] = ()
    attention_weight: float = 1.0
    attention_kind: Literal["kl", "mse"] = "kl"
    cache_teacher: bool = False

    def __post_init__(self) -> None:
        t = self.temperature
        if (
            isinstance(t, bool)
            or not isinstance(t, int | float)
            or not (math.isfinite(t) and t > 0)
        ):
            raise ValueError(
                f"`temperature` must be a finite float > 0, got {t!r}. Use e.g. temperature=4.0."
            )
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0.0 <= a <= 1.0:
            raise ValueError(f"`alpha` must be a float in [0, 1], got {a!r}. Use e.g. alpha=0.9.")
        object.__setattr__(self, "features", _check_pairs(self.features, "features"))
        object.__setattr__(self, "attention", _check_pairs(self.attention, "attention"))
        _check_weight(self.feature_weight, "feature_weight")
        _check_weight(self.attention_weight, "attention_weight")
        if self.feature_kind not in ("mse", "cosine"):
            raise ValueError(
                f"`feature_kind` must be 'mse' or 'cosine', got {self.feature_kind!r}."
            )
        if self.attention_kind not in ("kl", "mse"):
            raise ValueError(
                f"`attention_kind` must be 'kl' or 'mse', got {self.attention_kind!r}."
            )
        if not isinstance(self.cache_teacher, bool):
            raise TypeError(f"`cache_teacher` must be a bool, got {self.cache_teacher!r}.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (pairs become lists)."""
        out = asdict(self)
        out["features"] = [list(p) for p in self.features]
        out["attention"] = [list(p) for p in self.attention]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistillConfig:
        """Rebuild a config from :meth:`to_dict`'s output; unknown keys are an error."""
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(
                f"unknown DistillConfig keys {unknown}; allowed keys are {sorted(allowed)}."
            )
        kwargs = dict(data)
        for key in ("features", "attention"):
            if key in kwargs:
                kwargs[key] = tuple(tuple(p) for p in kwargs[key])
        return cls(**kwargs)
