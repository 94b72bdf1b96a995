"""Real integer kernels: int8 dynamic Linear, PT2E static int8, CUDA weight-only guard."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from slimtune.compress.quantize import (
    Int8DynamicLinear,
    QuantSpec,
    load_quantized_,
    quantize_dynamic_int8_,
    quantize_static_int8,
    save_quantized,
    weight_only_cuda_,
)
from slimtune.exceptions import CalibrationError, SlimtuneError


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
    assert report.layers["2"]["activation_bits"] == (7 if model[2].reduce_range else 8)
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


def test_smoothing_moves_activation_outliers_into_weights(tmp_path: Path) -> None:
    model = _mlp()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(64, 32, generator=gen)
    x[:, 5] *= 40.0  # an outlier input feature
    ref = model(x)
    plain, smooth = copy.deepcopy(model), copy.deepcopy(model)
    quantize_dynamic_int8_(plain)
    report = quantize_dynamic_int8_(smooth, smoothing=0.5, calibration=x)
    assert report.layers["0"]["smoothing"] == 0.5
    assert isinstance(smooth[0], Int8DynamicLinear) and smooth[0].input_scale is not None
    err_plain = float((plain(x) - ref).norm())
    err_smooth = float((smooth(x) - ref).norm())
    assert err_smooth < err_plain
    save_quantized(smooth, tmp_path / "s.safetensors")
    fresh = load_quantized_(_mlp(), tmp_path / "s.safetensors")
    assert torch.equal(fresh[0].weight, smooth[0].dequantized_weight())


def test_smoothing_needs_calibration() -> None:
    model = _mlp()
    with pytest.raises(CalibrationError, match="calibration"):
        quantize_dynamic_int8_(model, smoothing=0.5)
    with pytest.raises(ValueError, match="`smoothing` must be in"):
        quantize_dynamic_int8_(model, smoothing=1.5, calibration=torch.zeros(2, 32))
    assert all(type(m) is nn.Linear for m in model if not isinstance(m, nn.ReLU))


@pytest.mark.parametrize("reduce_range", [True, False])
def test_reduce_range_choice(reduce_range: bool) -> None:
    model = _mlp()
    ref = model(torch.ones(2, 32))
    quantize_dynamic_int8_(model, reduce_range=reduce_range)
    assert model[0].reduce_range is reduce_range
    assert torch.allclose(model(torch.ones(2, 32)), ref, atol=0.05)
