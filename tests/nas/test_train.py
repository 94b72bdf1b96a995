from __future__ import annotations

import numpy as np
import pytest
import torch

from slimtune.nas import MLPSupernet, SandwichConfig, load_checkpoint, train_supernet
from tests.nas._supernets import make


def _toy_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g)
    y = (x[:, :5].argmax(dim=1)).long()
    return [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]


def _accuracy(net: MLPSupernet, arch: dict[str, int], batches: list) -> float:
    net.set_arch(arch)
    with torch.no_grad():
        correct = sum(int((net(x).argmax(1) == y).sum()) for x, y in batches)
    return correct / sum(len(y) for _, y in batches)


def test_sandwich_training_trains_largest_and_smallest_subnetworks() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = MLPSupernet(16, 5, width_choices=(8, 16, 32), depth_choices=(1, 2))
    batches = _toy_batches()
    small, large = net.smallest_arch(), net.largest_arch()
    before = _accuracy(net, small, batches), _accuracy(net, large, batches)
    losses = train_supernet(net, batches, epochs=15, lr=1e-2, config=SandwichConfig(n_random=1))
    after = _accuracy(net, small, batches), _accuracy(net, large, batches)
    assert losses[-1] < losses[0]
    assert after[0] > max(before[0], 0.6) and after[1] > max(before[1], 0.6)
    assert not net.training and net.arch == large


@pytest.mark.parametrize(
    "config", [SandwichConfig(warmup_epochs=2), SandwichConfig(progressive=True, n_random=1)]
)
def test_warmup_and_progressive_shrinking_run(config: SandwichConfig) -> None:
    net, _ = make("cnn")
    x = torch.randn(16, 1, 12, 12)
    y = torch.randint(0, 5, (16,))
    losses = train_supernet(net, [(x, y)], epochs=4, config=config)
    assert len(losses) == 4 and all(np.isfinite(losses))


def test_checkpoint_resume_continues_where_it_stopped(tmp_path) -> None:
    torch.manual_seed(0)
    net = MLPSupernet(16, 5, width_choices=(8, 16), depth_choices=(1, 2))
    batches = _toy_batches()
    first = train_supernet(net, batches, epochs=2, checkpoint_dir=tmp_path)
    assert (
        load_checkpoint(MLPSupernet(16, 5, width_choices=(8, 16), depth_choices=(1, 2)), tmp_path)[
            "epoch"
        ]
        == 1
    )
    rest = train_supernet(net, batches, epochs=4, checkpoint_dir=tmp_path)
    assert len(first) == 2 and len(rest) == 2  # epochs 2 and 3 only
    assert (tmp_path / "supernet.safetensors").exists()
    with pytest.raises(ValueError, match="holds a 'MLPSupernet'"):
        load_checkpoint(make("cnn")[0], tmp_path)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"slimtune\.nas\.Supernet"):
        train_supernet(torch.nn.Linear(2, 2), [], epochs=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_random"):
        SandwichConfig(n_random=-1)
    with pytest.raises(ValueError, match="epochs"):
        train_supernet(make("mlp")[0], [], epochs=-1)
