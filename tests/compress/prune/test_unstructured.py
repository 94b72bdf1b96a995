"""Unstructured magnitude pruning: masks, global / layer scope, N:M, baking, gradual schedule."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from slimtune.compress.prune import (
    GradualPruner,
    UnstructuredPruneConfig,
    bake_,
    cubic_sparsity,
    magnitude_prune_,
    nm_mask,
    sparsity,
)
from slimtune.testing import MLP, fit, load_digits

torch.set_num_threads(1)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Conv1d(1, 4, 4), nn.Flatten(), nn.Linear(116, 3)
    )


def test_layer_scope_hits_the_target_in_every_layer_and_bakes() -> None:
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    w0 = model[0].weight.detach().clone()
    report = magnitude_prune_(model, UnstructuredPruneConfig(sparsity=0.75))
    assert report == {"0": 0.75, "2": 0.75}
    assert parametrize.is_parametrized(model[0], "weight")
    kept = model[0].weight != 0
    assert w0.abs()[kept].min() >= w0.abs()[~kept].max()  # the smallest were removed
    x = torch.randn(5, 16)
    y = model(x)
    bake_(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert type(model[0].weight) is nn.Parameter
    assert torch.equal(model(x), y)
    assert sparsity(model) == pytest.approx(0.75)
    assert set(model.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_global_scope_ranks_all_layers_together() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model[0].weight.uniform_(-0.1, 0.1, generator=gen)
        model[1].weight.uniform_(1.0, 2.0, generator=gen)
    report = magnitude_prune_(model, UnstructuredPruneConfig(sparsity=0.5, scope="global"))
    assert report["0"] == 1.0 and report["1"] == 0.0


def test_two_four_masks() -> None:
    w = torch.randn(6, 8)
    mask = nm_mask(w, 2, 4)
    assert torch.equal(mask.reshape(6, 2, 4).sum(-1), torch.full((6, 2), 2.0))
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    magnitude_prune_(model, UnstructuredPruneConfig(n_m=(2, 4)))
    assert sparsity(model) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not a multiple of m=4"):
        magnitude_prune_(nn.Linear(6, 2), UnstructuredPruneConfig(n_m=(2, 4)))


def test_ignore_and_bad_config() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    report = magnitude_prune_(model, UnstructuredPruneConfig(sparsity=0.5, ignore=("1",)))
    assert set(report) == {"0"}
    with pytest.raises(ValueError, match=r"`ignore` names \['x'\]"):
        magnitude_prune_(model, UnstructuredPruneConfig(ignore=("x",)))
    with pytest.raises(ValueError, match=r"`sparsity` must be in \[0, 1\)"):
        UnstructuredPruneConfig(sparsity=1.0)
    with pytest.raises(ValueError, match="`n_m`"):
        UnstructuredPruneConfig(n_m=(4, 2))


def test_cubic_schedule() -> None:
    s = [cubic_sparsity(t, initial=0.0, final=0.8, begin=0, end=10) for t in range(12)]
    assert s[0] == 0.0 and s[10] == s[11] == 0.8
    assert all(a <= b for a, b in itertools.pairwise(s))
    assert s[5] == pytest.approx(0.8 * (1 - 0.5**3))


def test_gradual_pruning_during_training() -> None:
    data = load_digits(layout="flat")
    model = MLP(hidden=(64,))
    pruner = GradualPruner(model, final_sparsity=0.8, end_step=3)
    acc = fit(model, data, epochs=4, lr=3e-3, on_epoch_end=pruner)
    assert pruner.current == pytest.approx(0.8)
    assert sparsity(model) == pytest.approx(0.8, abs=0.01)
    assert acc > 0.8
    bake_(model)
    assert sparsity(model) == pytest.approx(0.8, abs=0.01)
    with pytest.raises(ValueError, match="begin_step"):
        GradualPruner(model, final_sparsity=0.5, end_step=0)
