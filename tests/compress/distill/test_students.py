from __future__ import annotations

import pytest
import torch
from torch import nn

from slimtune.compress.distill import (
    LowRankLinear,
    keep_every_kth_layer,
    low_rank,
    pruned_student,
    shrink_widths,
    shrinkable_layers,
)
from slimtune.testing import MLP, ResNetCNN, SmallCNN, TransformerClassifier


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _seeded(factory: type[nn.Module], seed: int = 0, **kwargs: object) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory(**kwargs).eval()


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_keep_every_kth_transformer_block_copies_the_teachers_weights() -> None:
    teacher = _seeded(TransformerClassifier, depth=4)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    x = torch.rand(3, 8, 8)
    student = keep_every_kth_layer(teacher, k=2, paths=("blocks",), example_inputs=x)
    assert len(student.blocks) == 2 and len(teacher.blocks) == 4
    for s_block, t_block in zip(
        student.blocks, (teacher.blocks[0], teacher.blocks[2]), strict=True
    ):
        for (ks, ps), (kt, pt) in zip(
            s_block.state_dict().items(), t_block.state_dict().items(), strict=True
        ):
            assert ks == kt and torch.equal(ps, pt)
    assert student(x).shape == (3, 10)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    one = keep_every_kth_layer(teacher, k=4, paths=("blocks",), example_inputs=x)
    assert len(one.blocks) == 1


def test_keep_every_kth_keeps_shape_changing_layers() -> None:
    mlp = _seeded(MLP, hidden=(32, 32, 32, 32))
    x = torch.rand(2, 64)
    student = keep_every_kth_layer(mlp, k=2, paths=("features",), example_inputs=x)
    # layer 0 (64 -> 32) changes the shape and stays; of the three 32 -> 32 layers, 1st and 3rd
    linears = [m for m in student.features if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 32), (32, 32)]
    assert torch.equal(linears[1].weight, mlp.features[2].weight)
    assert torch.equal(linears[2].weight, mlp.features[6].weight)
    assert isinstance(student.features[1], nn.ReLU)
    resnet = _seeded(ResNetCNN)
    xi = torch.rand(2, 1, 16, 16)
    small = keep_every_kth_layer(
        resnet, k=2, paths=("stages.0", "stages.1", "stages.2"), example_inputs=xi
    )
    assert [len(s) for s in small.stages] == [1, 2, 2]
    assert small(xi).shape == (2, 10)


def test_keep_every_kth_rejects_bad_input() -> None:
    mlp = _seeded(MLP)
    x = torch.rand(2, 64)
    with pytest.raises(ValueError, match="`k`"):
        keep_every_kth_layer(mlp, k=0, paths=("features",), example_inputs=x)
    with pytest.raises(ValueError, match="does not have"):
        keep_every_kth_layer(mlp, k=2, paths=("blocks",), example_inputs=x)
    with pytest.raises(TypeError, match=r"nn\.Sequential"):
        keep_every_kth_layer(mlp, k=2, paths=("head",), example_inputs=x)
    with pytest.raises(TypeError, match="`paths`"):
        keep_every_kth_layer(mlp, k=2, paths="features", example_inputs=x)


@pytest.mark.parametrize(
    ("factory", "kwargs", "shape", "expected"),
    [
        (MLP, {}, (4, 64), ["features.0", "features.2"]),
        (SmallCNN, {}, (4, 1, 16, 16), ["features.0", "features.4", "classifier.1"]),
        (TransformerClassifier, {"depth": 2}, (4, 8, 8), ["blocks.0.fc1", "blocks.1.fc1"]),
    ],
)
def test_shrink_widths_slices_the_teacher(
    factory: type[nn.Module], kwargs: dict[str, object], shape: tuple[int, ...], expected: list[str]
) -> None:
    teacher = _seeded(factory, **kwargs)
    x = torch.rand(*shape)
    assert shrinkable_layers(teacher, x) == expected
    same = shrink_widths(teacher, keep_ratio=1.0, example_inputs=x)
    torch.testing.assert_close(same(x), teacher(x))
    half = shrink_widths(teacher, keep_ratio=0.5, example_inputs=x)
    assert half(x).shape == teacher(x).shape
    assert _n(half) < _n(teacher)
    for name in expected:
        t_layer, s_layer = teacher.get_submodule(name), half.get_submodule(name)
        assert s_layer.weight.shape[0] == round(t_layer.weight.shape[0] / 2)


