"""Packed safetensors storage: codes and scales round-trip bit-exactly; files shrink."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from slimtune.compress.quantize import (
    LayerConfig,
    QuantConfig,
    QuantizedLayer,
    QuantSpec,
    load_quantized_,
    quantize_,
    quantize_dynamic_int8_,
    read_quantized,
    save_quantized,
)
from slimtune.compress.quantize._pack import pack_bits, unpack_bits
from slimtune.testing import SmallCNN


def _model() -> SmallCNN:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return SmallCNN(widths=(8, 16))


CONFIGS = {
    "int8": LayerConfig(weight=QuantSpec(bits=8, granularity="channel")),
    "int4-group": LayerConfig(
        weight=QuantSpec(bits=4, symmetric=False, granularity="group", group_size=8)
    ),
    "int3": LayerConfig(weight=QuantSpec(bits=3)),
    "int2": LayerConfig(weight=QuantSpec(bits=2, granularity="channel")),
    "int1": LayerConfig(weight=QuantSpec(bits=1, symmetric=False)),
    "binary": LayerConfig(method="binary"),
    "ternary": LayerConfig(method="ternary"),
    "pq": LayerConfig(method="pq"),
}


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pack_round_trip(bits: int) -> None:
    values = torch.randint(0, 2**bits, (37,), generator=torch.Generator().manual_seed(bits))
    packed = pack_bits(values, bits)
    assert packed.numel() == -(-37 * bits // 8)
    assert torch.equal(unpack_bits(packed, bits, 37), values)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_save_load_is_bit_exact(name: str, tmp_path: Path) -> None:
    model = _model()
    first = {"features.0": LayerConfig(method="float")}  # 9 weights per channel: no groups
    quantize_(model, QuantConfig(default=CONFIGS[name], layers=first, bias_correction=False))
    path = tmp_path / "q.safetensors"
    save_quantized(model, path)
    fresh = load_quantized_(_model(), path).eval()
    for layer_name, module in model.named_modules():
        if isinstance(module, QuantizedLayer):
            loaded = fresh.get_submodule(layer_name)
            assert isinstance(loaded, nn.Conv2d | nn.Linear)
            assert torch.equal(loaded.weight, module.quantized_weight())
    x = torch.rand(4, 1, 16, 16)
    assert torch.equal(fresh(x), model.eval()(x))
    _, header = read_quantized(path)
    assert set(header["layers"]) == {"features.4", "classifier.1", "classifier.3"}


def test_int8_file_is_under_0_3x_float(tmp_path: Path) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 256))
    fp32 = save_quantized(model, tmp_path / "fp32.safetensors")
    int8 = copy.deepcopy(model)
    quantize_dynamic_int8_(int8)
    size = save_quantized(int8, tmp_path / "int8.safetensors")
    assert size <= 0.3 * fp32
    x = torch.randn(3, 256)
    fresh = load_quantized_(copy.deepcopy(model), tmp_path / "int8.safetensors")
    assert torch.equal(fresh[0].weight, int8[0].dequantized_weight())
    assert torch.allclose(fresh(x), model(x), atol=0.05)


def test_pact_is_restored(tmp_path: Path) -> None:
    model = _model()
    quantize_(model, QuantConfig(pact_bits=3, bias_correction=False))
    save_quantized(model, tmp_path / "p.safetensors")
    fresh = load_quantized_(_model(), tmp_path / "p.safetensors").eval()
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(fresh(x), model.eval()(x))


def test_load_into_wrong_architecture_fails(tmp_path: Path) -> None:
    model = _model()
    quantize_(model, QuantConfig(bias_correction=False))
    save_quantized(model, tmp_path / "q.safetensors")
    with pytest.raises(ValueError, match="does not fit the model"):
        load_quantized_(nn.Linear(3, 3), tmp_path / "q.safetensors")


def test_embedding_weights_round_trip(tmp_path: Path) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Embedding(20, 8), nn.Linear(8, 2))
    q = copy.deepcopy(model)
    spec = QuantSpec(bits=4, granularity="group", group_size=4)
    quantize_(q, QuantConfig(default=LayerConfig(weight=spec), bias_correction=False))
    assert isinstance(q[0], QuantizedLayer)
    save_quantized(q, tmp_path / "e.safetensors")
    fresh = load_quantized_(copy.deepcopy(model), tmp_path / "e.safetensors")
    idx = torch.tensor([[0, 5, 19]])
    assert torch.equal(fresh(idx), q(idx))
