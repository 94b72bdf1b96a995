"""BatchNorm recalibration: running statistics for one sub-network before it is evaluated."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from slimtune.nas._elastic import ElasticBatchNorm2d
from slimtune.nas._supernet import Supernet

__all__ = ["has_batchnorm", "recalibrate_bn_"]

_BN_TYPES = (ElasticBatchNorm2d, nn.modules.batchnorm._BatchNorm)


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` holds a BatchNorm layer (elastic or plain)."""
    return any(isinstance(m, _BN_TYPES) for m in model.modules())


@torch.no_grad()
def recalibrate_bn_(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    arch: Mapping[str, Any] | None = None,
    num_batches: int | None = None,
) -> int:
    """Reset every BatchNorm's running statistics and re-estimate them on ``batches``.

    Shared BatchNorm statistics belong to no sub-network in particular; inherited weights are
    only meaningful after the active sub-network's own statistics are collected (a forward pass
    in train mode over a few training batches, as Once-for-All and BigNAS do). ``batches``
    yields inputs or ``(inputs, labels)`` pairs; ``arch`` (for a supernet) is activated first.
    The statistics are exact averages over the batches (momentum ``None``). Returns the number
    of batches used; the model is left in eval mode.
    """
    if arch is not None:
        if not isinstance(model, Supernet):
            raise TypeError(
                f"`arch` needs a Supernet, got {type(model).__name__}; pass arch=None for a "
                "plain model."
            )
        model.set_arch(arch)
    norms = [m for m in model.modules() if isinstance(m, _BN_TYPES)]
    if not norms:
        raise ValueError(
            f"{type(model).__name__} has no BatchNorm layer to recalibrate; skip "
            "recalibrate_bn_ for this model."
        )
    if num_batches is not None and num_batches < 1:
        raise ValueError(f"`num_batches` must be >= 1 or None, got {num_batches}.")
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    used = 0
    try:
        for batch in batches:
            if num_batches is not None and used >= num_batches:
                break
            x = batch[0] if isinstance(batch, tuple | list) else batch
            model(x)
            used += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    if used == 0:
        raise ValueError("`batches` was empty; give at least one batch of training inputs.")
    return used
