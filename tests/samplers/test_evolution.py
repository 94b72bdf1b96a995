from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import slimtune
from slimtune import Categorical, Conditional, Float, Int, TrialState
from slimtune.samplers import EvolutionSampler, RandomSampler
from slimtune.samplers._evolution import crossover, mutate, mutate_value
from slimtune.space import Distribution, SearchSpace
from tests.samplers.test_conformance import MIXED, mixed_objective

SMALL = {"population_size": 8, "tournament_size": 3}  # evolution starts after 8 trials

NESTED = {
    "opt": Categorical(["adam", "sgd"]),
    "momentum": Conditional(Float(0.0, 0.99), parent="opt", values=["sgd"]),
    "nesterov": Conditional(Categorical([True, False]), parent="momentum", values=[0.0, 0.5]),
    "depth": Int(1, 3),
    "width2": Conditional(Int(8, 64, log=True), parent="depth", values=[2, 3]),
    "width3": Conditional(Int(8, 64, log=True), parent="depth", values=[3]),
}


def branin(p: dict[str, Any]) -> float:
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10 - 0.397887


def quadratic(p: dict[str, Any]) -> float:
    return sum((p[f"x{i}"] - o) ** 2 for i, o in enumerate((2.5, 1.0, -3.0, 7.0)))


PROBLEMS = {
    "branin": ({"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}, branin),
    "quadratic": ({f"x{i}": Float(-5.0, 10.0) for i in range(4)}, quadratic),
}


def best(sampler: Any, problem: str, seed: int, n_trials: int = 100) -> float:
    space, f = PROBLEMS[problem]
    study = slimtune.create_study(storage="memory", seed=seed, sampler=sampler, space=space)
    study.optimize(lambda t: f(t.params), n_trials=n_trials)
    return float(study.best_value)


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_regularised_evolution_beats_random_search(problem):
    seeds = range(6)
    evo = np.mean([best(EvolutionSampler(), problem, s) for s in seeds])
    rnd = np.mean([best(RandomSampler(), problem, s) for s in seeds])
    assert evo < 0.5 * rnd


def test_children_stay_near_a_good_parent():
    # once evolution starts, most children are small moves from the population's best region
    space = {"x": Float(0.0, 1.0)}
    study = slimtune.create_study(
        storage="memory", seed=0, sampler=EvolutionSampler(**SMALL, crossover_prob=0.0), space=space
    )
    study.optimize(lambda t: (t.params["x"] - 0.3) ** 2, n_trials=60)
    distance = np.abs(np.array([t.params["x"] for t in study.trials]) - 0.3)
    assert np.median(distance[30:]) < 0.5 * np.median(distance[:8])


def test_aged_members_are_never_parents_even_when_best():
    space = SearchSpace({"x": Int(0, 1000)})
    study = slimtune.create_study(
        storage="memory",
        seed=0,
        sampler=EvolutionSampler(population_size=5, tournament_size=5, mutation_scale=1e-6),
        space=dict(space),
    )
    for i in range(15):  # trials 0-9 are the best but too old; 10-14 sit at x = 500..504
        study.enqueue({"x": i if i < 10 else 490 + i})
        trial = study.ask()
        study.tell(trial, -100.0 if i < 10 else float(i))
    sampler = study.sampler
    for k in range(30):
        rng = np.random.default_rng(k)
        x = sampler.sample(space, study.trials, rng, directions=["minimize"])["x"]
        assert 499 <= x <= 505  # a +-1 step from a member of the population: never near 0..9


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0), st.floats(0.01, 2.0))
def test_mutation_and_crossover_keep_conditional_activity_consistent(seed, prob, scale):
    space = SearchSpace(NESTED)
    rng = np.random.default_rng(seed)
    donors = [space.sample(rng), space.sample(rng)]
    child = crossover(space, donors, rng)
    assert space.contains(child)
    for name in child:  # every value comes from a donor that has it, or both lacked it
        have = [d[name] for d in donors if name in d]
        assert child[name] in have or not have
    mutated = mutate(space, child, donors, rng, prob=max(prob, 1e-3), scale=scale)
    assert space.contains(mutated)
    assert mutated != child


def test_a_child_activated_by_mutation_takes_a_donor_value():
    space = SearchSpace(NESTED)
    parent = {"opt": "adam", "depth": 1}
    donor = {"opt": "sgd", "momentum": 0.25, "depth": 1}
    seen = set()
    for k in range(200):
        rng = np.random.default_rng(k)
        child = mutate(space, parent, [parent, donor], rng, prob=1.0, scale=0.1)
        assert space.contains(child)
        if child["opt"] == "sgd":
            seen.add(child["momentum"])
        else:
            assert "momentum" not in child
    assert seen == {0.25}


