"""A local Ray cluster (num_cpus=2) runs 20 trials; a raising and a self-killing objective fail
only their own trials, with their reasons. One Ray session for the whole module."""

from __future__ import annotations

import pytest

import slimtune
from slimtune import TrialState
from tests.distributed import _objectives

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_session():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_twenty_trials_on_ray_with_a_raise_and_a_crash(ray_session, tmp_path):
    from slimtune.executors import RayExecutor

    executor = RayExecutor(resources={"num_cpus": 1})
    assert executor.max_workers == 2
    study = slimtune.create_study(storage=f"sqlite:///{tmp_path}/ray.db", seed=0)
    study.optimize(
        _objectives.raises_on_5_exits_on_11, n_trials=20, executor=executor, catch=(ValueError,)
    )
    trials = study.trials
    assert len(trials) == 20
    failed = {t.number: t for t in trials if t.state is TrialState.FAILED}
    assert sorted(failed) == [5, 11]
    assert failed[5].error is not None and failed[5].error["type"] == "ValueError"
    assert failed[5].error["message"] == "objective raised on trial 5"
    assert failed[11].error is not None and "died" in failed[11].error["message"]
    assert sum(t.state is TrialState.COMPLETE for t in trials) == 18
    executor.shutdown()
    assert ray.is_initialized()  # a Ray the executor did not start is left running


def test_an_uncaught_objective_exception_is_raised_in_the_driver(ray_session, tmp_path):
    from slimtune.executors import RayExecutor

    study = slimtune.create_study(storage=f"sqlite:///{tmp_path}/ray2.db", seed=0)
    with pytest.raises(ValueError, match="objective raised on trial 5"):
        study.optimize(
            _objectives.raises_on_5_exits_on_11,
            n_trials=8,
            executor=RayExecutor(resources={"num_cpus": 1}),
        )
    assert all(t.state is not TrialState.RUNNING for t in study.trials)
