"""Width-shrunk students from a structured prune plan of ``slimtune.compress.prune``.

``prune_`` couples every channel that must go together (residual streams, attention heads,
flatten -> Linear) and keeps the teacher's surviving weights; applied to a *copy* of the
teacher it gives a student initialised from the teacher, and the plan replays the same
architecture on any fresh model (random-init baselines of the same shape).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from slimtune.compress.prune import PrunePlan, StructuredPruneConfig

__all__ = ["pruned_student"]


def pruned_student(
    teacher: nn.Module,
    plan_or_config: PrunePlan | StructuredPruneConfig,
    *,
    example_inputs: torch.Tensor | None = None,
) -> tuple[nn.Module, PrunePlan]:
    """A pruned copy of ``teacher`` and the plan that made it; the teacher is left alone.

    ``plan_or_config``: a :class:`~slimtune.compress.prune.PrunePlan` to replay (for example
    one found by ``prune_to_tolerance``) or a
    :class:`~slimtune.compress.prune.StructuredPruneConfig` to plan with (needs
    ``example_inputs`` for tracing).
    """
    from slimtune.compress.prune import (
        PrunePlan,
        StructuredPruneConfig,
        apply_plan_,
        prune_,
    )

    student = copy.deepcopy(teacher)
    if isinstance(plan_or_config, PrunePlan):
        apply_plan_(student, plan_or_config)
        return student, plan_or_config
    if isinstance(plan_or_config, StructuredPruneConfig):
        if example_inputs is None:
            raise ValueError(
                "`example_inputs` is None but `plan_or_config` is a StructuredPruneConfig; pass "
                "a batch of inputs so the teacher can be traced."
            )
        plan = prune_(student, plan_or_config, example_inputs=example_inputs)
        return student, plan
    raise TypeError(
        "`plan_or_config` must be a PrunePlan or a StructuredPruneConfig, got "
        f"{type(plan_or_config).__name__}."
    )
