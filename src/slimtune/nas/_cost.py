"""Costs of sub-networks: parameters and MACs (``slimtune.compress.prune``'s counters) and
latency from a lookup table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimtune.compress.prune import count_macs, count_params, measure_latency
from slimtune.nas._supernet import Supernet

__all__ = ["LatencyTable", "count_macs", "count_params"]


def _units(model: nn.Module) -> list[nn.Module]:
    """The modules a latency table times one by one: the elements of every ``nn.Sequential``
    (recursively) and the direct children of any other container."""
    out: list[nn.Module] = []
    children = list(model.children())
    if not children:
        return [model]
    for child in children:
        if isinstance(child, nn.Sequential):
            out.extend(_units(child))
        else:
            out.append(child)
    return out


class LatencyTable:
    """A cached lookup table of layer latencies: a sub-network's latency is the sum of its units.

    A unit (an element of a ``Sequential``, a transformer block, a head) is keyed by its
    description and input shape and timed once: median of ``repeats`` calls after ``warmup``,
    at ``num_threads`` threads. Architectures that share units reuse their timings, so a search
    over thousands of sub-networks times each distinct layer only once (Once-for-All's latency
    lookup table). ``save(path)`` / ``LatencyTable.load(path, ...)`` keep it between runs.
    """

    def __init__(
        self,
        example_inputs: torch.Tensor,
        *,
        repeats: int = 20,
        warmup: int = 3,
        num_threads: int = 1,
    ) -> None:
        if repeats < 1 or warmup < 0 or num_threads < 1:
            raise ValueError(
                f"`repeats` and `num_threads` must be >= 1 and `warmup` >= 0, got "
                f"repeats={repeats}, warmup={warmup}, num_threads={num_threads}."
            )
        self.example_inputs = example_inputs
        self.repeats = repeats
        self.warmup = warmup
        self.num_threads = num_threads
        self.entries: dict[str, float] = {}
        self.hits = 0
        self.misses = 0

    def _time(self, unit: nn.Module, args: tuple[Any, ...]) -> float:
        seconds = measure_latency(
            unit, args, repeats=self.repeats, warmup=self.warmup, num_threads=self.num_threads
        )
        return seconds * 1000.0

    @torch.no_grad()
    def latency_ms(self, model: nn.Module) -> float:
        """Predicted latency of ``model`` in milliseconds (times any unit not yet in the table)."""
        units = _units(model)
        inputs: dict[int, tuple[Any, ...]] = {}
        hooks = [
            u.register_forward_pre_hook(lambda m, args, i=i: inputs.__setitem__(i, args))
            for i, u in enumerate(units)
        ]
        was_training = model.training
        model.eval()
        threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            model(self.example_inputs)
            for h in hooks:
                h.remove()
            hooks = []
            total = 0.0
            for i, unit in enumerate(units):
                if i not in inputs:
                    continue  # not called by this architecture
                shapes = [tuple(a.shape) for a in inputs[i] if isinstance(a, torch.Tensor)]
                key = f"{unit!r}|{shapes}"
                if key not in self.entries:
                    self.entries[key] = self._time(unit, inputs[i])
                    self.misses += 1
                else:
                    self.hits += 1
                total += self.entries[key]
            return total
        finally:
            for h in hooks:
                h.remove()
            torch.set_num_threads(threads)
            model.train(was_training)

    def __call__(self, supernet: Supernet, arch: Mapping[str, Any]) -> float:
        """Predicted latency of ``arch``'s extracted sub-network in milliseconds."""
        return self.latency_ms(supernet.extract(arch))

    def save(self, path: str | Path) -> None:
        meta = {"repeats": self.repeats, "warmup": self.warmup, "num_threads": self.num_threads}
        payload = {"meta": meta, "input_shape": list(self.example_inputs.shape)}
        payload["entries"] = self.entries
        Path(path).write_text(json.dumps(payload, indent=1))

    @classmethod
    def load(cls, path: str | Path, example_inputs: torch.Tensor) -> LatencyTable:
        data = json.loads(Path(path).read_text())
        if list(example_inputs.shape) != data["input_shape"]:
            raise ValueError(
                f"latency table {path} was measured for inputs of shape {data['input_shape']}, "
                f"got {list(example_inputs.shape)}; build a new table for this shape."
            )
        table = cls(example_inputs, **data["meta"])
        table.entries = {str(k): float(v) for k, v in data["entries"].items()}
        return table
