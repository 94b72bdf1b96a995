"""Helpers for bench/quant.py: interleaved CPU timing, file sizes, peer model sizes."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench._common import median, time_call

__all__ = ["interleaved", "quant_file_bytes", "torch_save_bytes"]


def interleaved(
    fns: Mapping[str, Callable[[], Any]], *, rounds: int, warmup: int = 3
) -> dict[str, dict[str, float]]:
    """Median CPU and wall milliseconds per variant; variants alternate within every round
    (the order rotates each round) so that load changes hit all of them alike. Runs under
    ``torch.no_grad()``, the grad mode compiled variants were compiled in."""
    names = list(fns)
    with torch.no_grad():
        for name in names:
            for _ in range(warmup):
                fns[name]()
        cpu: dict[str, list[float]] = {n: [] for n in names}
        wall: dict[str, list[float]] = {n: [] for n in names}
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                t = time_call(fns[name], collect=False)
                cpu[name].append(t.cpu_s * 1e3)
                wall[name].append(t.wall_s * 1e3)
    return {n: {"cpu_ms": median(cpu[n]), "wall_ms": median(wall[n])} for n in names}


def quant_file_bytes(model: nn.Module) -> int:
    """Size of slimtune's packed safetensors file of ``model``."""
    from slimtune.compress.quantize import save_quantized

    with tempfile.TemporaryDirectory() as tmp:
        return save_quantized(model, Path(tmp) / "model.safetensors")


def torch_save_bytes(model: nn.Module) -> int:
    """Size of ``torch.save(model.state_dict())`` (how peers' quantised models are saved)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes
