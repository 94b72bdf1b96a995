"""Matern-5/2 kernel with one lengthscale per dimension (ARD) on the unit cube.

Categorical coordinates use the Hamming distance: their squared difference is 1 when the
categories differ and 0 otherwise, so each category is equally far from every other one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matern52", "matern52_dr2", "sq_diffs"]


def sq_diffs(X1: np.ndarray, X2: np.ndarray, is_cat: np.ndarray) -> np.ndarray:
    """Per-dimension squared differences, shape ``(n1, n2, d)``."""
    D: np.ndarray = X1[:, None, :] - X2[None, :, :]
    D *= D
    if is_cat.any():
        D[..., is_cat] = D[..., is_cat] > 0.0
    return D


def matern52(r2: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """``k(r) = (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)`` as a function of ``r2 = r^2``
    (``overwrite=True`` lets it use a float array ``r2`` as scratch space)."""
    s = r2 if overwrite else np.array(r2, dtype=float)
    np.maximum(s, 0.0, out=s)
    s *= 5.0
    np.sqrt(s, out=s)  # s = sqrt(5) r
    out: np.ndarray = s * s
    out *= 1.0 / 3.0
    out += s
    out += 1.0
    np.negative(s, out=s)
    np.exp(s, out=s)
    out *= s
    return out


def matern52_dr2(r2: np.ndarray) -> np.ndarray:
    """Derivative of :func:`matern52` with respect to ``r2`` (finite at ``r2 = 0``)."""
    s = np.array(r2, dtype=float)
    np.maximum(s, 0.0, out=s)
    s *= 5.0
    np.sqrt(s, out=s)
    out = s + 1.0
    out *= -5.0 / 6.0
    np.negative(s, out=s)
    np.exp(s, out=s)
    out *= s
    return out
