"""Fine-tuning an extracted sub-network, on labels or distilled from a teacher."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from slimtune.compress.distill import kd_loss
from slimtune.nas._train import _lr_factor

__all__ = ["finetune_subnet"]


def finetune_subnet(
    module: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    epochs: int,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    teacher: nn.Module | None = None,
    temperature: float = 1.0,
    lr_schedule: Literal["constant", "cosine"] = "constant",
) -> list[float]:
    """Train ``module`` (an extracted sub-network) in place; return the mean loss of each epoch.

    The loss is cross-entropy on the labels, or with ``teacher`` the distillation loss towards
    the teacher's predictions (``slimtune.compress.distill.kd_loss`` at ``temperature``), as
    in-place distillation trained the sub-network inside the supernet: pass the largest
    sub-network, ``extract(supernet, supernet.largest_arch())``. ``optimizer`` defaults to AdamW
    at ``lr``; ``lr_schedule="cosine"`` decays it per epoch. ``batches`` is re-iterated each
    epoch. The module is left in eval mode; the teacher is not changed.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be an nn.Module, got {type(module).__name__}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"`epochs` must be an integer >= 0, got {epochs!r}.")
    if teacher is not None and not isinstance(teacher, nn.Module):
        raise TypeError(
            f"`teacher` must be an nn.Module or None, got {type(teacher).__name__}; pass "
            "extract(supernet, supernet.largest_arch()) to distil from the largest sub-network."
        )
    if not temperature > 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature!r}.")
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"`lr_schedule` must be 'constant' or 'cosine', got {lr_schedule!r}.")
    opt = optimizer or torch.optim.AdamW(module.parameters(), lr=lr)
    base_lrs = [float(g["lr"]) for g in opt.param_groups]
    if teacher is not None:
        teacher_mode = teacher.training
        teacher.eval()
    history: list[float] = []
    try:
        for epoch in range(epochs):
            factor = _lr_factor(epoch, epochs, schedule=lr_schedule)
            for group, base in zip(opt.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor
            module.train()
            total, count = 0.0, 0
            for x, y in batches:
                opt.zero_grad(set_to_none=True)
                out = module(x)
                if teacher is None:
                    loss = F.cross_entropy(out, y)
                else:
                    with torch.no_grad():
                        target = teacher(x)
                    loss = kd_loss(out, target, temperature=temperature)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"fine-tuning loss became {value} in epoch {epoch}; lower `lr` (now "
                        f"{base_lrs[0] * factor:g}) or check the data for NaN."
                    )
                loss.backward()
                opt.step()
                total += value
                count += 1
            if count == 0:
                raise ValueError("`batches` yielded no batch; pass (inputs, labels) pairs.")
            history.append(total / count)
    finally:
        for group, base in zip(opt.param_groups, base_lrs, strict=True):
            group["lr"] = base
        module.eval()
        if teacher is not None:
            teacher.train(teacher_mode)
    return history
