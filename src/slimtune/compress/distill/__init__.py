"""Knowledge distillation in plain PyTorch: losses, a ``Distiller`` module, a training loop
and students built from the teacher's own weights.

Losses are pure functions (:func:`kd_loss`, :func:`distillation_loss`, :func:`feature_loss`,
:func:`attention_loss`). :class:`Distiller` wraps a student and a frozen teacher and returns the
combined loss; :func:`distill` is a ready loop with a progress callback. Students:
:func:`keep_every_kth_layer` (DistilBERT-style depth reduction), :func:`shrink_widths`
(importance-sliced widths of simple chains), :func:`pruned_student` (any structured prune plan
of ``slimtune.compress.prune``) and :func:`low_rank` (truncated-SVD Linear pairs), each a new
model initialised from the teacher.
"""

from __future__ import annotations

from slimtune.compress.distill._capture import (
    attention_maps,
    capture_attention,
    capture_outputs,
)
from slimtune.compress.distill._config import DistillConfig
from slimtune.compress.distill._distiller import Distiller, DistillOutput, HintProjection
from slimtune.compress.distill._loop import DistillResult, EpochReport, distill, evaluate_accuracy
from slimtune.compress.distill._losses import (
    attention_loss,
    distillation_loss,
    feature_loss,
    kd_loss,
    soft_targets,
)
from slimtune.compress.distill._pruned import pruned_student
from slimtune.compress.distill._students import LowRankLinear, keep_every_kth_layer, low_rank
from slimtune.compress.distill._widths import shrink_widths, shrinkable_layers

__all__ = [
    "DistillConfig",
    "DistillOutput",
    "DistillResult",
    "Distiller",
    "EpochReport",
    "HintProjection",
    "LowRankLinear",
    "attention_loss",
    "attention_maps",
    "capture_attention",
    "capture_outputs",
    "distill",
    "distillation_loss",
    "evaluate_accuracy",
    "feature_loss",
    "kd_loss",
    "keep_every_kth_layer",
    "low_rank",
    "pruned_student",
    "shrink_widths",
    "shrinkable_layers",
    "soft_targets",
]
