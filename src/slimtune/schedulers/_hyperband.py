"""Hyperband (Li et al. 2018): brackets of asynchronous successive halving."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from slimtune._trial import FrozenTrial
from slimtune.schedulers._asha import rung_resources, successive_halving
from slimtune.schedulers._base import Decision
from slimtune.schedulers._checks import check_int, objective_sign

__all__ = ["Hyperband"]


def _interleave(weights: Sequence[int]) -> tuple[int, ...]:
    """A cycle of length ``sum(weights)`` in which index ``i`` appears ``weights[i]`` times,
    spread evenly (smooth weighted round robin)."""
    total = sum(weights)
    current = [0] * len(weights)
    out: list[int] = []
    for _ in range(total):
        for i, w in enumerate(weights):
            current[i] += w
        pick = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[pick] -= total
        out.append(pick)
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class Hyperband:
    """Hyperband over asynchronous successive halving.

    With ``s_max = floor(log_eta(max_resource / min_resource))`` there are ``s_max + 1``
    brackets; bracket ``b`` is ASHA whose first rung is ``min_resource * eta**b`` (bracket 0 stops
    most aggressively, bracket ``s_max`` runs its trials to ``max_resource``) and compares a
    trial only with the trials of its own bracket. A trial's bracket is fixed by its number:
    trial numbers cycle through the brackets in proportion to Hyperband's budget
    ``ceil((s_max + 1) eta**s / (s + 1))`` (``s = s_max - b`` halvings), interleaved, so every
    worker computes the same bracket for a trial. Pair it with ``BOHBSampler`` for BOHB.
    """

    min_resource: int = 1
    max_resource: int
    reduction_factor: int = 3
    brackets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_int("Hyperband", "min_resource", self.min_resource, low=1, example=1)
        check_int("Hyperband", "max_resource", self.max_resource, low=1, example=27)
        check_int("Hyperband", "reduction_factor", self.reduction_factor, low=2, example=3)
        if self.max_resource < self.min_resource * self.reduction_factor:
            raise ValueError(
                "Hyperband: `max_resource` must be >= min_resource * reduction_factor "
                f"({self.min_resource * self.reduction_factor}) for at least two brackets, got "
                f"{self.max_resource}. Pass e.g. "
                f"max_resource={self.min_resource * self.reduction_factor**3}."
            )
        eta = self.reduction_factor
        s_max = 0
        while self.min_resource * eta ** (s_max + 1) <= self.max_resource:
            s_max += 1
        n = s_max + 1
        weights = [math.ceil(n * eta ** (s_max - b) / (s_max - b + 1)) for b in range(n)]
        object.__setattr__(self, "brackets", _interleave(weights))

    @property
    def n_brackets(self) -> int:
        return max(self.brackets) + 1

    def bracket_of(self, number: int) -> int:
        """The bracket of trial ``number`` (0: the most aggressive)."""
        return self.brackets[number % len(self.brackets)]

    def rungs(self, bracket: int, up_to: int) -> list[int]:
        """The rung resources of ``bracket`` up to step ``up_to``."""
        return rung_resources(
            self.min_resource, self.reduction_factor, self.max_resource, start=bracket, up_to=up_to
        )

    def decide(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> Decision:
        sign = objective_sign("Hyperband", directions)
        step = trial.last_step
        if step is None:
            return Decision.CONTINUE
        bracket = self.bracket_of(trial.number)
        rungs = self.rungs(bracket, step)
        if not rungs:
            return Decision.CONTINUE
        peers = (t for t in trials if self.bracket_of(t.number) == bracket)
        return successive_halving(
            trial, peers, rungs=rungs, eta=self.reduction_factor, sign=sign, owner="Hyperband"
        )
