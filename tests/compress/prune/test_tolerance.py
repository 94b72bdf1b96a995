"""Greedy pruning to a tolerance: stops just before the metric drops more than ``tol``."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from slimtune.compress.prune import (
    StructuredPruneConfig,
    apply_plan_,
    count_params,
    prune_to_tolerance,
)
from slimtune.testing import MLP, accuracy, fit, load_digits

torch.set_num_threads(1)


def test_prunes_until_the_tolerance_and_replays() -> None:
    data = load_digits(layout="flat")
    torch.manual_seed(0)
    model = MLP(hidden=(64, 32))
    fit(model, data, epochs=3, lr=3e-3)
    trained = copy.deepcopy(model)

    def evaluate(m: torch.nn.Module) -> float:
        return accuracy(m, data.x_val, data.y_val)

    result = prune_to_tolerance(
        model, evaluate, tol=0.03, step=0.25, example_inputs=data.x_val[:2], max_steps=8
    )
    assert result.curve and result.baseline == evaluate(trained)
    accepted = [p for p in result.curve if p.accepted]
    assert result.metric >= result.baseline - 0.03
    assert evaluate(model) == pytest.approx(result.metric)
    if len(accepted) < len(result.curve):  # the last step went too far and was undone
        assert result.curve[-1].metric < result.baseline - 0.03
        assert count_params(model) == accepted[-1].params if accepted else True
    assert all(a.params > b.params for a, b in itertools.pairwise(accepted))
    apply_plan_(trained, result.plan)
    assert torch.equal(trained(data.x_val), model(data.x_val))


def test_finetune_between_steps_and_bad_arguments() -> None:
    data = load_digits(layout="flat")
    torch.manual_seed(0)
    model = MLP(hidden=(32,))
    calls: list[int] = []
    result = prune_to_tolerance(
        model,
        lambda m: 1.0,
        tol=0.0,
        step=0.5,
        example_inputs=data.x_val[:2],
        finetune=lambda m: calls.append(count_params(m)),
        config=StructuredPruneConfig(round_to=4),
        max_steps=2,
    )
    assert len(calls) == 2 and len(result.curve) == 2
    with pytest.raises(ValueError, match="`step` must be in"):
        prune_to_tolerance(model, lambda m: 1.0, tol=0.1, step=1.5, example_inputs=data.x_val[:2])
    with pytest.raises(ValueError, match="`tol` must be"):
        prune_to_tolerance(model, lambda m: 1.0, tol=-1, example_inputs=data.x_val[:2])
