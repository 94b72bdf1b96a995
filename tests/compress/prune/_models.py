"""Reference models and inputs shared by the pruning tests (small, seeded)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from slimtune.testing import MLP, MobileNetV2Like, ResNetCNN, SmallCNN, TransformerClassifier

MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mlp": (MLP, (64,)),
    "small_cnn": (SmallCNN, (1, 16, 16)),
    "resnet": (lambda: ResNetCNN(widths=(16, 32, 64), blocks_per_stage=1), (1, 16, 16)),
    "mobilenet": (MobileNetV2Like, (1, 16, 16)),
    "transformer": (TransformerClassifier, (8, 8)),
}


def make(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A freshly initialised model (eval mode, randomised BN statistics) and a batch of inputs."""
    factory, shape = MODELS[name]
    torch.manual_seed(seed)
    model = factory()
    gen = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 1.5, generator=gen)
            m.weight.data.uniform_(0.2, 1.0, generator=gen)
    model.eval()
    return model, torch.randn(4, *shape, generator=gen)
