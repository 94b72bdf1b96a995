"""Asynchronous successive halving (ASHA; Li et al. 2020), decided from the shared history."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from slimtune._trial import FrozenTrial
from slimtune.schedulers._base import Decision
from slimtune.schedulers._checks import check_int, crossing_step, objective_sign, rung_value

__all__ = ["ASHA", "rung_resources", "successive_halving"]

logger = logging.getLogger(__name__)


def rung_resources(
    min_resource: int, eta: int, max_resource: int | None, *, start: int, up_to: int
) -> list[int]:
    """Rungs ``min_resource * eta**(k + start)`` (k = 0, 1, ...) that are ``<= up_to`` and
    below ``max_resource`` (a trial that reaches ``max_resource`` is never stopped)."""
    out: list[int] = []
    r = min_resource * eta**start
    while r <= up_to and (max_resource is None or r < max_resource):
        out.append(r)
        r *= eta
    return out


def _promotable(value: float, competing: list[float], eta: int) -> bool:
    """Whether ``value`` (minimised) is in the top ``len(competing) // eta`` of ``competing``
    (which includes it); with fewer than ``eta`` competitors only the best goes on, as in
    Optuna's ``SuccessiveHalvingPruner`` (trials cannot be paused and resumed later)."""
    k = max(len(competing) // eta, 1)
    return value <= sorted(competing)[k - 1]


def successive_halving(
    trial: FrozenTrial,
    peers: Iterable[FrozenTrial],
    *,
    rungs: Sequence[int],
    eta: int,
    sign: float,
    owner: str,
) -> Decision:
    """Decide ``trial`` at the rungs it has just reached (its last step is its first step at or
    beyond the rung): it goes on only if its rung value is in the top ``1/eta`` of every trial
    of ``peers`` (itself included) that reached the rung. Between rungs it always continues,
    so a promoted trial is never stopped before its next rung."""
    step = trial.last_step
    if step is None:
        return Decision.CONTINUE
    due = [r for r in rungs if crossing_step(trial, r) == step]
    if not due:
        return Decision.CONTINUE
    peer_list = list(peers)
    for r in due:
        own = rung_value(trial, r, sign)
        if own is None:  # pragma: no cover - due rungs are reached by construction
            continue
        competing = [own]
        for t in peer_list:
            if t.trial_id == trial.trial_id:
                continue
            v = rung_value(t, r, sign)
            if v is not None:
                competing.append(v)
        if not _promotable(own, competing, eta):
            logger.debug(
                "%s: trial %d stops at rung %d (value %.6g, %d trials at the rung)",
                owner,
                trial.number,
                r,
                sign * own,
                len(competing),
            )
            return Decision.STOP
    return Decision.CONTINUE


@dataclass(frozen=True, kw_only=True)
class ASHA:
    """Asynchronous successive halving.

    Rungs sit at ``min_resource * reduction_factor**(k + min_early_stopping_rate)`` steps, below
    ``max_resource`` (``None``: no cap). When a trial first reports a step at or beyond a rung it
    goes on only if its value there is in the top ``1 / reduction_factor`` of all trials that
    reached that rung so far (the best one while fewer than ``reduction_factor`` did), as
    Optuna's ``SuccessiveHalvingPruner`` and Ray Tune's ASHA decide. Decisions read only the
    trial history in the storage, so they are the same in any worker or process.

    The step passed to ``trial.report`` is the resource (epochs, iterations, data fraction...).
    """

    min_resource: int = 1
    max_resource: int | None = None
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0

    def __post_init__(self) -> None:
        check_int("ASHA", "min_resource", self.min_resource, low=1, example=1)
        check_int("ASHA", "reduction_factor", self.reduction_factor, low=2, example=3)
        check_int("ASHA", "min_early_stopping_rate", self.min_early_stopping_rate, low=0, example=0)
        if self.max_resource is not None:
            check_int("ASHA", "max_resource", self.max_resource, low=1, example=27)
            if self.max_resource <= self.min_resource:
                raise ValueError(
                    f"{'ASHA'}: `max_resource` must be > `min_resource` "
                    f"({self.min_resource}), got {self.max_resource}. Pass e.g. "
                    f"max_resource={self.min_resource * self.reduction_factor**3}."
                )

    def rungs(self, up_to: int) -> list[int]:
        """The rung resources up to step ``up_to``."""
        return rung_resources(
            self.min_resource,
            self.reduction_factor,
            self.max_resource,
            start=self.min_early_stopping_rate,
            up_to=up_to,
        )

    def decide(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> Decision:
        sign = objective_sign("ASHA", directions)
        step = trial.last_step
        if step is None:
            return Decision.CONTINUE
        return successive_halving(
            trial,
            trials,
            rungs=self.rungs(step),
            eta=self.reduction_factor,
            sign=sign,
            owner="ASHA",
        )
