"""Redundancy merging: planted duplicate / scaled-copy neurons and filters fold away exactly."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from slimtune.compress.prune import apply_plan_, merge_redundant_

torch.set_num_threads(1)


def test_planted_duplicate_and_scaled_neurons() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    with torch.no_grad():
        model[0].weight[5] = model[0].weight[2]
        model[0].bias[5] = model[0].bias[2]
        model[0].weight[9] = 2.5 * model[0].weight[3]
        model[0].bias[9] = 2.5 * model[0].bias[3]
    x = torch.randn(256, 8)
    y = model(x)
    report = merge_redundant_(model, x)
    assert report.merged == {"0": [(5, 2, pytest.approx(1.0)), (9, 3, pytest.approx(2.5))]}
    assert model[0].out_features == 14 and model[2].in_features == 14
    fresh = torch.randn(64, 8)
    assert (model(x) - y).abs().max() < 1e-5
    assert model(fresh).shape == (64, 4)


def test_planted_duplicate_filters_through_bn_and_flatten() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 6, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 5 * 5, 3),
    ).eval()
    with torch.no_grad():
        for conv, bn, (src, dst) in ((model[0], model[1], (1, 6)), (model[3], None, (0, 4))):
            conv.weight[dst] = conv.weight[src]
            conv.bias[dst] = conv.bias[src]
            if bn is not None:
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_mean[dst] = bn.running_mean[src]
                bn.running_var[dst] = bn.running_var[src]
    x = torch.randn(16, 3, 5, 5)
    y = model(x)
    before = copy.deepcopy(model)
    report = merge_redundant_(model, x)
    assert report.removed == 2
    assert model[0].out_channels == 7 and model[1].num_features == 7
    assert model[3].out_channels == 5 and model[6].in_features == 5 * 25
    assert (model(x) - y).abs().max() < 1e-5
    # the plan alone (without the folding) replays the shapes on a fresh copy
    apply_plan_(before, report.plan)
    assert before(x).shape == y.shape


def test_nothing_to_merge_and_bad_tol() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    report = merge_redundant_(model, torch.randn(64, 8))
    assert report.removed == 0 and report.plan.entries == ()
    with pytest.raises(ValueError, match="`tol` must be in"):
        merge_redundant_(model, torch.randn(4, 8), tol=2.0)
