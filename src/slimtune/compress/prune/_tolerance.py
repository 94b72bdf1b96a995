"""Greedy pruning to a tolerance: remove the least important groups step by step until the metric
would fall by more than ``tol``; optional fine-tuning between steps."""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from slimtune.compress.prune._config import StructuredPruneConfig
from slimtune.compress.prune._importance import Criterion
from slimtune.compress.prune._plan import PrunePlan
from slimtune.compress.prune._stats import count_params
from slimtune.compress.prune._structured import prune_

__all__ = ["CurvePoint", "ToleranceResult", "prune_to_tolerance"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurvePoint:
    """One step: parameters and metric after it; ``accepted`` False for the step that was undone."""

    step: int
    params: int
    metric: float
    accepted: bool


@dataclass(frozen=True)
class ToleranceResult:
    """The accumulated plan (indices of the original model), the curve and the metrics."""

    plan: PrunePlan
    curve: list[CurvePoint]
    baseline: float
    metric: float


def prune_to_tolerance(
    model: nn.Module,
    evaluate: Callable[[nn.Module], float],
    *,
    tol: float,
    step: float = 0.1,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    finetune: Callable[[nn.Module], object] | None = None,
    config: StructuredPruneConfig | None = None,
    criterion: Criterion | None = None,
    max_steps: int = 50,
    higher_is_better: bool = True,
) -> ToleranceResult:
    """Prune ``model`` in place, ``step`` of the remaining channels per step, weakest first.

    After each step ``finetune(model)`` runs (if given) and ``evaluate(model)`` is measured; the
    first step whose metric falls more than ``tol`` below the unpruned ``evaluate(model)`` is
    undone and the search stops. ``config`` supplies ``scope`` (default ``"global"``: channels of
    all groups ranked together), ``round_to``, ``ignore`` and the criterion (its ``ratio`` is
    replaced by ``step``). Returns the plan of all accepted steps (indices of the original model).
    """
    if isinstance(tol, bool) or not isinstance(tol, int | float) or tol < 0:
        raise ValueError(f"`tol` must be a number >= 0, got {tol!r}. Pass e.g. tol=0.01.")
    if isinstance(step, bool) or not isinstance(step, int | float) or not 0.0 < step < 1.0:
        raise ValueError(f"`step` must be in (0, 1), got {step!r}. Pass e.g. step=0.1.")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"`max_steps` must be an int >= 1, got {max_steps!r}.")
    base_cfg = config if config is not None else StructuredPruneConfig(scope="global")
    cfg = dataclasses.replace(base_cfg, ratio=float(step))
    sign = 1.0 if higher_is_better else -1.0
    baseline = float(evaluate(model))
    plan = PrunePlan(meta={"config": cfg.to_dict(), "tol": tol})
    curve: list[CurvePoint] = []
    metric = baseline
    for k in range(1, max_steps + 1):
        snapshot = copy.deepcopy(model)
        step_plan = prune_(model, cfg, example_inputs=example_inputs, criterion=criterion)
        if not step_plan.entries:
            break
        if finetune is not None:
            finetune(model)
        value = float(evaluate(model))
        ok = sign * (baseline - value) <= tol
        curve.append(CurvePoint(k, count_params(model), value, ok))
        logger.info("step %d: %d parameters, metric %.5f (%s)", k, curve[-1].params, value, ok)
        if not ok:
            model.__dict__.clear()
            model.__dict__.update(snapshot.__dict__)
            break
        plan = plan.then(step_plan)
        metric = value
    return ToleranceResult(plan, curve, baseline, metric)
