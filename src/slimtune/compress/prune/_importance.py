"""Importance criteria: small callables ``criterion(group) -> scores`` (one score per channel).

Low scores are pruned first. A criterion may also define ``prepare(model)`` (run once before
scoring, e.g. to collect gradients for Taylor importance).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from slimtune.compress.prune._group import Group, Rows

__all__ = [
    "FPGM",
    "BNScale",
    "Criterion",
    "L1Magnitude",
    "L2Magnitude",
    "RandomImportance",
    "Taylor",
    "get_criterion",
]


@runtime_checkable
class Criterion(Protocol):
    """Scores every channel of a group; low scores are removed first."""

    def __call__(self, group: Group) -> torch.Tensor: ...


def _accumulate(
    group: Group, rows: Iterable[Rows], fn: Callable[[Rows], torch.Tensor]
) -> torch.Tensor:
    score = torch.zeros(group.size, dtype=torch.float64)
    for r in rows:
        score.index_add_(0, r.index, fn(r).double())
    return score


class L1Magnitude:
    """Sum of absolute weights of every coupled filter, column and norm scale."""

    name = "l1"

    def __call__(self, group: Group) -> torch.Tensor:
        return _accumulate(group, group.rows(), lambda r: r.weight.abs().sum(1))


class L2Magnitude:
    """Euclidean norm of all coupled weights of a channel."""

    name = "l2"

    def __call__(self, group: Group) -> torch.Tensor:
        return _accumulate(group, group.rows(), lambda r: r.weight.pow(2).sum(1)).sqrt()


class BNScale:
    """Network slimming: ``|gamma|`` of the BatchNorm layers in the group.

    Groups without a BatchNorm (a linear head, attention heads) fall back to L1 magnitude.
    """

    name = "bn_scale"

    def __call__(self, group: Group) -> torch.Tensor:
        bn = [
            r
            for r in group.rows(("norm",))
            if isinstance(r.module, nn.modules.batchnorm._BatchNorm)
        ]
        if not bn:
            return L1Magnitude()(group)
        return _accumulate(group, bn, lambda r: r.weight.abs().sum(1))


class FPGM:
    """Filter pruning via geometric median: filters close to all others are redundant."""

    name = "fpgm"

    def __call__(self, group: Group) -> torch.Tensor:
        rows = list(group.rows(("out", "heads", "emb")))
        if not rows:
            rows = list(group.rows())
        score = torch.zeros(group.size, dtype=torch.float64)
        for r in rows:
            w = r.weight.double()
            score.index_add_(0, r.index, torch.cdist(w, w).sum(1))
        return score


class Taylor:
    """First-order Taylor importance ``|sum(w * dL/dw)|`` from a few batches of data.

    ``batches`` is an iterable of ``(inputs, targets)``; ``loss_fn(outputs, targets)`` defaults
    to cross-entropy. Gradients are collected by :meth:`prepare` (called by ``prune_``).
    """

    name = "taylor"

    def __init__(
        self,
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
        *,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.batches = list(batches)
        if not self.batches:
            raise ValueError("`batches` must hold at least one (inputs, targets) pair.")
        self.loss_fn = loss_fn or nn.functional.cross_entropy
        self._grads: dict[int, torch.Tensor] | None = None

    def prepare(self, model: nn.Module) -> None:
        """Accumulate gradients over the batches; the model's own ``.grad`` are left as found."""
        params = list(model.parameters())
        saved = [p.grad for p in params]
        was_training = model.training
        model.eval()
        try:
            for p in params:
                p.grad = None
            for x, y in self.batches:
                self.loss_fn(model(x), y).backward()
            self._grads = {id(p): p.grad.detach().clone() for p in params if p.grad is not None}
        finally:
            for p, g in zip(params, saved, strict=True):
                p.grad = g
            model.train(was_training)

    def __call__(self, group: Group) -> torch.Tensor:
        if self._grads is None:
            raise RuntimeError("Taylor importance needs gradients: call prepare(model) first.")
        return _accumulate(
            group,
            group.rows(grads=self._grads),
            lambda r: (
                (r.weight * r.grad).sum(1).abs()
                if r.grad is not None
                else torch.zeros(len(r.index))
            ),
        )


class RandomImportance:
    """Random scores (a control), from a seeded generator."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, group: Group) -> torch.Tensor:
        return torch.rand(group.size, generator=self.generator, dtype=torch.float64)


_BY_NAME: dict[str, Callable[[], Criterion]] = {
    "l1": L1Magnitude,
    "l2": L2Magnitude,
    "bn_scale": BNScale,
    "fpgm": FPGM,
    "random": RandomImportance,
}


def get_criterion(criterion: str | Criterion) -> Criterion:
    """A criterion object from its name (``l1``, ``l2``, ``bn_scale``, ``fpgm``, ``random``)."""
    if isinstance(criterion, str):
        if criterion not in _BY_NAME:
            raise ValueError(
                f"`criterion` must be one of {sorted(_BY_NAME)} or a callable, got "
                f"{criterion!r}. Taylor importance needs data: pass Taylor(batches)."
            )
        return _BY_NAME[criterion]()
    if not callable(criterion):
        raise TypeError(f"`criterion` must be a name or a callable, got {criterion!r}.")
    return criterion
