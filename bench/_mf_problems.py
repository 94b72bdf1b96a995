"""Multi-fidelity benchmark problems: a tabular MLP learning-curve table and Hartmann-6.

Every problem exposes

- ``name``; ``space``: a :class:`slimtune.space.SearchSpace`;
- ``evaluate(config, fidelity) -> (error, cost)``: the error (minimised) at integer fidelity
  ``1 <= fidelity <= max_fidelity`` and the cost of evaluating it *from scratch*;
- ``max_fidelity``; ``report_steps``: the fidelities an objective reports at (sorted, ending at
  ``max_fidelity``);
- ``resumable``: when True a trial continued from fidelity ``f1`` to ``f2`` pays only
  ``cost(f2) - cost(f1)`` (training goes on); when False every evaluation pays its full cost;
- ``best_error``: the best full-fidelity error of the problem (for regrets).

Both problems are deterministic given ``(config, fidelity)``: runs with the same seed agree and
costs are exact, so many seeds are cheap.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench._mf_table import EPOCHS, GRID, TABLE_PATH
from bench._problems import _H6_A, _H6_ALPHA, _H6_P
from slimtune.space import Float, Int, SearchSpace

__all__ = [
    "HARTMANN_PRESETS",
    "HartmannMF",
    "MFProblem",
    "TabularMLP",
    "make_problem",
    "problem_names",
]

# (bias, noise) presets of the multi-fidelity Hartmann functions (mf-prior-bench).
HARTMANN_PRESETS: dict[str, tuple[float, float]] = {
    "default": (0.5, 0.1),
    "good": (2.5, 2.0),
    "moderate": (3.0, 3.0),
    "bad": (3.5, 4.0),
    "terrible": (4.0, 5.0),
}

# Hartmann-6's constants are those of the single-fidelity function in bench/_problems.py.
HARTMANN6_MIN = -3.32237


class MFProblem:
    """Base of the problems (see the module docstring)."""

    name: str
    space: SearchSpace
    max_fidelity: int
    report_steps: tuple[int, ...]
    resumable: bool
    best_error: float

    def evaluate(self, config: Mapping[str, Any], fidelity: int) -> tuple[float, float]:
        raise NotImplementedError

    def _check_fidelity(self, fidelity: int) -> int:
        if isinstance(fidelity, bool) or not isinstance(fidelity, int | np.integer):
            raise TypeError(f"`fidelity` must be an int, got {fidelity!r}.")
        if not 1 <= fidelity <= self.max_fidelity:
            raise ValueError(
                f"`fidelity` must be in [1, {self.max_fidelity}] for {self.name}, got {fidelity}."
            )
        return int(fidelity)


@dataclass
class HartmannMF(MFProblem):
    """Multi-fidelity Hartmann-6 (Kandasamy et al. 2017, as in mf-prior-bench).

    Fidelity ``f`` in ``1..81`` maps to ``z = 100 f / 81`` (so an eta = 3 ladder 1, 3, 9, 27, 81
    is z = 1.2, 3.7, 11, 33, 100); ``H_z(x) = -sum_i a'_i exp(-sum_j A_ij (x_j - P_ij)^2) +
    |N(0, 1)| noise (1 - s(z))`` with ``a'_i = a_i - bias (1 - s(z))``, ``s(z) = log z / log 100``;
    the noise is seeded by ``(z, x)``. Cost ``0.05 + 0.95 (z / 100)^2``, not resumable. At full
    fidelity the function is the exact Hartmann-6 (minimum -3.32237).
    """

    preset: str = "default"
    name: str = field(init=False)
    space: SearchSpace = field(init=False)
    max_fidelity: int = 81
    report_steps: tuple[int, ...] = (1, 3, 9, 27, 81)
    resumable: bool = False
    best_error: float = HARTMANN6_MIN

    def __post_init__(self) -> None:
        if self.preset not in HARTMANN_PRESETS:
            raise ValueError(
                f"`preset` must be one of {sorted(HARTMANN_PRESETS)}, got {self.preset!r}."
            )
        self.bias, self.noise = HARTMANN_PRESETS[self.preset]
        self.name = f"hartmann6-{self.preset}"
        self.space = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(6)})

    def evaluate(self, config: Mapping[str, Any], fidelity: int) -> tuple[float, float]:
        f = self._check_fidelity(fidelity)
        x = np.array([float(config[f"x{i}"]) for i in range(6)])
        z = max(1.0, 100.0 * f / self.max_fidelity)
        s = math.log(z) / math.log(100.0)
        alpha = _H6_ALPHA - self.bias * (1.0 - s)
        value = -float(np.sum(alpha * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))
        if self.noise > 0 and s < 1.0:
            digest = hashlib.blake2b(np.append(x, z).tobytes(), digest_size=8).digest()
            rng = np.random.default_rng(int.from_bytes(digest, "little"))
            value += abs(float(rng.standard_normal())) * self.noise * (1.0 - s)
        cost = 0.05 + 0.95 * (z / 100.0) ** 2
        return value, cost


def _snap(values: list[float], x: float, log: bool) -> int:
    grid = np.log(values) if log else np.asarray(values, float)
    return int(np.argmin(np.abs(grid - (math.log(x) if log else x))))


_LOG = {"lr": True, "width": True, "depth": False, "batch_size": True}
_LOG.update({"weight_decay": True, "dropout": False})


_FLOATS = ("lr", "weight_decay", "dropout")


def _bracket(values: list[float], x: float, log: bool) -> tuple[int, float]:
    """``(i, t)``: ``x`` lies between grid values ``i`` and ``i + 1`` at fraction ``t``."""
    grid = np.log(values) if log else np.asarray(values, float)
    v = min(max(math.log(x) if log else x, float(grid[0])), float(grid[-1]))
    i = min(int(np.searchsorted(grid, v, side="right")) - 1, len(grid) - 2)
    return i, float((v - grid[i]) / (grid[i + 1] - grid[i]))


class TabularMLP(MFProblem):
    """Learning curves of an MLP on digits, read from the table under ``bench/data/``.

    The space is continuous (lr, weight decay, dropout) and integer (width, depth, batch size).
    Integers snap to the nearest grid value (in log space for width and batch size). With
    ``interpolate=True`` (problem ``mlp-digits-table``) the floats interpolate the table
    multilinearly between their grid values (lr and weight decay in log space), curves and
    costs alike, so distinct configurations give distinct curves and the best error is still
    the table's; with ``interpolate=False`` (``mlp-digits-grid``) they snap too, and nearby
    configurations are the same table row (a model-based sampler then re-runs configurations it
    has already seen). Fidelity = epochs (1..27); error = validation error after that many
    epochs; cost = the recorded process seconds of those epochs (resumable: continuing a trial
    pays only the epochs it adds).
    """

    max_fidelity = EPOCHS
    report_steps = tuple(range(1, EPOCHS + 1))
    resumable = True

    def __init__(self, path: Path = TABLE_PATH, *, interpolate: bool = True) -> None:
        self.interpolate = interpolate
        self.name = "mlp-digits-table" if interpolate else "mlp-digits-grid"
        if not path.exists():
            raise FileNotFoundError(
                f"the learning-curve table {path} is missing; build it with "
                "`python -m bench.multifidelity --build-table`."
            )
        with np.load(path) as data:
            names = [str(n) for n in data["names"]]
            if names != list(GRID):
                raise ValueError(f"table {path} has columns {names}, expected {list(GRID)}.")
            self.params = data["params"]
            self.val_error = data["val_error"].astype(np.float64)
            self.cum_seconds = np.cumsum(data["epoch_seconds"].astype(np.float64), axis=1)
        sizes = [len(v) for v in GRID.values()]
        if len(self.params) != int(np.prod(sizes)):
            n_rows = len(self.params)
            raise ValueError(f"table {path} has {n_rows} rows, expected {np.prod(sizes)}.")
        self._strides = np.cumprod([1, *sizes[::-1]])[:-1][::-1]
        self.best_error = float(self.val_error[:, -1].min())
        g = {name: (vals[0], vals[-1]) for name, vals in GRID.items()}
        self.space = SearchSpace(
            {
                "lr": Float(*g["lr"], log=True),
                "width": Int(int(g["width"][0]), int(g["width"][1]), log=True),
                "depth": Int(int(g["depth"][0]), int(g["depth"][1])),
                "batch_size": Int(int(g["batch_size"][0]), int(g["batch_size"][1]), log=True),
                "weight_decay": Float(*g["weight_decay"], log=True),
                "dropout": Float(*g["dropout"]),
            }
        )

    def row(self, config: Mapping[str, Any]) -> int:
        """The table row of ``config`` (each parameter snapped to its grid)."""
        idx = [_snap(vals, float(config[n]), _LOG[n]) for n, vals in GRID.items()]
        return int(np.dot(idx, self._strides))

    def corners(self, config: Mapping[str, Any]) -> list[tuple[int, float]]:
        """``(row, weight)`` pairs whose weighted mean is ``config``'s curve (one pair, weight
        1, without interpolation)."""
        if not self.interpolate:
            return [(self.row(config), 1.0)]
        names = list(GRID)
        base = [_snap(vals, float(config[n]), _LOG[n]) for n, vals in GRID.items()]
        out = [(int(np.dot(base, self._strides)), 1.0)]
        for name in _FLOATS:
            k = names.index(name)
            i, t = _bracket(GRID[name], float(config[name]), _LOG[name])
            nxt = []
            for row, w in out:
                row -= base[k] * int(self._strides[k])
                nxt.append((row + i * int(self._strides[k]), w * (1.0 - t)))
                nxt.append((row + (i + 1) * int(self._strides[k]), w * t))
            out = [(r, w) for r, w in nxt if w > 0.0]
        return out

    def evaluate(self, config: Mapping[str, Any], fidelity: int) -> tuple[float, float]:
        f = self._check_fidelity(fidelity)
        err = cost = 0.0
        for r, w in self.corners(config):
            err += w * float(self.val_error[r, f - 1])
            cost += w * float(self.cum_seconds[r, f - 1])
        return err, cost


def problem_names() -> list[str]:
    return ["mlp-digits-table", "mlp-digits-grid", *(f"hartmann6-{p}" for p in HARTMANN_PRESETS)]


def make_problem(name: str) -> MFProblem:
    """``"mlp-digits-table"``, ``"mlp-digits-grid"`` or ``"hartmann6-<preset>"``."""
    if name == "mlp-digits-table":
        return TabularMLP()
    if name == "mlp-digits-grid":
        return TabularMLP(interpolate=False)
    if name.startswith("hartmann6-"):
        return HartmannMF(preset=name.removeprefix("hartmann6-"))
    raise ValueError(f"`name` must be one of {problem_names()}, got {name!r}.")
