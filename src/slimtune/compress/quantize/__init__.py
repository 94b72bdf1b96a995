"""Quantisation in plain PyTorch: fake quantisation, PTQ and QAT, binary / ternary / PACT / PQ,
real int8 kernels on CPU, packed safetensors storage and per-layer sensitivity.

torchao is needed only for PT2E static int8 and CUDA weight-only (the ``quant`` extra).
"""

from __future__ import annotations

from slimtune.compress.quantize._affine import (
    dequantize,
    fake_quantize,
    grouped,
    qparams,
    quantize,
    ungrouped,
)
from slimtune.compress.quantize._apply import (
    Calibration,
    QuantReport,
    convert_,
    prepare_qat_,
    quantize_,
)
from slimtune.compress.quantize._config import LayerConfig, Method, QuantConfig
from slimtune.compress.quantize._dynamic import (
    Int8DynamicLinear,
    cpu_has_vnni,
    quantize_dynamic_int8_,
)
from slimtune.compress.quantize._fakequant import (
    BinaryActivation,
    BinaryWeight,
    FakeQuantize,
    PACTReLU,
    TernaryWeight,
)
from slimtune.compress.quantize._layers import QuantizedLayer
from slimtune.compress.quantize._observers import Observer, make_observer
from slimtune.compress.quantize._pq import PQSpec, PQWeight, pq_reconstruct, product_quantize
from slimtune.compress.quantize._spec import Granularity, ObserverName, QuantSpec
from slimtune.compress.quantize._storage import load_quantized_, read_quantized, save_quantized
from slimtune.compress.quantize._torchao import (
    StaticInt8Result,
    quantize_static_int8,
    weight_only_cuda_,
)
from slimtune.compress.quantize._validate import layer_sqnr, sensitivity, sqnr

__all__ = [
    "BinaryActivation",
    "BinaryWeight",
    "Calibration",
    "FakeQuantize",
    "Granularity",
    "Int8DynamicLinear",
    "LayerConfig",
    "Method",
    "Observer",
    "ObserverName",
    "PACTReLU",
    "PQSpec",
    "PQWeight",
    "QuantConfig",
    "QuantReport",
    "QuantSpec",
    "QuantizedLayer",
    "StaticInt8Result",
    "TernaryWeight",
    "convert_",
    "cpu_has_vnni",
    "dequantize",
    "fake_quantize",
    "grouped",
    "layer_sqnr",
    "load_quantized_",
    "make_observer",
    "pq_reconstruct",
    "prepare_qat_",
    "product_quantize",
    "qparams",
    "quantize",
    "quantize_",
    "quantize_dynamic_int8_",
    "quantize_static_int8",
    "read_quantized",
    "save_quantized",
    "sensitivity",
    "sqnr",
    "ungrouped",
    "weight_only_cuda_",
]
