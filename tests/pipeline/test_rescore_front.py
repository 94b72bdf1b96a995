from __future__ import annotations

import math

import pytest
import torch

from slimtune import TrialState
from slimtune.nas import extract, recalibrate_bn_
from slimtune.pipeline import rescore_front, search_architectures
from slimtune.space import Float
from tests.nas._supernets import make


def _outputs_sum(x: torch.Tensor):
    def evaluate(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(model(x).abs().mean())

    return evaluate


def test_front_points_are_scored_again_on_held_out_data() -> None:
    net, x = make("mlp-bn-heads")
    search_x, held_x = x[:3], torch.randn(8, 16)
    recal = [torch.randn(8, 16) for _ in range(2)]
    study = search_architectures(
        net,
        _outputs_sum(search_x),
        n_trials=12,
        example_inputs=x[:1],
        objectives=("score", "params"),
        recalibration=recal,
        seed=0,
    )
    points = rescore_front(net, study, _outputs_sum(held_x), recalibration=recal)
    front = study.best_trials
    assert [p.number for p in points] == [t.number for t in front]
    for p, t in zip(points, front, strict=True):
        assert p.values == tuple(t.values) and p.hparams == {}
        assert p.arch == net.canonical(t.params)
        # the same score as the extracted sub-network, BatchNorm recalibrated the same way
        net.set_arch(p.arch)
        recalibrate_bn_(net, recal)
        sub = extract(net, p.arch).eval()
        assert p.score == pytest.approx(_outputs_sum(held_x)(sub), rel=1e-6)
        assert p.optimism == pytest.approx(t.values[0] - p.score)


def test_rescores_chosen_trials_and_passes_searched_hyperparameters() -> None:
    net, x = make("mlp")
    seen: list[dict] = []

    def evaluate(model: torch.nn.Module, hp: dict) -> float:
        seen.append(dict(hp))
        return hp["lr"]

    study = search_architectures(
        net, evaluate, n_trials=5, example_inputs=x, hparams={"lr": Float(1e-4, 1e-1, log=True)}
    )
    trials = study.get_trials([TrialState.COMPLETE])[:3]
    points = rescore_front(net, study, evaluate, trials=trials)
    assert [p.number for p in points] == [t.number for t in trials]
    assert all(p.hparams == {"lr": t.params["lr"]} for p, t in zip(points, trials, strict=True))
    assert all(p.score == p.values[0] for p in points)  # evaluate depends on lr alone
    assert all("lr" not in p.arch for p in points)


def test_bad_input_is_refused_with_the_fix() -> None:
    net, x = make("mlp")
    study = search_architectures(net, _outputs_sum(x), n_trials=3, example_inputs=x)
    with pytest.raises(TypeError, match=r"slimtune\.nas\.Supernet"):
        rescore_front(torch.nn.Linear(2, 2), study, _outputs_sum(x))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        rescore_front(net, study, lambda m: math.nan)
    empty = search_architectures(net, _outputs_sum(x), n_trials=0, example_inputs=x)
    with pytest.raises(ValueError, match="run the search first"):
        rescore_front(net, empty, _outputs_sum(x))
    running = study.ask()
    frozen = [t for t in study.trials if t.number == running.number]
    with pytest.raises(ValueError, match="COMPLETE"):
        rescore_front(net, study, _outputs_sum(x), trials=frozen)
