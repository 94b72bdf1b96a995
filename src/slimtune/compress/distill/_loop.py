"""``distill``: a ready training loop around :class:`Distiller` with progress callbacks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from slimtune._rng import check_seed
from slimtune.compress.distill._config import DistillConfig
from slimtune.compress.distill._distiller import Distiller

__all__ = ["DistillResult", "EpochReport", "distill", "evaluate_accuracy"]

logger = logging.getLogger(__name__)

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
OptimizerArg = torch.optim.Optimizer | Callable[[Any], torch.optim.Optimizer] | None


@dataclass(frozen=True)
class EpochReport:
    """Progress after one epoch: mean training loss (and its parts) and validation accuracy."""

    epoch: int
    train_loss: float
    parts: dict[str, float]
    val_accuracy: float | None


@dataclass
class DistillResult:
    """What :func:`distill` returns; the student itself was trained in place."""

    distiller: Distiller
    history: list[EpochReport] = field(default_factory=list)

    @property
    def val_accuracy(self) -> float | None:
        """Validation accuracy after the last epoch (``None`` without validation data)."""
        return self.history[-1].val_accuracy if self.history else None


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512
) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` in eval mode (its mode is restored)."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(dim=-1) == y[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(x), 1)


def _tensor_pair(data: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    if (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        x, y = data
        if len(x) != len(y):
            raise ValueError(
                f"inputs and labels must have the same length, got {len(x)} and {len(y)}."
            )
        return x, y
    return None


def _make_optimizer(optimizer: OptimizerArg, distiller: Distiller) -> torch.optim.Optimizer:
    params = [p for p in distiller.parameters() if p.requires_grad]
    if optimizer is None:
        return torch.optim.AdamW(params, lr=1e-3)
    if isinstance(optimizer, torch.optim.Optimizer):
        known = {id(p) for group in optimizer.param_groups for p in group["params"]}
        teacher = {id(p) for p in distiller.teacher.parameters()}
        if known & teacher:
            raise ValueError(
                "`optimizer` holds parameters of the teacher; build it on the student's "
                "parameters only (the teacher must stay unchanged)."
            )
        extra = [p for p in distiller.projections.parameters() if id(p) not in known]
        if extra:
            optimizer.add_param_group({"params": extra})
        return optimizer
    if callable(optimizer):
        built = optimizer(params)
        if not isinstance(built, torch.optim.Optimizer):
            raise TypeError(
                f"`optimizer` factory returned {type(built).__name__}, not a torch optimizer."
            )
        return built
    raise TypeError(
        "`optimizer` must be None, a torch.optim.Optimizer or a callable params -> optimizer, "
        f"got {type(optimizer).__name__}."
    )


def distill(
    student: nn.Module,
    teacher: nn.Module,
    train_data: tuple[torch.Tensor, torch.Tensor] | Batches,
    val_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    epochs: int,
    config: DistillConfig | None = None,
    optimizer: OptimizerArg = None,
    batch_size: int = 64,
    seed: int | None = 0,
    example_inputs: torch.Tensor | None = None,
    callback: Callable[[EpochReport], None] | None = None,
) -> DistillResult:
    """Train ``student`` in place against the frozen ``teacher`` for ``epochs`` epochs.

    ``train_data``: a pair of tensors ``(x, y)`` (shuffled every epoch by a generator seeded
    with ``seed``; the global RNG is not touched) or any re-iterable of ``(x, y)`` batches such
    as a ``DataLoader``. ``optimizer``: ``None`` (AdamW, lr 1e-3), a factory
    ``params -> Optimizer`` (it receives the student's and the hint projections' parameters),
    or an optimizer on the student's parameters (hint projections are added as a new group).
    ``callback(report)`` runs after each epoch (the library never prints). With
    ``config.cache_teacher`` the teacher runs once over ``x`` (tensor pairs only).
    ``example_inputs`` defaults to the first 8 training inputs when ``config.features`` is set.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"`epochs` must be an int >= 0, got {epochs!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1, got {batch_size!r}.")
    seed = check_seed(seed)
    config = DistillConfig() if config is None else config
    pair = _tensor_pair(train_data)
    if pair is None and config.cache_teacher:
        raise ValueError(
            "`config.cache_teacher` is True but `train_data` is an iterable of batches; pass a "
            "fixed (x, y) tensor pair to cache, or cache_teacher=False."
        )
    val = None if val_data is None else _tensor_pair(val_data)
    if val_data is not None and val is None:
        raise TypeError("`val_data` must be None or a pair of tensors (x, y).")
    if example_inputs is None and config.features:
        first: Any = pair if pair is not None else next(iter(train_data))
        example_inputs = first[0][:8]
    distiller = Distiller(student, teacher, config, example_inputs=example_inputs)
    opt = _make_optimizer(optimizer, distiller)
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    if pair is not None and config.cache_teacher:
        distiller.cache_teacher(pair[0])
    result = DistillResult(distiller=distiller)
    for epoch in range(epochs):
        distiller.train()
        total, count = 0.0, 0
        part_sums: dict[str, float] = {}
        if pair is not None:
            x_all, y_all = pair
            order = torch.randperm(len(x_all), generator=generator)
            batches: Iterable[tuple[torch.Tensor, torch.Tensor, Any]] = (
                (x_all[idx], y_all[idx], idx if distiller.cached else None)
                for idx in order.split(batch_size)
            )
        else:
            batches = ((x, y, None) for x, y in train_data)
        for x, y, idx in batches:
            out = distiller(x, y, index=idx)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            n = len(x)
            total += float(out.loss.detach()) * n
            count += n
            for key, value in out.parts.items():
                part_sums[key] = part_sums.get(key, 0.0) + value * n
        acc = None if val is None else evaluate_accuracy(distiller.student, *val)
        report = EpochReport(
            epoch=epoch,
            train_loss=total / max(count, 1),
            parts={k: v / max(count, 1) for k, v in part_sums.items()},
            val_accuracy=acc,
        )
        result.history.append(report)
        logger.debug("distill epoch %d: loss %.4f, val %s", epoch, report.train_loss, acc)
        if callback is not None:
            callback(report)
    distiller.eval()
    return result
