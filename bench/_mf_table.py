"""Builder of the tabular learning-curve benchmark: an MLP on digits, a grid of configurations.

Every configuration of :data:`GRID` (full factorial) is trained for :data:`EPOCHS` epochs with SGD
(momentum 0.9) on ``slimtune.testing.load_digits(layout="flat")``; after each epoch the
validation error and the process seconds of that epoch are recorded. The result is a small
compressed ``.npz`` under ``bench/data/`` that the benchmark reads (many seeds, exact costs, no
training at benchmark time). Build it once with ``python -m bench.multifidelity --build-table``.
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EPOCHS", "GRID", "TABLE_PATH", "build_table", "grid_configs"]

logger = logging.getLogger(__name__)

TABLE_PATH = Path(__file__).resolve().parent / "data" / "mlp_digits_curves.npz"
EPOCHS = 27
# name -> grid values (in this order). Log-scaled parameters are snapped in log space.
GRID: dict[str, list[float]] = {
    "lr": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
    "width": [16, 64, 256],
    "depth": [1, 2, 3],
    "batch_size": [32, 128],
    "weight_decay": [1e-5, 1e-3],
    "dropout": [0.0, 0.5],
}


def grid_configs() -> list[dict[str, float]]:
    """The full factorial grid, in a fixed order (the row order of the table)."""
    names = list(GRID)
    return [dict(zip(names, vals, strict=True)) for vals in itertools.product(*GRID.values())]


def _train_one(config: dict[str, float], data: Any, seed: int) -> tuple[list[float], list[float]]:
    import torch
    from torch import nn

    torch.manual_seed(seed)  # the builder is a script, not the library: it owns its process
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    width_in = data.x_train.shape[1]
    for _ in range(int(config["depth"])):
        layers += [nn.Linear(width_in, int(config["width"])), nn.ReLU()]
        if config["dropout"] > 0:
            layers.append(nn.Dropout(config["dropout"]))
        width_in = int(config["width"])
    layers.append(nn.Linear(width_in, data.num_classes))
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=config["lr"],
        momentum=0.9,
        weight_decay=config["weight_decay"],
    )
    n = len(data.x_train)
    bs = int(config["batch_size"])
    errors: list[float] = []
    seconds: list[float] = []
    for _ in range(EPOCHS):
        t0 = time.process_time()
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds.append(time.process_time() - t0)
        model.eval()
        with torch.no_grad():
            logits = model(data.x_val)
        err = float((logits.argmax(1) != data.y_val).float().mean())
        errors.append(err if np.isfinite(logits.numpy()).all() else 1.0)
    return errors, seconds


def build_table(path: Path = TABLE_PATH, *, seed: int = 0, limit: int | None = None) -> Path:
    """Train every grid configuration and write the table (``limit``: only the first ones)."""
    import torch

    from slimtune.testing import load_digits

    torch.set_num_threads(1)
    data = load_digits(layout="flat", seed=seed)
    configs = grid_configs()[:limit]
    errors = np.zeros((len(configs), EPOCHS), np.float32)
    seconds = np.zeros((len(configs), EPOCHS), np.float32)
    for i, cfg in enumerate(configs):
        e, s = _train_one(cfg, data, seed + i)
        errors[i], seconds[i] = e, s
        logger.info("config %d/%d %s: final error %.4f", i + 1, len(configs), cfg, e[-1])
    names = list(GRID)
    params = np.array([[c[n] for n in names] for c in configs], np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        names=np.array(names),
        params=params,
        val_error=errors,
        epoch_seconds=seconds,
        torch_version=np.array(torch.__version__),
    )
    return path
