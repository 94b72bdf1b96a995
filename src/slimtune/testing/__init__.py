"""Reference models, bundled data and a training loop for tests, benchmarks and examples.

Everything here works offline: the data is scikit-learn's bundled digits (the ``demo`` extra),
and the models are small enough to train on a CPU in seconds.
"""

from __future__ import annotations

from slimtune.testing._data import Dataset, load_digits
from slimtune.testing._models import (
    MLP,
    MobileNetV2Like,
    ResNetCNN,
    SelfAttention,
    SmallCNN,
    TransformerBlock,
    TransformerClassifier,
)
from slimtune.testing._train import accuracy, fit

__all__ = [
    "MLP",
    "Dataset",
    "MobileNetV2Like",
    "ResNetCNN",
    "SelfAttention",
    "SmallCNN",
    "TransformerBlock",
    "TransformerClassifier",
    "accuracy",
    "fit",
    "load_digits",
]
