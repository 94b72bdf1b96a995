"""``quantize_`` (post-training quantisation), ``prepare_qat_`` and ``convert_`` (QAT)."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from slimtune.compress.quantize._config import QuantConfig
from slimtune.compress.quantize._fakequant import FakeQuantize, PACTReLU
from slimtune.compress.quantize._layers import SUPPORTED_LAYERS, QuantizedLayer
from slimtune.exceptions import CalibrationError, UnsupportedLayerError

__all__ = ["Calibration", "QuantReport", "convert_", "prepare_qat_", "quantize_"]

logger = logging.getLogger(__name__)

Calibration = (
    torch.Tensor
    | Mapping[str, torch.Tensor]
    | Iterable[torch.Tensor | Mapping[str, torch.Tensor] | Sequence[torch.Tensor]]
)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


@dataclass
class QuantReport:
    """What a quantisation transform did: per-layer choices, and the layers left in float."""

    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    pact: list[str] = field(default_factory=list)
    bias_corrected: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "layers": self.layers,
            "skipped": self.skipped,
            "pact": self.pact,
            "bias_corrected": self.bias_corrected,
        }


def _plan(model: nn.Module, config: QuantConfig) -> tuple[dict[str, nn.Module], QuantReport]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}.")
    if not isinstance(config, QuantConfig):
        raise TypeError(f"`config` must be a QuantConfig, got {type(config).__name__}.")
    report = QuantReport()
    targets: dict[str, nn.Module] = {}
    names: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, QuantizedLayer) or ".weight_quant" in name or ".input_quant" in name:
            raise ValueError(
                f"`model` is already quantised (found {name or 'the root'} "
                f"{type(module).__name__}); quantise a float model."
            )
        names.append(name)
        if isinstance(module, SUPPORTED_LAYERS):
            cfg = config.for_layer(name)
            if cfg.method == "float":
                report.skipped[name] = "method='float' in the config"
            else:
                targets[name] = module
        elif (
            not list(module.children())
            and any(True for _ in module.parameters(recurse=False))
            and not isinstance(module, _NORMS)
        ):
            if config.strict:
                raise UnsupportedLayerError(
                    f"layer {name!r} ({type(module).__name__}) has weights that slimtune cannot "
                    "quantise (supported: Linear, Conv1d/2d/3d, Embedding); pass strict=False "
                    "to keep it in float, or map it to LayerConfig(method='float')."
                )
            report.skipped[name] = f"unsupported layer type {type(module).__name__}"
    for pattern in config.layers:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ValueError(
                f"`layers` pattern {pattern!r} matches no module of the model; check the names "
                f"in model.named_modules()."
            )
    return targets, report


Batch = torch.Tensor | Mapping[str, torch.Tensor]


def _batches(calibration: Calibration, batch_size: int) -> list[Batch]:
    """Calibration data as a list of model inputs (tensors, or dicts of tensors as taken by
    Hugging Face / sentence-transformers models)."""
    if isinstance(calibration, torch.Tensor):
        if calibration.dim() == 0:
            raise CalibrationError("`calibration` must have a batch dimension, got a scalar.")
        return list(calibration.split(batch_size))
    if isinstance(calibration, Mapping):
        return [calibration]
    try:
        items = list(calibration)
    except TypeError as err:
        raise CalibrationError(
            f"`calibration` must be a tensor, a dict of tensors or an iterable of batches, got "
            f"{type(calibration).__name__}."
        ) from err
    out: list[Batch] = []
    for item in items:
        x = item[0] if isinstance(item, Sequence) and not isinstance(item, torch.Tensor) else item
        if not isinstance(x, torch.Tensor | Mapping):
            raise CalibrationError(
                f"`calibration` batches must be tensors, dicts of tensors or (inputs, ...) "
                f"tuples, got {type(x).__name__}."
            )
        out.append(x)
    if not out:
        raise CalibrationError("`calibration` is empty; pass at least one batch of inputs.")
    return out


def _call(model: nn.Module, x: Batch) -> Any:
    # a dict is copied: some models (sentence-transformers) add keys to their input dict
    return model(dict(x)) if isinstance(x, Mapping) else model(x)


@torch.no_grad()
def _run(model: nn.Module, batches: Sequence[Batch]) -> None:
    was = model.training
    model.eval()
    try:
        for x in batches:
            _call(model, x)
    finally:
        model.train(was)


def _check_calibration(model: nn.Module, batches: Sequence[Batch]) -> None:
    first = batches[0]
    shape: Any = tuple(first.shape) if isinstance(first, torch.Tensor) else "a dict"
    for x in batches[1:]:
        if not isinstance(x, torch.Tensor) or not isinstance(first, torch.Tensor):
            continue
        if tuple(x.shape[1:]) != shape[1:]:
            raise CalibrationError(
                f"`calibration` batches must share one shape after the batch dimension, got "
                f"{shape} and {tuple(x.shape)}."
            )
    try:
        _run(model, batches[:1])
    except Exception as err:
        raise CalibrationError(
            f"`calibration` batch of shape {shape} does not fit the model ({err}); pass inputs "
            f"shaped like the model's training inputs."
        ) from err


def _input_means(
    model: nn.Module, targets: dict[str, nn.Module], batches: Sequence[Batch]
) -> dict[str, torch.Tensor]:
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name: str, is_linear: bool):  # type: ignore[no-untyped-def]
        def record(_m: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0].detach().float()
            flat = x.reshape(-1, x.shape[-1]) if is_linear else x.movedim(1, -1)
            flat = flat.reshape(-1, flat.shape[-1])
            sums[name] = sums.get(name, 0) + flat.sum(dim=0)
            counts[name] = counts.get(name, 0) + flat.shape[0]

        return record

    handles = [
        m.register_forward_pre_hook(hook(n, isinstance(m, nn.Linear)))
        for n, m in targets.items()
        if getattr(m, "bias", None) is not None
    ]
    try:
        _run(model, batches)
    finally:
        for h in handles:
            h.remove()
    return {n: sums[n] / counts[n] for n in sums}


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


def _swap(
    model: nn.Module, targets: dict[str, nn.Module], config: QuantConfig, report: QuantReport
) -> list[tuple[str, nn.Module]]:
    """Replace targets by QuantizedLayers (and ReLUs by PACT); return what to restore."""
    wrapped = {n: QuantizedLayer(m, config.for_layer(n)) for n, m in targets.items()}
    for wrapper in wrapped.values():  # validates weight shapes against the spec before any swap
        if isinstance(wrapper.weight_quant, FakeQuantize):
            wrapper.weight_quant(wrapper.float_weight.detach())
    undo: list[tuple[str, nn.Module]] = []
    for name, wrapper in wrapped.items():
        _set(model, name, wrapper)
        undo.append((name, targets[name]))
        cfg = wrapper.config
        report.layers[name] = {
            "type": type(targets[name]).__name__,
            "method": cfg.method,
            "weight_bits": cfg.weight_bits,
            "granularity": cfg.weight.granularity if cfg.method == "uniform" else "channel",
            "activation_bits": (
                None
                if isinstance(targets[name], nn.Embedding)
                else 1
                if cfg.binary_activations
                else (cfg.activation.bits if cfg.activation else None)
            ),
        }
    if config.pact_bits is not None:
        for name, module in list(model.named_modules()):
            if type(module) is nn.ReLU:
                _set(model, name, PACTReLU(config.pact_bits))
                undo.append((name, module))
                report.pact.append(name)
    return undo


def quantize_(
    model: nn.Module, config: QuantConfig, *, calibration: Calibration | None = None
) -> QuantReport:
    """Post-training quantisation of ``model`` in place; returns a :class:`QuantReport`.

    ``calibration`` (a tensor of inputs, or an iterable of batches / ``(inputs, targets)``
    tuples) is needed for activation quantisers and for bias correction. Inputs are validated
    and the model is dry-run before anything is changed: on an error the model is unchanged.
    """
    targets, report = _plan(model, config)
    needs_data = any(
        config.for_layer(n).activation is not None and not isinstance(m, nn.Embedding)
        for n, m in targets.items()
    ) or (
        config.bias_correction
        and any(getattr(m, "bias", None) is not None for m in targets.values())
    )
    batches: list[Batch] = []
    if calibration is not None:
        batches = _batches(calibration, config.calibration_batch_size)
        _check_calibration(model, batches)
    elif needs_data:
        raise CalibrationError(
            "`calibration` is required for activation quantisation and bias correction; pass "
            "calibration=inputs, or a config with activation=None and bias_correction=False."
        )
    means = _input_means(model, targets, batches) if config.bias_correction else {}
    undo = _swap(model, targets, config, report)
    try:
        wrappers = [m for m in model.modules() if isinstance(m, QuantizedLayer)]
        for w in wrappers:
            w.set_calibrating(True)
        if batches and any(isinstance(w.input_quant, FakeQuantize) for w in wrappers):
            _run(model, batches)
        for w in wrappers:
            w.freeze()
    except Exception:
        for name, original in undo:
            _set(model, name, original)
        raise
    with torch.no_grad():
        for name, mean in means.items():
            wrapper = model.get_submodule(name)
            assert isinstance(wrapper, QuantizedLayer)
            bias = wrapper.bias
            assert bias is not None  # only layers with a bias were measured
            diff = wrapper.float_weight - wrapper.quantized_weight()
            diff = diff.reshape(diff.shape[0], diff.shape[1], -1).sum(dim=2)
            bias += diff @ mean.to(diff.dtype)
            report.bias_corrected.append(name)
    logger.info("quantised %d layers, %d left in float", len(report.layers), len(report.skipped))
    return report


def prepare_qat_(model: nn.Module, config: QuantConfig) -> QuantReport:
    """Insert fake quantisers for quantisation-aware training; train, then call :func:`convert_`.

    Weights are re-observed on every forward; activation observers (use
    ``observer="moving_average"``) track ranges while training. Nothing is calibrated here.
    """
    targets, report = _plan(model, config)
    _swap(model, targets, config, report)
    return report


def convert_(model: nn.Module) -> QuantReport:
    """End QAT: freeze every scale and zero point; the model keeps running fake-quantised."""
    report = QuantReport()
    for name, module in model.named_modules():
        if isinstance(module, QuantizedLayer):
            module.freeze()
            report.layers[name] = {"method": module.config.method}
        elif isinstance(module, PACTReLU):
            report.pact.append(name)
    if not report.layers:
        raise ValueError("`model` has no quantised layers; call prepare_qat_ first.")
    return report
