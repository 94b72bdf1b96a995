"""GPSampler: Bayesian optimisation with a Gaussian process and log expected improvement."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc

from slimtune._rng import check_seed
from slimtune._trial import FrozenTrial, TrialState
from slimtune.samplers._gp._acquisition import Acquisition, parego
from slimtune.samplers._gp._encoding import Encoding, row_key
from slimtune.samplers._gp._kernel import sq_diffs
from slimtune.samplers._gp._mcmc import ChainState, sample_hyperparameters
from slimtune.samplers._gp._model import GP, Evidence, HyperPrior, fit_map
from slimtune.samplers._gp._optimize import optimize_acquisition
from slimtune.samplers._gp._warp import warp
from slimtune.space import SearchSpace

__all__ = ["GPSampler"]

_ENUMERATE_LIMIT = 2048  # finite spaces up to this size are scored point by point
_N_INCUMBENTS = 5
_HYPERPARAMETERS = ("map", "mcmc")


def _positive_int(name: str, value: Any, minimum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int, got {value!r} ({type(value).__name__}). {hint}")
    if int(value) < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}. {hint}")
    return int(value)


@dataclass
class _History:
    """Completed observations, RUNNING points and every point already taken."""

    X: np.ndarray  # (n, d) finished trials with values
    Y: np.ndarray  # (n, k) their values
    C: np.ndarray | None  # (n, c) constraint values, NaN where a trial set none
    pending: np.ndarray  # (p, d) RUNNING trials
    taken: set[bytes]

    @classmethod
    def build(cls, enc: Encoding, trials: Sequence[FrozenTrial], k: int) -> _History:
        xs, ys, cs, pending = [], [], [], []
        taken: set[bytes] = set()
        for t in trials:
            u = enc.encode(t.params)
            if u is None:
                continue
            taken.add(row_key(u))
            if t.state is TrialState.RUNNING:
                pending.append(u)
                continue
            values = t.values
            if (
                values is None
                and t.state is TrialState.STOPPED
                and k == 1
                and t.last_step is not None
            ):
                values = [t.intermediate_values[t.last_step]]
            if t.state is TrialState.FAILED or values is None or len(values) != k:
                continue
            if not all(math.isfinite(v) for v in values):
                continue
            xs.append(u)
            ys.append([float(v) for v in values])
            cs.append(t.constraints)
        n_con = max((len(c) for c in cs if c is not None), default=0)
        C = None
        if n_con:
            C = np.full((len(cs), n_con), np.nan)
            for i, c in enumerate(cs):
                if c is not None and len(c) == n_con:
                    C[i] = c
        d = enc.d
        return cls(
            X=np.array(xs).reshape(-1, d),
            Y=np.array(ys).reshape(-1, k),
            C=C,
            pending=np.array(pending).reshape(-1, d),
            taken=taken,
        )


class GPSampler:
    """Gaussian-process Bayesian optimisation on the unit cube.

    A Matern-5/2 kernel with one lengthscale per dimension (Hamming distance for categorical
    ones) models Yeo-Johnson-warped, standardised objective values. The next point maximises
    log expected improvement (Ament et al. 2023) over Sobol candidates, perturbations of the
    best points and a local search: L-BFGS-B on continuous coordinates and lattice moves on
    integer, stepped and categorical ones. It never proposes a configuration that is already
    evaluated or RUNNING unless the (finite) space is exhausted, in which case it draws a random
    one.

    Args:
        hyperparameters: ``"mcmc"`` (default) integrates the kernel hyperparameters (log
            lengthscales, signal and noise variance) by slice sampling and averages the
            acquisition over ``n_samples`` posterior samples; ``"map"`` maximises their log
            posterior instead (faster, greedier).
        n_startup_trials: trials drawn from a scrambled Sobol sequence before the GP is used.
        n_samples: posterior samples of the hyperparameters (``"mcmc"`` only).
        seed: scrambles the startup Sobol sequence; by default it comes from the study (the
            seed of trial 0). Other randomness comes from each trial's generator.

    RUNNING trials are fantasised at their posterior mean (kriging believer), so parallel
    workers spread out. Constraints (feasible when ``<= 0``) get one GP each (MAP
    hyperparameters) and multiply EI by the probability of feasibility; before any feasible
    observation the sampler maximises that probability. Several objectives are scalarised by
    ParEGO's augmented Chebyshev function with a random weight vector per suggestion.
    """

    def __init__(
        self,
        *,
        hyperparameters: str = "mcmc",
        n_startup_trials: int = 10,
        n_samples: int = 6,
        seed: int | None = None,
    ) -> None:
        if hyperparameters not in _HYPERPARAMETERS:
            raise ValueError(
                f"`hyperparameters` must be 'map' or 'mcmc', got {hyperparameters!r}. Pass "
                "hyperparameters='mcmc' (integrate them) or 'map' (optimise them)."
            )
        self.hyperparameters = hyperparameters
        self.n_startup_trials = _positive_int(
            "n_startup_trials", n_startup_trials, 0, "Pass e.g. n_startup_trials=10."
        )
        self.n_samples = _positive_int("n_samples", n_samples, 1, "Pass e.g. n_samples=6.")
        self.seed = check_seed(seed)
        self._lock = threading.Lock()
        self._chains: dict[tuple[Any, ...], ChainState] = {}

    # the protocol --------------------------------------------------------------------------
    def sample(
        self,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        enc = Encoding(space)
        hist = _History.build(enc, trials, len(directions))
        enumerated = enc.enumerate(_ENUMERATE_LIMIT)
        if enumerated is not None and all(row_key(r) in hist.taken for r in enumerated):
            return space.sample(rng)  # exhausted: every configuration is taken
        if len(hist.X) < max(self.n_startup_trials, 1):
            u = self._startup(enc, trials, hist, rng, enumerated)
        else:
            u = self._model_point(enc, hist, rng, directions, enumerated)
        return space.sample(rng) if u is None else enc.decode(u)

    # startup -------------------------------------------------------------------------------
    def _startup(
        self,
        enc: Encoding,
        trials: Sequence[FrozenTrial],
        hist: _History,
        rng: np.random.Generator,
        enumerated: np.ndarray | None,
    ) -> np.ndarray | None:
        """Point ``len(trials)`` of a scrambled Sobol sequence, or a random free point when
        that one is taken."""
        seed = self.seed if self.seed is not None else (trials[0].seed if trials else None)
        if seed is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                engine = qmc.Sobol(enc.d, rng=seed)
                if trials:
                    engine.fast_forward(len(trials))
                u = enc.canonical(engine.random(1))[0]
        else:
            u = enc.random(rng, 1)[0]
        if row_key(u) not in hist.taken:
            return np.asarray(u, dtype=float)
        if enumerated is not None:
            free = [r for r in enumerated if row_key(r) not in hist.taken]
            return None if not free else np.asarray(free[int(rng.integers(len(free)))])
        for _ in range(256):
            u = enc.random(rng, 1)[0]
            if row_key(u) not in hist.taken:
                return np.asarray(u, dtype=float)
        return None

    # the model -----------------------------------------------------------------------------
    def _theta(
        self,
        key: tuple[Any, ...],
        X: np.ndarray,
        y: np.ndarray,
        enc: Encoding,
        rng: np.random.Generator,
        mode: str,
    ) -> np.ndarray:
        """Hyperparameter samples ``(S, d + 2)`` (one row for MAP).

        The last samples of each model (objective, each constraint) are cached on the instance
        with the history size they were drawn for; the next call starts its chain (or its MAP
        search) there unless the history shrank, which means another study.
        """
        d_eff = int(np.sum(enc.relaxed | enc.discrete))
        prior = HyperPrior(d=enc.d, d_eff=d_eff)
        evidence = Evidence(sq_diffs(X, X, enc.is_cat), y, prior)
        with self._lock:
            previous = self._chains.get(key)
        if previous is not None and previous.n > len(y):
            previous = None  # another history (a new study): start afresh
        if mode == "map":
            starts = [prior.mode()]
            if previous is not None:
                starts.append(previous.samples[-1])
            theta = fit_map(evidence, starts)[None, :]
        else:
            theta = sample_hyperparameters(
                evidence, rng, n_samples=self.n_samples, previous=previous
            )
        with self._lock:
            self._chains[key] = ChainState(n=len(y), samples=theta)
        return theta

    def _model_point(
        self,
        enc: Encoding,
        hist: _History,
        rng: np.random.Generator,
        directions: Sequence[str],
        enumerated: np.ndarray | None,
    ) -> np.ndarray | None:
        signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
        Ymin = hist.Y * signs[None, :]
        if Ymin.shape[1] == 1:
            g = -Ymin[:, 0]
        else:
            g = -parego(Ymin, rng.dirichlet(np.ones(Ymin.shape[1])))
        y = warp(g)
        space_key = tuple(enc.names)
        theta = self._theta(("objective", space_key), hist.X, y, enc, rng, self.hyperparameters)
        objective = GP(hist.X, y, theta, enc.is_cat).with_pending(hist.pending)

        feasible = np.ones(len(y), dtype=bool)
        constraints: list[tuple[GP, float]] = []
        if hist.C is not None:
            C = hist.C
            feasible = ~np.any(C > 0, axis=1)
            for j in range(C.shape[1]):
                rows = np.isfinite(C[:, j])
                if rows.sum() < 2:
                    continue
                c = C[rows, j]
                mu, sd = float(c.mean()), float(c.std()) or 1.0
                cz = (c - mu) / sd
                th = self._theta(("constraint", j, space_key), hist.X[rows], cz, enc, rng, "map")
                gp = GP(hist.X[rows], cz, th, enc.is_cat).with_pending(hist.pending)
                constraints.append((gp, -mu / sd))
        best: np.ndarray | None = None
        if feasible.any():
            best = np.full(objective.n_samples, float(y[feasible].max()))
            if len(hist.pending):  # kriging believer: fantasies count as observations
                best = np.maximum(best, objective.predict(hist.pending)[0].max(axis=1))
        acq = Acquisition(objective, best, constraints)
        if feasible.any() or hist.C is None:
            ranked = np.where(feasible, y, -np.inf)
        else:  # the least violation first
            ranked = -np.sum(np.maximum(np.nan_to_num(hist.C, nan=0.0), 0.0), axis=1)
        top = np.argsort(-ranked)[:_N_INCUMBENTS]
        return optimize_acquisition(
            acq, enc, rng, incumbents=hist.X[top], taken=hist.taken, enumerated=enumerated
        )

    # worker processes (optimize(n_jobs > 1)) get a copy without the lock and the chains
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]
        state["_chains"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"GPSampler(hyperparameters={self.hyperparameters!r}, "
            f"n_startup_trials={self.n_startup_trials}, n_samples={self.n_samples}, "
            f"seed={self.seed})"
        )
