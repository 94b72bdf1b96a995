"""Quasi-random search: scrambled Sobol points through ``scipy.stats.qmc``."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from slimtune._rng import check_seed
from slimtune._trial import FrozenTrial
from slimtune.space import SearchSpace

__all__ = ["QMCSampler"]


class QMCSampler:
    """Trial ``n`` takes point ``n`` of a scrambled Sobol sequence mapped through the unit cube.

    The sequence depends only on ``seed`` and the space, so processes sharing a study walk the
    same sequence without overlap. ``seed`` is fixed (0) by default for that reason.
    Define-by-run, the space is that of the completed trials; parameters outside it (for example
    in the first trial) are drawn at random.
    """

    def __init__(self, *, seed: int = 0, scramble: bool = True) -> None:
        checked = check_seed(seed)
        if checked is None:
            raise TypeError("`seed` must be an int for QMCSampler; every process must share it.")
        self.seed = checked
        self.scramble = bool(scramble)
        self._engine: Any = None  # scipy.stats.qmc.Sobol, imported on first use (slow import)
        self._key: tuple[int, ...] | None = None
        self._pos = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # travels to worker processes without its lock and engine (rebuilt on first use)
        state = dict(self.__dict__)
        state.update(_lock=None, _engine=None, _key=None, _pos=0)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _point(self, dim: int, index: int) -> np.ndarray:
        with self._lock:
            key = (dim,)
            if self._engine is None or self._key != key or self._pos > index:
                from scipy.stats import qmc

                self._engine = qmc.Sobol(d=dim, scramble=self.scramble, seed=self.seed)
                self._key = key
                self._pos = 0
            if index > self._pos:
                self._engine.fast_forward(index - self._pos)
                self._pos = index
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # balance-property warning for n not 2**m
                point = self._engine.random(1)[0]
            self._pos += 1
            return np.asarray(point, dtype=float)

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
        return space.decode(self._point(len(space), len(trials)))

    def __repr__(self) -> str:
        return f"QMCSampler(seed={self.seed}, scramble={self.scramble})"
