"""An elastic MLP: depth and per-layer width."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from slimtune.nas._elastic import ElasticLinear, ElasticSequential
from slimtune.nas._supernet import Supernet, choice_distribution
from slimtune.space import Conditional, Distribution

__all__ = ["MLPSupernet"]


class MLPSupernet(Supernet):
    """``flatten -> [Linear -> ReLU] x depth -> Linear`` with elastic depth and widths.

    Parameters: ``depth`` and ``width{i}`` for each hidden layer ``i`` (conditional on the depth
    reaching it).
    """

    def __init__(
        self,
        in_features: int = 64,
        num_classes: int = 10,
        *,
        width_choices: Sequence[int] = (64, 128, 192, 256),
        depth_choices: Sequence[int] = (1, 2, 3, 4),
    ) -> None:
        super().__init__()
        widths = tuple(sorted(set(width_choices)))
        depths = tuple(sorted(set(depth_choices)))
        if not widths or widths[0] < 1:
            raise ValueError(f"`width_choices` must be positive integers, got {width_choices!r}.")
        if not depths or depths[0] < 1:
            raise ValueError(f"`depth_choices` must be positive integers, got {depth_choices!r}.")
        self.in_features = in_features
        self.width_choices = widths
        self.depth_choices = depths
        max_w = widths[-1]
        blocks = [
            nn.Sequential(
                ElasticLinear(in_features if i == 0 else max_w, max_w, width_choices=widths),
                nn.ReLU(),
            )
            for i in range(depths[-1])
        ]
        self.blocks = ElasticSequential(*blocks, depth_choices=depths)
        self.head = ElasticLinear(max_w, num_classes)

    def layer(self, i: int) -> ElasticLinear:
        """The Linear layer of hidden block ``i``."""
        return cast(ElasticLinear, cast(nn.Sequential, self.blocks[i])[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.flatten(1)))

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
            layers += [self.layer(i).export(width), nn.ReLU()]
            width = arch[f"width{i}"]
        layers.append(self.head.export(width))
        return nn.Sequential(*layers)

    @torch.no_grad()
    def sort_channels_(self) -> None:
        """Re-order each hidden layer's neurons by L1 importance, largest first.

        The function is unchanged (the next layer's inputs are permuted to match); afterwards
        every width prefix keeps the most important neurons, as Once-for-All does after warm-up.
        """
        layers = [self.layer(i) for i in range(len(self.blocks))] + [self.head]
        for layer, nxt in itertools.pairwise(layers):
            order = layer.weight.abs().sum(dim=1).argsort(descending=True)
            layer.weight.copy_(layer.weight[order])
            if layer.bias is not None:
                layer.bias.copy_(layer.bias[order])
            nxt.weight.copy_(nxt.weight[:, order])