def test_shrink_widths_keeps_the_important_channels_exactly() -> None:
    teacher = _seeded(MLP, hidden=(16,))
    with torch.no_grad():  # hidden units 8..15 have no outgoing weight: they do not matter
        teacher.head.weight[:, 8:] = 0.0
    x = torch.rand(5, 64)
    student = shrink_widths(teacher, keep_ratio=0.5, example_inputs=x)
    assert student.features[0].out_features == 8
    torch.testing.assert_close(student(x), teacher(x))
    torch.testing.assert_close(student.features[0].weight, teacher.features[0].weight[:8])


def test_shrink_widths_keeps_batchnorm_statistics_and_rejects_bad_input() -> None:
    teacher = _seeded(SmallCNN, widths=(8, 16), image_size=8)
    x = torch.rand(3, 1, 8, 8)
    teacher.train()
    with torch.no_grad():
        teacher(torch.rand(16, 1, 8, 8))  # give BatchNorm non-trivial running stats
    teacher.eval()
    same = shrink_widths(teacher, keep_ratio=1.0, example_inputs=x, include=["features.0"])
    torch.testing.assert_close(same(x), teacher(x))
    with pytest.raises(ValueError, match="`keep_ratio`"):
        shrink_widths(teacher, keep_ratio=0.0, example_inputs=x)
    with pytest.raises(ValueError, match="not shrinkable"):
        shrink_widths(teacher, keep_ratio=0.5, example_inputs=x, include=["classifier.3"])


def test_low_rank_is_exact_for_low_rank_weights_and_shrinks() -> None:
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(40, 30)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(30, 3, generator=g) @ torch.randn(3, 40, generator=g))
    pair = LowRankLinear.from_linear(layer, 3)
    x = torch.randn(4, 40, generator=g)
    torch.testing.assert_close(pair(x), layer(x), rtol=1e-4, atol=1e-4)
    assert pair.rank == 3
    teacher = _seeded(TransformerClassifier, depth=1)
    student = low_rank(teacher, rank_ratio=0.25)
    assert _n(student) < _n(teacher)
    assert isinstance(student.blocks[0].fc1, LowRankLinear)
    assert isinstance(teacher.blocks[0].fc1, nn.Linear)
    assert isinstance(low_rank(teacher, rank_ratio=1.0).blocks[0].fc1, nn.Linear)  # no gain
    only = low_rank(teacher, rank_ratio=0.25, include=["blocks.0.fc2"])
    assert isinstance(only.blocks[0].fc1, nn.Linear)
    assert isinstance(only.blocks[0].fc2, LowRankLinear)
    with pytest.raises(ValueError, match="`rank_ratio`"):
        low_rank(teacher, rank_ratio=0.0)
    with pytest.raises(ValueError, match="`include`"):
        low_rank(teacher, rank_ratio=0.5, include=["blocks.0.ln1"])


def test_pruned_student_replays_a_prune_plan_on_a_copy() -> None:
    from slimtune.compress.prune import StructuredPruneConfig

    teacher = _seeded(SmallCNN)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    x = torch.rand(4, 1, 16, 16)
    student, plan = pruned_student(teacher, StructuredPruneConfig(ratio=0.5), example_inputs=x)
    assert _n(student) < _n(teacher) / 3
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    again, same_plan = pruned_student(teacher, plan)
    assert same_plan is plan
    torch.testing.assert_close(again(x), student(x))
    with pytest.raises(ValueError, match="`example_inputs`"):
        pruned_student(teacher, StructuredPruneConfig(ratio=0.5))
    with pytest.raises(TypeError, match="`plan_or_config`"):
        pruned_student(teacher, 0.5)  # type: ignore[arg-type]
