"""Digits CNN and transformer: accuracy and file size at 8 / 4 / 2 / 1 bits and PQ."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bench._quant_common import quant_file_bytes, torch_save_bytes
from slimtune.compress.quantize import (
    LayerConfig,
    PQSpec,
    QuantConfig,
    QuantSpec,
    convert_,
    prepare_qat_,
    quantize_,
)
from slimtune.testing import Dataset, SmallCNN, TransformerClassifier, accuracy, fit, load_digits


def _w(bits: int, **kw: Any) -> QuantSpec:
    return QuantSpec(bits=bits, granularity="channel", observer="mse", **kw)


def _a(bits: int, observer: str = "minmax") -> QuantSpec:
    return QuantSpec(bits=bits, symmetric=False, observer=observer)  # type: ignore[arg-type]


def _configs(first: str) -> list[tuple[str, str, str, QuantConfig]]:
    """(label, W/A bits, mode, config); ``first`` is the input layer (kept at 8 bits)."""
    keep8 = {first: LayerConfig(weight=_w(8), activation=_a(8))}
    qat_a = _a(4, "moving_average")

    def cfg(layer: LayerConfig, layers: dict[str, LayerConfig] | None = None) -> QuantConfig:
        return QuantConfig(default=layer, layers=keep8 if layers is None else layers)

    pq = LayerConfig(method="pq", pq=PQSpec(block_size=4))
    return [
        ("int8 PTQ", "W8/A8", "ptq", cfg(LayerConfig(weight=_w(8), activation=_a(8)), {})),
        ("int4 PTQ", "W4/A8", "ptq", cfg(LayerConfig(weight=_w(4), activation=_a(8)))),
        ("int4 QAT", "W4/A4", "qat", cfg(LayerConfig(weight=_w(4), activation=qat_a))),
        (
            "int2 QAT (LSQ)",
            "W2/A4",
            "qat",
            cfg(LayerConfig(weight=_w(2, learnable=True), activation=qat_a)),
        ),
        (
            "ternary QAT (TWN)",
            "W~1.6/A4",
            "qat",
            cfg(LayerConfig(method="ternary", activation=qat_a)),
        ),
        ("binary QAT (XNOR)", "W1/A4", "qat", cfg(LayerConfig(method="binary", activation=qat_a))),
        ("PQ PTQ (d=4, K=256)", "W~2/A32", "ptq", cfg(pq, {first: LayerConfig(method="float")})),
    ]


def _peers(model: nn.Module, data: Dataset) -> list[dict[str, Any]]:
    rows = []
    from torch.ao.quantization import quantize_dynamic

    peer = quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    rows.append(
        {
            "method": "PyTorch quantize_dynamic (Linear only)",
            "bits": "W8/A8 dyn",
            "accuracy": accuracy(peer, data.x_val, data.y_val),
            "file_bytes": torch_save_bytes(peer),
        }
    )
    try:
        from torchao.quantization import Int8WeightOnlyConfig
        from torchao.quantization import quantize_ as ao_quantize_

        ao = copy.deepcopy(model)
        ao_quantize_(ao, Int8WeightOnlyConfig())
        rows.append(
            {
                "method": "torchao Int8WeightOnlyConfig (Linear only)",
                "bits": "W8/A32",
                "accuracy": accuracy(ao, data.x_val, data.y_val),
                "file_bytes": torch_save_bytes(ao),
            }
        )
    except Exception as err:  # a peer failing is a result
        rows.append({"method": "torchao Int8WeightOnlyConfig", "note": f"failed: {err}"})
    return rows


def _one_model(
    name: str,
    make: Callable[[], nn.Module],
    data: Dataset,
    first: str,
    *,
    epochs: int,
    qat_epochs: int,
) -> dict[str, Any]:
    torch.manual_seed(0)
    model = make()
    fp32 = fit(model, data, epochs=epochs, seed=0)
    fp32_bytes = quant_file_bytes(model)
    rows: list[dict[str, Any]] = [
        {"method": "fp32", "bits": "W32/A32", "accuracy": fp32, "file_bytes": fp32_bytes}
    ]
    calib = data.x_train[:512]
    for label, bits, mode, config in _configs(first):
        q = copy.deepcopy(model)
        if mode == "ptq":
            quantize_(q, config, calibration=calib)
        else:
            prepare_qat_(q, config)
            fit(q, data, epochs=qat_epochs, lr=5e-4, seed=1)
            convert_(q)
        rows.append(
            {
                "method": f"slimtune {label}",
                "bits": bits,
                "accuracy": accuracy(q, data.x_val, data.y_val),
                "file_bytes": quant_file_bytes(q),
            }
        )
    rows += _peers(model, data)
    for row in rows:
        if "accuracy" in row:
            row["delta_points"] = 100 * (row["accuracy"] - fp32)
            row["file_ratio"] = row["file_bytes"] / fp32_bytes
    return {"model": name, "epochs": epochs, "qat_epochs": qat_epochs, "rows": rows}


def _subset(data: Dataset, n: int) -> Dataset:
    return Dataset(data.x_train[:n], data.y_train[:n], data.x_val, data.y_val, data.num_classes)


def run(*, quick: bool) -> list[dict[str, Any]]:
    epochs, qat_epochs = (2, 1) if quick else (8, 3)
    images = load_digits(layout="image", image_size=16, seed=0)
    seqs = load_digits(layout="sequence", seed=0)
    if quick:  # a smoke test: fewer training examples
        images, seqs = _subset(images, 600), _subset(seqs, 600)
    out = [
        _one_model(
            "SmallCNN (digits 16x16)",
            SmallCNN,
            images,
            "features.0",
            epochs=epochs,
            qat_epochs=qat_epochs,
        )
    ]
    out.append(
        _one_model(
            "TransformerClassifier (digits rows)",
            lambda: TransformerClassifier(in_features=8, seq_len=8),
            seqs,
            "embed",
            epochs=epochs * 2,
            qat_epochs=qat_epochs,
        )
    )
    return out
