"""Bundled, offline data sets for the reference models: scikit-learn's digits as tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from slimtune.exceptions import MissingExtraError

__all__ = ["Dataset", "load_digits"]


@dataclass(frozen=True)
class Dataset:
    """A train / validation split of tensors (inputs float32, labels int64)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (without the batch dimension)."""
        return tuple(self.x_train.shape[1:])


def load_digits(
    *,
    layout: Literal["flat", "image", "sequence"] = "image",
    image_size: int = 8,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, 10 classes) as a seeded, stratified split.

    ``layout``: ``"flat"`` gives ``(N, image_size**2)``, ``"image"`` gives ``(N, 1, S, S)`` and
    ``"sequence"`` gives ``(N, S, S)`` (one token per image row). Pixels are scaled to [0, 1];
    ``image_size`` other than 8 resizes bilinearly (16 or 32 give the CNNs room for three stages).
    """
    if layout not in ("flat", "image", "sequence"):
        raise ValueError(f"`layout` must be 'flat', 'image' or 'sequence', got {layout!r}.")
    if not isinstance(image_size, int) or image_size < 4:
        raise ValueError(f"`image_size` must be an integer >= 4, got {image_size!r}.")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must be in (0, 1), got {val_fraction!r}.")
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            "slimtune.testing.load_digits needs scikit-learn; install the 'demo' extra: "
            "pip install 'slimtune[demo]'."
        ) from err
    bunch = _sk_load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    if image_size != 8:
        images = F.interpolate(
            images, size=(image_size, image_size), mode="bilinear", align_corners=False
        )
    rng = np.random.default_rng(seed)
    val_idx: list[int] = []
    train_idx: list[int] = []
    for c in range(10):
        idx = np.flatnonzero(bunch.target == c)
        rng.shuffle(idx)
        n_val = round(len(idx) * val_fraction)
        val_idx.extend(idx[:n_val].tolist())
        train_idx.extend(idx[n_val:].tolist())
    train = torch.tensor(rng.permutation(train_idx))
    val = torch.tensor(sorted(val_idx))
    if layout == "flat":
        x = images.flatten(1)
    elif layout == "sequence":
        x = images.squeeze(1)
    else:
        x = images
    x = x.contiguous()
    return Dataset(x[train], labels[train], x[val], labels[val], 10)
