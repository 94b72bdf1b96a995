"""Acquisition maximisation over a mixed lattice.

Candidates: scrambled Sobol points plus perturbations of the best observed points, all snapped
to the lattice. The best few start a local search that alternates L-BFGS-B on the continuous
(and long ordinal) coordinates with hill climbing over lattice neighbours (adjacent ordinal
values, every other category). The winner is the best candidate that is not already taken.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.optimize
from scipy.stats import qmc

from slimtune.samplers._gp._acquisition import Acquisition
from slimtune.samplers._gp._encoding import Encoding, row_key

__all__ = ["optimize_acquisition", "perturb"]

_SCALES = np.array([0.01, 0.03, 0.1, 0.3])
_IMPROVE = 1e-9
_N_CANDIDATES = 512  # Sobol points
_N_STARTS = 4  # local searches
_PER_INCUMBENT = 64  # perturbations of each of the best observed points


def perturb(
    enc: Encoding, centres: np.ndarray, rng: np.random.Generator, per_centre: int
) -> np.ndarray:
    """Random neighbours of each centre: Gaussian steps of several scales on relaxed
    coordinates and a fresh random level for each discrete one with probability ``1/d``."""
    if len(centres) == 0:
        return np.empty((0, enc.d))
    X = np.repeat(centres, per_centre, axis=0)
    scale = rng.choice(_SCALES, size=(len(X), 1))
    noise = rng.normal(size=X.shape) * scale
    X = np.where(enc.relaxed[None, :], X + noise, X)
    flip = (rng.random(X.shape) < 1.0 / max(1, enc.d)) & enc.discrete[None, :]
    X = np.where(flip, rng.random(X.shape), X)
    return enc.canonical(X)


def _lbfgs(acq: Acquisition, x: np.ndarray, free: np.ndarray) -> np.ndarray:
    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        xx = x.copy()
        xx[free] = z
        v, g = acq.value_and_grad(xx)
        return -v, -g[free]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = scipy.optimize.minimize(
            fun,
            x[free],
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * int(free.sum()),
            options={"maxiter": 60, "ftol": 1e-6, "gtol": 1e-6},
        )
    out = x.copy()
    out[free] = np.clip(res.x, 0.0, 1.0)
    return out


def _local_search(
    acq: Acquisition,
    enc: Encoding,
    x: np.ndarray,
    f: float,
    rng: np.random.Generator,
    keep: Callable[[np.ndarray, np.ndarray], None],
    *,
    rounds: int = 3,
    climb: int = 8,
) -> None:
    """Improve ``x``; every evaluated point is handed to ``keep`` (rows, values)."""
    moved = True  # the continuous coordinates are worth (re)optimising
    for _ in range(rounds):
        free = enc.relaxed & enc.active(x[None, :])[0]
        if moved and free.any():
            x1 = enc.canonical(_lbfgs(acq, x, free))
            f1 = acq(x1)
            keep(x1, f1)
            if f1[0] > f + _IMPROVE:
                x, f = x1[0], float(f1[0])
        moved = False
        for _ in range(climb):
            moves = enc.lattice_moves(x, rng)
            if len(moves) == 0:
                break
            vals = acq(moves)
            keep(moves, vals)
            i = int(np.argmax(vals))
            if vals[i] <= f + _IMPROVE:
                break
            x, f, moved = moves[i], float(vals[i]), True
        if not moved:
            break


def optimize_acquisition(
    acq: Acquisition,
    enc: Encoding,
    rng: np.random.Generator,
    *,
    incumbents: np.ndarray,
    taken: set[bytes],
    enumerated: np.ndarray | None,
    n_candidates: int | None = None,
    n_starts: int | None = None,
    per_incumbent: int | None = None,
) -> np.ndarray | None:
    """The canonical point of highest acquisition that is not in ``taken``; None when every
    point of a finite space is taken."""
    n_candidates = _N_CANDIDATES if n_candidates is None else n_candidates
    n_starts = _N_STARTS if n_starts is None else n_starts
    per_incumbent = _PER_INCUMBENT if per_incumbent is None else per_incumbent
    if enumerated is not None:
        free = [r for r in enumerated if row_key(r) not in taken]
        if not free:
            return None
        pool = np.array(free)
        return np.asarray(pool[int(np.argmax(acq(pool)))])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balance-property warning
        sobol = qmc.Sobol(enc.d, rng=rng).random(n_candidates)
    cand = np.vstack([enc.canonical(sobol), perturb(enc, incumbents, rng, per_incumbent)])
    vals = acq(cand)
    rows: list[np.ndarray] = [cand]
    values: list[np.ndarray] = [vals]

    def keep(r: np.ndarray, v: np.ndarray) -> None:
        rows.append(r)
        values.append(v)

    order = np.argsort(-vals)
    seen: set[bytes] = set()
    for i in order:
        if len(seen) >= n_starts:
            break
        k = row_key(cand[i])
        if k in seen:
            continue
        seen.add(k)
        _local_search(acq, enc, cand[i].copy(), float(vals[i]), rng, keep)

    all_rows, all_vals = np.vstack(rows), np.concatenate(values)
    for i in np.argsort(-all_vals, kind="stable"):
        if row_key(all_rows[i]) not in taken:
            return np.asarray(all_rows[i])
    for _ in range(256):  # every candidate is taken: a random untaken point
        r = enc.random(rng, 1)[0]
        if row_key(r) not in taken:
            return np.asarray(r)
    return None
