"""Where the plain-PyTorch layers (``nas``, ``compress``) meet the search engine.

- :func:`search_architectures`: a study over a trained supernet's sub-networks, with budgets
  (parameters, MACs, latency from a lookup table) as constraints, several objectives for a
  Pareto front, and optional training hyperparameters in the same space;
  :func:`rescore_front` scores the front again on held-out data (a front point's search score is
  biased upward).
- :class:`SupernetTrainer`: a :class:`slimtune.hpo.PBT` train function that tunes a supernet's
  training hyperparameters by population-based training.
"""

from __future__ import annotations

from slimtune.pipeline._supernet_pbt import SupernetTrainer
from slimtune.pipeline._supernet_search import (
    Budget,
    Rescored,
    rescore_front,
    search_architectures,
)

__all__ = ["Budget", "Rescored", "SupernetTrainer", "rescore_front", "search_architectures"]
