"""Tasks, supernets and training helpers for ``bench/supernet.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from slimtune.nas import CNNSupernet, MLPSupernet, Supernet, recalibrate_bn_
from slimtune.testing import Dataset, accuracy, fit, load_digits


@dataclass(frozen=True)
class Task:
    name: str
    data: Dataset  # images (N, 1, S, S)
    # the source image of each validation image (copies of one image share it), or None
    val_groups: torch.Tensor | None = None


VAL_FRACTION = 0.3  # 539 validation images: less evaluation noise in the rankings


def digits_task() -> Task:
    return Task("digits", load_digits(layout="image", image_size=8, val_fraction=VAL_FRACTION))


def noisy_digits_task(seed: int = 0, *, copies: int = 1) -> Task:
    """A harder task generated from digits: every image shifted by up to 1 pixel in each
    direction, its contrast scaled by U(0.6, 1.0) and Gaussian noise (sigma 0.15) added. The
    transform is drawn once per image (a fixed data set, not augmentation); a one-layer MLP of
    width 8 reaches about 44% and one of width 128 x 128 about 76%. ``copies`` independent
    corruptions of every image are drawn (training and validation images alike, so no digit
    image is on both sides): more data, less seed-to-seed spread."""
    if copies < 1:
        raise ValueError(f"`copies` must be >= 1, got {copies}.")
    base = load_digits(layout="image", image_size=8, val_fraction=VAL_FRACTION)
    g = torch.Generator().manual_seed(seed)

    def corrupt(x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        padded = F.pad(x, (1, 1, 1, 1))
        dx = torch.randint(0, 3, (n,), generator=g)
        dy = torch.randint(0, 3, (n,), generator=g)
        out = torch.stack(
            [
                padded[i, :, int(dy[i]) : int(dy[i]) + 8, int(dx[i]) : int(dx[i]) + 8]
                for i in range(n)
            ]
        )
        contrast = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.0, generator=g)
        return (out * contrast + 0.15 * torch.randn(out.shape, generator=g)).contiguous()

    x_train = torch.cat([corrupt(base.x_train) for _ in range(copies)])
    x_val = torch.cat([corrupt(base.x_val) for _ in range(copies)])
    data = Dataset(x_train, base.y_train.repeat(copies), x_val, base.y_val.repeat(copies), 10)
    if copies == 1:
        return Task("noisy-digits", data)
    groups = torch.arange(len(base.x_val)).repeat(copies)
    return Task(f"noisy-digits-{copies}x", data, val_groups=groups)


def make_task(name: str) -> Task:
    """``digits``, ``noisy-digits`` or ``noisy-digits-Nx`` (N corrupted copies of each image)."""
    if name == "digits":
        return digits_task()
    if name == "noisy-digits":
        return noisy_digits_task()
    if name.startswith("noisy-digits-") and name.endswith("x") and name[13:-1].isdigit():
        return noisy_digits_task(copies=int(name[13:-1]))
    raise ValueError(
        f"unknown task {name!r}; use digits, noisy-digits or noisy-digits-Nx (for example "
        "noisy-digits-6x)."
    )


def split_validation(
    data: Dataset, *, seed: int = 0, groups: torch.Tensor | None = None
) -> tuple[Dataset, Dataset]:
    """Two halves of the validation images (stratified by class, drawn with ``seed``), each as a
    data set with the full training split: one to search on, one held out to score the search's
    front points. A front point is the best of many noisy scores on the half it was selected
    on, so it is only judged fairly on images the search never saw. ``groups`` (one id per
    validation image) keeps every group on one side: corrupted copies of one source image."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(len(data.y_val)) if groups is None else groups
    first, second = [], []
    for c in range(data.num_classes):
        members = ids[data.y_val == c].unique()
        members = members[torch.randperm(len(members), generator=g)]
        first.append(members[: len(members) // 2])
        second.append(members[len(members) // 2 :])
    halves = tuple(
        torch.nonzero(torch.isin(ids, torch.cat(side))).flatten() for side in (first, second)
    )
    return tuple(  # type: ignore[return-value]
        Dataset(data.x_train, data.y_train, data.x_val[h], data.y_val[h], data.num_classes)
        for h in halves
    )


def make_supernet(
    family: str,
    seed: int,
    *,
    zero_init_residual: bool = False,
    mlp_norm: Literal["none", "batch", "layer"] = "none",
    mlp_head: Literal["shared", "per_depth"] = "shared",
) -> Supernet:
    torch.manual_seed(seed)
    if family == "mlp":
        return MLPSupernet(
            64,
            10,
            width_choices=(8, 16, 32, 64, 128, 256),
            depth_choices=(1, 2, 3, 4),
            norm=mlp_norm,
            head=mlp_head,
        )
    if family == "cnn":
        return CNNSupernet(
            1,
            10,
            stage_widths=((4, 8, 16), (8, 16, 32), (16, 32, 64)),
            depth_choices=(1, 2, 3),
            kernel_choices=(3, 5),
            stem_width=16,
            zero_init_residual=zero_init_residual,
        )
    raise ValueError(family)


def batches(
    data: Dataset, *, batch_size: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.x_train), generator=g)
    return [
        (data.x_train[order[i : i + batch_size]], data.y_train[order[i : i + batch_size]])
        for i in range(0, len(order), batch_size)
    ]


class _Reshuffled:
    """Re-iterable batches, reshuffled every epoch with a seeded generator."""

    def __init__(self, data: Dataset, batch_size: int, seed: int) -> None:
        self.data, self.batch_size, self.epoch, self.seed = data, batch_size, 0, seed

    def __iter__(self) -> Any:
        self.epoch += 1
        return iter(
            batches(self.data, batch_size=self.batch_size, seed=self.seed * 1000 + self.epoch)
        )


def epoch_batches(data: Dataset, *, batch_size: int = 64, seed: int = 0) -> _Reshuffled:
    return _Reshuffled(data, batch_size, seed)


def reinit(module: nn.Module, seed: int, *, zero_init_residual: bool = False) -> nn.Module:
    """Fresh weights for a stand-alone run of an extracted architecture (same shapes); with
    ``zero_init_residual`` the BatchNorm scale of every residual block starts at 0, as the
    supernet's does."""
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.BatchNorm1d | nn.BatchNorm2d | nn.LayerNorm):
            m.reset_parameters()
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.reset_running_stats()
    if zero_init_residual:
        for m in module.modules():
            bn = getattr(m, "bn", None)
            if getattr(m, "residual", False) and isinstance(bn, nn.BatchNorm2d):
                nn.init.zeros_(bn.weight)
    return module


def standalone_accuracy(
    sub: nn.Module,
    data: Dataset,
    *,
    epochs: int,
    lr: float,
    seed: int,
    weight_decay: float = 0.0,
    lr_schedule: Literal["constant", "cosine"] = "constant",
    zero_init_residual: bool = False,
) -> float:
    model = reinit(sub, seed, zero_init_residual=zero_init_residual)
    return fit(
        model,
        data,
        epochs=epochs,
        lr=lr,
        seed=seed,
        weight_decay=weight_decay,
        lr_schedule=lr_schedule,
    )


def activate_recalibrated(net: Supernet, arch: dict[str, Any], recal: Any) -> None:
    """Activate ``arch`` in eval mode, its BatchNorm statistics re-estimated on ``recal`` first
    when given: how a sub-network is scored with inherited weights."""
    net.set_arch(arch)
    net.eval()
    if recal is not None:
        recalibrate_bn_(net, recal, arch=arch)


def inherited_accuracy(net: Supernet, arch: dict[str, Any], data: Dataset, recal: Any) -> float:
    """Validation accuracy of ``arch`` with inherited weights (see ``activate_recalibrated``)."""
    activate_recalibrated(net, arch, recal)
    return val_accuracy(net, data)


def val_accuracy(model: nn.Module, data: Dataset) -> float:
    return accuracy(model, data.x_val, data.y_val)


def hypervolume_2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both coordinates minimised) up to ``ref``."""
    pts = sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1])
    area, best_y = 0.0, ref[1]
    for x, y in pts:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def stratified_archs(net: Supernet, k: int, *, seed: int, pool: int = 3000) -> list[dict[str, Any]]:
    """``k`` distinct architectures, one from each of ``k`` parameter-count quantile bins."""
    from slimtune.nas import count_params

    rng = np.random.default_rng(seed)
    seen: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
    for _ in range(pool):
        arch = net.sample_arch(rng)
        key = tuple(sorted(arch.items()))
        if key not in seen:
            seen[key] = (count_params(net.extract(arch)), arch)
    ranked = sorted(seen.values(), key=lambda t: t[0])
    bins = np.array_split(np.arange(len(ranked)), k)
    return [ranked[int(rng.choice(b))][1] for b in bins if len(b)]
