"""Gaussian-process Bayesian optimisation (MAP or slice-sampled kernel hyperparameters)."""

from __future__ import annotations

from slimtune.samplers._gp._sampler import GPSampler

__all__ = ["GPSampler"]
