"""Pruning that really shrinks models, in plain PyTorch.

Structured pruning (``prune_``) traces the model with torch.fx, couples the channels that must be
removed together (residual additions, concatenation, depthwise convolutions, norms, flatten ->
Linear, attention heads) and physically removes them: the result is an ordinary, smaller
``nn.Module``. The returned :class:`PrunePlan` is JSON and replays on a fresh model.
Unstructured masks (``magnitude_prune_``, N:M, ``GradualPruner``) keep shapes; ``bake_`` makes
them permanent. Model statistics (``count_params``, ``count_macs``, ``size_on_disk``,
``measure_latency``) live here too.
"""

from __future__ import annotations

from slimtune.compress.prune._config import ChannelGroup, StructuredPruneConfig
from slimtune.compress.prune._gradual import GradualPruner, cubic_sparsity
from slimtune.compress.prune._group import Group, Rows
from slimtune.compress.prune._importance import (
    FPGM,
    BNScale,
    Criterion,
    L1Magnitude,
    L2Magnitude,
    RandomImportance,
    Taylor,
)
from slimtune.compress.prune._merge import MergeReport, merge_redundant_
from slimtune.compress.prune._plan import (
    PlanEntry,
    PrunePlan,
    apply_plan_,
    load_pruned,
    save_pruned,
)
from slimtune.compress.prune._stats import count_macs, count_params, measure_latency, size_on_disk
from slimtune.compress.prune._structured import find_groups, plan_pruning, prune_
from slimtune.compress.prune._tolerance import CurvePoint, ToleranceResult, prune_to_tolerance
from slimtune.compress.prune._unstructured import (
    UnstructuredPruneConfig,
    WeightMask,
    bake_,
    magnitude_prune_,
    nm_mask,
    sparsity,
)

__all__ = [
    "FPGM",
    "BNScale",
    "ChannelGroup",
    "Criterion",
    "CurvePoint",
    "GradualPruner",
    "Group",
    "L1Magnitude",
    "L2Magnitude",
    "MergeReport",
    "PlanEntry",
    "PrunePlan",
    "RandomImportance",
    "Rows",
    "StructuredPruneConfig",
    "Taylor",
    "ToleranceResult",
    "UnstructuredPruneConfig",
    "WeightMask",
    "apply_plan_",
    "bake_",
    "count_macs",
    "count_params",
    "cubic_sparsity",
    "find_groups",
    "load_pruned",
    "magnitude_prune_",
    "measure_latency",
    "merge_redundant_",
    "nm_mask",
    "plan_pruning",
    "prune_",
    "prune_to_tolerance",
    "save_pruned",
    "size_on_disk",
    "sparsity",
]
