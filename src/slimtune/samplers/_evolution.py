"""Regularised (ageing) evolution and a genetic algorithm over mixed, conditional spaces.

The history *is* the population: every call rebuilds it from ``trials`` (the most recent
``population_size`` finished trials, in number order), so several processes sharing a study evolve
one population and a study seed reproduces every suggestion. Selection is a tournament ranked by
Deb's constraint rules, then by value (one objective) or by non-dominated rank and crowding
distance (several objectives, as NSGA-II).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from slimtune._trial import FrozenTrial
from slimtune.samplers._selection import Genome, fitness_rank, members, tournament, violation
from slimtune.space import Categorical, Distribution, Float, Int, SearchSpace

__all__ = ["EvolutionSampler"]

_INITS = ("random", "qmc")
_MAX_TRIES = 16  # children proposed before giving up on avoiding a duplicate


class EvolutionSampler:
    """Regularised evolution (Real et al., 2019) with optional uniform crossover (a GA).

    Each suggestion: the population is the last ``population_size`` finished trials (COMPLETE, or
    STOPPED with a value) in number order, so members age out; ``tournament_size`` members (10,
    or the whole population when smaller) drawn at random compete and the best becomes the
    parent; with probability ``crossover_prob`` a second tournament winner is mixed in by uniform
    crossover; the child is then mutated. Until
    ``n_startup_trials`` members exist (``population_size`` by default), configurations are drawn
    at random (``init="random"``) or from a scrambled Sobol sequence (``init="qmc"``).

    Mutation changes each active parameter with probability ``mutation_prob`` (``1 / d`` by
    default), and always at least one: floats take a Gaussian step of standard deviation
    ``mutation_scale`` in the unit-cube encoding (log space for log distributions), reflected at
    the bounds; integers and stepped floats take the same step snapped to their lattice, or move
    to a neighbour when the step rounds to nothing; categoricals switch to another choice
    uniformly. Parameters are visited parents-first, so a conditional parameter that becomes
    active inherits a donor's value or is drawn fresh, and one that becomes inactive is dropped.

    Ranking: feasible trials (every constraint <= 0) beat infeasible ones, which are ordered by
    total violation (Deb's rules); feasible ones by value, or by non-dominated rank then crowding
    distance for several objectives. A child equal to a trial already in the history is redrawn
    (up to 16 times) when the space allows another.

    >>> from slimtune import Categorical, Float, create_study
    >>> space = {"lr": Float(1e-4, 1.0, log=True), "act": Categorical(["relu", "gelu"])}
    >>> sampler = EvolutionSampler(population_size=20, tournament_size=5)
    >>> study = create_study(storage="memory", sampler=sampler, space=space, seed=0)
    """

    def __init__(
        self,
        *,
        population_size: int = 50,
        tournament_size: int | None = None,
        mutation_prob: float | None = None,
        mutation_scale: float = 0.1,
        crossover_prob: float = 0.5,
        n_startup_trials: int | None = None,
        init: str = "random",
    ) -> None:
        self.population_size = _check_int("population_size", population_size, low=2)
        self.tournament_size = (
            min(10, self.population_size)
            if tournament_size is None
            else _check_int("tournament_size", tournament_size, low=1, high=self.population_size)
        )
        self.mutation_prob = (
            None
            if mutation_prob is None
            else _check_prob("mutation_prob", mutation_prob, open0=True)
        )
        self.mutation_scale = _check_positive("mutation_scale", mutation_scale)
        self.crossover_prob = _check_prob("crossover_prob", crossover_prob, open0=False)
        self.n_startup_trials = (
            self.population_size
            if n_startup_trials is None
            else _check_int("n_startup_trials", n_startup_trials, low=1)
        )
        if init not in _INITS:
            raise ValueError(
                f"`init` must be one of {list(_INITS)}, got {init!r}. Pass init='random'."
            )
        self.init = init

    # protocol ---------------------------------------------------------------------------------
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
        limit = max(self.population_size, self.n_startup_trials)
        pool = members(trials, space, len(directions), limit=limit)
        if len(pool) < self.n_startup_trials:
            child = self._initial(space, trials, rng)
        else:
            population = pool[-self.population_size :]
            rank = fitness_rank(
                np.array([t.values for t, _ in population], dtype=float),
                np.array([violation(t) for t, _ in population]),
                directions,
            )
            child = self._evolve(space, [g for _, g in population], rank, rng)
            for _ in range(_MAX_TRIES - 1):
                if not _in_history(space, child, trials):
                    break
                child = self._evolve(space, [g for _, g in population], rank, rng)
        for _ in range(_MAX_TRIES):
            if not _in_history(space, child, trials):
                break
            child = space.sample(rng)  # a random configuration is the last resort
        return child

    # steps ------------------------------------------------------------------------------------
    def _initial(
        self, space: SearchSpace, trials: Sequence[FrozenTrial], rng: np.random.Generator
    ) -> Genome:
        if self.init == "random" or not trials:
            return space.sample(rng)
        # point n of a Sobol sequence scrambled by trial 0's seed: shared by every process
        from scipy.stats import qmc

        engine = qmc.Sobol(d=len(space), scramble=True, seed=trials[0].seed)
        engine.fast_forward(len(trials))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # balance-property warning for n not 2**m
            point = engine.random(1)[0]
        return space.decode(point)

    def _evolve(
        self,
        space: SearchSpace,
        genomes: Sequence[Genome],
        rank: np.ndarray,
        rng: np.random.Generator,
    ) -> Genome:
        first = tournament(rank, self.tournament_size, rng)
        donors = [genomes[first]]
        if len(genomes) > 1 and rng.random() < self.crossover_prob:
            others = np.delete(np.arange(len(genomes)), first)
            second = others[tournament(rank[others], self.tournament_size, rng)]
            donors.append(genomes[int(second)])
        genome = crossover(space, donors, rng)
        return mutate(
            space, genome, donors, rng, prob=self.mutation_prob, scale=self.mutation_scale
        )

    def __repr__(self) -> str:
        return (
            f"EvolutionSampler(population_size={self.population_size}, "
            f"tournament_size={self.tournament_size}, mutation_prob={self.mutation_prob}, "
            f"mutation_scale={self.mutation_scale}, crossover_prob={self.crossover_prob}, "
            f"n_startup_trials={self.n_startup_trials}, init={self.init!r})"
        )


# variation ------------------------------------------------------------------------------------
def crossover(space: SearchSpace, donors: Sequence[Genome], rng: np.random.Generator) -> Genome:
    """Uniform crossover, parents-first: each active parameter comes from a donor that has it
    (chosen at random), or is drawn fresh when none does."""
    out: Genome = {}
    for name in space:
        if not space.is_active(name, out):
            continue
        out[name] = _inherit(name, space[name], donors, rng)
    return out


def _inherit(
    name: str, dist: Distribution, donors: Sequence[Genome], rng: np.random.Generator
) -> Any:
    options = [g[name] for g in donors if name in g]
    if len(options) > 1:
        return options[int(rng.integers(len(options)))]
    return options[0] if options else dist.sample(rng)


def mutate(
    space: SearchSpace,
    genome: Genome,
    donors: Sequence[Genome],
    rng: np.random.Generator,
    *,
    prob: float | None,
    scale: float,
) -> Genome:
    """Mutate each active parameter with probability ``prob`` (``1 / d`` when None), at least
    one; parameters that become active take a donor's value or a fresh draw."""
    mutable = [n for n in genome if _mutable(space[n])]
    p = prob if prob is not None else 1.0 / max(len(mutable), 1)
    chosen = [n for n in mutable if rng.random() < p]
    if not chosen and mutable:
        chosen = [mutable[int(rng.integers(len(mutable)))]]
    out: Genome = {}
    for name in space:
        if not space.is_active(name, out):
            continue
        if name in genome:
            value = genome[name]
            out[name] = mutate_value(space[name], value, rng, scale) if name in chosen else value
        else:
            out[name] = _inherit(name, space[name], donors, rng)
    return out


def _mutable(dist: Distribution) -> bool:
    if isinstance(dist, Categorical):
        return len(dist.choices) > 1
    if isinstance(dist, Int | Float):
        return dist.low < dist.high
    return False


def _reflect(u: float) -> float:
    u = abs(u) % 2.0
    return 2.0 - u if u > 1.0 else u


def mutate_value(dist: Distribution, value: Any, rng: np.random.Generator, scale: float) -> Any:
    """A different member near ``value`` (any other choice for a categorical)."""
    if isinstance(dist, Categorical):
        i = dist.index(value)
        j = int(rng.integers(len(dist.choices) - 1))
        return dist.choices[j + (j >= i)]
    u = _reflect(dist.to_unit(value) + scale * float(rng.normal()))
    new = dist.from_unit(u)
    if new == value and dist.is_finite:
        new = _neighbour(dist, value, rng)
    return new


def _neighbour(dist: Distribution, value: Any, rng: np.random.Generator) -> Any:
    """The lattice value just below or above ``value`` (integers, stepped floats)."""
    if isinstance(dist, Int) and dist.log:
        options: list[Any] = [v for v in (value - 1, value + 1) if dist.low <= v <= dist.high]
    else:
        # non-log lattices are encoded as cell centres (k + 0.5) / n
        n = dist.n_values if isinstance(dist, Int) else getattr(dist, "n_steps", None) or 1
        k = min(int(dist.to_unit(value) * n), n - 1)
        options = [dist.from_unit((j + 0.5) / n) for j in (k - 1, k + 1) if 0 <= j < n]
    return options[int(rng.integers(len(options)))] if options else value


def _key(space: SearchSpace, params: Mapping[str, Any]) -> tuple[tuple[str, str, Any], ...]:
    return tuple((n, type(params[n]).__name__, params[n]) for n in space if n in params)


def _in_history(space: SearchSpace, child: Genome, trials: Sequence[FrozenTrial]) -> bool:
    """Whether a trial of any state already has ``child``'s values for the parameters of
    ``space`` (a cheap first-parameter check skips most trials)."""
    key = _key(space, child)
    first, value = next(iter(child.items()))
    return any(
        first in t.params and t.params[first] == value and _key(space, t.params) == key
        for t in trials
    )


def _check_int(name: str, value: Any, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int, got {value!r}. Pass e.g. {name}={low}.")
    if high is None and value < low:
        raise ValueError(f"`{name}` must be >= {low}, got {value}. Pass e.g. {name}={low}.")
    if high is not None and not low <= value <= high:
        raise ValueError(
            f"`{name}` must be in [{low}, population_size] = [{low}, {high}], got {value}. "
            f"Pass a value in that range or raise `population_size`."
        )
    return int(value)


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"`{name}` must be a real number, got {value!r}. Pass a float.")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"`{name}` must be finite, got {value!r}. Pass a finite float.")
    return out


def _check_prob(name: str, value: Any, *, open0: bool) -> float:
    out = _check_number(name, value)
    too_low = out <= 0.0 if open0 else out < 0.0
    if too_low or out > 1.0:
        bound = "(0, 1]" if open0 else "[0, 1]"
        raise ValueError(f"`{name}` must be in {bound}, got {value!r}. Pass e.g. {name}=0.5.")
    return out


def _check_positive(name: str, value: Any) -> float:
    out = _check_number(name, value)
    if out <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value!r}. Pass e.g. {name}=0.1.")
    return out
