"""Configs of structured pruning and hand-declared channel groups."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from slimtune._rng import check_seed

__all__ = ["ChannelGroup", "StructuredPruneConfig"]

_ROLES = ("in", "out", "dw", "norm", "emb", "heads", "param")


def _check_ratio(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise TypeError(f"`{name}` must be a float in [0, 1), got {value!r}. Pass e.g. 0.5.")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {value!r}. Pass e.g. {name}=0.5.")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class StructuredPruneConfig:
    """How much to remove and how to choose it.

    ``ratio``: fraction of each group's channels to remove (at least; ``floor(n * (1 - ratio))``
    are kept) with ``scope="layer"``, or of all
    prunable channels ranked together after per-group normalisation (``scope="global"``).
    ``per_layer`` maps module names to their own ratio (overrides ``ratio`` for the groups they
    belong to). ``round_to`` keeps channel counts at multiples of it (attention heads are not
    rounded). ``ignore`` lists module names whose channels are kept. ``criterion`` names an
    importance (``l1``, ``l2``, ``bn_scale``, ``fpgm``, ``random``); pass a callable to
    ``prune_(criterion=...)`` for anything else. ``prune_heads`` allows removing whole heads of
    attention blocks. ``prune_num_heads`` makes ``nn.MultiheadAttention`` lose whole heads
    instead of the same share of every head's dimensions: its embedding is the model dimension,
    so the channels of the removed heads leave the model dimension too (every module sharing it
    keeps the same heads). ``max_ratio`` caps the fraction removed from one group in global scope.
    """

    ratio: float = 0.5
    scope: Literal["layer", "global"] = "layer"
    per_layer: Mapping[str, float] = field(default_factory=dict)
    round_to: int | None = None
    ignore: tuple[str, ...] = ()
    criterion: str = "l1"
    prune_heads: bool = True
    prune_num_heads: bool = False
    max_ratio: float = 0.9
    seed: int | None = 0

    def __post_init__(self) -> None:
        _check_ratio(self.ratio, "ratio")
        _check_ratio(self.max_ratio, "max_ratio")
        if self.scope not in ("layer", "global"):
            raise ValueError(f"`scope` must be 'layer' or 'global', got {self.scope!r}.")
        if not isinstance(self.per_layer, Mapping):
            raise TypeError(f"`per_layer` must map module names to ratios, got {self.per_layer!r}.")
        for k, v in self.per_layer.items():
            _check_ratio(v, f"per_layer[{k!r}]")
        object.__setattr__(self, "per_layer", MappingProxyType(dict(self.per_layer)))
        if self.round_to is not None and (
            isinstance(self.round_to, bool)
            or not isinstance(self.round_to, int)
            or self.round_to < 1
        ):
            raise ValueError(f"`round_to` must be a positive int or None, got {self.round_to!r}.")
        if isinstance(self.ignore, str) or not all(isinstance(n, str) for n in self.ignore):
            raise TypeError(
                f"`ignore` must be a tuple of module names, got {self.ignore!r}. "
                "Pass e.g. ignore=('head',)."
            )
        object.__setattr__(self, "ignore", tuple(self.ignore))
        if not isinstance(self.criterion, str):
            raise TypeError(
                f"`criterion` must be a name, got {self.criterion!r}. Pass a callable to "
                "prune_(..., criterion=...) instead."
            )
        for name in ("prune_heads", "prune_num_heads"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be True or False, got {getattr(self, name)!r}.")
        check_seed(self.seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the inverse of ``StructuredPruneConfig(**d)``)."""
        return {
            "ratio": self.ratio,
            "scope": self.scope,
            "per_layer": dict(self.per_layer),
            "round_to": self.round_to,
            "ignore": list(self.ignore),
            "criterion": self.criterion,
            "prune_heads": self.prune_heads,
            "prune_num_heads": self.prune_num_heads,
            "max_ratio": self.max_ratio,
            "seed": self.seed,
        }


@dataclass(frozen=True, kw_only=True)
class ChannelGroup:
    """Channels coupled by hand, for models torch.fx cannot trace.

    ``members`` lists ``(module_name, role)`` or ``(module_name, role, inner)``: role ``out`` for
    a producer's output channels, ``in`` for a consumer's input channels (``inner`` positions per
    channel after a flatten), ``norm`` for a norm layer, ``dw`` for a depthwise convolution,
    ``emb`` for an embedding, ``heads`` for an attention block, ``param`` for a parameter's last
    dimension. All members must have the same number of channels.
    """

    members: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("`members` must list at least one (module_name, role) pair.")
        for m in self.members:
            if not isinstance(m, tuple) or len(m) not in (2, 3) or m[1] not in _ROLES:
                raise ValueError(
                    f"`members` entries must be (module_name, role[, inner]) with role in "
                    f"{_ROLES}, got {m!r}."
                )
