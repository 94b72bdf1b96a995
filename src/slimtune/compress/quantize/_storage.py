"""Packed storage of quantised models: safetensors with a JSON header.

Weights are stored as integer codes (int8; 4, 2 and 1-bit codes packed into bytes; PQ codes as
uint8 with float codebooks) plus their scales; everything else as in the float state dict.
:func:`load_quantized_` rebuilds the exact float weights the quantised model computes with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimtune.compress.quantize._affine import dequantize, ungrouped
from slimtune.compress.quantize._dynamic import Int8DynamicLinear
from slimtune.compress.quantize._fakequant import (
    BinaryWeight,
    FakeQuantize,
    PACTReLU,
    TernaryWeight,
)
from slimtune.compress.quantize._layers import QuantizedLayer
from slimtune.compress.quantize._pack import pack_bits, unpack_bits
from slimtune.compress.quantize._pq import PQWeight, pq_reconstruct
from slimtune.compress.quantize._spec import QuantSpec

__all__ = ["load_quantized_", "read_quantized", "save_quantized"]

FORMAT = "slimtune.quant/1"
_META_KEY = "slimtune.quant"


def _packing_bits(bits: int) -> int:
    return 1 if bits == 1 else 2 if bits == 2 else 4 if bits <= 4 else 8


def _encode(name: str, module: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and header entry for the weight of one quantised layer."""
    tensors: dict[str, torch.Tensor] = {}
    if isinstance(module, Int8DynamicLinear):
        tensors[f"{name}.weight.codes"] = module.weight_codes
        tensors[f"{name}.weight.scale"] = module.weight_scale
        if module.input_scale is not None:
            tensors[f"{name}.weight.input_scale"] = module.input_scale
        return tensors, {"kind": "int8_dynamic", "shape": list(module.weight_codes.shape)}
    assert isinstance(module, QuantizedLayer)
    w = module.float_weight.detach()
    wq = module.weight_quant
    entry: dict[str, Any] = {"shape": list(w.shape), "config": module.config.to_dict()}
    if isinstance(wq, FakeQuantize):
        spec = wq.spec
        codes = wq.codes(w).to(torch.int64) - spec.qmin
        bits = _packing_bits(spec.bits)
        tensors[f"{name}.weight.codes"] = pack_bits(codes, bits)
        tensors[f"{name}.weight.scale"] = wq.scale.detach().float().contiguous()
        tensors[f"{name}.weight.zero_point"] = wq.zero_point.float().contiguous()
        entry |= {"kind": "uniform", "pack_bits": bits, "grouped": list(codes.shape)}
    elif isinstance(wq, BinaryWeight):
        signs, alpha = wq.split(w)
        tensors[f"{name}.weight.codes"] = pack_bits(signs.to(torch.int64), 1)
        tensors[f"{name}.weight.scale"] = alpha.float().contiguous()
        entry |= {"kind": "binary"}
    elif isinstance(wq, TernaryWeight):
        codes, alpha = wq.split(w)
        tensors[f"{name}.weight.codes"] = pack_bits(codes.to(torch.int64) + 1, 2)
        tensors[f"{name}.weight.scale"] = alpha.float().contiguous()
        entry |= {"kind": "ternary"}
    elif isinstance(wq, PQWeight):
        tensors[f"{name}.weight.codes"] = wq.codes.contiguous()
        tensors[f"{name}.weight.codebooks"] = wq.codebooks.float().contiguous()
        entry |= {"kind": "pq"}
    else:
        tensors[f"{name}.weight"] = w.contiguous()
        entry |= {"kind": "float"}
    return tensors, entry


