from __future__ import annotations

import contextlib
import itertools

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


def _lrs_per_epoch(net: MLPSupernet, epochs: int, **kwargs: object) -> list[float]:
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    seen: list[float] = []
    train_supernet(
        net,
        _toy_batches()[:2],
        epochs=epochs,
        optimizer=opt,
        on_epoch_end=lambda e, loss: seen.append(opt.param_groups[0]["lr"]),
        **kwargs,  # type: ignore[arg-type]
    )
    return seen


def test_cosine_schedule_warms_up_then_decays_and_constant_leaves_lr_alone() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = MLPSupernet(16, 5, width_choices=(8, 16), depth_choices=(1, 2))
    assert _lrs_per_epoch(net, 3) == [0.1, 0.1, 0.1]
    lrs = _lrs_per_epoch(net, 6, lr_schedule="cosine", lr_warmup_epochs=2)
    assert lrs[:2] == pytest.approx([0.1 / 3, 0.2 / 3])
    expected = [0.05 * (1 + np.cos(np.pi * t / 4)) for t in range(4)]
    assert lrs[2:] == pytest.approx(expected)
    assert lrs[2] == pytest.approx(0.1) and all(a > b for a, b in itertools.pairwise(lrs[2:]))


def test_cosine_schedule_resumes_from_a_checkpoint(tmp_path) -> None:
    def run(directory: object, stop_after: int | None = None) -> list[float]:
        torch.manual_seed(0)
        net = MLPSupernet(16, 5, width_choices=(8, 16), depth_choices=(1, 2))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        seen: list[float] = []

        def record(epoch: int, loss: float) -> None:
            seen.append(opt.param_groups[0]["lr"])
            if epoch == stop_after:
                raise KeyboardInterrupt

        with contextlib.suppress(KeyboardInterrupt):
            train_supernet(
                net,
                _toy_batches()[:2],
                epochs=4,
                optimizer=opt,
                lr_schedule="cosine",
                checkpoint_dir=directory,
                on_epoch_end=record,
            )
        return seen

    whole = run(tmp_path / "whole")
    assert run(tmp_path / "split", stop_after=1) == whole[:2]
    assert run(tmp_path / "split") == pytest.approx(whole[2:])


def test_bad_schedule_arguments_are_rejected_before_training() -> None:
    net = make("mlp")[0]
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match="`lr_schedule` must be 'constant' or 'cosine'"):
        train_supernet(net, _toy_batches(), epochs=2, lr_schedule="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`lr_warmup_epochs` must be an integer in"):
        train_supernet(net, _toy_batches(), epochs=2, lr_schedule="cosine", lr_warmup_epochs=2)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
