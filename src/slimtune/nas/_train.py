"""Supernet training: the sandwich rule, in-place distillation, progressive shrinking."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from slimtune._rng import check_seed
from slimtune.compress.distill import kd_loss
from slimtune.nas._supernet import Supernet

__all__ = ["SandwichConfig", "load_checkpoint", "save_checkpoint", "train_supernet"]

logger = logging.getLogger(__name__)

_PHASES = ("kernel", "depth")  # progressive shrinking: kernel, then depth, then every width


@dataclass(frozen=True, kw_only=True)
class SandwichConfig:
    """How each training step samples sub-networks (BigNAS / Once-for-All).

    Every step trains the largest sub-network on the labels, the smallest and ``n_random``
    random ones on the largest's soft predictions (in-place distillation, ``temperature``) or on
    the labels when ``inplace_distill`` is off. ``warmup_epochs`` train the largest only and then
    re-order channels by importance (``sort_channels_``) when the supernet has it.
    ``progressive`` shrinks in phases after warm-up: kernel sizes first, then depths, then
    widths, heads and ratios; choices not yet released stay at their maximum.
    """

    n_random: int = 2
    inplace_distill: bool = True
    temperature: float = 1.0
    warmup_epochs: int = 0
    progressive: bool = False

    def __post_init__(self) -> None:
        if (
            isinstance(self.n_random, bool)
            or not isinstance(self.n_random, int)
            or self.n_random < 0
        ):
            raise ValueError(f"`n_random` must be an integer >= 0, got {self.n_random!r}.")
        if not self.temperature > 0:
            raise ValueError(f"`temperature` must be > 0, got {self.temperature!r}.")
        if self.warmup_epochs < 0:
            raise ValueError(f"`warmup_epochs` must be >= 0, got {self.warmup_epochs!r}.")


def _kind(name: str) -> str:
    return re.sub(r"\d+$", "", name.rsplit(".", 1)[-1])


def _released(kinds: set[str], config: SandwichConfig, epoch: int, epochs: int) -> set[str]:
    """The ``kinds`` of parameters that may vary in this epoch under progressive shrinking."""
    if not config.progressive:
        return kinds
    span = max(epochs - config.warmup_epochs, 1)
    phase = min(3 * (epoch - config.warmup_epochs) // span, 2)
    released = set(_PHASES[: phase + 1])
    if phase == 2:
        released = kinds
    return released & kinds


def _restrict(
    supernet: Supernet,
    arch: dict[str, Any],
    released: set[str],
    *,
    largest: dict[str, Any],
    kinds: set[str],
) -> dict[str, Any]:
    """``arch`` with every choice whose kind is not yet released set to its value in
    ``largest`` (``kinds``: every parameter kind of the space)."""
    if released >= kinds:
        return arch
    merged = {k: (v if _kind(k) in released else largest[k]) for k, v in arch.items()}
    # a depth held at its maximum activates blocks the draw left out: fill them from largest
    for k, v in largest.items():
        merged.setdefault(k, v)
    return supernet.canonical(merged)


def _lr_factor(epoch: int, epochs: int, *, schedule: str, warmup_epochs: int = 0) -> float:
    """Multiplier of the base learning rate in ``epoch`` (0-based) of ``epochs``.

    ``"constant"`` is 1; ``"cosine"`` rises linearly over ``warmup_epochs`` and then decays as
    ``(1 + cos(pi * t)) / 2`` with ``t`` the fraction of the remaining epochs already done
    (Once-for-All and BigNAS train with cosine decay).
    """
    if schedule == "constant":
        return 1.0
    if epoch < warmup_epochs:
        return (epoch + 1) / (warmup_epochs + 1)
    span = max(epochs - warmup_epochs, 1)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / span))


def train_supernet(
    supernet: Supernet,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    config: SandwichConfig | None = None,
    seed: int | None = 0,
    on_epoch_end: Callable[[int, float], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    lr_schedule: Literal["constant", "cosine"] = "constant",
    lr_warmup_epochs: int = 0,
) -> list[float]:
    """Train every sub-network of ``supernet`` at once; return the mean loss of each epoch.

    ``batches`` is re-iterated each epoch (a list of ``(x, y)`` pairs or a ``DataLoader``).
    ``optimizer`` defaults to AdamW at ``lr``; any optimizer over the supernet's parameters
    works. ``on_epoch_end(epoch, mean_loss)`` is called after each epoch. With
    ``checkpoint_dir`` the weights and optimizer state are saved after every epoch
    (``save_checkpoint``) and training resumes from the last saved epoch. ``lr_schedule="cosine"``
    scales every parameter group's learning rate per epoch (linear warm-up over
    ``lr_warmup_epochs``, then cosine decay towards 0); ``"constant"`` leaves it alone.
    """
    if not isinstance(supernet, Supernet):
        raise TypeError(
            f"`supernet` must be a slimtune.nas.Supernet, got {type(supernet).__name__}. Build "
            "the model from elastic layers (MLPSupernet, CNNSupernet, TransformerSupernet or a "
            "Supernet subclass)."
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"`epochs` must be an integer >= 0, got {epochs!r}.")
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"`lr_schedule` must be 'constant' or 'cosine', got {lr_schedule!r}.")
    if (
        isinstance(lr_warmup_epochs, bool)
        or not isinstance(lr_warmup_epochs, int)
        or not 0 <= lr_warmup_epochs <= max(epochs - 1, 0)
    ):
        raise ValueError(
            f"`lr_warmup_epochs` must be an integer in [0, epochs - 1], got {lr_warmup_epochs!r} "
            f"(epochs={epochs}); use fewer warm-up epochs."
        )
    config = config or SandwichConfig()
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    opt = optimizer or torch.optim.AdamW(supernet.parameters(), lr=lr)
    start = 0
    if checkpoint_dir is not None and (Path(checkpoint_dir) / "meta.json").exists():
        start = load_checkpoint(supernet, checkpoint_dir, optimizer=opt)["epoch"] + 1
        rng = np.random.default_rng([seed or 0, start])
    base_lrs = [float(g.get("initial_lr", g["lr"])) for g in opt.param_groups]
    if lr_schedule != "constant":
        for group, base in zip(opt.param_groups, base_lrs, strict=True):
            group.setdefault("initial_lr", base)
    history: list[float] = []
    largest = supernet.largest_arch()
    smallest = supernet.smallest_arch()
    kinds = {_kind(n) for n in supernet.search_space()}
    for epoch in range(start, epochs):
        supernet.train()
        warm = epoch < config.warmup_epochs
        released = _released(kinds, config, epoch, epochs)
        if lr_schedule != "constant":
            factor = _lr_factor(epoch, epochs, schedule=lr_schedule, warmup_epochs=lr_warmup_epochs)
            for group, base in zip(opt.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor
        total, count = 0.0, 0
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            supernet.set_arch(largest)
            logits = supernet(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            step_loss = float(loss.detach())
            if not warm:
                target = logits.detach()
                archs = [_restrict(supernet, smallest, released, largest=largest, kinds=kinds)]
                archs += [
                    _restrict(
                        supernet, supernet.sample_arch(rng), released, largest=largest, kinds=kinds
                    )
                    for _ in range(config.n_random)
                ]
                for arch in archs:
                    supernet.set_arch(arch)
                    out = supernet(x)
                    if config.inplace_distill:
                        sub_loss = kd_loss(out, target, temperature=config.temperature)
                    else:
                        sub_loss = F.cross_entropy(out, y)
                    sub_loss.backward()
                    step_loss += float(sub_loss.detach())
            opt.step()
            total += step_loss
            count += 1
        if warm and epoch + 1 == config.warmup_epochs:
            sort = getattr(supernet, "sort_channels_", None)
            if callable(sort):
                sort()
                opt.state.clear()  # moments belong to the old channel order
        supernet.set_arch(largest)
        mean = total / max(count, 1)
        history.append(mean)
        logger.info("supernet epoch %d: mean sandwich loss %.4f", epoch, mean)
        if checkpoint_dir is not None:
            save_checkpoint(supernet, checkpoint_dir, optimizer=opt, epoch=epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch, mean)
    supernet.eval()
    return history


def save_checkpoint(
    supernet: Supernet,
    directory: str | Path,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int = -1,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Weights as ``supernet.safetensors``, optimizer state as ``optimizer.pt`` (tensors only,
    loadable with ``weights_only=True``) and ``meta.json``; returns the directory."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in supernet.state_dict().items()}
    save_file(state, str(path / "supernet.safetensors.tmp"))
    (path / "supernet.safetensors.tmp").replace(path / "supernet.safetensors")
    if optimizer is not None:
        torch.save(optimizer.state_dict(), path / "optimizer.pt.tmp")
        (path / "optimizer.pt.tmp").replace(path / "optimizer.pt")
    meta = {"epoch": epoch, "class": type(supernet).__name__, **dict(extra or {})}
    (path / "meta.json").write_text(json.dumps(meta, indent=2))
    return path


def load_checkpoint(
    supernet: Supernet, directory: str | Path, *, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Load what ``save_checkpoint`` wrote into ``supernet`` (and ``optimizer``); return the
    metadata."""
    path = Path(directory)
    meta: dict[str, Any] = json.loads((path / "meta.json").read_text())
    if meta.get("class") != type(supernet).__name__:
        raise ValueError(
            f"checkpoint in {path} holds a {meta.get('class')!r}, not a "
            f"{type(supernet).__name__}; load it into the same supernet class."
        )
    supernet.load_state_dict(load_file(str(path / "supernet.safetensors")))
    if optimizer is not None and (path / "optimizer.pt").exists():
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    return meta
