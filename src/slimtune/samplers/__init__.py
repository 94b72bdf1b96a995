"""Samplers: what to try next."""

from __future__ import annotations

from slimtune.samplers._base import Sampler
from slimtune.samplers._grid import GridSampler
from slimtune.samplers._qmc import QMCSampler
from slimtune.samplers._random import RandomSampler

__all__ = ["GridSampler", "QMCSampler", "RandomSampler", "Sampler"]
