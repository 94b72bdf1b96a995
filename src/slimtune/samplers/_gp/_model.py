"""Gaussian-process regression with Cholesky factors, batched over hyperparameter samples.

Hyperparameters are one vector ``theta = [log lengthscales (d), log signal variance,
log noise variance]`` per sample; a :class:`GP` holds ``S`` of them (``S = 1`` for MAP) and
predicts all ``S`` posteriors at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.optimize
from scipy.linalg import lapack

from slimtune.samplers._gp._kernel import matern52, matern52_dr2, sq_diffs

__all__ = ["GP", "Evidence", "HyperPrior", "fit_map"]

_JITTER = 1e-8
_CHUNK = 1_000_000  # kernel entries (S * m * n) computed in one block
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class HyperPrior:
    """Independent normal priors on the log hyperparameters, with box bounds.

    The lengthscale prior is the dimension-scaled log-normal of Hvarfner et al. (2024), whose
    median grows like ``sqrt(d)`` so it stays sensible as dimensions are added (``d_eff``
    counts those that are not fixed), shifted by ``ls_shift``: the default -2 puts the median
    at ``0.56 sqrt(d)`` on the unit cube, which did best on the analytic benchmarks. The signal
    variance of the standardised outputs is log-normal around 1, the noise variance around
    ``exp(-6)``.
    """

    d: int
    d_eff: int
    ls_shift: float = -2.0
    ls_sd: float = math.sqrt(3.0)
    sf_mu: float = 0.0
    sf_sd: float = 1.0
    sn_mu: float = -6.0
    sn_sd: float = 2.0

    @cached_property
    def mu(self) -> np.ndarray:
        ls_mu = math.sqrt(2.0) + 0.5 * math.log(max(self.d_eff, 1)) + self.ls_shift
        return np.array([ls_mu] * self.d + [self.sf_mu, self.sn_mu])

    @cached_property
    def sd(self) -> np.ndarray:
        return np.array([self.ls_sd] * self.d + [self.sf_sd, self.sn_sd])

    @cached_property
    def lower(self) -> np.ndarray:
        return np.array([math.log(5e-3)] * self.d + [math.log(1e-2), math.log(1e-6)])

    @cached_property
    def upper(self) -> np.ndarray:
        return np.array([math.log(1e3)] * self.d + [math.log(1e2), math.log(2.0)])

    def mode(self) -> np.ndarray:
        out: np.ndarray = np.clip(self.mu, self.lower, self.upper)
        return out

    def logpdf(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = (theta - self.mu) / self.sd
        return float(-0.5 * z @ z), -z / self.sd


class Evidence:
    """Log marginal likelihood of standardised targets ``y`` at inputs with per-dimension
    squared differences ``D`` (n, n, d), plus the prior: the log posterior of ``theta``."""

    def __init__(self, D: np.ndarray, y: np.ndarray, prior: HyperPrior) -> None:
        self.n, _, self.d = D.shape
        self.D = D
        self.D2 = D.reshape(-1, self.d)
        self.D_by_dim = np.ascontiguousarray(np.moveaxis(D, -1, 0))  # (d, n, n)
        self.y = np.asarray(y, dtype=float)
        self.prior = prior
        self._lower, self._upper = prior.lower, prior.upper

    def _factor(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        inv_ls2 = np.exp(-2.0 * theta[: self.d])
        r2 = (self.D2 @ inv_ls2).reshape(self.n, self.n)
        L = self._cholesky(matern52(r2), float(theta[self.d]), float(theta[self.d + 1]))
        return None if L is None else (L, r2, inv_ls2)

    def _cholesky(self, Km: np.ndarray, log_sf2: float, log_sn2: float) -> np.ndarray | None:
        """Lower Cholesky factor of ``sf2 Km + (sn2 + jitter) I``; ``Km`` is overwritten."""
        Km *= math.exp(log_sf2)
        Km.flat[:: self.n + 1] += math.exp(log_sn2) + _JITTER
        L, info = lapack.dpotrf(Km, lower=1, clean=0, overwrite_a=1)
        return None if info != 0 else L

    def _log_likelihood(self, L: np.ndarray | None) -> float:
        if L is None:
            return -math.inf
        z, _ = lapack.dtrtrs(L, self.y, lower=1)
        return float(-0.5 * (z @ z) - np.log(L.diagonal()).sum() - 0.5 * self.n * _LOG_2PI)

    def _log_prior(self, theta: np.ndarray) -> float:
        z = (theta - self.prior.mu) / self.prior.sd
        return float(-0.5 * (z @ z))

    def __call__(self, theta: np.ndarray) -> float:
        """Log posterior; ``-inf`` outside the prior's bounds or for a singular kernel."""
        if np.any(theta < self._lower) or np.any(theta > self._upper):
            return -math.inf
        f = self._factor(theta)
        return self._log_likelihood(None if f is None else f[0]) + self._log_prior(theta)

    def coordinate(self, theta: np.ndarray, j: int) -> Callable[[float], float]:
        """The log posterior as a function of ``theta[j]`` alone (the others fixed at
        ``theta``), reusing what does not depend on it: the kernel matrix for the signal and
        noise variances, the other dimensions' distances for a lengthscale."""
        d = self.d
        lo, hi = float(self._lower[j]), float(self._upper[j])
        mu, sd = float(self.prior.mu[j]), float(self.prior.sd[j])
        rest = self._log_prior(theta) + 0.5 * ((float(theta[j]) - mu) / sd) ** 2
        log_sf2, log_sn2 = float(theta[d]), float(theta[d + 1])
        inv_ls2 = np.exp(-2.0 * theta[:d])
        r2 = (self.D2 @ inv_ls2).reshape(self.n, self.n)
        if j < d:
            Dj = self.D_by_dim[j]
            base = r2 - inv_ls2[j] * Dj

            def kernel(v: float) -> np.ndarray:
                r2v = Dj * math.exp(-2.0 * v)
                r2v += base
                return matern52(r2v, overwrite=True)
        else:
            Km = matern52(r2)

            def kernel(v: float) -> np.ndarray:
                return Km.copy()

        def f(v: float) -> float:
            if not lo <= v <= hi:
                return -math.inf
            sf, sn = (v, log_sn2) if j == d else (log_sf2, v) if j == d + 1 else (log_sf2, log_sn2)
            L = self._cholesky(kernel(v), sf, sn)
            z = (v - mu) / sd
            return self._log_likelihood(L) + rest - 0.5 * z * z

        return f

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior and its gradient (the bounds are left to the optimiser)."""
        d, n = self.d, self.n
        lp, glp = self.prior.logpdf(theta)
        f = self._factor(theta)
        if f is None:
            return -math.inf, np.zeros_like(theta)
        L, r2, inv_ls2 = f
        alpha, _ = lapack.dpotrs(L, self.y, lower=1)
        Kinv, _ = lapack.dpotri(L, lower=1)
        Kinv = np.tril(Kinv) + np.tril(Kinv, -1).T
        value = -0.5 * float(self.y @ alpha) - float(np.log(L.diagonal()).sum())
        value -= 0.5 * n * _LOG_2PI
        sf2, sn2 = math.exp(theta[d]), math.exp(theta[d + 1])
        A = np.outer(alpha, alpha) - Kinv
        g = np.empty(d + 2)
        B = A * (sf2 * matern52_dr2(r2))
        g[:d] = -inv_ls2 * (B.reshape(-1) @ self.D2)
        g[d] = 0.5 * sf2 * float(np.sum(A * matern52(r2)))
        g[d + 1] = 0.5 * sn2 * float(np.trace(A))
        return value + lp, g + glp


def _inverse_cholesky(K: np.ndarray) -> np.ndarray:
    """``inv(L)`` for the lower Cholesky factor ``L`` of ``K``, adding jitter if needed."""
    n = K.shape[0]
    jitter = 1e-6
    while True:
        L, info = lapack.dpotrf(K, lower=1, clean=1, overwrite_a=0)
        if info == 0:
            Linv, info = lapack.dtrtri(L, lower=1)
            if info == 0:
                out: np.ndarray = Linv
                return out
        K = K + jitter * np.eye(n)
        jitter *= 10.0


def fit_map(evidence: Evidence, starts: list[np.ndarray]) -> np.ndarray:
    """Maximise the log posterior with L-BFGS-B from each start; return the best optimum."""

    def neg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = evidence.value_and_grad(theta)
        if not math.isfinite(v):
            return 1e25, np.zeros_like(theta)
        return -v, -g

    prior = evidence.prior
    bounds = list(zip(prior.lower, prior.upper, strict=True))
    best, best_f = prior.mode(), math.inf
    for x0 in starts:
        x0 = np.clip(x0, prior.lower, prior.upper)
        res = scipy.optimize.minimize(
            neg, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 200}
        )
        if float(res.fun) < best_f:
            best, best_f = np.asarray(res.x, dtype=float), float(res.fun)
    return best


class GP:
    """``S`` Gaussian processes on the same inputs, one per row of ``theta``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, theta: np.ndarray, is_cat: np.ndarray) -> None:
        self.X = np.asarray(X, dtype=float)
        self.theta = np.atleast_2d(theta)
        self.is_cat = is_cat
        self.cont = (~is_cat).astype(float)
        n, d = self.X.shape
        S = self.theta.shape[0]
        self.inv_ls2 = np.exp(-2.0 * self.theta[:, :d])
        self.sf2 = np.exp(self.theta[:, d])
        self.sn2 = np.exp(self.theta[:, d + 1])
        self.y = np.broadcast_to(np.asarray(y, dtype=float), (S, n)).copy()
        D = sq_diffs(self.X, self.X, is_cat).reshape(-1, d)
        K = matern52(self.inv_ls2 @ D.T).reshape(S, n, n)
        K *= self.sf2[:, None, None]
        idx = np.arange(n)
        K[:, idx, idx] += (self.sn2 + _JITTER)[:, None]
        self.Linv = np.empty_like(K)  # inverse Cholesky factors, lower triangular
        for i in range(S):
            self.Linv[i] = _inverse_cholesky(K[i])
        self.LinvT = np.ascontiguousarray(np.swapaxes(self.Linv, 1, 2))
        w = (self.Linv @ self.y[:, :, None])[..., 0]
        self.alpha = (self.LinvT @ w[:, :, None])[..., 0]

    @property
    def n_samples(self) -> int:
        return int(self.theta.shape[0])

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and variances at rows of ``Xc``: two ``(S, m)`` arrays."""
        Xc = np.atleast_2d(Xc)
        m, (n, d) = Xc.shape[0], self.X.shape
        S = self.n_samples
        step = max(1, _CHUNK // max(1, S * n))
        means, vars_ = [], []
        for lo in range(0, m, step):
            D = sq_diffs(Xc[lo : lo + step], self.X, self.is_cat)
            mc = D.shape[0]
            Kc = matern52(self.inv_ls2 @ D.reshape(-1, d).T).reshape(S, mc, n)
            Kc *= self.sf2[:, None, None]
            means.append((Kc @ self.alpha[:, :, None])[..., 0])
            W = Kc @ self.LinvT
            W *= W
            vars_.append(self.sf2[:, None] - W.sum(axis=-1))
        return np.concatenate(means, axis=1), np.maximum(np.concatenate(vars_, axis=1), 1e-12)

    def predict_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Means, variances ``(S,)`` at one point and their gradients ``(S, d)`` in ``x``
        (categorical coordinates get zero gradients)."""
        diff = x[None, :] - self.X  # (n, d)
        D = diff * diff
        if self.is_cat.any():
            D[:, self.is_cat] = D[:, self.is_cat] > 0.0
        r2 = self.inv_ls2 @ D.T  # (S, n)
        k = matern52(r2)
        k *= self.sf2[:, None]
        dk_dr2 = matern52_dr2(r2)
        dk_dr2 *= self.sf2[:, None]
        scale = 2.0 * self.inv_ls2 * self.cont[None, :]  # d r2 / d x = scale * diff
        mean = np.einsum("sn,sn->s", k, self.alpha)
        dmean = scale * ((self.alpha * dk_dr2) @ diff)
        w = (self.Linv @ k[:, :, None])[..., 0]
        var = self.sf2 - np.einsum("si,si->s", w, w)
        v = (self.LinvT @ w[:, :, None])[..., 0]
        dvar = -2.0 * scale * ((v * dk_dr2) @ diff)
        small = var < 1e-12
        dvar[small] = 0.0
        return mean, np.maximum(var, 1e-12), dmean, dvar

    def with_pending(self, Xp: np.ndarray) -> GP:
        """Kriging believer: the same GP with ``Xp`` observed at its posterior means, so the
        variance shrinks there while the mean stays put."""
        if len(Xp) == 0:
            return self
        mean, _ = self.predict(Xp)
        X = np.vstack([self.X, Xp])
        return GP(X, np.hstack([self.y, mean]), self.theta, self.is_cat)
