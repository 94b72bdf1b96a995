from __future__ import annotations

import itertools

import pytest
import torch

from slimtune import TrialState
from slimtune.nas import LatencyTable, MLPSupernet, count_macs, count_params, extract
from slimtune.pipeline import Budget, search_architectures
from slimtune.space import Float
from tests.nas._supernets import make


def _score(net: torch.nn.Module) -> float:
    # a deterministic stand-in for validation accuracy: bigger sub-networks score higher
    return float(count_params(net)) ** 0.25


def test_costs_of_an_mlp_are_exact() -> None:
    net = MLPSupernet(16, 5, width_choices=(8, 16), depth_choices=(1, 2))
    arch = {"depth": 2, "width0": 8, "width1": 16}
    sub = extract(net, arch)
    assert count_params(sub) == (16 * 8 + 8) + (8 * 16 + 16) + (16 * 5 + 5)
    assert count_macs(sub, torch.randn(3, 16)) == 3 * (16 * 8 + 8 * 16 + 16 * 5)


def test_latency_table_reuses_layer_timings_and_round_trips(tmp_path) -> None:
    net, x = make("cnn")
    table = LatencyTable(x, repeats=2, warmup=0)
    a = net.largest_arch()
    ms = table(net, a)
    assert ms > 0 and table.misses > 0
    misses = table.misses
    assert table(net, a) == ms and table.misses == misses  # every unit came from the table
    table.save(tmp_path / "lut.json")
    again = LatencyTable.load(tmp_path / "lut.json", x)
    assert again(net, a) == ms
    with pytest.raises(ValueError, match="shape"):
        LatencyTable.load(tmp_path / "lut.json", torch.randn(1, 1, 5, 5))


def test_multi_objective_search_returns_a_front_respecting_the_budget() -> None:
    net, x = make("mlp")
    largest_params = count_params(extract(net, net.largest_arch()))
    budget = Budget(max_params=largest_params // 2)
    study = search_architectures(
        net,
        lambda m: _score(extract(m)),
        n_trials=25,
        example_inputs=x,
        objectives=("score", "params"),
        budget=budget,
        seed=0,
    )
    done = [t for t in study.trials if t.state is TrialState.COMPLETE]
    assert len(done) == 25
    assert all({"params", "macs"} <= set(t.user_attrs) for t in done)
    front = study.best_trials
    assert front and all(t.user_attrs["params"] <= budget.max_params for t in front)
    # on the front, more parameters must buy a higher score
    pts = sorted({(t.values[1], t.values[0]) for t in front})  # duplicates of one arch tie
    assert all(b[1] > a[1] for a, b in itertools.pairwise(pts))


def test_architecture_and_hyperparameters_in_one_space() -> None:
    net, x = make("mlp")
    seen = []

    def evaluate(model: torch.nn.Module, hp: dict) -> float:
        seen.append(hp["lr"])
        return -abs(hp["lr"] - 0.01)

    study = search_architectures(
        net, evaluate, n_trials=5, example_inputs=x, hparams={"lr": Float(1e-4, 1e-1, log=True)}
    )
    assert len(seen) == 5 and set(study.best_trial.params) >= {"depth", "lr"}


def test_bad_search_arguments() -> None:
    net, x = make("mlp")
    with pytest.raises(ValueError, match="objectives"):
        search_architectures(net, _score, n_trials=1, example_inputs=x, objectives=("params",))
    with pytest.raises(ValueError, match="latency_table"):
        search_architectures(
            net, _score, n_trials=1, example_inputs=x, budget=Budget(max_latency_ms=1.0)
        )
    with pytest.raises(ValueError, match="max_params"):
        Budget(max_params=0)
    with pytest.raises(ValueError, match="reuses"):
        search_architectures(
            net, _score, n_trials=1, example_inputs=x, hparams={"depth": Float(0, 1)}
        )
