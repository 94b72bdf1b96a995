from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from slimtune import Categorical, Float, FrozenTrial, Int, TrialState
from slimtune.samplers._selection import (
    crowding_distance,
    fitness_rank,
    members,
    non_dominated_fronts,
    population,
    tournament,
    violation,
)
from slimtune.space import SearchSpace

SPACE = SearchSpace({"x": Int(0, 1000)})


def trial(
    number: int,
    params: dict[str, object],
    values: list[float] | None,
    *,
    state: TrialState = TrialState.COMPLETE,
    constraints: list[float] | None = None,
) -> FrozenTrial:
    return FrozenTrial(
        number=number,
        trial_id=f"t{number}",
        state=state,
        params=dict(params),
        distributions={"x": SPACE["x"]},
        seed=number,
        datetime_start=datetime(2024, 1, 1),
        values=values,
        constraints=constraints,
    )


def test_population_is_the_most_recent_finished_members_in_number_order():
    trials = [trial(i, {"x": i}, [float(i)]) for i in range(10)]
    trials[8] = trial(8, {"x": 8}, None, state=TrialState.RUNNING)
    trials[7] = trial(7, {"x": 7}, None, state=TrialState.FAILED)
    trials[6] = trial(6, {"x": 6}, [0.5], state=TrialState.STOPPED)  # stopped with a value: member
    trials[5] = trial(5, {"x": 5}, None, state=TrialState.STOPPED)  # no value: not a member
    assert [t.number for t in population(trials, SPACE, 4)] == [3, 4, 6, 9]
    assert [t.number for t in population(trials, SPACE, 100)] == [0, 1, 2, 3, 4, 6, 9]


def test_population_skips_trials_that_do_not_fit_the_space_or_the_objectives():
    space = SearchSpace({"x": Int(0, 1000), "y": Categorical(["a", "b"])})
    trials = [
        trial(0, {"x": 1, "y": "a"}, [1.0]),
        trial(1, {"x": 1}, [1.0]),  # missing y (define-by-run history)
        trial(2, {"x": 1, "y": "c"}, [1.0]),  # not a member of y's distribution
        trial(3, {"x": 1, "y": "b"}, [1.0, 2.0]),  # wrong number of objectives
    ]
    assert [t.number for t, _ in members(trials, space, 1)] == [0]


def test_members_older_than_the_population_never_win_a_tournament():
    # the oldest trials are by far the best; after ageing only the newest five can be parents
    trials = [trial(i, {"x": i}, [-100.0 if i < 10 else float(i)]) for i in range(15)]
    pop = population(trials, SPACE, 5)
    rank = fitness_rank(np.array([t.values for t in pop]), np.zeros(len(pop)), ["minimize"])
    rng = np.random.default_rng(0)
    winners = {pop[tournament(rank, 3, rng)].number for _ in range(200)}
    assert winners <= {10, 11, 12, 13, 14}
    assert 10 in winners  # the best member of the population does win


def test_tournament_of_the_whole_population_picks_the_best():
    rank = np.array([3, 0, 2, 1])
    rng = np.random.default_rng(0)
    assert all(tournament(rank, 4, rng) == 1 for _ in range(20))
    assert tournament(rank, 10, rng) == 1  # more contestants than members: all of them


def test_tournament_of_one_is_uniform():
    rank = np.arange(4)
    rng = np.random.default_rng(0)
    counts = np.bincount([tournament(rank, 1, rng) for _ in range(4000)], minlength=4)
    assert counts.min() > 850


def test_single_objective_rank_respects_direction():
    values = np.array([[3.0], [1.0], [2.0]])
    assert list(fitness_rank(values, np.zeros(3), ["minimize"])) == [2, 0, 1]
    assert list(fitness_rank(values, np.zeros(3), ["maximize"])) == [0, 2, 1]


def test_ties_go_to_the_younger_member():
    assert list(fitness_rank(np.array([[1.0], [1.0]]), np.zeros(2), ["minimize"])) == [1, 0]


