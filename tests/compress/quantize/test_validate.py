"""SQNR per layer and sensitivity ranking."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from slimtune.compress.quantize import (
    LayerConfig,
    QuantConfig,
    QuantSpec,
    layer_sqnr,
    quantize_,
    quantize_dynamic_int8_,
    sensitivity,
    sqnr,
)


def _mlp() -> nn.Sequential:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.Linear(32, 4))


def test_sqnr_values() -> None:
    x = torch.ones(10)
    assert sqnr(x, x) == math.inf
    assert abs(sqnr(x, x * 1.1) - 20.0) < 1e-3  # noise is 1 % of the signal power


def test_layer_sqnr_reports_each_quantised_layer_and_the_output() -> None:
    model = _mlp()
    q = copy.deepcopy(model)
    config = QuantConfig(
        default=LayerConfig(weight=QuantSpec(bits=8)),
        layers={"2": LayerConfig(weight=QuantSpec(bits=2))},
        bias_correction=False,
    )
    quantize_(q, config)
    data = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    scores = layer_sqnr(model, q, data)
    assert set(scores) == {"0", "2", "3", ""}
    assert scores["0"] > 30 and scores["2"] < scores["0"]


def test_sensitivity_ranks_the_damaged_layer_first() -> None:
    model = _mlp()
    with torch.no_grad():
        model[2].weight[0, 0] = 50.0  # an outlier ruins per-tensor quantisation of layer 2
    data = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    before = copy.deepcopy(model.state_dict())
    ranking = sensitivity(model, data, config=LayerConfig(weight=QuantSpec(bits=4)))
    assert ranking[0][0] == "2"
    assert len(ranking) == 3
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    def int8_one_layer(m: nn.Module, name: str) -> None:
        others = [n for n, c in m.named_modules() if isinstance(c, nn.Linear) and n != name]
        quantize_dynamic_int8_(m, weight=QuantSpec(), skip=others)

    real = sensitivity(model, data, quantizer=int8_one_layer)
    assert real[0][0] == "2"
