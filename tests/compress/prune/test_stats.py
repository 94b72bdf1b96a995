"""Model statistics: parameters, MACs by tracing, size on disk, latency."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from slimtune.compress.prune import count_macs, count_params, measure_latency, size_on_disk

torch.set_num_threads(1)


def test_counts_of_a_known_model() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    x = torch.randn(3, 2, 8, 8)
    assert count_params(model) == 4 * 2 * 9 + 144 * 5 + 5
    assert count_macs(model, x) == 3 * (4 * 6 * 6 * 2 * 9 + 144 * 5)
    model[2].weight.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 4 * 2 * 9 + 5
    assert size_on_disk(model) > 4 * count_params(model)


def test_latency_is_a_positive_median_and_restores_threads() -> None:
    model = nn.Linear(8, 8)
    before = torch.get_num_threads()
    t = measure_latency(model, torch.randn(2, 8), repeats=3, warmup=1, num_threads=1)
    assert t > 0
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="`repeats` must be an int >= 1"):
        measure_latency(model, torch.randn(2, 8), repeats=0)


def test_tied_weights_are_counted_and_saved_once(tmp_path: object) -> None:
    from pathlib import Path

    from slimtune.compress.prune import PrunePlan, load_pruned, save_pruned

    def tied() -> nn.Module:
        torch.manual_seed(0)
        m = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 10, bias=False))
        m[1].weight = m[0].weight
        return m

    model = tied()
    assert count_params(model) == 80
    assert size_on_disk(model) < 80 * 4 + 200
    save_pruned(model, Path(str(tmp_path)), PrunePlan())
    other = tied()
    with torch.no_grad():
        other[0].weight.zero_()
    load_pruned(other, Path(str(tmp_path)))
    assert torch.equal(other[0].weight, model[0].weight)
