"""Building blocks of ``bench/distill.py``: teachers, students at a parameter budget, arms."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from slimtune.compress.distill import (
    DistillConfig,
    distill,
    keep_every_kth_layer,
    shrink_widths,
)
from slimtune.testing import Dataset, SmallCNN, TransformerClassifier, fit, load_digits

ARMS = ("labels", "kd_random", "kd_teacher_init", "labels_teacher_init")
ARM_TITLES = {
    "labels": "(a) labels only, random init",
    "kd_random": "(b) KD, random init",
    "kd_teacher_init": "(c) KD, teacher-initialised",
    "labels_teacher_init": "(d) labels only, teacher-initialised (control)",
}


@dataclass(frozen=True)
class TeacherSpec:
    name: str
    layout: str
    image_size: int
    build: Callable[[], nn.Module]
    depth_paths: tuple[str, ...]  # nn.Sequential(s) of blocks for keep_every_kth_layer
    depth_k: dict[int, int]  # budget denominator -> k (1 = keep every block)


TEACHERS = {
    "cnn": TeacherSpec(
        "SmallCNN (32, 64), 16x16",
        "image",
        16,
        lambda: SmallCNN(widths=(32, 64), image_size=16),
        (),
        {},
    ),
    "transformer": TeacherSpec(
        "TransformerClassifier dim 64, depth 4",
        "sequence",
        8,
        lambda: TransformerClassifier(dim=64, depth=4, num_heads=4),
        ("blocks",),
        {4: 2, 8: 4},
    ),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model with its initialisation drawn from ``seed`` (global RNG restored after)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` (same architecture) with fresh, seeded default initialisation."""
    out = copy.deepcopy(model)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for module in out.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            if isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
        if isinstance(out, TransformerClassifier):
            nn.init.normal_(out.pos, std=0.02)
    return out


def data_for(spec: TeacherSpec) -> Dataset:
    return load_digits(layout=spec.layout, image_size=spec.image_size)  # type: ignore[arg-type]


def train_teacher(spec: TeacherSpec, data: Dataset, *, epochs: int, seed: int = 0) -> nn.Module:
    teacher = seeded(spec.build, seed)
    fit(teacher, data, epochs=epochs, lr=2e-3, seed=seed)
    return teacher.eval()


def student_at_budget(
    spec: TeacherSpec, teacher: nn.Module, data: Dataset, denominator: int
) -> tuple[nn.Module, dict[str, Any]]:
    """The teacher-initialised student with at most 1/denominator of the teacher's parameters:
    keep every k-th block (transformer), then the largest ``shrink_widths`` keep ratio that fits
    (bisection)."""
    x = data.x_train[:16]
    budget = n_params(teacher) / denominator
    base = teacher
    k = spec.depth_k.get(denominator, 1)
    if spec.depth_paths and k > 1:
        base = keep_every_kth_layer(teacher, k=k, paths=spec.depth_paths, example_inputs=x)
    lo, hi = 0.01, 1.0
    if n_params(base) <= budget:
        return base, {"k": k, "keep_ratio": 1.0}
    for _ in range(20):
        mid = (lo + hi) / 2
        if n_params(shrink_widths(base, keep_ratio=mid, example_inputs=x)) <= budget:
            lo = mid
        else:
            hi = mid
    student = shrink_widths(base, keep_ratio=lo, example_inputs=x)
    return student, {"k": k, "keep_ratio": round(lo, 4)}


def run_arm(
    arm: str,
    student_init: nn.Module,
    teacher: nn.Module,
    data: Dataset,
    *,
    seed: int,
    epochs: int,
    lr: float,
    temperature: float,
    alpha: float,
    train_fraction: float,
) -> dict[str, Any]:
    """Train one student arm; every arm gets the same data, batches (seed), optimizer and epochs."""
    student = (
        reinitialise(student_init, 1000 + seed)
        if arm in ("labels", "kd_random")
        else copy.deepcopy(student_init)
    )
    kd = arm.startswith("kd")
    n = max(1, round(train_fraction * len(data.x_train)))
    config = DistillConfig(temperature=temperature, alpha=alpha if kd else 0.0, cache_teacher=True)
    t0 = time.process_time()
    result = distill(
        student,
        teacher,
        (data.x_train[:n], data.y_train[:n]),
        (data.x_val, data.y_val),
        epochs=epochs,
        config=config,
        optimizer=lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.0),
        batch_size=64,
        seed=seed,
    )
    return {
        "arm": arm,
        "seed": seed,
        "val_accuracy": result.val_accuracy,
        "curve": [r.val_accuracy for r in result.history],
        "cpu_s": time.process_time() - t0,
    }
