"""Architecture search over a trained supernet: a study over ``search_space()`` with budgets.

This is where ``slimtune.nas`` (plain PyTorch) meets the search engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from slimtune.nas import LatencyTable, Supernet, count_macs, count_params, recalibrate_bn_
from slimtune.samplers import EvolutionSampler
from slimtune.space import Conditional, Distribution
from slimtune.study import Study, Trial, create_study

__all__ = ["Budget", "search_architectures"]

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
        if batches is not None:
            recalibrate_bn_(supernet, batches)
        supernet.eval()
        score = float(evaluate(supernet, hp) if hp_space else evaluate(supernet))
        if len(objectives) == 1:
            return score
        return (score, *(costs[o] for o in objectives[1:]))

    study.optimize(objective, n_trials=n_trials)
    return study