def test_a_child_deactivated_by_mutation_is_dropped():
    space = SearchSpace(NESTED)
    parent = {
        "opt": "sgd",
        "momentum": 0.5,
        "nesterov": True,
        "depth": 3,
        "width2": 16,
        "width3": 8,
    }
    for k in range(100):
        child = mutate(space, parent, [parent], np.random.default_rng(k), prob=1.0, scale=0.3)
        assert space.contains(child)
        assert child["opt"] == "adam" and "momentum" not in child and "nesterov" not in child


DISTRIBUTIONS = [
    Float(-3.0, 7.0),
    Float(1e-5, 1.0, log=True),
    Float(0.0, 0.5, step=0.1),
    Int(1, 9, step=2),
    Int(8, 512, log=True),
    Int(0, 10**9),
    Int(3, 4),
    Categorical(["a", "b", "c"]),
    Categorical([1, True, None]),
]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(DISTRIBUTIONS), st.floats(1e-6, 3.0))
def test_mutated_values_are_different_members(seed, dist: Distribution, scale):
    rng = np.random.default_rng(seed)
    value = dist.sample(rng)
    new = mutate_value(dist, value, rng, scale)
    assert dist.contains(new)
    if dist.is_finite:
        assert type(new) is not type(value) or new != value


def test_lattice_mutation_with_a_tiny_scale_moves_to_a_neighbour():
    rng = np.random.default_rng(0)
    assert {mutate_value(Int(1, 9, step=2), 5, rng, 1e-6) for _ in range(50)} == {3, 7}
    assert {mutate_value(Int(1, 9, step=2), 9, rng, 1e-6) for _ in range(20)} == {7}
    assert {mutate_value(Int(8, 512, log=True), 100, rng, 1e-6) for _ in range(50)} == {99, 101}
    stepped = {mutate_value(Float(0.0, 0.5, step=0.1), 0.2, rng, 1e-6) for _ in range(50)}
    assert sorted(stepped) == pytest.approx([0.1, 0.3])


def test_float_mutation_is_gaussian_in_log_space_and_reflected():
    rng = np.random.default_rng(0)
    log = Float(1e-6, 1.0, log=True)
    steps = [math.log10(mutate_value(log, 1e-3, rng, 0.1)) + 3 for _ in range(2000)]
    assert np.std(steps) == pytest.approx(0.6, rel=0.1)  # 0.1 of six decades
    near = [mutate_value(Float(0.0, 1.0), 0.0, rng, 0.1) for _ in range(2000)]
    assert min(near) >= 0.0 and np.mean(near) == pytest.approx(0.08, abs=0.01)  # reflected half


def test_no_exact_duplicates_while_the_space_has_room():
    space = {"a": Int(0, 9), "b": Categorical(["x", "y", "z"])}  # 30 points
    study = slimtune.create_study(
        storage="memory", seed=0, sampler=EvolutionSampler(**SMALL), space=space
    )
    study.optimize(lambda t: t.params["a"] + (t.params["b"] == "x"), n_trials=25)
    points = [(t.params["a"], t.params["b"]) for t in study.trials]
    assert len(set(points)) == 25


def test_exhausted_space_still_returns_a_member():
    space = {"a": Categorical(["x", "y"])}
    study = slimtune.create_study(
        storage="memory", seed=0, sampler=EvolutionSampler(population_size=2), space=space
    )
    study.optimize(lambda t: float(t.params["a"] == "x"), n_trials=6)
    assert {t.params["a"] for t in study.trials} == {"x", "y"}


def test_same_seed_same_suggestions_once_evolution_runs():
    def run(seed):
        study = slimtune.create_study(
            storage="memory", seed=seed, sampler=EvolutionSampler(**SMALL), space=MIXED
        )
        study.optimize(mixed_objective, n_trials=30)
        return [t.params for t in study.trials]

    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("init", ["random", "qmc"])
def test_conditional_space_with_a_messy_history(init):
    space = SearchSpace(MIXED)
    study = slimtune.create_study(
        storage="memory", seed=0, sampler=EvolutionSampler(**SMALL, init=init), space=MIXED
    )
    running = [study.ask() for _ in range(3)]
    stopped = study.ask()
    stopped.report(0, 0.1)
    study.tell(stopped, state=TrialState.STOPPED)

    def sometimes_fails(trial):
        if trial.number % 4 == 0:
            raise RuntimeError("boom")
        return mixed_objective(trial)

    study.optimize(sometimes_fails, n_trials=40, catch=(RuntimeError,))
    assert all(space.contains(t.params) for t in study.trials)
    assert all(r.params for r in running)
    assert study.best_value < 5.0


