"""Conformance of structured pruning on every reference model and with every criterion."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from slimtune.compress.prune import (
    FPGM,
    BNScale,
    L1Magnitude,
    L2Magnitude,
    PrunePlan,
    RandomImportance,
    StructuredPruneConfig,
    Taylor,
    apply_plan_,
    count_params,
    find_groups,
    prune_,
    save_pruned,
)
from tests.compress.prune._models import MODELS, make

torch.set_num_threads(1)
NAMES = sorted(MODELS)


def _no_leftovers(model: nn.Module) -> None:
    for m in model.modules():
        assert not parametrize.is_parametrized(m)
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        assert not any("mask" in n or "orig" in n for n, _ in m.named_buffers(recurse=False))


@pytest.mark.parametrize("name", NAMES)
def test_ratio_zero_changes_nothing(name: str) -> None:
    model, x = make(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = prune_(model, StructuredPruneConfig(ratio=0.0), example_inputs=x)
    assert plan.entries == ()
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", NAMES)
def test_prune_shrinks_keeps_shapes_and_replays(name: str) -> None:
    model, x = make(name)
    fresh = copy.deepcopy(model)
    y0 = model(x)
    plan = prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=x)
    y = model(x)
    assert y.shape == y0.shape
    assert count_params(model) < 0.6 * count_params(fresh)
    _no_leftovers(model)
    assert all(type(p) is nn.Parameter for p in model.parameters())
    replayed = apply_plan_(fresh, PrunePlan.from_json(plan.to_json()))
    replayed.load_state_dict(model.state_dict())
    assert torch.equal(replayed(x), y)
    # the replay alone (before loading weights) reproduces the pruned weights exactly
    again, _ = make(name)
    apply_plan_(again, plan)
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True)
    )


def test_transformer_prunes_heads_and_mlp_neurons() -> None:
    model, x = make("transformer")
    prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=x)
    for block in model.blocks:
        assert block.attn.num_heads == 2
        assert block.attn.q.out_features == 2 * block.attn.head_dim
        assert block.fc1.out_features == 128
    assert model(x).shape == (4, 10)


_SCRIPT = """
import sys, json, torch
from safetensors.torch import load_file
from tests.compress.prune._models import make
from slimtune.compress.prune import load_pruned
out = {}
for name in sys.argv[2:]:
    model, _ = make(name, seed=5)
    load_pruned(model, f"{sys.argv[1]}/{name}")
    x = load_file(f"{sys.argv[1]}/{name}/io.safetensors")
    out[name] = bool(torch.equal(model(x["x"]), x["y"]))
print(json.dumps(out))
"""


def test_pruned_models_load_in_a_fresh_process(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    for name in NAMES:
        model, x = make(name)
        plan = prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=x)
        save_pruned(model, tmp_path / name, plan)
        save_file({"x": x, "y": model(x).detach()}, str(tmp_path / name / "io.safetensors"))
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path), *NAMES],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == dict.fromkeys(NAMES, True)


def _criteria(model: nn.Module, x: torch.Tensor) -> dict[str, object]:
    y = model(x).argmax(1)
    return {
        "l1": L1Magnitude(),
        "l2": L2Magnitude(),
        "bn_scale": BNScale(),
        "fpgm": FPGM(),
        "taylor": Taylor([(x, y)]),
        "random": RandomImportance(seed=3),
    }


@pytest.mark.parametrize("criterion", ["l1", "l2", "bn_scale", "fpgm", "taylor", "random"])
@pytest.mark.parametrize("name", NAMES)
def test_every_criterion(name: str, criterion: str) -> None:
    model, x = make(name)
    crit = _criteria(model, x)[criterion]
    if hasattr(crit, "prepare"):
        crit.prepare(model)
    for g in find_groups(model, x):
        scores = crit(g)  # type: ignore[operator]
        assert scores.shape == (g.size,)
        assert torch.isfinite(scores).all()
    plan = prune_(model, StructuredPruneConfig(ratio=0.3), example_inputs=x, criterion=crit)  # type: ignore[arg-type]
    assert plan.entries
    assert model(x).shape == (4, 10)


def test_l1_removes_the_weakest_filters() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    with torch.no_grad():
        for i, scale in enumerate([1.0, 0.01, 2.0, 0.02]):
            model[0].weight[i].fill_(scale)
            model[2].weight[:, i].fill_(scale)
    plan = prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=torch.randn(1, 1, 8, 8))
    assert {(e.name, e.role): e.keep for e in plan.entries}[("0", "out")] == (0, 2)


def test_global_scope_and_per_layer_ratios_and_rounding() -> None:
    model, x = make("resnet")
    cfg = StructuredPruneConfig(ratio=0.4, scope="global", round_to=8, per_layer={"stem": 0.0})
    prune_(model, cfg, example_inputs=x)
    assert model.stem[0].out_channels == 16
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.out_channels != 16:
            assert m.out_channels % 8 == 0
    assert model(x).shape == (4, 10)


def test_ignore_keeps_those_channels() -> None:
    model, x = make("mlp")
    prune_(model, StructuredPruneConfig(ratio=0.5, ignore=("features.0",)), example_inputs=x)
    assert model.features[0].out_features == 256
    assert model.features[2].out_features == 64


def test_config_round_trips_and_plans_compose() -> None:
    cfg = StructuredPruneConfig(ratio=0.3, per_layer={"head": 0.1}, ignore=("stem",), round_to=8)
    assert StructuredPruneConfig(**cfg.to_dict()) == cfg
    model, x = make("mlp")
    fresh = copy.deepcopy(model)
    first = prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=x)
    second = prune_(model, StructuredPruneConfig(ratio=0.5), example_inputs=x)
    both = first.then(second)
    assert {(e.name, e.role): e.size for e in both.entries}[("features.0", "out")] == 256
    apply_plan_(fresh, both)
    assert torch.equal(fresh(x), model(x))
