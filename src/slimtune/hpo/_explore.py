"""PBT's decisions, as pure functions: who exploits whom (truncation selection) and how a copied
configuration is explored (perturbed by factors or resampled from the space)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimtune.space import Categorical, Distribution, Float, Int, SearchSpace

__all__ = ["PBTConfig", "explore", "select_exploits"]


def _int_at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}, got {value!r}.")


@dataclass(frozen=True, kw_only=True)
class PBTConfig:
    """Settings of :class:`PBT`.

    ``population_size`` members train ``interval`` steps per round for ``rounds`` rounds. After
    each round but the last, the bottom ``quantile`` of members copies a random member of the top
    ``quantile`` (weights and hyperparameters) and explores: each hyperparameter is resampled from
    the space with ``resample_probability``, else multiplied by one of ``perturb_factors`` (Int
    rounded, Categorical moved to a neighbouring choice). ``n_workers`` processes run members;
    ``max_restarts`` retries of a member step whose process died or raised before the member is
    re-seeded by exploit; ``step_timeout`` seconds kills a hung step (own processes only).
    ``synchronous=False``: no rounds; a member exploits as soon as its own step ends, ranked
    against the latest scores of the others (faster with uneven members, not reproducible on
    several workers).
    """

    population_size: int = 4
    interval: int = 1
    rounds: int = 4
    quantile: float = 0.25
    perturb_factors: tuple[float, ...] = (0.8, 1.2)
    resample_probability: float = 0.25
    n_workers: int = 2
    max_restarts: int = 2
    step_timeout: float | None = None
    synchronous: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        _int_at_least("population_size", self.population_size, 2)
        _int_at_least("interval", self.interval, 1)
        _int_at_least("rounds", self.rounds, 1)
        _int_at_least("n_workers", self.n_workers, 1)
        _int_at_least("max_restarts", self.max_restarts, 0)
        q = self.quantile
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q <= 0.5:
            raise ValueError(f"`quantile` must be in (0, 0.5], got {q!r}.")
        f = self.perturb_factors
        if (
            not isinstance(f, tuple)
            or not f
            or not all(
                isinstance(x, int | float)
                and not isinstance(x, bool)
                and math.isfinite(x)
                and x > 0
                for x in f
            )
        ):
            raise ValueError(
                f"`perturb_factors` must be a non-empty tuple of positive numbers, got {f!r}. "
                "Pass e.g. (0.8, 1.2)."
            )
        p = self.resample_probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ValueError(f"`resample_probability` must be in [0, 1], got {p!r}.")
        t = self.step_timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or t <= 0):
            raise ValueError(f"`step_timeout` must be None or seconds > 0, got {t!r}.")
        if not isinstance(self.synchronous, bool):
            raise TypeError(f"`synchronous` must be a bool, got {self.synchronous!r}.")
        from slimtune._rng import check_seed

        check_seed(self.seed)

    def n_exploit(self) -> int:
        """How many members are replaced each round (at least one)."""
        return max(1, math.floor(self.quantile * self.population_size))


def select_exploits(
    scores: Sequence[float | None],
    *,
    n: int,
    direction: str,
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """``(loser, winner)`` pairs: the ``n`` worst members each copy one of the ``n`` best.

    ``None`` or NaN scores (failed members) rank worst. Ties keep member order.
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"`direction` must be 'minimize' or 'maximize', got {direction!r}.")
    size = len(scores)
    n = min(n, size // 2)
    if n < 1:
        return []
    sign = 1.0 if direction == "minimize" else -1.0

    def key(i: int) -> tuple[int, float, int]:
        s = scores[i]
        if s is None or not math.isfinite(s):
            return (1, 0.0, i)
        return (0, sign * s, i)

    order = sorted(range(size), key=key)
    top = [i for i in order[:n] if key(i)[0] == 0]  # failed members are never copied
    bottom = order[size - n :]
    if not top:
        return []
    return [(loser, int(top[int(rng.integers(len(top)))])) for loser in bottom]


def _perturb(dist: Distribution, value: Any, factor: float, rng: np.random.Generator) -> Any:
    if isinstance(dist, Categorical):
        i = dist.index(value)
        j = i + (1 if factor >= 1 else -1)
        j = min(max(j, 0), len(dist.choices) - 1)
        return dist.choices[j]
    if isinstance(dist, Int):
        sign = 1 if factor >= 1 else -1
        target = value * factor if value > 0 else value + sign
        new = dist.low + round((target - dist.low) / dist.step) * dist.step
        if new == value:  # too small a change to reach the next lattice point: take one step
            new = value + sign * dist.step
        return int(min(max(new, dist.low), dist.high))
    if isinstance(dist, Float):
        if dist.log or dist.low > 0:
            new = value * factor
        else:  # a range reaching zero or below: move by the factor's share of the range
            new = value + (factor - 1.0) * (dist.high - dist.low)
        new = min(max(new, dist.low), dist.high)
        return dist.check("value", new) if dist.contains(new) else dist.from_unit(dist.to_unit(new))
    return dist.sample(rng)


def explore(
    params: Mapping[str, Any],
    space: SearchSpace,
    *,
    config: PBTConfig,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """A neighbour of ``params``: each active parameter resampled or perturbed (see PBTConfig).

    Parameters that become active are sampled; those that become inactive are dropped.
    """
    out: dict[str, Any] = {}
    for name in space:
        if not space.is_active(name, out):
            continue
        dist = space[name]
        if name not in params or rng.random() < config.resample_probability:
            out[name] = dist.sample(rng)
        else:
            factor = float(config.perturb_factors[int(rng.integers(len(config.perturb_factors)))])
            out[name] = _perturb(dist, params[name], factor, rng)
        if isinstance(out[name], np.generic):
            out[name] = out[name].item()
    return space.check(out)
