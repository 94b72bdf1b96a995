"""Architecture search over a trained supernet: a study over ``search_space()`` with budgets.

This is where ``slimtune.nas`` (plain PyTorch) meets the search engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from slimtune.nas import LatencyTable, Supernet, count_macs, count_params, recalibrate_bn_
from slimtune.samplers import EvolutionSampler
from slimtune.space import Conditional, Distribution
from slimtune.study import FrozenTrial, Study, Trial, TrialState, create_study

__all__ = ["Budget", "Rescored", "rescore_front", "search_architectures"]

_COSTS = ("params", "macs", "latency_ms")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Upper limits on a sub-network's cost; a trial over any of them is infeasible."""

    max_params: int | None = None
    max_macs: int | None = None
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_params", "max_macs", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"`{name}` must be > 0 or None, got {value!r}.")

    def limits(self) -> dict[str, float]:
        pairs = (
            ("params", self.max_params),
            ("macs", self.max_macs),
            ("latency_ms", self.max_latency_ms),
        )
        return {k: float(v) for k, v in pairs if v is not None}


def _score_active(
    supernet: Supernet,
    evaluate: Callable[..., float],
    hp: dict[str, Any] | None,
    batches: list[Any] | None,
) -> float:
    """``evaluate`` the active sub-network in eval mode, BatchNorm recalibrated on ``batches``
    first when given; ``hp`` (training hyperparameters searched alongside) is passed on when
    not ``None``."""
    if batches is not None:
        recalibrate_bn_(supernet, batches)
    supernet.eval()
    return float(evaluate(supernet) if hp is None else evaluate(supernet, hp))


def search_architectures(
    supernet: Supernet,
    evaluate: Callable[..., float],
    *,
    n_trials: int,
    example_inputs: torch.Tensor,
    objectives: Sequence[str] = ("score",),
    score_direction: str = "maximize",
    budget: Budget | None = None,
    latency_table: LatencyTable | None = None,
    recalibration: Iterable[Any] | None = None,
    hparams: Mapping[str, Distribution | Conditional] | None = None,
    study: Study | None = None,
    sampler: Any = None,
    seed: int | None = 0,
) -> Study:
    """Search ``supernet``'s sub-networks with inherited weights; return the study.

    Each trial activates an architecture, recalibrates BatchNorm on ``recalibration`` batches
    when given, and scores it with ``evaluate(supernet)`` (``evaluate(supernet, hp)`` when
    ``hparams`` adds training hyperparameters to the space: architecture and hyperparameters are
    then searched as one space). ``objectives`` lists ``"score"`` and any of ``"params"``,
    ``"macs"``, ``"latency_ms"`` (minimised): two or more give a Pareto front in
    ``study.best_trials``. A ``budget`` becomes trial constraints (feasible when under every
    limit), normalised by the limit. Every trial stores its costs as user attributes.
    ``latency_ms`` needs a ``latency_table``. ``sampler`` defaults to ``EvolutionSampler()``
    for a new study; ``study`` (with the same space) continues an existing one.
    """
    if not isinstance(supernet, Supernet):
        raise TypeError(
            f"`supernet` must be a slimtune.nas.Supernet, got {type(supernet).__name__}."
        )
    objectives = tuple(objectives)
    if not objectives or objectives[0] != "score" or any(o not in _COSTS for o in objectives[1:]):
        raise ValueError(
            f"`objectives` must start with 'score', followed by any of {_COSTS}, got "
            f"{objectives!r}."
        )
    limits = (budget or Budget()).limits()
    if ("latency_ms" in objectives or "latency_ms" in limits) and latency_table is None:
        raise ValueError(
            "latency as an objective or a budget needs `latency_table=LatencyTable(...)`."
        )
    arch_space = dict(supernet.search_space().items())
    hp_space = dict(hparams or {})
    clash = sorted(set(arch_space) & set(hp_space))
    if clash:
        raise ValueError(f"`hparams` reuses architecture parameter names {clash!r}; rename them.")
    space: dict[str, Distribution | Conditional] = {}
    conditions = supernet.search_space().conditions
    for name, dist in arch_space.items():
        if name in conditions:
            parent, values = conditions[name]
            space[name] = Conditional(dist, parent=parent, values=list(values))
        else:
            space[name] = dist
    space.update(hp_space)
    directions = [score_direction] + ["minimize"] * (len(objectives) - 1)
    if study is None:
        if sampler is None:
            sampler = EvolutionSampler()  # regularised evolution: the usual NAS searcher
        study = create_study(
            storage="memory", directions=directions, sampler=sampler, seed=seed, space=space
        )
    batches = list(recalibration) if recalibration is not None else None

    def objective(trial: Trial) -> float | tuple[float, ...]:
        params = dict(trial.params)
        arch = {k: v for k, v in params.items() if k in arch_space}
        hp = {k: v for k, v in params.items() if k in hp_space}
        supernet.set_arch(arch)
        sub = supernet.extract(arch)
        costs: dict[str, float] = {
            "params": float(count_params(sub)),
            "macs": float(count_macs(sub, example_inputs)),
        }
        if latency_table is not None:
            costs["latency_ms"] = latency_table.latency_ms(sub)
        for key, value in costs.items():
            trial.set_user_attr(key, value)
        if limits:
            trial.set_constraints([costs[k] / lim - 1.0 for k, lim in limits.items()])
        score = _score_active(supernet, evaluate, hp if hp_space else None, batches)
        if len(objectives) == 1:
            return score
        return (score, *(costs[o] for o in objectives[1:]))

    study.optimize(objective, n_trials=n_trials)
    return study


