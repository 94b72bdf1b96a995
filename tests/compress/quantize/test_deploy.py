"""Real integer kernels: int8 dynamic Linear, PT2E static int8, CUDA weight-only guard."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from torch import nn

from slimtune.compress.quantize import (
    Int8DynamicLinear,
    QuantSpec,
    quantize_dynamic_int8_,
    quantize_static_int8,
    weight_only_cuda_,
)
from slimtune.exceptions import SlimtuneError


def _mlp() -> nn.Sequential:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.Linear(64, 4))


def test_dynamic_int8_close_to_float_and_integer_weights() -> None:
    model = _mlp()
    ref = copy.deepcopy(model)
    report = quantize_dynamic_int8_(model, layers={"2": QuantSpec(bits=8)}, skip=["3"])
    assert isinstance(model[0], Int8DynamicLinear) and isinstance(model[2], Int8DynamicLinear)
    assert isinstance(model[3], nn.Linear)
    assert report.skipped == {"3": "kept in float by the caller"}
    assert report.layers["2"]["granularity"] == "tensor"
    assert model[0].weight_codes.dtype == torch.int8
    assert model[0].weight_scale.numel() == 64 and model[2].weight_scale.numel() == 1
    x = torch.randn(16, 32)
    assert torch.allclose(model(x), ref(x), atol=0.05)


def test_dynamic_int8_bad_input_leaves_model_unchanged() -> None:
    model = _mlp()
    with pytest.raises(ValueError, match=r"matches no nn\.Linear"):
        quantize_dynamic_int8_(model, skip=["head"])
    with pytest.raises(ValueError, match="symmetric"):
        quantize_dynamic_int8_(model, weight=QuantSpec(symmetric=False))
    assert all(type(m) is nn.Linear for m in model if not isinstance(m, nn.ReLU))


class _SharedReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()  # called twice
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.c1(x))
        x = self.relu(self.c2(x))
        return self.fc(x.flatten(1))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="needs the quant extra")
def test_pt2e_static_int8_handles_a_relu_called_twice() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = _SharedReLU().eval()
    x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    result = quantize_static_int8(model, (x,), x, compile=False)
    assert result.renamed_call_sites == ["relu@1"]
    out = result.model(x)
    assert torch.allclose(out, model(x), atol=0.05)
    assert isinstance(model.relu, nn.ReLU)  # the input model is untouched


def test_weight_only_cuda_refuses_without_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SlimtuneError, match="needs a CUDA device"):
        weight_only_cuda_(_mlp())
    with pytest.raises(ValueError, match="`bits` must be 8 or 4"):
        weight_only_cuda_(_mlp(), bits=2)  # type: ignore[arg-type]
