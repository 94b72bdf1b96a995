from __future__ import annotations

import math

import pytest
import torch

from slimtune.nas import (
    ELASTIC_TYPES,
    MLPSupernet,
    SandwichConfig,
    extract,
    finetune_subnet,
    train_supernet,
)


def _data() -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g)
    y = x[:, :4].argmax(dim=1)
    return x, y, [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]


def _trained() -> MLPSupernet:
    torch.manual_seed(0)
    net = MLPSupernet(16, 4, width_choices=(8, 16, 32), depth_choices=(1, 2), norm="batch")
    train_supernet(net, _data()[2], epochs=2, config=SandwichConfig(n_random=1))
    return net


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def test_extract_fine_tunes_the_copy_and_leaves_the_supernet_alone() -> None:
    net = _trained()
    x, y, batches = _data()
    arch = {"depth": 2, "width0": 8, "width1": 8}
    before = {k: v.clone() for k, v in net.state_dict().items()}
    plain = extract(net, arch)
    losses: list[float] = []
    tuned = extract(
        net, arch, finetune=lambda m: losses.extend(finetune_subnet(m, batches, epochs=8, lr=1e-2))
    )
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert not any(isinstance(m, ELASTIC_TYPES) for m in tuned.modules())
    assert not tuned.training  # left ready to evaluate
    assert _accuracy(tuned, x, y) > _accuracy(plain.eval(), x, y)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_distillation_from_the_largest_moves_towards_the_teacher() -> None:
    net = _trained()
    _, _, batches = _data()
    teacher = extract(net, net.largest_arch()).train()
    student = extract(net, net.smallest_arch())
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    history = finetune_subnet(
        student, batches, epochs=6, lr=1e-2, teacher=teacher, temperature=2.0, lr_schedule="cosine"
    )
    assert history[-1] < history[0]
    assert teacher.training  # its mode is restored, its weights untouched
    assert all(torch.equal(teacher_state[k], v) for k, v in teacher.state_dict().items())


def test_bad_input_names_the_parameter() -> None:
    net = _trained()
    _, _, batches = _data()
    sub = extract(net, net.smallest_arch())
    with pytest.raises(ValueError, match="`epochs`"):
        finetune_subnet(sub, batches, epochs=-1)
    with pytest.raises(ValueError, match="`temperature`"):
        finetune_subnet(sub, batches, epochs=1, teacher=sub, temperature=0.0)
    with pytest.raises(TypeError, match="largest_arch"):
        finetune_subnet(sub, batches, epochs=1, teacher="largest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`lr_schedule`"):
        finetune_subnet(sub, batches, epochs=1, lr_schedule="step")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no batch"):
        finetune_subnet(sub, [], epochs=1)
    with pytest.raises(TypeError, match="`finetune` must be a callable"):
        extract(net, net.smallest_arch(), finetune=3)  # type: ignore[arg-type]
    nan = [(torch.full((4, 16), math.nan), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(FloatingPointError, match="lower `lr`"):
        finetune_subnet(sub, nan, epochs=1)