@dataclass(frozen=True)
class Rescored:
    """One trial of an architecture search scored again on data the search did not use."""

    number: int  # the trial's number in the study
    arch: dict[str, Any]  # canonical: choices a depth leaves out are dropped
    hparams: dict[str, Any]  # training hyperparameters searched alongside (``hparams=``)
    values: tuple[float, ...]  # what the search recorded: the score first, then the costs
    score: float  # ``evaluate`` on the held-out data

    @property
    def optimism(self) -> float:
        """The search's score minus the held-out one (for a score that is maximised, how much
        the search over-rated this point)."""
        return self.values[0] - self.score


def rescore_front(
    supernet: Supernet,
    study: Study,
    evaluate: Callable[..., float],
    *,
    trials: Sequence[FrozenTrial] | None = None,
    recalibration: Iterable[Any] | None = None,
) -> list[Rescored]:
    """Score the trials of a :func:`search_architectures` study again with ``evaluate``.

    A front point is the best of many noisy scores, so its score on the data that selected it is
    biased upward (in ``bench/supernet.py`` front points on noisy digits score 2 points lower on
    average on validation images the search never scored). Pass an ``evaluate(supernet)``
    (``evaluate(supernet, hp)`` when the search had ``hparams=``) that reads held-out data.
    ``trials`` defaults to ``study.best_trials`` (the Pareto front, or the best trial for one
    objective); each architecture is activated, BatchNorm is recalibrated on ``recalibration``
    batches when given (pass the batches the search used), and the results come back in the
    order of ``trials``.
    """
    if not isinstance(supernet, Supernet):
        raise TypeError(
            f"`supernet` must be a slimtune.nas.Supernet, got {type(supernet).__name__}."
        )
    chosen = list(study.best_trials if trials is None else trials)
    if not chosen:
        raise ValueError(
            f"study {study.name!r} has no feasible COMPLETE trial to rescore; run the search "
            "first (search_architectures)."
        )
    arch_names = set(dict(supernet.search_space().items()))
    batches = list(recalibration) if recalibration is not None else None
    out = []
    for trial in chosen:
        if trial.state is not TrialState.COMPLETE or trial.values is None:
            raise ValueError(
                f"`trials` must be COMPLETE trials, got trial {trial.number} in state "
                f"{trial.state.name}; pass study.best_trials or filter by TrialState.COMPLETE."
            )
        arch = {k: v for k, v in trial.params.items() if k in arch_names}
        hp = {k: v for k, v in trial.params.items() if k not in arch_names}
        arch = supernet.canonical(arch)
        supernet.set_arch(arch)
        score = _score_active(supernet, evaluate, hp or None, batches)
        if not math.isfinite(score):
            raise ValueError(
                f"`evaluate` returned {score!r} for trial {trial.number} ({arch}); it must "
                "return a finite score."
            )
        out.append(Rescored(trial.number, arch, hp, tuple(trial.values), score))
    return out
