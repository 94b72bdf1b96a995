"""Distillation losses as pure functions: soft targets, feature hints and attention maps."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "attention_loss",
    "distillation_loss",
    "feature_loss",
    "kd_loss",
    "soft_targets",
]

Reduction = Literal["batchmean", "sum", "none"]
_REDUCTIONS = ("batchmean", "sum", "none")


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise TypeError(f"`temperature` must be a float > 0, got {temperature!r}.")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"`temperature` must be a finite float > 0, got {temperature!r}. "
            "Use e.g. temperature=4.0."
        )
    return float(temperature)


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "`student_logits` and `teacher_logits` must have the same shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}."
        )
    if student_logits.dim() < 1 or student_logits.shape[-1] < 1:
        raise ValueError(
            "`student_logits` must have a class dimension last, got shape "
            f"{tuple(student_logits.shape)}."
        )


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's softened distribution ``softmax(logits / T)`` over the last dimension."""
    t = _check_temperature(temperature)
    return F.softmax(logits / t, dim=-1)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    temperature: float = 4.0,
    reduction: Reduction = "batchmean",
) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: ``T^2 * KL(softmax(t / T) || softmax(s / T))``.

    The class dimension is the last one. ``reduction``: ``"batchmean"`` (sum over classes and
    every leading dimension, divided by the size of the first, the true KL per example),
    ``"sum"``, or ``"none"`` (one value per row: the shape without the class dimension). The
    ``T^2`` factor keeps the gradient's scale comparable across temperatures; as ``T`` grows
    the loss tends to ``sum_c (s_c - t_c)^2 / (2 C)`` on mean-centred logits (logit matching).
    Gradients flow into ``student_logits`` only when the teacher's logits are detached by the
    caller (they are used as given).
    """
    t = _check_temperature(temperature)
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"`reduction` must be one of {_REDUCTIONS}, got {reduction!r}. Use 'batchmean'."
        )
    _check_logits(student_logits, teacher_logits)
    log_p_teacher = F.log_softmax(teacher_logits / t, dim=-1)
    log_q_student = F.log_softmax(student_logits / t, dim=-1)
    per_row = (log_p_teacher.exp() * (log_p_teacher - log_q_student)).sum(dim=-1) * (t * t)
    if reduction == "none":
        return per_row
    if reduction == "sum":
        return per_row.sum()
    return per_row.sum() / max(student_logits.shape[0], 1) if per_row.dim() else per_row


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    alpha: float = 0.9,
    temperature: float = 4.0,
) -> torch.Tensor:
    """``alpha * kd_loss + (1 - alpha) * cross_entropy(student, labels)`` (batch means).

    ``alpha=1`` is pure distillation (``labels`` may be ``None``); ``alpha=0`` is the ordinary
    hard-label loss.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be a float in [0, 1], got {alpha!r}. Use e.g. alpha=0.9.")
    soft = kd_loss(student_logits, teacher_logits, temperature=temperature)
    if alpha == 1.0:
        return soft
    if labels is None:
        raise ValueError(
            f"`labels` is None but `alpha` is {alpha}; pass labels or use alpha=1.0 "
            "(pure distillation)."
        )
    hard = F.cross_entropy(student_logits.reshape(-1, student_logits.shape[-1]), labels.reshape(-1))
    return alpha * soft + (1.0 - alpha) * hard


def feature_loss(
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    *,
    kind: Literal["mse", "cosine"] = "mse",
) -> torch.Tensor:
    """FitNets hint loss between two feature tensors of the same shape.

    ``"mse"``: mean squared error over every element. ``"cosine"``: ``1 - cos`` between the
    channel vectors (dimension 1 of ``(N, C, ...)`` conv maps, the last dimension otherwise),
    averaged over positions. Project the student's features to the teacher's width first
    (:class:`HintProjection` does it when the widths differ).
    """
    if kind not in ("mse", "cosine"):
        raise ValueError(f"`kind` must be 'mse' or 'cosine', got {kind!r}.")
    if student_features.shape != teacher_features.shape:
        raise ValueError(
            "`student_features` and `teacher_features` must have the same shape, got "
            f"{tuple(student_features.shape)} and {tuple(teacher_features.shape)}; project the "
            "student's features to the teacher's width (HintProjection) first."
        )
    if kind == "mse":
        return F.mse_loss(student_features, teacher_features)
    dim = 1 if student_features.dim() == 4 else -1
    return (1.0 - F.cosine_similarity(student_features, teacher_features, dim=dim)).mean()


def attention_loss(
    student_attention: torch.Tensor,
    teacher_attention: torch.Tensor,
    *,
    kind: Literal["kl", "mse"] = "kl",
) -> torch.Tensor:
    """Attention-transfer loss between attention maps ``(N, heads, T, T)`` (rows sum to 1).

    When the head counts differ, both sides are averaged over heads first. ``"kl"``:
    ``KL(teacher_row || student_row)`` summed over keys, averaged over batch, heads and queries
    (MiniLM's attention-distribution transfer). ``"mse"``: mean squared error.
    """
    if kind not in ("kl", "mse"):
        raise ValueError(f"`kind` must be 'kl' or 'mse', got {kind!r}.")
    s, t = student_attention, teacher_attention
    if s.dim() != 4 or t.dim() != 4:
        raise ValueError(
            "attention maps must be (N, heads, T, T), got shapes "
            f"{tuple(s.shape)} and {tuple(t.shape)}."
        )
    if s.shape[1] != t.shape[1]:
        s, t = s.mean(dim=1, keepdim=True), t.mean(dim=1, keepdim=True)
    if s.shape != t.shape:
        raise ValueError(
            "student and teacher attention maps must agree in batch and sequence length, got "
            f"{tuple(s.shape)} and {tuple(t.shape)}."
        )
    if kind == "mse":
        return F.mse_loss(s, t)
    eps = torch.finfo(s.dtype).tiny
    kl = (t * (torch.log(t.clamp_min(eps)) - torch.log(s.clamp_min(eps)))).sum(dim=-1)
    return kl.mean()