def test_multi_objective_rank_puts_non_dominated_first():
    # minimise both: (1, 5), (2, 2), (5, 1) form the front; (3, 3), (6, 6) are dominated
    values = np.array([[3.0, 3.0], [1.0, 5.0], [6.0, 6.0], [2.0, 2.0], [5.0, 1.0]])
    rank = fitness_rank(values, np.zeros(5), ["minimize", "minimize"])
    assert set(np.argsort(rank)[:3]) == {1, 3, 4}
    assert rank[0] == 3 and rank[2] == 4
    rng = np.random.default_rng(0)
    assert all(tournament(rank, 5, rng) in {1, 3, 4} for _ in range(20))


def test_multi_objective_rank_respects_directions():
    values = np.array([[1.0, 1.0], [2.0, 2.0]])
    # minimise the first, maximise the second: neither dominates; maximise both: 1 dominates 0
    assert set(fitness_rank(values, np.zeros(2), ["minimize", "maximize"])) == {0, 1}
    rank = fitness_rank(values, np.zeros(2), ["maximize", "maximize"])
    assert list(rank) == [1, 0]


def test_crowding_prefers_the_boundary_and_isolated_points_of_a_front():
    # one front on the line x + y = 10: the ends first; the middle of the cluster last
    values = np.array([[0.0, 10.0], [4.9, 5.1], [5.0, 5.0], [5.1, 4.9], [8.0, 2.0], [10.0, 0.0]])
    rank = fitness_rank(values, np.zeros(6), ["minimize", "minimize"])
    assert set(np.argsort(rank)[:2]) == {0, 5}
    assert np.argsort(rank)[-1] == 2
    assert rank[4] < rank[3]


def test_non_dominated_fronts_and_crowding_distance():
    y = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])
    fronts = non_dominated_fronts(y)
    assert [sorted(f.tolist()) for f in fronts] == [[0, 1, 2], [3], [4]]
    d = crowding_distance(y[[0, 1, 2]])
    assert np.isinf(d[0]) and np.isinf(d[2]) and d[1] == pytest.approx(2.0)
    assert np.all(np.isinf(crowding_distance(y[[0, 1]])))
    same = non_dominated_fronts(np.array([[1.0, 1.0], [1.0, 1.0]]))
    assert [sorted(f.tolist()) for f in same] == [[0, 1]]  # equal points do not dominate


def test_feasible_beats_infeasible_and_infeasible_are_ordered_by_violation():
    values = np.array([[100.0], [0.0], [-5.0], [1.0]])
    violations = np.array([0.0, 2.0, 0.5, 0.0])
    rank = fitness_rank(values, violations, ["minimize"])
    # feasible (3: 1.0, then 0: 100.0), then infeasible by violation (2: 0.5, then 1: 2.0)
    assert list(np.argsort(rank)) == [3, 0, 2, 1]
    multi = fitness_rank(
        np.array([[9.0, 9.0], [0.0, 0.0], [0.0, 0.0]]), np.array([0.0, 3.0, 1.0]), ["minimize"] * 2
    )
    assert list(np.argsort(multi)) == [0, 2, 1]


def test_violation_is_the_total_positive_constraint_value():
    assert violation(trial(0, {"x": 0}, [0.0])) == 0.0
    assert violation(trial(0, {"x": 0}, [0.0], constraints=[-1.0, 0.0])) == 0.0
    assert violation(trial(0, {"x": 0}, [0.0], constraints=[0.5, -3.0, 1.5])) == 2.0
    assert violation(trial(0, {"x": 0}, [0.0], constraints=[float("nan")])) == float("inf")


def test_rank_of_a_float_only_population():
    space = SearchSpace({"x": Float(0.0, 1.0)})
    t = FrozenTrial(
        number=0,
        trial_id="a",
        state=TrialState.COMPLETE,
        params={"x": 0.5},
        distributions={"x": space["x"]},
        seed=0,
        datetime_start=datetime(2024, 1, 1),
        values=[float("inf")],
    )
    assert members([t], space, 1) == []  # non-finite values never rank
