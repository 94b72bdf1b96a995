"""Acquisition functions: log expected improvement, probability of feasibility, ParEGO.

``log_h`` follows Ament et al. (2023), "Unexpected improvements to expected improvement":
``EI = sigma * h(z)`` with ``h(z) = phi(z) + z Phi(z)``, and ``log h`` is evaluated in three
regimes so it stays finite and accurate far in the tail. Everything is written for
*maximisation*; the sampler flips minimised objectives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

from slimtune.samplers._gp._model import GP

__all__ = ["Acquisition", "log_ei", "log_h", "parego"]

_C1 = 0.5 * math.log(2.0 * math.pi)
_C2 = 0.5 * math.log(math.pi / 2.0)
_TAIL = -1.0 / math.sqrt(np.finfo(float).eps)
_LOG2 = math.log(2.0)


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x < 0``, accurate near 0 and far below."""
    x = np.minimum(x, -1e-300)
    near = np.log(-np.expm1(np.maximum(x, -_LOG2)))
    far = np.log1p(-np.exp(np.minimum(x, -_LOG2)))
    out: np.ndarray = np.where(x > -_LOG2, near, far)
    return out


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a), axis=0))`` (scipy's version is slow on small arrays)."""
    top = a.max(axis=0)
    out: np.ndarray = top + np.log(np.exp(a - top).sum(axis=0))
    return out


def log_h(z: np.ndarray) -> np.ndarray:
    """``log(phi(z) + z Phi(z))``, finite for every finite ``z``."""
    z = np.asarray(z, dtype=float)
    zu = np.maximum(z, -1.0)
    upper = np.log(np.exp(-0.5 * zu * zu - _C1) + zu * ndtr(zu))
    zm = np.clip(z, _TAIL, -1.0)
    mid = -0.5 * zm * zm - _C1 + _log1mexp(np.log(erfcx(-zm / math.sqrt(2.0)) * -zm) + _C2)
    zt = np.minimum(z, _TAIL)
    tail = -0.5 * zt * zt - _C1 - 2.0 * np.log(-zt)
    out: np.ndarray = np.where(z > -1.0, upper, np.where(z > _TAIL, mid, tail))
    return out


def log_ei(
    mean: np.ndarray, var: np.ndarray, best: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log EI`` of improving on ``best`` and its derivatives in ``mean`` and ``var``."""
    sd = np.sqrt(var)
    z = (mean - best) / sd
    lh = log_h(z)
    ratio = np.exp(log_ndtr(z) - lh)  # d log h / dz = Phi(z) / h(z)
    d_mean = ratio / sd
    d_sd = (1.0 - ratio * z) / sd
    return lh + np.log(sd), d_mean, d_sd / (2.0 * sd)


def log_pf(
    mean: np.ndarray, var: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log P(c <= threshold)`` under ``N(mean, var)`` and its derivatives in mean and var."""
    sd = np.sqrt(var)
    u = (threshold - mean) / sd
    lp = log_ndtr(u)
    ratio = np.exp(-0.5 * u * u - _C1 - lp)  # d log Phi / du
    return lp, -ratio / sd, -ratio * u / sd / (2.0 * sd)


def parego(Y: np.ndarray, weights: np.ndarray, rho: float = 0.05) -> np.ndarray:
    """Augmented Chebyshev scalarisation of minimised objectives ``Y`` (n, k) (Knowles 2006):
    each objective scaled to ``[0, 1]`` over the observed values."""
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    F = (Y - lo) / np.where(hi > lo, hi - lo, 1.0)
    W = F * weights[None, :]
    out: np.ndarray = W.max(axis=1) + rho * W.sum(axis=1)
    return out


@dataclass
class Acquisition:
    """Posterior-averaged ``log(EI x PF)``: ``logsumexp`` over hyperparameter samples minus
    ``log S``. Without a feasible observation (``best`` is None) it is ``log PF`` alone.
    ``best`` is one incumbent per sample, shape ``(S,)``, or a float."""

    objective: GP | None
    best: float | np.ndarray | None
    constraints: Sequence[tuple[GP, float]] = ()

    def __call__(self, X: np.ndarray) -> np.ndarray:
        total: np.ndarray | None = None
        if self.objective is not None and self.best is not None:
            mean, var = self.objective.predict(X)
            total = log_ei(mean, var, np.reshape(self.best, (-1, 1)))[0]
        for gp, threshold in self.constraints:
            mean, var = gp.predict(X)
            term = log_pf(mean, var, threshold)[0]
            total = term if total is None else total + term
        if total is None:
            return np.zeros(len(X))
        out: np.ndarray = _logsumexp(total) - math.log(total.shape[0])
        return out

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        total: np.ndarray | None = None
        grad: np.ndarray | None = None
        if self.objective is not None and self.best is not None:
            mean, var, dmean, dvar = self.objective.predict_grad(x)
            val, g_mean, g_var = log_ei(mean, var, self.best)
            total, grad = val, g_mean[:, None] * dmean + g_var[:, None] * dvar
        for gp, threshold in self.constraints:
            mean, var, dmean, dvar = gp.predict_grad(x)
            val, g_mean, g_var = log_pf(mean, var, threshold)
            g = g_mean[:, None] * dmean + g_var[:, None] * dvar
            total = val if total is None else total + val
            grad = g if grad is None else grad + g
        if total is None or grad is None:
            return 0.0, np.zeros_like(x)
        lse = float(_logsumexp(total))
        w = np.exp(total - lse)
        return lse - math.log(total.size), w @ grad
