from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import slimtune
from slimtune import Float
from slimtune.samplers import QMCSampler, RandomSampler
from slimtune.space import SearchSpace
from tests.samplers.test_conformance import MIXED as SPACE


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 40))
def test_qmc_points_are_members_at_any_index(seed, n):
    space = SearchSpace(SPACE)
    sampler = QMCSampler(seed=seed)
    history = [None] * n
    params = sampler.sample(space, history, np.random.default_rng(0))  # type: ignore[arg-type]
    assert space.contains(params)


def test_qmc_covers_the_space_more_evenly_than_random():
    space = SearchSpace({"x": Float(0, 1), "y": Float(0, 1)})

    def discrepancy(sampler):
        study = slimtune.create_study(storage="memory", seed=0, sampler=sampler, space=dict(space))
        study.optimize(lambda t: 0.0, n_trials=64)
        pts = np.array([[t.params["x"], t.params["y"]] for t in study.trials])
        from scipy.stats import qmc

        return qmc.discrepancy(pts)

    assert discrepancy(QMCSampler()) < discrepancy(RandomSampler())


def test_qmc_define_by_run_first_trials_are_not_in_lockstep():
    study = slimtune.create_study(storage="memory", seed=0, sampler=QMCSampler())
    trials = [study.ask() for _ in range(8)]  # none complete: all parameters independent
    pairs = [(t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)) for t in trials]
    assert any(abs(x - y) > 1e-6 for x, y in pairs)


def test_qmc_sampler_pickles_for_worker_processes():
    import pickle

    sampler = QMCSampler(seed=3)
    space = SearchSpace({"x": Float(0, 1)})
    first = sampler.sample(space, [], np.random.default_rng(0))
    clone = pickle.loads(pickle.dumps(sampler))
    assert clone.sample(space, [], np.random.default_rng(0)) == first
