"""Shared fixtures: one trained SmallCNN on digits for the accuracy tests (trained once)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch

from slimtune.testing import Dataset, SmallCNN, fit, load_digits


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_digits(layout="image", image_size=16, seed=0)


@pytest.fixture(scope="session")
def trained_cnn(digits: Dataset) -> tuple[SmallCNN, float]:
    torch.set_num_threads(1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SmallCNN(widths=(16, 32))
    acc = fit(model, digits, epochs=4, seed=0)
    return model, acc


@pytest.fixture
def cnn(trained_cnn: tuple[SmallCNN, float]) -> SmallCNN:
    return copy.deepcopy(trained_cnn[0])
