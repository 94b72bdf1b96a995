"""An elastic transformer encoder: depth, embedding width, heads and MLP ratio per block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from slimtune.nas._elastic import ElasticLayerNorm, ElasticLinear, ElasticSequential
from slimtune.nas._plain import (
    PlainSelfAttention,
    PlainTransformer,
    PlainTransformerBlock,
    multi_head_attention,
)
from slimtune.nas._supernet import Supernet, choice_distribution
from slimtune.space import Conditional, Distribution

__all__ = ["ElasticSelfAttention", "ElasticTransformerBlock", "TransformerSupernet"]


class ElasticSelfAttention(nn.Module):
    """Self-attention with an elastic number of heads (each head keeps ``head_dim``)."""

    q: ElasticLinear
    k: ElasticLinear
    v: ElasticLinear
    out: ElasticLinear

    def __init__(
        self,
        max_dim: int,
        max_heads: int,
        head_dim: int,
        *,
        head_choices: Sequence[int],
        dim_choices: Sequence[int],
    ) -> None:
        super().__init__()
        inner = max_heads * head_dim
        widths = [h * head_dim for h in head_choices]
        self.q = ElasticLinear(max_dim, inner, width_choices=widths)
        self.k = ElasticLinear(max_dim, inner, width_choices=widths)
        self.v = ElasticLinear(max_dim, inner, width_choices=widths)
        self.out = ElasticLinear(inner, max_dim, width_choices=dim_choices)
        self.head_dim = head_dim
        self.max_heads = max_heads
        self.active_heads = max_heads

    def set_heads(self, heads: int) -> None:
        for proj in (self.q, self.k, self.v):
            proj.set_width(heads * self.head_dim)
        self.active_heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return multi_head_attention(
            x, self.q, self.k, self.v, self.out, heads=self.active_heads, head_dim=self.head_dim
        )

    def export(self, in_width: int) -> PlainSelfAttention:
        inner = self.active_heads * self.head_dim
        return PlainSelfAttention(
            self.q.export(in_width),
            self.k.export(in_width),
            self.v.export(in_width),
            self.out.export(inner),
            heads=self.active_heads,
            head_dim=self.head_dim,
        )


class ElasticTransformerBlock(nn.Module):
    """Pre-LayerNorm encoder block with elastic heads and MLP hidden width."""

    ln1: ElasticLayerNorm
    attn: ElasticSelfAttention
    ln2: ElasticLayerNorm
    fc1: ElasticLinear
    fc2: ElasticLinear

    def __init__(
        self,
        max_dim: int,
        max_heads: int,
        head_dim: int,
        *,
        head_choices: Sequence[int],
        dim_choices: Sequence[int],
        ratio_choices: Sequence[int],
    ) -> None:
        super().__init__()
        self.ln1 = ElasticLayerNorm(max_dim)
        self.attn = ElasticSelfAttention(
            max_dim, max_heads, head_dim, head_choices=head_choices, dim_choices=dim_choices
        )
        self.ln2 = ElasticLayerNorm(max_dim)
        hidden = sorted({r * d for r in ratio_choices for d in dim_choices})
        self.fc1 = ElasticLinear(max_dim, max_dim * max(ratio_choices), width_choices=hidden)
        self.act = nn.GELU()
        self.fc2 = ElasticLinear(max_dim * max(ratio_choices), max_dim, width_choices=dim_choices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))

    def export(self, in_width: int) -> PlainTransformerBlock:
        return PlainTransformerBlock(
            self.ln1.export(in_width),
            self.attn.export(in_width),
            self.ln2.export(in_width),
            self.fc1.export(in_width),
            self.fc2.export(self.fc1.active_out),
        )


class TransformerSupernet(Supernet):
    """Token embedding, encoder blocks, LayerNorm, mean pooling and a head over ``(N, T, F)``.

    Parameters: ``depth``, ``embed_dim`` (the residual width, shared by all blocks) and per block
    ``block{i}.heads`` and ``block{i}.mlp_ratio`` (conditional on the depth reaching the block).
    """

    def __init__(
        self,
        in_features: int = 8,
        seq_len: int = 8,
        num_classes: int = 10,
        *,
        embed_choices: Sequence[int] = (32, 48, 64),
        depth_choices: Sequence[int] = (1, 2, 3),
        head_choices: Sequence[int] = (1, 2, 4),
        ratio_choices: Sequence[int] = (1, 2, 4),
        head_dim: int = 16,
    ) -> None:
        super().__init__()
        self.embed_choices = tuple(sorted(set(embed_choices)))
        self.depth_choices = tuple(sorted(set(depth_choices)))
        self.head_choices = tuple(sorted(set(head_choices)))
        self.ratio_choices = tuple(sorted(set(ratio_choices)))
        for name, choices in (
            ("embed_choices", self.embed_choices),
            ("depth_choices", self.depth_choices),
            ("head_choices", self.head_choices),
            ("ratio_choices", self.ratio_choices),
        ):
            if not choices or choices[0] < 1:
                raise ValueError(f"`{name}` must be positive integers, got {choices!r}.")
        max_dim = self.embed_choices[-1]
        self.in_features = in_features
        self.embed = ElasticLinear(in_features, max_dim, width_choices=self.embed_choices)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, max_dim))
        nn.init.normal_(self.pos, std=0.02)
        blocks = [
            ElasticTransformerBlock(
                max_dim,
                self.head_choices[-1],
                head_dim,
                head_choices=self.head_choices,
                dim_choices=self.embed_choices,
                ratio_choices=self.ratio_choices,
            )
            for _ in range(self.depth_choices[-1])
        ]
        self.blocks = ElasticSequential(*blocks, depth_choices=self.depth_choices)
        self.norm = ElasticLayerNorm(max_dim)
        self.head = ElasticLinear(max_dim, num_classes)

    def block(self, i: int) -> ElasticTransformerBlock:
        """Encoder block ``i``."""
        return cast(ElasticTransformerBlock, self.blocks[i])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = self.blocks(h + self.pos[:, :, : h.shape[-1]].contiguous())
        return self.head(self.norm(h).mean(dim=1))

    def _space_params(self) -> dict[str, Distribution | Conditional]:
        params: dict[str, Distribution | Conditional] = {
            "depth": choice_distribution(self.depth_choices),
            "embed_dim": choice_distribution(self.embed_choices),
        }
        heads = choice_distribution(self.head_choices)
        ratio = choice_distribution(self.ratio_choices)
        for i in range(self.depth_choices[-1]):
            for key, dist in ((f"block{i}.heads", heads), (f"block{i}.mlp_ratio", ratio)):
                if i < self.depth_choices[0]:
                    params[key] = dist
                else:
                    reach = [d for d in self.depth_choices if d > i]
                    params[key] = Conditional(dist, parent="depth", values=reach)
        return params

    def _activate(self, arch: dict[str, Any]) -> None:
        dim = arch["embed_dim"]
        self.embed.set_width(dim)
        self.blocks.set_depth(arch["depth"])
        for i in range(arch["depth"]):
            block = self.block(i)
            block.attn.set_heads(arch[f"block{i}.heads"])
            block.attn.out.set_width(dim)
            block.fc1.set_width(arch[f"block{i}.mlp_ratio"] * dim)
            block.fc2.set_width(dim)

    def _extract(self, arch: dict[str, Any]) -> nn.Module:
        dim = arch["embed_dim"]
        blocks = nn.Sequential(*[self.block(i).export(dim) for i in range(arch["depth"])])
        return PlainTransformer(
            self.embed.export(self.in_features),
            self.pos[:, :, :dim].contiguous(),
            blocks,
            self.norm.export(dim),
            self.head.export(dim),
        )

    @torch.no_grad()
    def sort_channels_(self) -> None:
        """Re-order each block's heads (by the L1 norm of their output projection columns) and
        MLP neurons (by ``fc1`` row L1 norm), largest first; the function is unchanged.

        The embedding width is not re-ordered (it is the residual stream of every block).
        """
        for i in range(len(self.blocks)):
            block = self.block(i)
            attn = block.attn
            d, h = attn.head_dim, attn.max_heads
            head_norm = attn.out.weight.abs().reshape(-1, h, d).sum(dim=(0, 2))
            head_order = head_norm.argsort(descending=True)
            order = (head_order[:, None] * d + torch.arange(d)[None, :]).reshape(-1)
            for proj in (attn.q, attn.k, attn.v):
                proj.weight.copy_(proj.weight[order])
                if proj.bias is not None:
                    proj.bias.copy_(proj.bias[order])
            attn.out.weight.copy_(attn.out.weight[:, order])
            neuron_order = block.fc1.weight.abs().sum(dim=1).argsort(descending=True)
            block.fc1.weight.copy_(block.fc1.weight[neuron_order])
            if block.fc1.bias is not None:
                block.fc1.bias.copy_(block.fc1.bias[neuron_order])
            block.fc2.weight.copy_(block.fc2.weight[:, neuron_order])
