"""Small reference models: the shapes that compression and architecture search must handle.

Each is an ordinary ``nn.Module`` that torch.fx can trace: an MLP, a plain CNN, a ResNet-style CNN
(residual stages, BatchNorm, a strided shortcut), a MobileNetV2-style network (depthwise
convolutions, inverted residuals) and a transformer encoder (hand-written multi-head
self-attention with separate q / k / v projections, pre-LayerNorm, a GELU MLP).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "MLP",
    "MobileNetV2Like",
    "ResNetCNN",
    "SelfAttention",
    "SmallCNN",
    "TransformerBlock",
    "TransformerClassifier",
]


class MLP(nn.Module):
    """Fully connected classifier: ``in_features -> hidden... -> num_classes`` with ReLU."""

    def __init__(
        self, in_features: int = 64, hidden: tuple[int, ...] = (256, 128), num_classes: int = 10
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.flatten(1)))


def _conv_bn(
    c_in: int, c_out: int, *, kernel: int = 3, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(
            c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(c_out),
    ]


class SmallCNN(nn.Module):
    """Two conv-BN-ReLU-pool stages, then flatten -> Linear -> Linear."""

    def __init__(
        self,
        in_channels: int = 1,
        widths: tuple[int, int] = (32, 64),
        image_size: int = 16,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        c1, c2 = widths
        self.features = nn.Sequential(
            *_conv_bn(in_channels, c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            *_conv_bn(c1, c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        spatial = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * spatial * spatial, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet basic block; a 1x1 strided projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNetCNN(nn.Module):
    """ResNet-style CNN: a stem, three residual stages (stride 1, 2, 2), global pooling, a head."""

    def __init__(
        self,
        in_channels: int = 1,
        widths: tuple[int, int, int] = (32, 64, 128),
        blocks_per_stage: int = 2,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, widths[0]), nn.ReLU())
        stages: list[nn.Module] = []
        c_in = widths[0]
        for i, width in enumerate(widths):
            blocks: list[nn.Module] = []
            for b in range(blocks_per_stage):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(BasicBlock(c_in, width, stride))
                c_in = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(x))).flatten(1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 projection; residual if shapes match."""

    def __init__(self, c_in: int, c_out: int, *, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.use_residual = stride == 1 and c_in == c_out
        self.block = nn.Sequential(
            *_conv_bn(c_in, hidden, kernel=1),
            nn.ReLU6(),
            *_conv_bn(hidden, hidden, stride=stride, groups=hidden),
            nn.ReLU6(),
            *_conv_bn(hidden, c_out, kernel=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV2Like(nn.Module):
    """A small MobileNetV2: stem, inverted-residual stages, a 1x1 conv to ``last``, pool, head."""

    def __init__(
        self,
        in_channels: int = 1,
        stages: tuple[tuple[int, int, int, int], ...] = (
            (1, 16, 1, 1),
            (4, 24, 2, 2),
            (4, 32, 2, 2),
            (4, 64, 2, 1),
        ),
        stem: int = 16,
        last: int = 256,
        num_classes: int = 10,
    ) -> None:
        """``stages`` lists (expansion, channels, repeats, first stride), as in MobileNetV2."""
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, stem), nn.ReLU6())
        layers: list[nn.Module] = []
        c_in = stem
        for expand, c_out, repeats, stride in stages:
            for r in range(repeats):
                layers.append(
                    InvertedResidual(c_in, c_out, stride=stride if r == 0 else 1, expand=expand)
                )
                c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.last = nn.Sequential(*_conv_bn(c_in, last, kernel=1), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.last(self.blocks(self.stem(x)))).flatten(1))


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate ``q``, ``k``, ``v`` projections and ``out``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"`dim` ({dim}) must be divisible by `num_heads` ({num_heads}).")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q(x).reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k(x).reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        ctx = scores.softmax(dim=-1) @ v
        return self.out(ctx.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm encoder block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class TransformerClassifier(nn.Module):
    """Encoder over a token sequence ``(N, T, in_features)``: embed, blocks, mean pool, head."""

    def __init__(
        self,
        in_features: int = 8,
        seq_len: int = 8,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: int = 4,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(in_features, dim)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(
            *[TransformerBlock(dim, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.embed(x) + self.pos)
        return self.head(self.norm(h).mean(dim=1))
