"""Bad input: clear errors naming the culprit, and the model left unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from slimtune.compress.prune import (
    ChannelGroup,
    PrunePlan,
    StructuredPruneConfig,
    apply_plan_,
    prune_,
)
from slimtune.exceptions import PlanMismatchError, PruneTraceError, UnsupportedModuleError
from tests.compress.prune._models import make

torch.set_num_threads(1)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(model: nn.Module, snap: dict[str, torch.Tensor]) -> bool:
    state = model.state_dict()
    return state.keys() == snap.keys() and all(torch.equal(state[k], snap[k]) for k in snap)


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: not traceable
            return self.fc(x)
        return -self.fc(x)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.block = _Branchy()
        self.fc2 = nn.Linear(16, 8)
        self.gate = nn.PReLU(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


def test_untraceable_model_names_the_module() -> None:
    model = nn.Sequential(nn.Linear(8, 8), _Branchy(), nn.Linear(8, 2))
    snap = _snapshot(model)
    with pytest.raises(PruneTraceError, match=r"module '1' \(_Branchy\)"):
        prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=torch.randn(2, 8))
    assert _same(model, snap)


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.2])
def test_ratio_outside_range(ratio: float) -> None:
    with pytest.raises(ValueError, match=r"`ratio` must be in \[0, 1\)"):
        StructuredPruneConfig(ratio=ratio)
    with pytest.raises(ValueError, match=r"per_layer\['fc'\]"):
        StructuredPruneConfig(per_layer={"fc": ratio})


def test_unknown_ignore_names() -> None:
    model, x = make("mlp")
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=r"`ignore` names \['nope'\]"):
        prune_(model, StructuredPruneConfig(ignore=("nope",)), example_inputs=x)
    with pytest.raises(ValueError, match=r"`per_layer` names \['nah'\]"):
        prune_(model, StructuredPruneConfig(per_layer={"nah": 0.2}), example_inputs=x)
    assert _same(model, snap)


class _Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.bil = nn.Bilinear(16, 16, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        return self.out(self.bil(h, h))


def test_module_without_handler() -> None:
    model = _Pair()
    snap = _snapshot(model)
    with pytest.raises(UnsupportedModuleError, match=r"'bil' \(Bilinear\).*ignore=\['bil'\]"):
        prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=torch.randn(2, 8))
    assert _same(model, snap)
    cfg = StructuredPruneConfig(ratio=0.5, ignore=("bil",))
    prune_(model, cfg, example_inputs=torch.randn(2, 8))
    assert model.fc.out_features == 16 and model.bil.out_features == 4


def test_plan_on_a_different_model() -> None:
    model, x = make("mlp")
    plan = prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=x)
    other = nn.Sequential(nn.Linear(64, 10))
    snap = _snapshot(other)
    with pytest.raises(PlanMismatchError, match="does not have"):
        apply_plan_(other, plan)
    assert _same(other, snap)
    with pytest.raises(PlanMismatchError, match="expects 256 channels"):
        apply_plan_(model, plan)  # already pruned
    with pytest.raises(PlanMismatchError):
        PrunePlan.from_json('{"version": 99}')


def test_missing_example_inputs() -> None:
    model, _ = make("mlp")
    with pytest.raises(ValueError, match="example_inputs"):
        prune_(model, StructuredPruneConfig())


def test_groups_declared_by_hand_for_an_untraceable_model() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), _Branchy(), nn.Linear(8, 2))
    model[2].fc = nn.Linear(16, 8)
    x = torch.randn(3, 8)
    groups = [ChannelGroup(members=(("0", "out"), ("2.fc", "in")))]
    plan = prune_(model, StructuredPruneConfig(ratio=0.5), groups=groups)
    assert model[0].out_features == 8 and model[2].fc.in_features == 8
    assert model(x).shape == (3, 2)
    assert {e.name for e in plan.entries} == {"0", "2.fc"}
    with pytest.raises(ValueError, match="role in"):
        ChannelGroup(members=(("0", "weights"),))


def test_ignore_applies_to_groups_declared_by_hand() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    groups = [ChannelGroup(members=(("0", "out"), ("2", "in")))]
    plan = prune_(model, StructuredPruneConfig(ratio=0.5, ignore=("2",)), groups=groups)
    assert plan.entries == () and model[0].out_features == 16