def test_define_by_run_evolves_the_common_space():
    def objective(trial):
        kind = trial.suggest_categorical("kind", ["a", "b"])
        if kind == "a":
            trial.suggest_int("n", 1, 5)
        return (trial.suggest_float("x", -1.0, 1.0) - 0.3) ** 2 + (kind == "b")

    study = slimtune.create_study(storage="memory", seed=0, sampler=EvolutionSampler(**SMALL))
    study.optimize(objective, n_trials=60)
    assert all(("n" in t.params) == (t.params["kind"] == "a") for t in study.trials)
    assert study.best_value < 0.01


def test_constrained_evolution_stays_feasible():
    def objective(trial):
        x = trial.suggest_float("x", -2.0, 2.0)
        trial.set_constraints([x - 0.5])  # feasible when x <= 0.5; the unconstrained best is 2
        return -x

    study = slimtune.create_study(storage="memory", seed=0, sampler=EvolutionSampler(**SMALL))
    study.optimize(objective, n_trials=60)
    assert study.best_trial.params["x"] == pytest.approx(0.5, abs=0.05)
    late = [t.params["x"] for t in study.trials[30:]]
    assert np.mean(np.array(late) <= 0.5) > 0.5


def test_several_objectives_approach_the_front():
    def objective(trial):
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        return x, 1 - math.sqrt(x) + 4 * y  # front at y = 0

    def mean_y(sampler):
        study = slimtune.create_study(
            storage="memory", seed=0, sampler=sampler, directions=["minimize", "minimize"]
        )
        study.optimize(objective, n_trials=80)
        return np.mean([t.params["y"] for t in study.best_trials])

    assert mean_y(EvolutionSampler(population_size=20, tournament_size=4)) < mean_y(RandomSampler())


def test_define_by_run_parameters_outside_the_space_draw_a_member():
    dist = Int(1, 5)
    study = slimtune.create_study(storage="memory", seed=0, sampler=EvolutionSampler())
    value = study.ask().suggest("n", dist)  # no history yet: outside the known space
    assert dist.contains(value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"population_size": 1}, "`population_size` must be >= 2, got 1"),
        ({"population_size": 2.5}, "`population_size` must be an int, got 2.5"),
        ({"tournament_size": 0}, "`tournament_size` must be in [1, population_size]"),
        ({"tournament_size": 51}, "[1, 50], got 51"),
        ({"mutation_prob": 0.0}, "`mutation_prob` must be in (0, 1], got 0.0"),
        ({"mutation_prob": 1.5}, "`mutation_prob` must be in (0, 1], got 1.5"),
        ({"mutation_scale": -0.1}, "`mutation_scale` must be > 0, got -0.1"),
        ({"mutation_scale": float("inf")}, "`mutation_scale` must be finite"),
        ({"crossover_prob": 2}, "`crossover_prob` must be in [0, 1], got 2"),
        ({"crossover_prob": "half"}, "`crossover_prob` must be a real number, got 'half'"),
        ({"n_startup_trials": 0}, "`n_startup_trials` must be >= 1, got 0"),
        ({"init": "sobol"}, "`init` must be one of ['random', 'qmc'], got 'sobol'"),
    ],
)
def test_invalid_arguments_name_the_parameter_and_the_value(kwargs, message):
    with pytest.raises((ValueError, TypeError)) as info:
        EvolutionSampler(**kwargs)
    assert message in str(info.value)
    assert "Pass" in str(info.value)


def test_arguments_are_keyword_only_and_shown_in_repr():
    with pytest.raises(TypeError):
        EvolutionSampler(50)  # type: ignore[misc]
    sampler = EvolutionSampler(population_size=20, tournament_size=4, crossover_prob=0.0)
    assert "population_size=20" in repr(sampler) and "crossover_prob=0.0" in repr(sampler)
    assert sampler.n_startup_trials == 20
    assert EvolutionSampler().tournament_size == 10
    assert EvolutionSampler(population_size=4).tournament_size == 4  # default: 10 or fewer


def test_the_sampler_keeps_no_state_between_calls():
    # processes sharing a study each hold a copy: everything must come from the history
    sampler = EvolutionSampler(**SMALL)
    before = pickle.dumps(sampler)
    study = slimtune.create_study(storage="memory", seed=0, sampler=sampler, space=MIXED)
    study.optimize(mixed_objective, n_trials=20)
    assert pickle.dumps(sampler) == before
    rng = np.random.default_rng(1)
    copy = pickle.loads(before)
    space = SearchSpace(MIXED)
    a = sampler.sample(space, study.trials, rng, directions=["minimize"])
    b = copy.sample(space, study.trials, np.random.default_rng(1), directions=["minimize"])
    assert a == b
