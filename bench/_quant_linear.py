"""Linear-heavy model (MLP 768-3072-768, batch 32): real int8 CPU latency and file size."""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch

from bench._quant_common import interleaved, quant_file_bytes, torch_save_bytes
from slimtune.compress.quantize import quantize_dynamic_int8_, quantize_static_int8
from slimtune.testing import MLP

logger = logging.getLogger(__name__)


def run(*, quick: bool) -> dict[str, Any]:
    torch.manual_seed(0)
    model = MLP(in_features=768, hidden=(3072,), num_classes=768).eval()
    x = torch.randn(32, 768, generator=torch.Generator().manual_seed(1))
    calib = torch.randn(256, 768, generator=torch.Generator().manual_seed(2))
    ref = model(x).detach()
    variants: dict[str, torch.nn.Module] = {"fp32 eager": model}
    sizes: dict[str, int] = {"fp32 eager": quant_file_bytes(model)}
    notes: dict[str, str] = {}

    ours = copy.deepcopy(model)
    quantize_dynamic_int8_(ours)
    variants["slimtune int8 dynamic (per-channel)"] = ours
    sizes["slimtune int8 dynamic (per-channel)"] = quant_file_bytes(ours)

    from torch.ao.quantization import quantize_dynamic

    peer = quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    variants["PyTorch quantize_dynamic"] = peer
    sizes["PyTorch quantize_dynamic"] = torch_save_bytes(peer)

    if not quick:
        import torch._inductor.config as inductor_config

        compiled = torch.compile(copy.deepcopy(model))
        with inductor_config.patch(freezing=True), torch.no_grad():
            compiled(x)
        variants["fp32 torch.compile (freezing)"] = compiled
        notes["fp32 torch.compile (freezing)"] = "reference for the compiled int8 row"
        static = quantize_static_int8(model, (x,), calib, compile=True)
        variants["slimtune PT2E static int8 + compile"] = static.model
        notes["slimtune PT2E static int8 + compile"] = "size n/a (compiled graph)"
        try:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig
            from torchao.quantization import quantize_ as ao_quantize_

            ao = copy.deepcopy(model)
            ao_quantize_(ao, Int8DynamicActivationInt8WeightConfig())
            variants["torchao Int8DynamicActivationInt8Weight"] = ao
            sizes["torchao Int8DynamicActivationInt8Weight"] = torch_save_bytes(ao)
        except Exception as err:  # a peer failing is a result, not a crash
            notes["torchao Int8DynamicActivationInt8Weight"] = f"failed: {err}"

    fns = {name: (lambda m=m: m(x)) for name, m in variants.items()}
    times = interleaved(fns, rounds=10 if quick else 40, warmup=3 if quick else 10)
    base = times["fp32 eager"]["cpu_ms"]
    rows = []
    with torch.no_grad():
        for name, m in variants.items():
            out = m(x)
            err = float((out - ref).norm() / ref.norm())
            rows.append(
                {
                    "variant": name,
                    "cpu_ms": times[name]["cpu_ms"],
                    "wall_ms": times[name]["wall_ms"],
                    "speedup": base / times[name]["cpu_ms"],
                    "rel_error": err,
                    "file_bytes": sizes.get(name),
                    "file_ratio": sizes[name] / sizes["fp32 eager"] if name in sizes else None,
                    "note": notes.get(name, ""),
                }
            )
    for name, note in notes.items():
        if name not in variants:
            rows.append({"variant": name, "note": note})
    return {"model": "MLP 768-3072-768", "batch": 32, "rows": rows}
