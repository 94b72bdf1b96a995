"""PTQ and QAT on the digits CNN; per-layer configs; bad input leaves the model unchanged."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from slimtune.compress.quantize import (
    LayerConfig,
    PACTReLU,
    QuantConfig,
    QuantizedLayer,
    QuantSpec,
    convert_,
    prepare_qat_,
    quantize_,
)
from slimtune.exceptions import CalibrationError, UnsupportedLayerError
from slimtune.testing import Dataset, SmallCNN, accuracy, fit


def _config(bits: int, *, observer: str = "minmax", **kw: object) -> QuantConfig:
    return QuantConfig(
        default=LayerConfig(
            weight=QuantSpec(bits=bits, granularity="channel", observer="mse"),
            activation=QuantSpec(bits=bits, symmetric=False, observer=observer),  # type: ignore[arg-type]
        ),
        **kw,  # type: ignore[arg-type]
    )


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_ptq_int8_within_half_a_point(
    cnn: SmallCNN, trained_cnn: tuple[SmallCNN, float], digits: Dataset
) -> None:
    fp32 = trained_cnn[1]
    report = quantize_(cnn, _config(8), calibration=digits.x_train[:512])
    acc = accuracy(cnn, digits.x_val, digits.y_val)
    assert acc >= fp32 - 0.005
    assert set(report.layers) == {"features.0", "features.4", "classifier.1", "classifier.3"}
    assert report.bias_corrected == ["classifier.1", "classifier.3"]
    assert all(isinstance(cnn.get_submodule(n), QuantizedLayer) for n in report.layers)


def test_qat_4bit_within_one_point(
    cnn: SmallCNN, trained_cnn: tuple[SmallCNN, float], digits: Dataset
) -> None:
    fp32 = trained_cnn[1]
    prepare_qat_(cnn, _config(4, observer="moving_average"))
    fit(cnn, digits, epochs=2, lr=5e-4, seed=1)
    convert_(cnn)
    acc = accuracy(cnn, digits.x_val, digits.y_val)
    assert acc >= fp32 - 0.01
    layer = cnn.get_submodule("classifier.1")
    assert isinstance(layer, QuantizedLayer)
    assert layer.quantized_weight().unique().numel() <= 16 * 128  # 16 levels per channel


def test_mixed_precision_and_methods_per_layer(cnn: SmallCNN, digits: Dataset) -> None:
    config = QuantConfig(
        default=LayerConfig(weight=QuantSpec(bits=4, granularity="channel")),
        layers={
            "features.0": LayerConfig(method="float"),
            "features.4": LayerConfig(method="ternary"),
            "classifier.1": LayerConfig(method="pq"),
            "classifier.3": LayerConfig(method="binary", binary_activations=True),
        },
        pact_bits=4,
    )
    report = quantize_(cnn, config, calibration=digits.x_train[:128])
    assert report.skipped == {"features.0": "method='float' in the config"}
    assert {n: v["method"] for n, v in report.layers.items()} == {
        "features.4": "ternary",
        "classifier.1": "pq",
        "classifier.3": "binary",
    }
    assert isinstance(cnn.get_submodule("features.0"), nn.Conv2d)
    assert report.pact == ["features.2", "features.6", "classifier.2"]
    assert isinstance(cnn.get_submodule("features.2"), PACTReLU)
    assert cnn(digits.x_val[:4]).shape == (4, 10)


def test_group_granularity_on_linear_layers(cnn: SmallCNN, digits: Dataset) -> None:
    config = QuantConfig(
        default=LayerConfig(method="float"),
        layers={
            "classifier.*": LayerConfig(
                weight=QuantSpec(bits=4, granularity="group", group_size=32)
            )
        },
        bias_correction=False,
    )
    quantize_(cnn, config)
    layer = cnn.get_submodule("classifier.1")
    assert isinstance(layer, QuantizedLayer)
    assert layer.weight_quant.scale.shape == (128 * 512 // 32, 1)


class _WithRecurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.rnn = nn.GRU(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(self.emb(x))[0].mean(1))


def test_unsupported_layer_strict_raises_and_model_unchanged() -> None:
    model = _WithRecurrent()
    before = copy.deepcopy(model)
    with pytest.raises(UnsupportedLayerError, match="'rnn' \\(GRU\\)"):
        quantize_(model, QuantConfig(strict=True, bias_correction=False))
    assert isinstance(model.fc, nn.Linear) and _same_state(model, before)
    report = quantize_(model, QuantConfig(bias_correction=False))
    assert report.skipped == {"rnn": "unsupported layer type GRU"}
    assert set(report.layers) == {"emb", "fc"}
    assert report.layers["emb"]["activation_bits"] is None
    idx = torch.tensor([[1, 2, 3]])
    out = model(idx)
    assert out.shape == (1, 2)
    emb = model.get_submodule("emb")
    assert isinstance(emb, QuantizedLayer)
    assert emb.quantized_weight().reshape(10, 8).unique(dim=0).shape[0] == 10


def test_wrong_calibration_shape_raises_and_model_unchanged(cnn: SmallCNN) -> None:
    before = copy.deepcopy(cnn)
    with pytest.raises(CalibrationError, match="shape \\(8, 3, 16, 16\\)"):
        quantize_(cnn, _config(8), calibration=torch.zeros(8, 3, 16, 16))
    assert _same_state(cnn, before)
    assert not any(isinstance(m, QuantizedLayer) for m in cnn.modules())
    with pytest.raises(CalibrationError, match="required"):
        quantize_(cnn, _config(8))
    with pytest.raises(CalibrationError, match="empty"):
        quantize_(cnn, _config(8), calibration=[])
    assert _same_state(cnn, before)


def test_invalid_group_size_leaves_model_unchanged(cnn: SmallCNN) -> None:
    before = copy.deepcopy(cnn)
    bad = QuantConfig(
        default=LayerConfig(weight=QuantSpec(granularity="group", group_size=7)),
        bias_correction=False,
    )
    with pytest.raises(ValueError, match="group_size"):
        quantize_(cnn, bad)
    assert _same_state(cnn, before)
    assert not any(isinstance(m, QuantizedLayer) for m in cnn.modules())


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="`method`"):
        LayerConfig(method="int3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`pact_bits`"):
        QuantConfig(pact_bits=9)
    with pytest.raises(ValueError, match="matches no module"):
        quantize_(
            nn.Linear(2, 2), QuantConfig(layers={"nope": LayerConfig()}, bias_correction=False)
        )
    with pytest.raises(ValueError, match="already quantised"):
        model = nn.Sequential(nn.Linear(2, 2))
        quantize_(model, QuantConfig(bias_correction=False))
        quantize_(model, QuantConfig(bias_correction=False))


def test_frozen_weight_cache_follows_weight_updates() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    quantize_(model, QuantConfig(bias_correction=False))
    layer = model[0]
    assert isinstance(layer, QuantizedLayer)
    with torch.no_grad():
        first = layer.quantized_weight()
        assert layer.quantized_weight() is first  # cached
        layer.float_weight.mul_(2.0)
        second = layer.quantized_weight()
        assert not torch.equal(second, first)
        assert torch.equal(second, layer.weight_quant(layer.float_weight))
