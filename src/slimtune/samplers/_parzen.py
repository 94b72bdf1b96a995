"""Parzen estimators of TPE on the unit cube: truncated Gaussian, discrete-cell and categorical
kernels, mixed into one joint (product-kernel) density with a uniform-ish prior component.

Every numeric parameter lives in its unit coordinate (:meth:`Distribution.to_unit`: log space
for log distributions). A stepped float or an int owns a *cell* of ``[0, 1]`` (the interval
between half-steps, in log space for log ints); its kernel mass is the Gaussian mass over that
cell, so the cells of one kernel sum to the kernel's mass on ``[0, 1]``. Categorical kernels put
weight ``1 + p / K`` on the observed choice and ``p / K`` on every choice, normalised
(Aitchison-Aitken style, ``p`` the prior weight, ``K`` the number of kernels), as Optuna does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimtune.space import Categorical, Distribution, Float, Int

__all__ = ["Dim", "ParzenEstimator", "decode", "dim_of", "encode"]

CONT, DISC, CAT = 0, 1, 2
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _special() -> Any:
    from scipy import special  # imported on first use: keeps ``import slimtune`` fast

    return special


@dataclass(frozen=True)
class Dim:
    """How one parameter is modelled: continuous, discrete cells, or categorical."""

    dist: Distribution
    kind: int
    n: int = 0  # choices (CAT) or cells of a uniform lattice (DISC); 0 for log ints
    log_lo: float = 0.0  # log ints: log(low - 0.5) and log(high + 0.5)
    log_hi: float = 1.0


def dim_of(dist: Distribution) -> Dim | None:
    """The model of ``dist``; None when it has a single value (nothing to learn)."""
    if isinstance(dist, Categorical):
        return None if len(dist.choices) == 1 else Dim(dist, CAT, len(dist.choices))
    if isinstance(dist, Float):
        if dist.low == dist.high:
            return None
        return Dim(dist, CONT) if dist.step is None else Dim(dist, DISC, dist.n_steps or 1)
    if isinstance(dist, Int):
        if dist.low == dist.high:
            return None
        if dist.log:
            return Dim(dist, DISC, 0, math.log(dist.low - 0.5), math.log(dist.high + 0.5))
        return Dim(dist, DISC, dist.n_values)
    raise TypeError(f"TPESampler cannot model {dist!r}.")


def encode(dim: Dim, value: Any) -> float:
    """Unit coordinate (numeric) or choice index (categorical) of a member of ``dim.dist``."""
    if dim.kind == CAT:
        assert isinstance(dim.dist, Categorical)
        return float(dim.dist.index(value))
    return dim.dist.to_unit(value)


def decode(dim: Dim, x: float) -> Any:
    """The member of ``dim.dist`` at coordinate ``x`` (a cell centre for discrete dims)."""
    if dim.kind == CAT:
        assert isinstance(dim.dist, Categorical)
        return dim.dist.choices[int(x)]
    if dim.kind == DISC and dim.n == 0:
        return int(_log_int_values(dim, np.array([x]))[0])
    return dim.dist.from_unit(x)


def _log_int_values(dim: Dim, u: np.ndarray) -> np.ndarray:
    assert isinstance(dim.dist, Int)
    v = np.rint(np.exp(dim.log_lo + u * (dim.log_hi - dim.log_lo)))
    out: np.ndarray = np.clip(v, dim.dist.low, dim.dist.high)
    return out


def snap(dim: Dim, u: np.ndarray) -> np.ndarray:
    """Map unit coordinates of a discrete dim to the centres of their cells."""
    if dim.n:
        k = np.clip(np.floor(u * dim.n), 0, dim.n - 1)
        out: np.ndarray = (k + 0.5) / dim.n
        return out
    v = _log_int_values(dim, u)
    centre: np.ndarray = (np.log(v) - dim.log_lo) / (dim.log_hi - dim.log_lo)
    return centre


def _cell_edges(dim: Dim, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if dim.n:
        return centre - 0.5 / dim.n, centre + 0.5 / dim.n
    width = dim.log_hi - dim.log_lo
    v = np.rint(np.exp(dim.log_lo + centre * width))
    return (np.log(v - 0.5) - dim.log_lo) / width, (np.log(v + 0.5) - dim.log_lo) / width


def _log_gauss_mass(zl: np.ndarray, zr: np.ndarray) -> np.ndarray:
    """``log(Phi(zr) - Phi(zl))`` for ``zl <= zr``, accurate in both tails."""
    ndtr = _special().ndtr
    flip = zl > 0  # both in the upper tail: use the symmetric lower-tail difference
    lo = np.where(flip, -zr, zl)
    hi = np.where(flip, -zl, zr)
    with np.errstate(divide="ignore"):
        out: np.ndarray = np.log(np.maximum(ndtr(hi) - ndtr(lo), 0.0))
    return out


def _unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique ``(a, b)`` pairs and the inverse index (a fast ``np.unique(axis=0)``)."""
    order = np.lexsort((b, a))
    sa, sb = a[order], b[order]
    first = np.empty(len(a), dtype=bool)
    first[:1] = True
    first[1:] = (sa[1:] != sa[:-1]) | (sb[1:] != sb[:-1])
    inv = np.empty(len(a), dtype=np.intp)
    inv[order] = np.cumsum(first) - 1
    return sa[first], sb[first], inv


