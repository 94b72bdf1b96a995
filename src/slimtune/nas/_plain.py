"""Plain modules that extraction produces: ordinary PyTorch, no elastic layer left.

Their forward passes repeat the elastic ones operation for operation, so an extracted network
gives exactly the supernet's outputs for the same architecture in eval mode.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "ConvBlock",
    "PlainSelfAttention",
    "PlainTransformer",
    "PlainTransformerBlock",
    "multi_head_attention",
]


def multi_head_attention(
    x: torch.Tensor,
    q: nn.Module,
    k: nn.Module,
    v: nn.Module,
    out: nn.Module,
    *,
    heads: int,
    head_dim: int,
) -> torch.Tensor:
    """Scaled dot-product self-attention over ``x`` (B, T, D) with the given projections.

    Elastic and plain attention both call this, so they run the same operations in order.
    """
    b, t, _ = x.shape
    qh = q(x).reshape(b, t, heads, head_dim).transpose(1, 2)
    kh = k(x).reshape(b, t, heads, head_dim).transpose(1, 2)
    vh = v(x).reshape(b, t, heads, head_dim).transpose(1, 2)
    scores = (qh @ kh.transpose(-2, -1)) / math.sqrt(head_dim)
    ctx = scores.softmax(dim=-1) @ vh
    return out(ctx.transpose(1, 2).reshape(b, t, heads * head_dim))


class ConvBlock(nn.Module):
    """Conv -> BatchNorm (-> + input when ``residual``) -> ReLU."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, *, residual: bool) -> None:
        super().__init__()
        self.conv = conv
        self.bn = bn
        self.residual = residual
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        if self.residual:
            out = out + x
        return self.act(out)


class PlainSelfAttention(nn.Module):
    """Multi-head self-attention with ``heads`` heads of ``head_dim`` features each."""

    def __init__(
        self,
        q: nn.Linear,
        k: nn.Linear,
        v: nn.Linear,
        out: nn.Linear,
        *,
        heads: int,
        head_dim: int,
    ) -> None:
        super().__init__()
        self.q, self.k, self.v, self.out = q, k, v, out
        self.heads = heads
        self.head_dim = head_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return multi_head_attention(
            x, self.q, self.k, self.v, self.out, heads=self.heads, head_dim=self.head_dim
        )


class PlainTransformerBlock(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln1(x))``, then ``x + fc2(gelu(fc1(ln2(x))))``."""

    def __init__(
        self,
        ln1: nn.LayerNorm,
        attn: PlainSelfAttention,
        ln2: nn.LayerNorm,
        fc1: nn.Linear,
        fc2: nn.Linear,
    ) -> None:
        super().__init__()
        self.ln1, self.attn, self.ln2, self.fc1, self.fc2 = ln1, attn, ln2, fc1, fc2
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class PlainTransformer(nn.Module):
    """Token embedding + positions, blocks, LayerNorm, mean pooling, a linear head."""

    def __init__(
        self,
        embed: nn.Linear,
        pos: torch.Tensor,
        blocks: nn.Sequential,
        norm: nn.LayerNorm,
        head: nn.Linear,
    ) -> None:
        super().__init__()
        self.embed = embed
        self.pos = nn.Parameter(pos.detach().clone())
        self.blocks = blocks
        self.norm = norm
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.embed(x) + self.pos)
        return self.head(self.norm(h).mean(dim=1))
