"""Physically remove channels: one small handler per module type and role."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from slimtune.compress.prune._trace import is_attention
from slimtune.exceptions import PlanMismatchError

__all__ = ["apply_entry", "current_size", "owner"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVT = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
)


def owner(model: nn.Module, name: str, role: str) -> nn.Module | nn.Parameter | torch.Tensor:
    """The module (or parameter for role ``param``) a plan entry refers to."""
    try:
        if role == "param":
            *path, attr = name.split(".")
            param: torch.Tensor = getattr(model.get_submodule(".".join(path)), attr)
            return param
        return model.get_submodule(name)
    except AttributeError as err:
        raise PlanMismatchError(
            f"The plan refers to {name!r}, which this model does not have. Apply a plan to the "
            "same architecture it was made from."
        ) from err


def current_size(target: object, role: str, dim: int = 0) -> int:
    """How many channels ``role`` of ``target`` has now (checked before anything is changed)."""
    if role == "param" and isinstance(target, torch.Tensor):
        return int(target.shape[dim])
    if isinstance(target, _CONV + _CONVT):
        return int(target.in_channels if role == "in" else target.out_channels)
    if isinstance(target, nn.PReLU):
        return int(target.num_parameters)
    if isinstance(target, nn.Linear):
        return int(target.in_features if role == "in" else target.out_features)
    if isinstance(target, nn.Embedding):
        return int(target.embedding_dim)
    if isinstance(target, nn.LayerNorm):
        return int(target.normalized_shape[-1])
    if isinstance(target, nn.GroupNorm):
        return int(target.num_channels)
    if isinstance(target, _NORM):
        features: int = getattr(target, "num_features")  # noqa: B009
        return features
    if isinstance(target, nn.MultiheadAttention) and role == "mha":
        return int(target.embed_dim)
    if isinstance(target, nn.Module) and is_attention(target) and role == "heads":
        heads: int = getattr(target, "num_heads")  # noqa: B009
        return heads
    raise PlanMismatchError(
        f"No pruning handler for role {role!r} of {type(target).__name__}. Apply a plan to the "
        "same architecture it was made from."
    )


def _param(old: nn.Parameter | None, value: torch.Tensor) -> nn.Parameter | None:
    if old is None:
        return None
    return nn.Parameter(value.detach().clone().contiguous(), requires_grad=old.requires_grad)


def _take(module: nn.Module, attr: str, idx: torch.Tensor, dim: int) -> None:
    t = getattr(module, attr, None)
    if t is None:
        return
    value = t.detach().index_select(dim, idx.to(t.device)).clone().contiguous()
    if isinstance(t, nn.Parameter):
        setattr(module, attr, _param(t, value))
    else:
        setattr(module, attr, value)


def _conv(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    assert isinstance(m, _CONV)
    n = len(idx)
    if role == "in":
        _take(m, "weight", idx, 1)
        m.in_channels = n
        return
    _take(m, "weight", idx, 0)
    _take(m, "bias", idx, 0)
    m.out_channels = n
    if role == "dw":
        m.in_channels = n
        m.groups = n


def _conv_transpose(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    assert isinstance(m, _CONVT)  # weight is (in, out / groups, *kernel)
    if role == "in":
        _take(m, "weight", idx, 0)
        m.in_channels = len(idx)
    else:
        _take(m, "weight", idx, 1)
        _take(m, "bias", idx, 0)
        m.out_channels = len(idx)


def _prelu(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    assert isinstance(m, nn.PReLU)
    _take(m, "weight", idx, 0)
    m.num_parameters = len(idx)


def _linear(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    assert isinstance(m, nn.Linear)
    if role == "in":
        _take(m, "weight", idx, 1)
        m.in_features = len(idx)
    else:
        _take(m, "weight", idx, 0)
        _take(m, "bias", idx, 0)
        m.out_features = len(idx)


def _norm(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    for attr in ("weight", "bias", "running_mean", "running_var"):
        _take(m, attr, idx, 0)
    n = len(idx)
    if isinstance(m, nn.LayerNorm):
        m.normalized_shape = (n,)
    elif isinstance(m, nn.GroupNorm):
        m.num_channels = n
    else:
        m.num_features = n  # type: ignore[assignment]


def _embedding(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    assert isinstance(m, nn.Embedding)
    _take(m, "weight", idx, 1)
    m.embedding_dim = len(idx)


def _heads(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    hd = int(m.head_dim)  # type: ignore[arg-type]
    rows = (idx[:, None] * hd + torch.arange(hd)[None, :]).flatten()
    for p in ("q", "k", "v"):
        _linear(getattr(m, p), "out", rows)
    _linear(m.out, "in", rows)  # type: ignore[arg-type]
    setattr(m, "num_heads", len(idx))  # noqa: B010


def _mha(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    assert isinstance(m, nn.MultiheadAttention)
    e = m.embed_dim
    rows = torch.cat([idx, idx + e, idx + 2 * e])
    setattr(m, "in_proj_weight", _param(m.in_proj_weight, m.in_proj_weight.detach()[rows][:, idx]))  # noqa: B010
    if m.in_proj_bias is not None:
        setattr(m, "in_proj_bias", _param(m.in_proj_bias, m.in_proj_bias.detach()[rows]))  # noqa: B010
    _linear(m.out_proj, "out", idx)
    _linear(m.out_proj, "in", idx)
    hd = m.head_dim
    units = idx.sort().values.view(-1, hd) if len(idx) % hd == 0 else None
    whole = units is not None and bool(
        (units[:, 0] % hd == 0).all() and (units - units[:, :1] == torch.arange(hd)).all()
    )
    m.embed_dim = m.kdim = m.vdim = len(idx)
    if whole and len(idx) < e:  # whole heads kept (prune_num_heads): fewer heads, same size
        m.num_heads = len(idx) // hd
    else:  # the same share of every head's dimensions
        m.head_dim = len(idx) // m.num_heads


_HANDLERS: list[
    tuple[Callable[[nn.Module], bool], Callable[[nn.Module, str, torch.Tensor], None]]
] = [
    (lambda m: isinstance(m, _CONV), _conv),
    (lambda m: isinstance(m, _CONVT), _conv_transpose),
    (lambda m: isinstance(m, nn.PReLU), _prelu),
    (lambda m: isinstance(m, nn.Linear), _linear),
    (lambda m: isinstance(m, _NORM), _norm),
    (lambda m: isinstance(m, nn.Embedding), _embedding),
    (lambda m: isinstance(m, nn.MultiheadAttention), _mha),
    (is_attention, _heads),
]


def apply_entry(model: nn.Module, name: str, role: str, keep: list[int], dim: int = 0) -> None:
    """Keep only channels ``keep`` of ``role`` of module (or parameter) ``name``."""
    target = owner(model, name, role)
    idx = torch.tensor(keep, dtype=torch.long)
    if role == "param":
        *path, attr = name.split(".")
        _take(model.get_submodule(".".join(path)), attr, idx, dim)
        return
    assert isinstance(target, nn.Module)
    for match, handler in _HANDLERS:
        if match(target):
            handler(target, role, idx)
            return
    raise PlanMismatchError(f"No pruning handler for {type(target).__name__} ({name!r}).")
