"""Unstructured magnitude pruning with ``torch.nn.utils.parametrize`` masks, N:M masks, baking.

Masks zero weights but keep shapes: the model is no faster on dense CPU kernels until a sparse
kernel uses it (2:4 masks match the semi-structured sparsity of recent GPUs). :func:`bake_`
removes the parametrizations and leaves plain weights with the zeros in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = [
    "UnstructuredPruneConfig",
    "bake_",
    "magnitude_prune_",
    "nm_mask",
    "sparsity",
]

_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class WeightMask(nn.Module):
    """Parametrization ``weight * mask`` (the mask is a buffer, saved with the state dict)."""

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask


@dataclass(frozen=True, kw_only=True)
class UnstructuredPruneConfig:
    """``sparsity``: fraction of weights zeroed, per layer (``scope="layer"``) or over all
    layers ranked together (``scope="global"``); ``n_m=(2, 4)`` instead keeps the ``n`` largest
    of every ``m`` consecutive input weights. ``ignore`` lists module names left dense."""

    sparsity: float = 0.5
    scope: Literal["layer", "global"] = "layer"
    n_m: tuple[int, int] | None = None
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        s = self.sparsity
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0.0 <= s < 1.0:
            raise ValueError(f"`sparsity` must be in [0, 1), got {s!r}. Pass e.g. sparsity=0.5.")
        if self.scope not in ("layer", "global"):
            raise ValueError(f"`scope` must be 'layer' or 'global', got {self.scope!r}.")
        if self.n_m is not None:
            ok = (
                isinstance(self.n_m, tuple)
                and len(self.n_m) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in self.n_m)
                and 0 < self.n_m[0] < self.n_m[1]
            )
            if not ok:
                raise ValueError(
                    f"`n_m` must be (n, m) with 0 < n < m, got {self.n_m!r}; e.g. (2, 4)."
                )
        if isinstance(self.ignore, str):
            raise TypeError(f"`ignore` must be a tuple of module names, got {self.ignore!r}.")
        object.__setattr__(self, "ignore", tuple(self.ignore))


def _targets(model: nn.Module, ignore: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    names = {n for n, _ in model.named_modules()}
    missing = [n for n in ignore if n not in names]
    if missing:
        raise ValueError(
            f"`ignore` names {missing} that are not modules of the model. Use names from "
            "model.named_modules()."
        )
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, _TYPES) and not any(n == i or n.startswith(i + ".") for i in ignore)
    ]


def _weight(m: nn.Module) -> torch.Tensor:
    """The effective (masked) weight."""
    w: torch.Tensor = m.weight  # type: ignore[assignment]
    return w.detach()


def nm_mask(weight: torch.Tensor, n: int, m: int, *, name: str = "weight") -> torch.Tensor:
    """Keep the ``n`` largest-magnitude of every ``m`` consecutive input weights of each row."""
    rows = weight.reshape(weight.shape[0], -1)
    if rows.shape[1] % m:
        raise ValueError(
            f"{name} has {rows.shape[1]} input weights per output, not a multiple of m={m}; "
            "add the module to `ignore`."
        )
    blocks = rows.abs().reshape(rows.shape[0], -1, m)
    top = blocks.topk(n, dim=-1).indices
    mask = torch.zeros_like(blocks).scatter_(-1, top, 1.0)
    return mask.reshape(weight.shape)


def _threshold_mask(w: torch.Tensor, k: int) -> torch.Tensor:
    if k <= 0:
        return torch.ones_like(w)
    flat = w.abs().flatten()
    order = torch.argsort(flat, stable=True)
    mask = torch.ones_like(flat)
    mask[order[:k]] = 0.0
    return mask.reshape(w.shape)


def _masks(m: nn.Module) -> list[WeightMask]:
    if not parametrize.is_parametrized(m, "weight"):
        return []
    plist: Any = getattr(m, "parametrizations")["weight"]  # noqa: B009
    return [p for p in plist if isinstance(p, WeightMask)]


def _set_mask(m: nn.Module, mask: torch.Tensor) -> None:
    for p in _masks(m):
        p.mask = mask
        return
    parametrize.register_parametrization(m, "weight", WeightMask(mask))


def magnitude_prune_(model: nn.Module, config: UnstructuredPruneConfig) -> dict[str, float]:
    """Mask the smallest weights of every Linear / Conv layer; return the sparsity per module.

    Calling it again re-ranks the already-masked weights (masked ones stay masked), which is how
    gradual pruning raises sparsity step by step.
    """
    targets = _targets(model, config.ignore)
    masks: dict[str, torch.Tensor] = {}
    if config.n_m is not None:
        n, mm = config.n_m
        for name, m in targets:
            masks[name] = nm_mask(_weight(m), n, mm, name=f"Module {name!r}")
    elif config.scope == "global":
        weights = [_weight(m) for _, m in targets]
        if weights:
            flat = torch.cat([w.abs().flatten() for w in weights])
            k = math.floor(config.sparsity * flat.numel())
            thr = torch.kthvalue(flat, k).values if k > 0 else flat.min() - 1
            for (name, _), w in zip(targets, weights, strict=True):
                masks[name] = (w.abs() > thr).to(w.dtype)
    else:
        for name, m in targets:
            w = _weight(m)
            masks[name] = _threshold_mask(w, math.floor(config.sparsity * w.numel()))
    with torch.no_grad():
        for name, m in targets:
            _set_mask(m, masks[name])
    return {name: 1.0 - float(masks[name].mean()) for name, _ in targets}


def bake_(model: nn.Module) -> nn.Module:
    """Make masks permanent: remove the parametrizations, keep plain weights with the zeros."""
    for m in model.modules():
        if _masks(m):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return model


def sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over all Linear / Conv layers."""
    zeros = total = 0
    for m in model.modules():
        if isinstance(m, _TYPES):
            w = _weight(m)
            zeros += int((w == 0).sum())
            total += w.numel()
    return zeros / total if total else 0.0
