"""Validation: SQNR of a quantised model against its float original, per layer and at the
output, and ``sensitivity``: layers ranked by the error their quantisation alone causes."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from slimtune.compress.quantize._apply import Batch, Calibration, _batches, _call, _run
from slimtune.compress.quantize._config import LayerConfig, QuantConfig
from slimtune.compress.quantize._layers import SUPPORTED_LAYERS

__all__ = ["layer_sqnr", "sensitivity", "sqnr"]


def sqnr(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantisation-noise ratio in dB: ``10 log10(|ref|^2 / |ref - approx|^2)``."""
    ref = reference.detach().float()
    noise = (ref - approx.detach().float()).pow(2).sum().item()
    signal = ref.pow(2).sum().item()
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _outputs(model: nn.Module, batches: Sequence[Batch], names: list[str]) -> dict[str, Any]:
    store: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    handles = []
    for name in names:
        module = model.get_submodule(name) if name else model

        def hook(_m: nn.Module, _a: Any, out: Any, name: str = name) -> None:
            store[name].append(out.detach().float() if isinstance(out, torch.Tensor) else out)

        handles.append(module.register_forward_hook(hook))
    try:
        _run(model, batches)
    finally:
        for h in handles:
            h.remove()
    return store


def layer_sqnr(
    float_model: nn.Module, quantized_model: nn.Module, data: Calibration
) -> dict[str, float]:
    """SQNR (dB) of every quantised layer's output, and of the model output under ``""``.

    Both models see the same inputs; layers are matched by name (a quantised layer keeps the
    name of the float layer it replaced). Errors accumulate: layer ``k`` sees the quantised
    outputs of layers before it, as in deployment.
    """
    batches = _batches(data, 256)
    float_names = dict(float_model.named_modules())
    names = [
        n
        for n, m in quantized_model.named_modules()
        if n and n in float_names and type(m) is not type(float_names[n])
    ]
    names = [n for n in names if "." not in n or n.rsplit(".", 1)[0] not in names]
    ref = _outputs(float_model, batches, [*names, ""])
    got = _outputs(quantized_model, batches, [*names, ""])
    return {n: sqnr(torch.cat(ref[n]), torch.cat(got[n])) for n in [*names, ""]}


def sensitivity(
    model: nn.Module,
    data: Calibration | None = None,
    *,
    config: LayerConfig | None = None,
    quantizer: Callable[[nn.Module, str], None] | None = None,
    run: Callable[[nn.Module], torch.Tensor] | None = None,
    layers: list[str] | None = None,
) -> list[tuple[str, float]]:
    """Rank layers by the output SQNR (dB) when only that layer is quantised; most sensitive
    (lowest SQNR) first. ``model`` is not modified (each trial quantises a copy).

    By default each layer gets ``config`` (8-bit per-channel weights) through
    :func:`quantize_`; ``quantizer(copy, name)`` replaces that with any in-place transform of
    one layer (for example real int8 kernels). ``run(model) -> Tensor`` computes the output to
    compare (default: ``model(batch)`` over ``data``). ``layers`` restricts the candidates.
    """
    from slimtune.compress.quantize._apply import quantize_

    if run is None:
        if data is None:
            raise ValueError("`data` is required unless `run` computes the model output.")
        batches = _batches(data, 256)

        def default_run(m: nn.Module) -> torch.Tensor:
            was = m.training
            m.eval()
            with torch.no_grad():
                out = torch.cat([_call(m, x).float() for x in batches])
            m.train(was)
            return out

        run = default_run
    cfg = config or LayerConfig()
    candidates = layers
    if candidates is None:
        candidates = [n for n, m in model.named_modules() if isinstance(m, SUPPORTED_LAYERS)]
    known = dict(model.named_modules())
    for name in candidates:
        if name not in known:
            raise ValueError(f"`layers` entry {name!r} is not a module of the model.")
    reference = run(model)
    scores: list[tuple[str, float]] = []
    for name in candidates:
        trial = copy.deepcopy(model)
        if quantizer is not None:
            quantizer(trial, name)
        else:
            quantize_(
                trial,
                QuantConfig(
                    default=LayerConfig(method="float"),
                    layers={name: cfg},
                    bias_correction=False,
                ),
                calibration=data if cfg.activation is not None else None,
            )
        scores.append((name, sqnr(reference, run(trial))))
        del trial
    scores.sort(key=lambda item: item[1])
    return scores