def save_quantized(model: nn.Module, path: str | Path) -> int:
    """Write ``model``'s packed weights and float tensors to ``path``; return the file size.

    Quantised layers (from :func:`quantize_`, :func:`convert_` or
    :func:`quantize_dynamic_int8_`) store codes and scales; observers and other quantiser
    state are not stored. The header (safetensors metadata) is JSON with one entry per layer.
    """
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    layers: dict[str, Any] = {}
    inner: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, QuantizedLayer | Int8DynamicLinear):
            t, entry = _encode(name, module)
            tensors.update(t)
            layers[name] = entry
            inner.add(f"{name}.")
            bias = module.bias
            if bias is not None:
                tensors[f"{name}.bias"] = bias.detach().float().contiguous()
    pact: dict[str, Any] = {}
    for name, module in model.named_modules():
        if isinstance(module, PACTReLU):
            pact[name] = {"bits": module.bits, "alpha": float(module.alpha.detach().abs())}
            inner.add(f"{name}.")
    for key, value in model.state_dict().items():
        if any(key.startswith(prefix) for prefix in inner):
            continue
        tensors[key] = value.detach().contiguous()
    header = {"format": FORMAT, "layers": layers, "pact": pact}
    path = Path(path)
    save_file(tensors, str(path), metadata={_META_KEY: json.dumps(header)})
    return path.stat().st_size


def read_quantized(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The stored tensors and the JSON header of a file written by :func:`save_quantized`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if _META_KEY not in meta:
            raise ValueError(f"{str(path)!r} was not written by save_quantized (no header).")
        header: dict[str, Any] = json.loads(meta[_META_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open API
    if header.get("format") != FORMAT:
        raise ValueError(f"unknown format {header.get('format')!r} in {str(path)!r}.")
    return tensors, header


def _decode(name: str, entry: dict[str, Any], t: dict[str, torch.Tensor]) -> torch.Tensor:
    shape = torch.Size(entry["shape"])
    kind = entry["kind"]
    if kind == "float":
        return t[f"{name}.weight"]
    if kind == "int8_dynamic":
        w = t[f"{name}.weight.codes"].float() * t[f"{name}.weight.scale"].unsqueeze(1)
        smooth = t.get(f"{name}.weight.input_scale")
        return w if smooth is None else w / smooth
    if kind == "pq":
        return pq_reconstruct(t[f"{name}.weight.codes"], t[f"{name}.weight.codebooks"], shape)
    scale = t[f"{name}.weight.scale"]
    if kind == "uniform":
        spec = QuantSpec(**entry["config"]["weight"])
        rows, cols = entry["grouped"]
        codes = unpack_bits(t[f"{name}.weight.codes"], entry["pack_bits"], rows * cols)
        codes = codes.reshape(rows, cols) + spec.qmin
        v = dequantize(codes, scale, t[f"{name}.weight.zero_point"])
        return ungrouped(v, torch.empty(shape), spec)
    view = [-1, *([1] * (len(shape) - 1))]
    if kind == "binary":
        bits = unpack_bits(t[f"{name}.weight.codes"], 1, shape.numel()).reshape(shape)
        return scale.reshape(view) * torch.where(bits > 0, 1.0, -1.0)
    if kind == "ternary":
        codes = unpack_bits(t[f"{name}.weight.codes"], 2, shape.numel()).reshape(shape) - 1
        return scale.reshape(view) * codes.float()
    raise ValueError(f"unknown layer kind {kind!r} for {name!r}.")


def load_quantized_(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a file written by :func:`save_quantized` into a *float* model of the same
    architecture, in place: each quantised weight becomes its exact dequantised value and each
    PACT activation is restored. Activation quantisers of other layers are not restored.
    """
    tensors, header = read_quantized(path)
    state: dict[str, torch.Tensor] = {}
    consumed: set[str] = set()
    for name, entry in header["layers"].items():
        state[f"{name}.weight"] = _decode(name, entry, tensors)
        consumed.update(k for k in tensors if k.startswith(f"{name}.weight"))
    for key, value in tensors.items():
        if key not in consumed:
            state[key] = value
    for name, info in header.get("pact", {}).items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if not isinstance(getattr(parent, attr, None), nn.ReLU | PACTReLU):
            raise ValueError(f"{str(path)!r} has a PACT activation at {name!r}, the model not.")
        relu = PACTReLU(info["bits"], info["alpha"])
        setattr(parent, attr, relu)
    expected = model.state_dict()
    for name in header.get("pact", {}):
        state[f"{name}.alpha"] = expected[f"{name}.alpha"]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{str(path)!r} does not fit the model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}; load it into the float architecture it was saved from."
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"{key!r} has shape {tuple(value.shape)} in {str(path)!r} but "
                f"{tuple(expected[key].shape)} in the model."
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    return model
