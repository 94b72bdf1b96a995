"""An elastic MLP: depth and per-layer width."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

import torch
from torch import nn

from slimtune.nas._elastic import (
    ElasticBatchNorm1d,
    ElasticLayerNorm,
    ElasticLinear,
    ElasticSequential,
)
from slimtune.nas._supernet import Supernet, choice_distribution
from slimtune.space import Conditional, Distribution

__all__ = ["MLPSupernet"]


class MLPSupernet(Supernet):
    """``flatten -> [Linear -> (norm) -> ReLU] x depth -> Linear`` with elastic depth and widths.

    Parameters: ``depth`` and ``width{i}`` for each hidden layer ``i`` (conditional on the depth
    reaching it). ``norm="batch"`` puts an elastic BatchNorm after every hidden Linear (its
    statistics are recalibrated per sub-network with ``recalibrate_bn_``), ``norm="layer"`` an
    elastic LayerNorm; either keeps a layer's output on one scale whatever the width of its
    input, which shared weights need when widths vary widely (as BatchNorm does in slimmable
    networks and CNN supernets).

    ``head="per_depth"`` gives every depth choice its own output layer: a plain MLP has no
    residual path, so the features of layer 1 and of layer 4 mean different things and one
    shared head must serve them all; separate heads (one extracted with each sub-network)
    remove that interference. The default ``"shared"`` keeps one head.
    """

    def __init__(
        self,
        in_features: int = 64,
        num_classes: int = 10,
        *,
        width_choices: Sequence[int] = (64, 128, 192, 256),
        depth_choices: Sequence[int] = (1, 2, 3, 4),
        norm: Literal["none", "batch", "layer"] = "none",
        head: Literal["shared", "per_depth"] = "shared",
    ) -> None:
        super().__init__()
        widths = tuple(sorted(set(width_choices)))
        depths = tuple(sorted(set(depth_choices)))
        if not widths or widths[0] < 1:
            raise ValueError(f"`width_choices` must be positive integers, got {width_choices!r}.")
        if not depths or depths[0] < 1:
            raise ValueError(f"`depth_choices` must be positive integers, got {depth_choices!r}.")
        if norm not in ("none", "batch", "layer"):
            raise ValueError(f"`norm` must be 'none', 'batch' or 'layer', got {norm!r}.")
        if head not in ("shared", "per_depth"):
            raise ValueError(f"`head` must be 'shared' or 'per_depth', got {head!r}.")
        self.in_features = in_features
        self.width_choices = widths
        self.depth_choices = depths
        self.norm = norm
        max_w = widths[-1]
        blocks = []
        for i in range(depths[-1]):
            layers: list[nn.Module] = [
                ElasticLinear(in_features if i == 0 else max_w, max_w, width_choices=widths)
            ]
            if norm == "batch":
                layers.append(ElasticBatchNorm1d(max_w))
            elif norm == "layer":
                layers.append(ElasticLayerNorm(max_w))
            blocks.append(nn.Sequential(*layers, nn.ReLU()))
        self.blocks = ElasticSequential(*blocks, depth_choices=depths)
        self.head_mode = head
        if head == "shared":
            self.head = ElasticLinear(max_w, num_classes)
        else:
            self.heads = nn.ModuleDict({str(d): ElasticLinear(max_w, num_classes) for d in depths})

    def layer(self, i: int) -> ElasticLinear:
        """The Linear layer of hidden block ``i``."""
        return cast(ElasticLinear, cast(nn.Sequential, self.blocks[i])[0])

    def layer_norm(self, i: int) -> ElasticBatchNorm1d | ElasticLayerNorm | None:
        """The normalisation layer of hidden block ``i`` (``None`` when ``norm="none"``)."""
        if self.norm == "none":
            return None
        return cast(ElasticBatchNorm1d | ElasticLayerNorm, cast(nn.Sequential, self.blocks[i])[1])

    def output_layer(self, depth: int) -> ElasticLinear:
        """The output layer a sub-network of ``depth`` hidden layers ends with."""
        if self.head_mode == "shared":
            return self.head
        return cast(ElasticLinear, self.heads[str(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.blocks.active_depth)(self.blocks(x.flatten(1)))

    def _space_params(self) -> dict[str, Distribution | Conditional]:
        params: dict[str, Distribution | Conditional] = {
            "depth": choice_distribution(self.depth_choices)
        }
        width = choice_distribution(self.width_choices)
        for i in range(self.depth_choices[-1]):
            if i < self.depth_choices[0]:
                params[f"width{i}"] = width
            else:
                reach = [d for d in self.depth_choices if d > i]
                params[f"width{i}"] = Conditional(width, parent="depth", values=reach)
        return params

    def _activate(self, arch: dict[str, Any]) -> None:
        self.blocks.set_depth(arch["depth"])
        for i in range(arch["depth"]):
            self.layer(i).set_width(arch[f"width{i}"])

    def _extract(self, arch: dict[str, Any]) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        width = self.in_features
        for i in range(arch["depth"]):
            layers.append(self.layer(i).export(width))
            width = arch[f"width{i}"]
            norm = self.layer_norm(i)
            if norm is not None:
                layers.append(norm.export(width))
            layers.append(nn.ReLU())
        layers.append(self.output_layer(arch["depth"]).export(width))
        return nn.Sequential(*layers)

    @torch.no_grad()
    def sort_channels_(self) -> None:
        """Re-order each hidden layer's neurons by L1 importance, largest first.

        The largest network's function is unchanged (the inputs of the layers that read a
        hidden layer are permuted to match; with ``head="per_depth"`` that includes the head of
        every depth, so every full-width sub-network keeps its function); afterwards every
        width prefix keeps the most important neurons, as Once-for-All does after warm-up.
        """
        n = len(self.blocks)
        for i in range(n):
            layer = self.layer(i)
            readers = [self.layer(i + 1)] if i + 1 < n else []
            if i + 1 == n or (self.head_mode == "per_depth" and i + 1 in self.depth_choices):
                readers.append(self.output_layer(i + 1))
            order = layer.weight.abs().sum(dim=1).argsort(descending=True)
            layer.weight.copy_(layer.weight[order])
            if layer.bias is not None:
                layer.bias.copy_(layer.bias[order])
            norm = self.layer_norm(i)
            if norm is not None:
                tensors: list[torch.Tensor] = [norm.weight, norm.bias]
                if isinstance(norm, ElasticBatchNorm1d):
                    tensors += [norm.running_mean, norm.running_var]
                for t in tensors:
                    t.copy_(t[order])
            for reader in readers:
                reader.weight.copy_(reader.weight[:, order])
