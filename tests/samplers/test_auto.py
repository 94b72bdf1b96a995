from __future__ import annotations

import pytest

import slimtune
from slimtune import Categorical, Conditional, Float, Int
from slimtune.samplers import AutoSampler
from slimtune.space import SearchSpace


def test_gp_for_small_continuous_spaces_tpe_otherwise():
    auto = AutoSampler(gp_max_trials=5, gp_max_dims=3)
    continuous = SearchSpace({"x": Float(0, 1), "n": Int(1, 9)})
    assert auto.uses_gp(continuous, [])
    assert not auto.uses_gp(SearchSpace({"c": Categorical(["a", "b"])}), [])
    conditional = SearchSpace(
        {"k": Int(0, 1), "y": Conditional(Float(0, 1), parent="k", values=[1])}
    )
    assert not auto.uses_gp(conditional, [])
    wide = SearchSpace({f"x{i}": Float(0, 1) for i in range(4)})
    assert not auto.uses_gp(wide, [])
    study = slimtune.create_study(storage="memory", seed=0, sampler=auto, space=dict(continuous))
    study.optimize(lambda t: t.params["x"], n_trials=5)
    assert not auto.uses_gp(continuous, study.trials)  # budget used up: TPE from here on


def test_auto_sampler_minimises_a_quadratic():
    study = slimtune.create_study(storage="memory", seed=1, sampler=AutoSampler())
    study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1.5) ** 2, n_trials=25)
    assert study.best_value < 0.05


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_arguments_are_validated(bad):
    with pytest.raises(ValueError, match="`gp_max_trials` must be a non-negative int"):
        AutoSampler(gp_max_trials=bad)
