"""Gradient-based hyperparameter optimisation: ``theta <- theta - eta * grad_theta J(theta)``.

- :class:`HypergradientOptimizer`: online hypergradient descent of the learning rate (and
  momentum) around any torch optimizer whose step is linear in the learning rate.
- :func:`implicit_hypergradient`: validation-loss hypergradients through the implicit function
  theorem (CG or Neumann inverse-Hessian-vector products).
- :func:`unrolled_hypergradient`: the same through a few unrolled SGD steps (small models).
- :class:`HypergradTuner` / :func:`fit_with_hypergradients`: tune them during one training run
  and record the trajectory in a study.
- :func:`smoothed_cross_entropy`, :func:`l2_penalty`: differentiable-in-the-hyperparameter
  losses for label smoothing and (per-group) weight decay.
"""

from __future__ import annotations

from slimtune.hpo.hypergrad._implicit import (
    ImplicitConfig,
    LossFn,
    implicit_hypergradient,
    inverse_hvp,
)
from slimtune.hpo.hypergrad._losses import l2_penalty, smoothed_cross_entropy
from slimtune.hpo.hypergrad._online import HDConfig, HypergradientOptimizer
from slimtune.hpo.hypergrad._tuner import HypergradTuner, fit_with_hypergradients
from slimtune.hpo.hypergrad._unrolled import (
    UnrolledConfig,
    UnrolledResult,
    unrolled_hypergradient,
)

__all__ = [
    "HDConfig",
    "HypergradTuner",
    "HypergradientOptimizer",
    "ImplicitConfig",
    "LossFn",
    "UnrolledConfig",
    "UnrolledResult",
    "fit_with_hypergradients",
    "implicit_hypergradient",
    "inverse_hvp",
    "l2_penalty",
    "smoothed_cross_entropy",
    "unrolled_hypergradient",
]
