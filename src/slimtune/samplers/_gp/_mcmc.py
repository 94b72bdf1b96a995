"""Slice sampling (Neal 2003) of GP hyperparameters, one coordinate at a time."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from slimtune.samplers._gp._model import Evidence

__all__ = ["ChainState", "sample_hyperparameters", "slice_sample"]

LogDensity = Callable[[np.ndarray], float]
Conditional = Callable[[np.ndarray, int], Callable[[float], float]]

_BURN_COLD = 40  # sweeps before the first sample of a fresh chain
_BURN_WARM = 2  # ... of a chain continued from the previous call
_THIN = 2  # sweeps between kept samples
_STEPS_WARM = 1  # stepping-out steps per side for a warm chain (6 for a fresh one)
_WIDTH_SCALE = 2.0  # initial slice width of a warm chain, in posterior standard deviations


def _slice_1d(
    f: Callable[[float], float],
    x0: float,
    fx: float,
    width: float,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    max_steps: int,
) -> tuple[float, float]:
    """One univariate slice-sampling update (stepping out, then shrinkage)."""
    level = fx + math.log(rng.random())  # log of a uniform height under the density
    left = x0 - width * rng.random()
    right = left + width
    steps = max_steps
    while steps > 0 and left > lower and f(left) > level:
        left -= width
        steps -= 1
    steps = max_steps
    while steps > 0 and right < upper and f(right) > level:
        right += width
        steps -= 1
    left, right = max(left, lower), min(right, upper)
    for _ in range(100):
        v = left + (right - left) * rng.random()
        fv = f(v)
        if fv > level:
            return v, fv
        if v < x0:
            left = v
        else:
            right = v
    return x0, fx  # the slice collapsed onto x0 (numerically flat region): stay


def _generic_conditional(logp: LogDensity) -> Conditional:
    def conditional(x: np.ndarray, j: int) -> Callable[[float], float]:
        probe = x.copy()

        def f(v: float) -> float:
            probe[j] = v
            return logp(probe)

        return f

    return conditional


def slice_sample(
    logp: LogDensity,
    x0: np.ndarray,
    rng: np.random.Generator,
    *,
    n_samples: int,
    n_burn: int,
    thin: int,
    widths: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    max_steps: int = 6,
    conditional: Conditional | None = None,
) -> tuple[np.ndarray, float]:
    """Draw ``n_samples`` states (after ``n_burn`` sweeps, keeping every ``thin``-th sweep).

    Each sweep updates every coordinate once, in a random order. ``conditional(x, j)``, when
    given, returns ``logp`` as a function of coordinate ``j`` alone (it may cache what the
    other coordinates determine). Returns the samples ``(n_samples, k)`` and the log density
    of the last one.
    """
    cond = conditional if conditional is not None else _generic_conditional(logp)
    x = np.asarray(x0, dtype=float).copy()
    fx = logp(x)
    if not math.isfinite(fx):
        raise ValueError("slice_sample: the start point has zero density.")
    out = np.empty((n_samples, x.size))
    kept = 0
    sweep = 0
    while kept < n_samples:
        for j in rng.permutation(x.size):
            j = int(j)
            x[j], fx = _slice_1d(
                cond(x, j),
                float(x[j]),
                fx,
                float(widths[j]),
                float(lower[j]),
                float(upper[j]),
                rng,
                max_steps,
            )
        sweep += 1
        if sweep > n_burn and (sweep - n_burn) % thin == 0:
            out[kept] = x
            kept += 1
    return out, fx


@dataclass(frozen=True)
class ChainState:
    """Where a hyperparameter chain stopped: warm start for the next call."""

    n: int
    samples: np.ndarray  # (S, d + 2)


def sample_hyperparameters(
    evidence: Evidence,
    rng: np.random.Generator,
    *,
    n_samples: int,
    previous: ChainState | None,
    n_burn_cold: int | None = None,
    n_burn_warm: int | None = None,
    thin: int | None = None,
) -> np.ndarray:
    """Posterior samples ``(n_samples, d + 2)`` of ``theta`` by slice sampling.

    A chain without a previous state starts at the prior's mode and burns in ``n_burn_cold``
    sweeps; otherwise it continues from the last sample of ``previous`` (the posterior moves
    little when a few points are added) and burns in ``n_burn_warm`` sweeps. Slice widths
    follow the spread of the previous samples.
    """
    prior = evidence.prior
    n_burn_cold = _BURN_COLD if n_burn_cold is None else n_burn_cold
    n_burn_warm = _BURN_WARM if n_burn_warm is None else n_burn_warm
    thin = _THIN if thin is None else thin
    if previous is not None and previous.samples.shape[1] == prior.d + 2:
        x0 = previous.samples[-1]
        spread = previous.samples.std(axis=0) if len(previous.samples) > 2 else prior.sd
        widths = np.clip(_WIDTH_SCALE * spread, 0.2, prior.sd * 2.0)
        n_burn, steps = n_burn_warm, _STEPS_WARM
    else:
        x0, widths, n_burn, steps = prior.mode(), prior.sd.copy(), n_burn_cold, 6
    if not math.isfinite(evidence(x0)):
        x0, widths, n_burn, steps = prior.mode(), prior.sd.copy(), n_burn_cold, 6
    samples, _ = slice_sample(
        evidence,
        x0,
        rng,
        n_samples=n_samples,
        n_burn=n_burn,
        thin=thin,
        widths=widths,
        lower=prior.lower,
        upper=prior.upper,
        conditional=evidence.coordinate,
        max_steps=steps,
    )
    return samples
