"""Model statistics: parameters, MACs counted by tracing, size on disk, CPU latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_macs", "count_params", "measure_latency", "size_on_disk"]


def _inputs(example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> int:
    """Multiply-accumulates of one forward pass on ``example_inputs`` (whole batch).

    Counted by tracing the operators that run (``torch.utils.flop_counter``): convolutions,
    matrix products and attention; element-wise operations are not counted.
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(*_inputs(example_inputs))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def size_on_disk(model: nn.Module) -> int:
    """Bytes of the model's state dict saved as safetensors (tied weights stored once)."""
    from safetensors.torch import save

    state: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, tuple[int, ...], torch.dtype]] = set()
    for k, v in model.state_dict().items():
        key = (
            v.untyped_storage().data_ptr() + v.storage_offset() * v.element_size(),
            tuple(v.shape),
            v.dtype,
        )
        if v.numel() and key in seen:
            continue
        seen.add(key)
        state[k] = v.detach().contiguous().cpu()
    return len(save(state))


def measure_latency(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    repeats: int = 30,
    warmup: int = 5,
    num_threads: int = 1,
) -> float:
    """Median seconds of one forward pass in eval / inference mode at ``num_threads`` threads."""
    for name, v, lo in (
        ("repeats", repeats, 1),
        ("warmup", warmup, 0),
        ("num_threads", num_threads, 1),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"`{name}` must be an int >= {lo}, got {v!r}.")
    inputs = _inputs(example_inputs)
    old_threads = torch.get_num_threads()
    was_training = model.training
    model.eval()
    torch.set_num_threads(num_threads)
    times: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(*inputs)
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(*inputs)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
    return statistics.median(times)
