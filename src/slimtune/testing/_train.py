"""A plain, seeded training loop for the reference models (used by tests, benchmarks and demos)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from slimtune.testing._data import Dataset

__all__ = ["accuracy", "fit"]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` in eval mode (the mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(dim=1) == y[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(x), 1)


def fit(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    on_epoch_end: Callable[[int, float], None] | None = None,
    lr_schedule: Literal["constant", "cosine"] = "constant",
) -> float:
    """Train ``model`` in place with AdamW and cross-entropy; return the final validation accuracy.

    ``loss_fn(model, x, y)`` replaces the default ``cross_entropy(model(x), y)`` (for example a
    distillation loss); ``on_epoch_end(epoch, val_accuracy)`` is called after each epoch. Batches
    are shuffled by a generator seeded with ``seed``; the global RNG is not touched.
    ``lr_schedule="cosine"`` decays the learning rate per epoch as ``lr * (1 + cos(pi * e /
    epochs)) / 2`` (epoch ``e`` from 0); the default keeps it constant.
    """
    if epochs < 0:
        raise ValueError(f"`epochs` must be >= 0, got {epochs}.")
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"`lr_schedule` must be 'constant' or 'cosine', got {lr_schedule!r}.")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(data.x_train)
    for epoch in range(epochs):
        if lr_schedule == "cosine":
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        model.train()
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            x, y = data.x_train[idx], data.y_train[idx]
            if loss_fn is None:
                loss = nn.functional.cross_entropy(model(x), y)
            else:
                loss = loss_fn(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, accuracy(model, data.x_val, data.y_val))
    model.eval()
    return accuracy(model, data.x_val, data.y_val)
