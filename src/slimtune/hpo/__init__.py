"""Training-time hyperparameter optimisation: population-based training and hypergradients."""

from __future__ import annotations
