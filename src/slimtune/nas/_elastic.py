"""Elastic layers: one set of weights, many widths, kernel sizes and depths.

The active output width of an elastic layer is a prefix of its output channels; its input width
is whatever the previous layer produced (read from the input tensor), so widths chain without
bookkeeping. Every slice is made contiguous before the kernel call, so a sub-network computes
bit for bit what its extracted plain module computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

_BN = TypeVar("_BN", bound=nn.modules.batchnorm._BatchNorm)

__all__ = [
    "ELASTIC_TYPES",
    "ElasticBatchNorm1d",
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticLayerNorm",
    "ElasticLinear",
    "ElasticSequential",
]


def _check_choices(name: str, choices: Iterable[int], maximum: int) -> tuple[int, ...]:
    out = tuple(sorted({int(c) for c in choices}))
    if not out or out[0] < 1 or out[-1] > maximum:
        raise ValueError(
            f"`{name}` must be non-empty integers in [1, {maximum}], got {tuple(choices)!r}."
        )
    return out


def _choose(what: str, value: int, choices: tuple[int, ...]) -> int:
    if value not in choices:
        raise ValueError(f"{what} {value!r} is not one of the `{what}_choices` {choices!r}.")
    return value


class ElasticLinear(nn.Module):
    """``nn.Linear`` whose active output width is a prefix of ``out_features``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        width_choices: Sequence[int] | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        template = nn.Linear(in_features, out_features, bias=bias)
        self.weight = template.weight
        self.bias = template.bias
        self.in_features = in_features
        self.out_features = out_features
        self.width_choices = _check_choices(
            "width_choices", width_choices or (out_features,), out_features
        )
        self.active_out = out_features

    def set_width(self, width: int) -> None:
        self.active_out = _choose("width", width, self.width_choices)

    def _slices(self, in_width: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = self.weight[: self.active_out, :in_width].contiguous()
        b = None if self.bias is None else self.bias[: self.active_out].contiguous()
        return w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self._slices(x.shape[-1])
        return F.linear(x, w, b)

    def export(self, in_width: int) -> nn.Linear:
        w, b = self._slices(in_width)
        out = nn.Linear(in_width, self.active_out, bias=b is not None)
        with torch.no_grad():
            out.weight.copy_(w)
            if b is not None and out.bias is not None:
                out.bias.copy_(b)
        return out


class ElasticConv2d(nn.Module):
    """``nn.Conv2d`` with an elastic output width (prefix) and kernel size (centre crop).

    Padding is ``kernel // 2`` for every active kernel size, so the spatial shape does not depend
    on the kernel choice. ``groups="depthwise"`` makes the layer depthwise: its width follows its
    input width.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        width_choices: Sequence[int] | None = None,
        kernel_choices: Sequence[int] | None = None,
        depthwise: bool = False,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be odd, got {kernel_size}.")
        self.depthwise = depthwise
        groups = in_channels if depthwise else 1
        if depthwise and in_channels != out_channels:
            raise ValueError(
                f"a depthwise layer needs in_channels == out_channels, got {in_channels} and "
                f"{out_channels}."
            )
        template = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=bias
        )
        self.weight = template.weight
        self.bias = template.bias
        self.stride = stride
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.width_choices = _check_choices(
            "width_choices", width_choices or (out_channels,), out_channels
        )
        kernels = _check_choices("kernel_choices", kernel_choices or (kernel_size,), kernel_size)
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"`kernel_choices` must be odd, got {kernels!r}.")
        self.kernel_choices = kernels
        self.active_out = out_channels
        self.active_kernel = kernel_size

    def set_width(self, width: int) -> None:
        self.active_out = _choose("width", width, self.width_choices)

    def set_kernel(self, kernel: int) -> None:
        self.active_kernel = _choose("kernel", kernel, self.kernel_choices)

    def _slices(self, in_width: int) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        k = self.active_kernel
        start = (self.kernel_size - k) // 2
        if self.depthwise:
            out, groups = in_width, in_width
            w = self.weight[:out, :, start : start + k, start : start + k]
        else:
            out, groups = self.active_out, 1
            w = self.weight[:out, :in_width, start : start + k, start : start + k]
        b = None if self.bias is None else self.bias[:out].contiguous()
        return w.contiguous(), b, out, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b, _, groups = self._slices(x.shape[1])
        return F.conv2d(x, w, b, stride=self.stride, padding=self.active_kernel // 2, groups=groups)

    def export(self, in_width: int) -> nn.Conv2d:
        w, b, out, groups = self._slices(in_width)
        k = self.active_kernel
        conv = nn.Conv2d(
            in_width,
            out,
            k,
            stride=self.stride,
            padding=k // 2,
            groups=groups,
            bias=b is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(w)
            if b is not None and conv.bias is not None:
                conv.bias.copy_(b)
        return conv


class ElasticBatchNorm2d(nn.Module):
    """``nn.BatchNorm2d`` over the first ``C`` channels of its input (statistics sliced too)."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, num_features: int, *, momentum: float | None = 0.1, eps: float = 1e-5):
        super().__init__()
        template = nn.BatchNorm2d(num_features, momentum=momentum, eps=eps)
        self.weight = template.weight
        self.bias = template.bias
        self.register_buffer("running_mean", template.running_mean)
        self.register_buffer("running_var", template.running_var)
        self.register_buffer("num_batches_tracked", template.num_batches_tracked)
        self.num_features = num_features
        self.momentum = momentum
        self.eps = eps

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if self.training:
            # prefix slices of 1-D buffers are views: the running statistics update in place
            self.num_batches_tracked.add_(1)
            momentum = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
            return F.batch_norm(
                x,
                self.running_mean[:c],
                self.running_var[:c],
                self.weight[:c],
                self.bias[:c],
                True,
                momentum,
                self.eps,
            )
        return F.batch_norm(
            x,
            self.running_mean[:c].contiguous(),
            self.running_var[:c].contiguous(),
            self.weight[:c].contiguous(),
            self.bias[:c].contiguous(),
            False,
            0.0,
            self.eps,
        )

    def export(self, in_width: int) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(in_width, momentum=self.momentum, eps=self.eps)
        return self._copy_into(bn, in_width)

    def _copy_into(self, bn: _BN, in_width: int) -> _BN:
        with torch.no_grad():
            bn.weight.copy_(self.weight[:in_width])
            bn.bias.copy_(self.bias[:in_width])
            for name in ("running_mean", "running_var"):
                getattr(bn, name).copy_(getattr(self, name)[:in_width])
            bn.num_batches_tracked = self.num_batches_tracked.clone()
        return bn


class ElasticBatchNorm1d(ElasticBatchNorm2d):
    """``nn.BatchNorm1d`` over the first ``C`` features of a ``(N, C)`` input (statistics sliced
    too)."""

    def export(self, in_width: int) -> nn.BatchNorm1d:  # type: ignore[override]
        bn = nn.BatchNorm1d(in_width, momentum=self.momentum, eps=self.eps)
        return self._copy_into(bn, in_width)


class ElasticLayerNorm(nn.Module):
    """``nn.LayerNorm`` over the first ``d`` features of its input."""

    def __init__(self, normalized_shape: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        template = nn.LayerNorm(normalized_shape, eps=eps)
        self.weight = template.weight
        self.bias = template.bias
        self.normalized_shape = normalized_shape
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        return F.layer_norm(
            x, (d,), self.weight[:d].contiguous(), self.bias[:d].contiguous(), self.eps
        )

    def export(self, in_width: int) -> nn.LayerNorm:
        ln = nn.LayerNorm(in_width, eps=self.eps)
        with torch.no_grad():
            ln.weight.copy_(self.weight[:in_width])
            ln.bias.copy_(self.bias[:in_width])
        return ln


class ElasticSequential(nn.Sequential):
    """``nn.Sequential`` that runs only its first ``depth`` modules."""

    def __init__(self, *modules: nn.Module, depth_choices: Sequence[int] | None = None) -> None:
        super().__init__(*modules)
        self.depth_choices = _check_choices(
            "depth_choices", depth_choices or (len(modules),), len(modules)
        )
        self.active_depth = len(modules)

    def set_depth(self, depth: int) -> None:
        self.active_depth = _choose("depth", depth, self.depth_choices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, module in enumerate(self):
            if i >= self.active_depth:
                break
            x = module(x)
        return x


#: The layer types that make a model a supernet (``set_arch`` / ``extract`` act on them).
ELASTIC_TYPES: tuple[type[nn.Module], ...] = (
    ElasticLinear,
    ElasticConv2d,
    ElasticBatchNorm2d,
    ElasticLayerNorm,
    ElasticSequential,
)
