"""TPESampler: behaviour of the sampler, its Parzen estimators and its good / bad split."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
from datetime import datetime
from typing import Any

import numpy as np
import pytest

import slimtune
from slimtune import Categorical, Conditional, Float, Int, TrialState
from slimtune._trial import FrozenTrial
from slimtune.samplers import QMCSampler, RandomSampler, TPESampler
from slimtune.samplers._parzen import ParzenEstimator, dim_of, encode, snap
from slimtune.samplers._tpe_split import (
    default_gamma,
    default_weights,
    nondominated_ranks,
    split_trials,
)
from slimtune.space import SearchSpace

# helpers ---------------------------------------------------------------------------------------


def frozen(
    number: int,
    state: TrialState = TrialState.COMPLETE,
    values: list[float] | None = None,
    *,
    constraints: list[float] | None = None,
    steps: dict[int, float] | None = None,
) -> FrozenTrial:
    return FrozenTrial(
        number=number,
        trial_id=f"t{number}",
        state=state,
        params={},
        distributions={},
        seed=number,
        datetime_start=datetime(2024, 1, 1),
        values=values,
        constraints=constraints,
        intermediate_values=dict(steps or {}),
    )


def best_after(sampler: Any, seed: int, n: int) -> float:
    def objective(trial: slimtune.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        z = trial.suggest_float("z", 1e-3, 1e2, log=True)
        return (x - 1.7) ** 2 + (y + 3.1) ** 2 + (math.log10(z) - 1.2) ** 2

    study = slimtune.create_study(storage="memory", seed=seed, sampler=sampler)
    study.optimize(objective, n_trials=n)
    return study.best_value


# optimisation behaviour ------------------------------------------------------------------------


def test_beats_random_search_on_a_quadratic():
    seeds = range(5)
    tpe = np.mean([best_after(TPESampler(), s, 60) for s in seeds])
    rnd = np.mean([best_after(RandomSampler(), s, 60) for s in seeds])
    assert tpe < 0.5 * rnd


def test_startup_trials_come_from_the_scrambled_sobol_sequence():
    space = {"a": Float(0.0, 1.0), "b": Int(0, 99), "c": Float(1e-3, 1.0, log=True)}
    study = slimtune.create_study(
        storage="memory", seed=4, sampler=TPESampler(n_startup_trials=6), space=space
    )
    for _ in range(6):
        study.ask()  # left RUNNING: the startup phase counts finished trials only
    trials = study.trials
    qmc = QMCSampler(seed=trials[0].seed)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        expected = qmc.sample(SearchSpace(space), trials[:i], rng)
        assert trials[i].params == expected


def test_constant_liar_spreads_running_trials():
    def nearest_neighbour_distance(liar: bool, seed: int) -> float:
        space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}
        sampler = TPESampler(constant_liar=liar)
        study = slimtune.create_study(storage="memory", seed=seed, sampler=sampler, space=space)
        for _ in range(30):
            t = study.ask()
            study.tell(t, (t.params["x"] - 0.3) ** 2 + (t.params["y"] - 0.6) ** 2)
        running = [study.ask() for _ in range(8)]  # parallel workers, nothing told yet
        pts = np.array([[t.params["x"], t.params["y"]] for t in running])
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        return float(d.min(axis=1).mean())

    seeds = range(6)
    liar = np.mean([nearest_neighbour_distance(True, s) for s in seeds])
    no_liar = np.mean([nearest_neighbour_distance(False, s) for s in seeds])
    assert liar > 1.3 * no_liar


def test_categorical_choice_concentrates_on_the_best():
    def objective(trial: slimtune.Trial) -> float:
        c = trial.suggest_categorical("c", ["a", "b", "c", "d", "e"])
        x = trial.suggest_float("x", 0.0, 1.0)
        return {"a": 1.0, "b": 0.8, "c": 0.0, "d": 0.9, "e": 1.2}[c] + 0.1 * x

    late: list[str] = []
    for seed in range(3):
        study = slimtune.create_study(storage="memory", seed=seed, sampler=TPESampler())
        study.optimize(objective, n_trials=60)
        late += [t.params["c"] for t in study.trials[30:]]
    counts = sorted((late.count(c), c) for c in "abcde")
    assert counts[-1][1] == "c" and counts[-1][0] / len(late) > 0.4  # random search: 0.2


def test_conditional_parameters_are_learned_within_their_group():
    space = {
        "opt": Categorical(["adam", "sgd"]),
        "momentum": Conditional(Float(0.0, 1.0), parent="opt", values=["sgd"]),
        "lr": Float(1e-4, 1.0, log=True),
    }

    def value(p: dict[str, Any]) -> float:
        base = (math.log10(p["lr"]) + 2) ** 2
        return base + (abs(p["momentum"] - 0.9) if p["opt"] == "sgd" else 0.5)

    study = slimtune.create_study(storage="memory", seed=1, sampler=TPESampler(), space=space)
    for _ in range(60):
        t = study.ask()
        assert ("momentum" in t.params) == (t.params["opt"] == "sgd")
        study.tell(t, value(t.params))
    late = [t.params["momentum"] for t in study.trials[30:] if "momentum" in t.params]
    assert late and abs(float(np.median(late)) - 0.9) < 0.15


def test_int_and_stepped_values_stay_on_their_lattice():
    space = {
        "n": Int(2, 40, step=2),
        "u": Int(1, 1000, log=True),
        "d": Float(0.0, 0.5, step=0.05),
        "k": Int(3, 3),
    }
    sp = SearchSpace(space)
    study = slimtune.create_study(storage="memory", seed=0, sampler=TPESampler(), space=space)
    for _ in range(30):
        t = study.ask()
        assert sp.contains(t.params)
        study.tell(t, abs(t.params["n"] - 10) + abs(math.log(t.params["u"]) - 3) + t.params["d"])
    late = [t.params["n"] for t in study.trials[20:]]
    assert np.mean(np.abs(np.array(late) - 10)) < 8


def test_several_objectives_and_constraints_run_through_a_study():
    def objective(trial: slimtune.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        trial.set_constraints([0.2 - y])  # feasible when y >= 0.2
        return x, (1 - x) ** 2 + y

    study = slimtune.create_study(
        storage="memory", seed=0, sampler=TPESampler(), directions=["minimize", "minimize"]
    )
    study.optimize(objective, n_trials=40)
    late = study.trials[20:]
    assert sum(t.feasible for t in late) >= 15
    assert study.best_trials


def test_same_results_with_a_reused_sampler_and_after_pickling():
    def run(sampler: TPESampler, seed: int) -> list[dict[str, Any]]:
        study = slimtune.create_study(storage="memory", seed=seed, sampler=sampler)
        study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=20)
        return [t.params for t in study.trials]

    shared = TPESampler()
    first = run(shared, 0)
    assert run(shared, 1) == run(TPESampler(), 1)  # the history cache resets for a new study
    assert run(pickle.loads(pickle.dumps(shared)), 0) == first


def test_threads_share_one_sampler():
    def objective(trial: slimtune.Trial) -> float:
        x = trial.suggest_float("x", -2.0, 2.0)
        k = trial.suggest_int("k", 1, 5)
        return (x - 0.5) ** 2 + k

    study = slimtune.create_study(storage="memory", seed=0, sampler=TPESampler())
    study.optimize(objective, n_trials=40, n_jobs=4)  # in-memory storage: jobs are threads
    assert len(study.trials) == 40
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert study.best_value < 1.5


def test_cached_history_matches_a_fresh_sampler_with_running_and_finishing_trials():
    space = SearchSpace({"x": Float(0.0, 1.0), "c": Categorical(["p", "q"]), "n": Int(1, 9)})
    cached = TPESampler(n_startup_trials=3)
    study = slimtune.create_study(storage="memory", seed=0, space=dict(space.items()))
    pending: list[slimtune.Trial] = []
    for i in range(25):
        trials = study._trials_for_sampling()
        rng = np.random.default_rng(i)
        got = cached.sample(space, trials, copy.deepcopy(rng), directions=("minimize",))
        want = TPESampler(n_startup_trials=3).sample(space, trials, rng, directions=("minimize",))
        assert got == want
        study.enqueue(got)
        pending.append(study.ask())
        if i % 3 != 1:  # leave some RUNNING for a while, finish them later
            while pending:
                t = pending.pop(0)
                study.tell(t, t.params["x"] + t.params["n"] * 0.1 + (t.params["c"] == "q"))


# the Parzen estimator --------------------------------------------------------------------------


def test_discrete_kernel_masses_sum_to_one_over_the_cells():
    for dist in (Int(1, 12), Int(1, 300, log=True), Float(0.0, 1.0, step=0.25)):
        dim = dim_of(dist)
        assert dim is not None
        obs = np.array([[encode(dim, v)] for v in dist.grid()[:3]])
        pe = ParzenEstimator(obs, np.ones(3), [dim], prior_weight=1.0, consider_endpoints=False)
        cells = np.array([[encode(dim, v)] for v in dist.grid()])
        assert np.exp(pe.log_pdf(cells)).sum() == pytest.approx(1.0, rel=1e-9)
        drawn = pe.sample(np.random.default_rng(0), 200)[:, 0]
        assert np.allclose(snap(dim, drawn), drawn)


def test_continuous_density_integrates_to_one():
    dims = [dim_of(Float(0.0, 1.0))]
    obs = np.array([[0.1], [0.15], [0.8]])
    pe = ParzenEstimator(obs, np.ones(3), dims, prior_weight=1.0, consider_endpoints=False)
    grid = np.linspace(0.0, 1.0, 20001)[:, None]
    assert np.trapezoid(np.exp(pe.log_pdf(grid)), grid[:, 0]) == pytest.approx(1.0, rel=1e-4)


def test_categorical_kernel_puts_most_mass_on_observed_choices():
    dim = dim_of(Categorical(["a", "b", "c", "d"]))
    assert dim is not None
    obs = np.array([[2.0]] * 8 + [[0.0]])
    pe = ParzenEstimator(obs, np.ones(9), [dim], prior_weight=1.0, consider_endpoints=False)
    p = np.exp(pe.log_pdf(np.arange(4.0)[:, None]))
    assert p.sum() == pytest.approx(1.0)
    assert p[2] > 0.6 and p[2] > p[0] > p[1] == pytest.approx(p[3])
    drawn = pe.sample(np.random.default_rng(0), 1000)[:, 0]
    assert np.mean(drawn == 2) == pytest.approx(p[2], abs=0.05)


# the good / bad split --------------------------------------------------------------------------


def test_split_single_objective_respects_direction():
    trials = [frozen(i, values=[v]) for i, v in enumerate([5.0, 1.0, 3.0, 0.5, 4.0])]
    good, bad = split_trials(trials, ["minimize"], gamma=lambda n: 2)
    assert good == [1, 3] and bad == [0, 2, 4]
    good, bad = split_trials(trials, ["maximize"], gamma=lambda n: 2)
    assert good == [0, 4]


def test_split_puts_stopped_after_complete_and_ignores_failed():
    trials = [
        frozen(0, values=[3.0]),
        frozen(1, TrialState.STOPPED, [0.1], steps={1: 0.1}),  # better value, but stopped
        frozen(2, TrialState.FAILED),
        frozen(3, TrialState.STOPPED, [0.5], steps={5: 0.5}),  # got further than trial 1
        frozen(4, TrialState.STOPPED, None),
    ]
    good, bad = split_trials(trials, ["minimize"], gamma=lambda n: 2)
    assert good == [0, 3] and bad == [1, 4]


def test_split_ranks_stopped_trials_by_their_value_at_the_last_step():
    # Optuna's order for pruned trials: later last step first, then the value reported there
    # (not a value told with the STOPPED state; a NaN there ranks last among its step)
    trials = [
        frozen(0, TrialState.STOPPED, [0.0], steps={1: 0.2, 3: 0.9}),
        frozen(1, TrialState.STOPPED, [5.0], steps={1: 0.4, 3: 0.3}),
        frozen(2, TrialState.STOPPED, [0.1], steps={1: 0.1, 3: math.nan}),
        frozen(3, TrialState.STOPPED, [0.05], steps={1: 0.05}),
    ]
    good, bad = split_trials(trials, ["minimize"], gamma=lambda n: 1)
    assert good == [1] and bad == [0, 2, 3]
    good, _ = split_trials(trials, ["minimize"], gamma=lambda n: 3)
    assert good == [0, 1, 2]
    good, _ = split_trials(trials, ["maximize"], gamma=lambda n: 1)
    assert good == [0]


def _l_bandwidth_scales(monkeypatch: pytest.MonkeyPatch, trials: list[FrozenTrial]) -> set[float]:
    import slimtune.samplers._tpe as tpe_module

    seen: list[float] = []
    real = tpe_module.ParzenEstimator

    def recording(*args: Any, **kwargs: Any) -> ParzenEstimator:
        seen.append(kwargs.get("bandwidth_scale", 1.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(tpe_module, "ParzenEstimator", recording)
    space = SearchSpace({"x": Float(0.0, 1.0)})
    TPESampler(n_startup_trials=0).sample(space, trials, np.random.default_rng(0))
    return set(seen)


def test_good_density_is_sharpened_only_in_studies_without_stopped_trials(monkeypatch):
    dist = Float(0.0, 1.0)

    def trial(i: int, state: TrialState, steps: dict[int, float] | None = None) -> FrozenTrial:
        t = frozen(i, state, [abs(0.5 - i / 20)], steps=steps)
        return dataclasses.replace(t, params={"x": i / 20}, distributions={"x": dist})

    plain = [trial(i, TrialState.COMPLETE) for i in range(20)]
    # a plain study: l(x) with half bandwidths, g(x) with full ones; with early stopping: full
    assert _l_bandwidth_scales(monkeypatch, plain) == {0.5, 1.0}
    early = [*plain[:19], trial(19, TrialState.STOPPED, steps={1: 0.3})]
    assert _l_bandwidth_scales(monkeypatch, early) == {1.0}


def test_split_constant_liar_puts_running_trials_in_the_bad_set():
    trials = [frozen(0, values=[1.0]), frozen(1, TrialState.RUNNING), frozen(2, values=[2.0])]
    assert split_trials(trials, ["minimize"], gamma=lambda n: 1) == ([0], [1, 2])
    assert split_trials(trials, ["minimize"], gamma=lambda n: 1, constant_liar=False) == (
        [0],
        [2],
    )


def test_split_constraints_feasible_first_then_by_violation():
    trials = [
        frozen(0, values=[0.0], constraints=[2.0]),
        frozen(1, values=[9.0], constraints=[-1.0]),
        frozen(2, values=[0.0], constraints=[0.5, -3.0]),
        frozen(3, values=[8.0]),
        frozen(4, values=[0.0], constraints=[1.0, 0.3]),
    ]
    good, bad = split_trials(trials, ["minimize"], gamma=lambda n: 3)
    assert good == [1, 2, 3] and bad == [0, 4]


def test_split_several_objectives_by_rank_then_hypervolume():
    # front: (0, 10) (1, 9) (9, 1) (10, 0) (5, 5); dominated: (6, 6) (11, 11)
    pts = [[0, 10], [6, 6], [1, 9], [9, 1], [11, 11], [10, 0], [5, 5]]
    trials = [frozen(i, values=[float(a), float(b)]) for i, (a, b) in enumerate(pts)]
    good, _ = split_trials(trials, ["minimize", "minimize"], gamma=lambda n: 5)
    assert good == [0, 2, 3, 5, 6]
    good, _ = split_trials(trials, ["minimize", "minimize"], gamma=lambda n: 6)
    assert good == [0, 1, 2, 3, 5, 6]
    # within the front, the two extreme points add the least hypervolume (crowding distance
    # would keep them)
    good, _ = split_trials(trials, ["minimize", "minimize"], gamma=lambda n: 3)
    assert good == [2, 3, 6]
    # maximising the second objective flips its order
    flipped = [frozen(i, values=[float(a), -float(b)]) for i, (a, b) in enumerate(pts)]
    assert split_trials(flipped, ["minimize", "maximize"], gamma=lambda n: 3)[0] == [2, 3, 6]


def test_nondominated_ranks():
    y = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.5, 0.5]])
    assert nondominated_ranks(y).tolist() == [0, 0, 1, 2, 0]


def _brute_force_ranks(y: np.ndarray) -> list[int]:
    ranks, left, rank = [-1] * len(y), set(range(len(y))), 0
    while left:
        front = [
            i for i in left if not any(np.all(y[j] <= y[i]) and np.any(y[j] < y[i]) for j in left)
        ]
        for i in front:
            ranks[i] = rank
        left -= set(front)
        rank += 1
    return ranks


@pytest.mark.parametrize("k", [1, 2, 3])
def test_nondominated_ranks_match_brute_force_with_ties(k):
    rng = np.random.default_rng(k)
    for _ in range(50):
        y = rng.integers(0, 4, size=(int(rng.integers(1, 30)), k)).astype(float)
        assert nondominated_ranks(y).tolist() == _brute_force_ranks(y)


def test_defaults_match_optuna():
    assert [default_gamma(n) for n in (0, 1, 10, 11, 100, 1000)] == [0, 1, 1, 2, 10, 25]
    assert default_weights(10).tolist() == [1.0] * 10
    w = default_weights(40)
    assert len(w) == 40 and w[0] == pytest.approx(1 / 40) and np.all(w[-25:] == 1.0)


# arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_startup_trials": -1}, ValueError, r"`n_startup_trials` must be >= 0, got -1"),
        ({"n_startup_trials": 2.5}, TypeError, r"`n_startup_trials` must be an int, got 2.5"),
        ({"n_ei_candidates": 0}, ValueError, r"`n_ei_candidates` must be >= 1, got 0"),
        ({"gamma": 0.1}, TypeError, r"`gamma` must be a callable .* got 0.1"),
        ({"prior_weight": 0.0}, ValueError, r"`prior_weight` must be a finite number > 0"),
        ({"prior_weight": float("nan")}, ValueError, r"`prior_weight` .* got nan"),
        ({"multivariate": "yes"}, TypeError, r"`multivariate` must be True or False"),
        ({"constant_liar": 1}, TypeError, r"`constant_liar` must be True or False, got 1"),
        ({"consider_endpoints": None}, TypeError, r"`consider_endpoints` must be True or False"),
    ],
)
def test_arguments_are_validated(kwargs, error, message):
    with pytest.raises(error, match=message):
        TPESampler(**kwargs)


def test_gamma_must_return_a_count():
    sampler = TPESampler(n_startup_trials=0, gamma=lambda n: 0.5)  # type: ignore[arg-type,return-value]
    study = slimtune.create_study(storage="memory", seed=0, sampler=sampler)
    with pytest.raises(ValueError, match=r"`gamma` must return a non-negative int, got 0.5"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        TPESampler(5)  # type: ignore[misc]