def bandwidths(mus: np.ndarray, *, consider_endpoints: bool) -> np.ndarray:
    """Per-kernel, per-dim bandwidths of observations ``mus`` (n, d) on ``[0, 1]``.

    The distance to the farther neighbour (the box edges count as neighbours), clipped to
    ``[1 / min(100, n + 2), 1]`` (Optuna's "magic clip")."""
    n = len(mus)
    order = np.argsort(mus, axis=0, kind="stable")
    s = np.take_along_axis(mus, order, axis=0)
    ext = np.concatenate([np.zeros((1, s.shape[1])), s, np.ones((1, s.shape[1]))])
    sig = np.maximum(ext[1:-1] - ext[:-2], ext[2:] - ext[1:-1])
    if not consider_endpoints and n >= 2:
        sig[0] = ext[2] - ext[1]
        sig[-1] = ext[-2] - ext[-3]
    out = np.empty_like(sig)
    np.put_along_axis(out, order, sig, axis=0)
    clipped: np.ndarray = np.clip(out, 1.0 / min(100.0, n + 2.0), 1.0)
    return clipped


class ParzenEstimator:
    """A weighted mixture of product kernels, one per observation, plus a prior kernel.

    ``obs`` is (n, d) in the coordinates of ``dims`` (unit coordinate or choice index),
    ``weights`` (n,) non-negative. The prior kernel (weight ``prior_weight``) is a Gaussian of
    bandwidth 1 at the centre of every numeric dim and uniform over every categorical one.
    ``bandwidth_scale`` multiplies the bandwidths of the observation kernels.
    """

    def __init__(
        self,
        obs: np.ndarray,
        weights: np.ndarray,
        dims: Sequence[Dim],
        *,
        prior_weight: float,
        consider_endpoints: bool,
        bandwidth_scale: float = 1.0,
    ) -> None:
        n = len(obs)
        self.dims = list(dims)
        w = np.append(np.asarray(weights, dtype=float), prior_weight) if n else np.ones(1)
        w = w / w.sum()
        self.weights = w
        with np.errstate(divide="ignore"):
            self.log_w = np.log(w)
        self.num = [i for i, d in enumerate(self.dims) if d.kind != CAT]
        self.cont = [i for i, d in enumerate(self.dims) if d.kind == CONT]
        self.disc = [i for i, d in enumerate(self.dims) if d.kind == DISC]
        self.cat = [i for i, d in enumerate(self.dims) if d.kind == CAT]
        k = n + 1 if n else 1
        # numeric kernels: columns follow self.num
        mus = np.full((k, len(self.num)), 0.5)
        sig = np.ones((k, len(self.num)))
        if n and self.num:
            mus[:n] = obs[:, self.num]
            sig[:n] = bandwidth_scale * bandwidths(mus[:n], consider_endpoints=consider_endpoints)
        self.mus, self.sigmas = mus, sig
        ndtr = _special().ndtr if self.num else None
        if ndtr is not None:
            self.cdf_lo = ndtr(-mus / sig)
            self.cdf_hi = ndtr((1.0 - mus) / sig)
            self.log_z = np.log(self.cdf_hi - self.cdf_lo)
        # categorical kernels
        self.tables: list[np.ndarray] = []
        for i in self.cat:
            c = self.dims[i].n
            table = np.full((k, c), prior_weight / k if n else 1.0)
            if n:
                table[np.arange(n), obs[:, i].astype(np.intp)] += 1.0
            table /= table.sum(axis=1, keepdims=True)
            self.tables.append(table)
        self.log_tables = [np.log(t) for t in self.tables]
        # the Gaussian part of the continuous dims as quadratic forms (one matmul per call)
        pos = [self.num.index(i) for i in self.cont]
        if pos:
            m_c, s_c = mus[:, pos], sig[:, pos]
            self._inv = 1.0 / s_c**2
            self._mu_inv = m_c * self._inv
            self._const = (
                -0.5 * np.sum(m_c**2 * self._inv, axis=1)
                - np.sum(np.log(s_c) + self.log_z[:, pos], axis=1)
                - len(pos) * _LOG_SQRT_2PI
            )

    @property
    def n_kernels(self) -> int:
        return len(self.weights)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` points (size, d) drawn from the mixture; discrete dims at cell centres."""
        comp = rng.choice(self.n_kernels, size=size, p=self.weights)
        out = np.empty((size, len(self.dims)))
        if self.num:
            lo, hi = self.cdf_lo[comp], self.cdf_hi[comp]
            q = lo + rng.random((size, len(self.num))) * (hi - lo)
            x = self.mus[comp] + self.sigmas[comp] * _special().ndtri(q)
            out[:, self.num] = np.clip(x, 0.0, 1.0)
            for i in self.disc:
                out[:, i] = snap(self.dims[i], out[:, i])
        for j, i in enumerate(self.cat):
            cum = np.cumsum(self.tables[j][comp], axis=1)
            r = rng.random(size) * cum[:, -1]
            out[:, i] = np.minimum((cum < r[:, None]).sum(axis=1), self.dims[i].n - 1)
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density (log mass for discrete dims) of points ``x`` (m, d)."""
        lp = np.broadcast_to(self.log_w, (len(x), self.n_kernels)).copy()
        if self.cont:
            xc = x[:, self.cont]
            lp += -0.5 * ((xc**2) @ self._inv.T) + xc @ self._mu_inv.T + self._const[None, :]
        for i in self.disc:
            j = self.num.index(i)
            lp += self._log_cell_mass(self.dims[i], x[:, i], self.mus[:, j], self.sigmas[:, j])
            lp -= self.log_z[None, :, j]
        for j, i in enumerate(self.cat):
            lp += self.log_tables[j][:, x[:, i].astype(np.intp)].T
        top = lp.max(axis=1)
        top[~np.isfinite(top)] = 0.0
        with np.errstate(divide="ignore"):
            out: np.ndarray = np.log(np.exp(lp - top[:, None]).sum(axis=1)) + top
        return out

    @staticmethod
    def _log_cell_mass(dim: Dim, centre: np.ndarray, mu: np.ndarray, sig: np.ndarray) -> np.ndarray:
        cu, c_inv = np.unique(centre, return_inverse=True)
        mu_u, sig_u, k_inv = _unique_pairs(mu, sig)
        left, right = _cell_edges(dim, cu)
        zl = (left[:, None] - mu_u[None, :]) / sig_u[None, :]
        zr = (right[:, None] - mu_u[None, :]) / sig_u[None, :]
        mass = _log_gauss_mass(zl, zr)
        out: np.ndarray = mass[np.ix_(c_inv.ravel(), k_inv)]
        return out
