"""Samplers: what to try next.

The model-based samplers (TPE, GP, evolution) are imported on first use: they pull in
``scipy.stats`` and ``scipy.optimize``, which would slow every ``import slimtune`` (and every
spawned worker) by about a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from slimtune.samplers._base import Sampler
from slimtune.samplers._grid import GridSampler
from slimtune.samplers._qmc import QMCSampler
from slimtune.samplers._random import RandomSampler

if TYPE_CHECKING:
    from slimtune.samplers._auto import AutoSampler
    from slimtune.samplers._bohb import BOHBSampler
    from slimtune.samplers._evolution import EvolutionSampler
    from slimtune.samplers._gp import GPSampler
    from slimtune.samplers._tpe import TPESampler

__all__ = [
    "AutoSampler",
    "BOHBSampler",
    "EvolutionSampler",
    "GPSampler",
    "GridSampler",
    "QMCSampler",
    "RandomSampler",
    "Sampler",
    "TPESampler",
]

_LAZY = {
    "AutoSampler": "slimtune.samplers._auto",
    "BOHBSampler": "slimtune.samplers._bohb",
    "EvolutionSampler": "slimtune.samplers._evolution",
    "GPSampler": "slimtune.samplers._gp",
    "TPESampler": "slimtune.samplers._tpe",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'slimtune.samplers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
