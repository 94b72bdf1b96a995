"""An elastic CNN: residual stages with elastic depth, width and kernel size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from slimtune.nas._elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticLinear,
    ElasticSequential,
)
from slimtune.nas._plain import ConvBlock
from slimtune.nas._supernet import Supernet, choice_distribution
from slimtune.space import Conditional, Distribution

__all__ = ["CNNSupernet", "ElasticConvBlock"]


class ElasticConvBlock(nn.Module):
    """Conv -> BatchNorm (-> + input when ``residual``) -> ReLU, with elastic width and kernel."""

    conv: ElasticConv2d
    bn: ElasticBatchNorm2d

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        stride: int,
        residual: bool,
        widths: Sequence[int],
        kernels: Sequence[int],
    ) -> None:
        super().__init__()
        self.conv = ElasticConv2d(
            c_in, c_out, max(kernels), stride=stride, width_choices=widths, kernel_choices=kernels
        )
        self.bn = ElasticBatchNorm2d(c_out)
        self.residual = residual
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        if self.residual:
            out = out + x
        return self.act(out)

    def export(self, in_width: int) -> ConvBlock:
        conv = self.conv.export(in_width)
        return ConvBlock(conv, self.bn.export(conv.out_channels), residual=self.residual)


class CNNSupernet(Supernet):
    """Stem, residual stages (the first block of a stage strides, the rest are residual), pooling
    and a linear head.

    Parameters: per stage ``stage{s}.depth`` and ``stage{s}.width`` (one width for the stage, so
    residual additions always match) and per block ``stage{s}.block{b}.kernel``.

    ``zero_init_residual=True`` starts the BatchNorm scale of every residual block at 0, so each
    residual block begins as the identity (Goyal et al. 2017; BigNAS initialises the output of
    every residual block to zero for the same reason: sub-networks of every depth start alike),
    as torchvision's ResNets do with the argument of the same name.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        *,
        stage_widths: Sequence[Sequence[int]] = ((16, 24, 32), (32, 48, 64), (64, 96, 128)),
        depth_choices: Sequence[int] = (1, 2, 3),
        kernel_choices: Sequence[int] = (3, 5),
        stem_width: int = 16,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if not stage_widths:
            raise ValueError("`stage_widths` must list at least one stage's width choices.")
        self.stage_width_choices = tuple(tuple(sorted(set(w))) for w in stage_widths)
        self.depth_choices = tuple(sorted(set(depth_choices)))
        self.kernel_choices = tuple(sorted(set(kernel_choices)))
        if not self.depth_choices or self.depth_choices[0] < 1:
            raise ValueError(f"`depth_choices` must be positive integers, got {depth_choices!r}.")
        self.stem_width = stem_width
        self.stem: ElasticConvBlock = ElasticConvBlock(
            in_channels, stem_width, stride=1, residual=False, widths=(stem_width,), kernels=(3,)
        )
        stages: list[nn.Module] = []
        c_in = stem_width
        for s, widths in enumerate(self.stage_width_choices):
            c_out = widths[-1]
            blocks = [
                ElasticConvBlock(
                    c_in if b == 0 else c_out,
                    c_out,
                    stride=1 if (s == 0 or b > 0) else 2,
                    residual=b > 0,
                    widths=widths,
                    kernels=self.kernel_choices,
                )
                for b in range(self.depth_choices[-1])
            ]
            stages.append(ElasticSequential(*blocks, depth_choices=self.depth_choices))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = ElasticLinear(c_in, num_classes)
        if not isinstance(zero_init_residual, bool):
            raise TypeError(
                f"`zero_init_residual` must be True or False, got {zero_init_residual!r}."
            )
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, ElasticConvBlock) and m.residual:
                    nn.init.zeros_(m.bn.weight)

    def stage(self, s: int) -> ElasticSequential:
        """Stage ``s``."""
        return cast(ElasticSequential, self.stages[s])

    def block(self, s: int, b: int) -> ElasticConvBlock:
        """Block ``b`` of stage ``s``."""
        return cast(ElasticConvBlock, self.stage(s)[b])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(x))).flatten(1))

    def _space_params(self) -> dict[str, Distribution | Conditional]:
        params: dict[str, Distribution | Conditional] = {}
        kernel = choice_distribution(self.kernel_choices)
        for s, widths in enumerate(self.stage_width_choices):
            params[f"stage{s}.depth"] = choice_distribution(self.depth_choices)
            params[f"stage{s}.width"] = choice_distribution(widths)
            for b in range(self.depth_choices[-1]):
                name = f"stage{s}.block{b}.kernel"
                if b < self.depth_choices[0]:
                    params[name] = kernel
                else:
                    reach = [d for d in self.depth_choices if d > b]
                    params[name] = Conditional(kernel, parent=f"stage{s}.depth", values=reach)
        return params

    def _activate(self, arch: dict[str, Any]) -> None:
        for s in range(len(self.stages)):
            depth = arch[f"stage{s}.depth"]
            self.stage(s).set_depth(depth)
            for b in range(depth):
                self.block(s, b).conv.set_width(arch[f"stage{s}.width"])
                self.block(s, b).conv.set_kernel(arch[f"stage{s}.block{b}.kernel"])

    def _extract(self, arch: dict[str, Any]) -> nn.Module:
        stem = self.stem.export(self.stem.conv.in_channels)
        width = self.stem_width
        stages: list[nn.Module] = []
        for s in range(len(self.stages)):
            blocks = []
            for b in range(arch[f"stage{s}.depth"]):
                blocks.append(self.block(s, b).export(width))
                width = arch[f"stage{s}.width"]
            stages.append(nn.Sequential(*blocks))
        return nn.Sequential(
            stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), self.head.export(width)
        )

    @torch.no_grad()
    def sort_channels_(self) -> None:
        """Re-order each stage's channels by importance (summed L1 of the stage's filters).

        A stage's channels form one residual stream, so every conv and BatchNorm of the stage and
        the next consumer (next stage's first conv, or the head) are permuted together; the
        function is unchanged.
        """
        for s in range(len(self.stages)):
            blocks = [self.block(s, b) for b in range(len(self.stage(s)))]
            importance = torch.stack(
                [blk.conv.weight.abs().sum(dim=(1, 2, 3)) for blk in blocks]
            ).sum(0)
            order = importance.argsort(descending=True)
            for b, blk in enumerate(blocks):
                blk.conv.weight.copy_(blk.conv.weight[order])
                if b > 0:
                    blk.conv.weight.copy_(blk.conv.weight[:, order])
                for t in (blk.bn.weight, blk.bn.bias, blk.bn.running_mean, blk.bn.running_var):
                    t.copy_(t[order])
            if s + 1 < len(self.stages):
                nxt = self.block(s + 1, 0).conv
                nxt.weight.copy_(nxt.weight[:, order])
            else:
                self.head.weight.copy_(self.head.weight[:, order])
