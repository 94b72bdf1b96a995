"""Losses whose regularisation strength is a tensor, so hypergradients can reach it."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

__all__ = ["l2_penalty", "smoothed_cross_entropy"]


def smoothed_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, smoothing: torch.Tensor | float
) -> torch.Tensor:
    """Cross-entropy with label smoothing ``smoothing`` in [0, 1], differentiable in it.

    Equal to ``F.cross_entropy(logits, target, label_smoothing=s)`` for a float ``s``; pass
    ``torch.sigmoid(logit_s)`` to tune it by hypergradient.
    """
    if logits.dim() != 2:
        raise ValueError(f"`logits` must have shape (batch, classes), got {tuple(logits.shape)}.")
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    uniform = -logp.mean(dim=-1)
    return ((1 - smoothing) * nll + smoothing * uniform).mean()


def l2_penalty(params: Iterable[torch.Tensor], strength: torch.Tensor | float) -> torch.Tensor:
    """``strength / 2 * sum ||p||^2`` over ``params`` (one weight-decay group)."""
    terms = [p.pow(2).sum() for p in params]
    if not terms:
        raise ValueError("`params` must hold at least one tensor, got none.")
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return 0.5 * strength * total
