"""Deployment through torchao (the ``quant`` extra): static int8 on CPU via PT2E and the x86
Inductor quantizer, and int8 / int4 weight-only on CUDA."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from slimtune.compress.quantize._apply import Calibration, _batches
from slimtune.exceptions import MissingExtraError, SlimtuneError, UnsupportedLayerError

__all__ = ["StaticInt8Result", "quantize_static_int8", "weight_only_cuda_"]

logger = logging.getLogger(__name__)


def _missing(err: ImportError) -> MissingExtraError:
    return MissingExtraError(
        f"this needs torchao ({err}); install the 'quant' extra: pip install 'slimtune[quant]'."
    )


@dataclass
class StaticInt8Result:
    """The converted model and what had to be done to get it."""

    model: nn.Module
    renamed_call_sites: list[str] = field(default_factory=list)
    compiled: bool = False


def _split_shared_call_sites(graph: torch.fx.Graph) -> list[str]:
    """Give every call of a module that is called more than once its own name in the node
    metadata, so that the quantizer's pattern partitions do not merge separate call sites (the
    "one ``nn.ReLU`` called twice" failure of X86InductorQuantizer)."""
    renamed: list[str] = []
    for node in graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            continue
        key = list(stack)[-1]
        if "@" not in key:
            continue
        fqn, kind = stack[key]
        suffix = key.rsplit("@", 1)[1]
        new = dict(stack)
        new[key] = (f"{fqn}@{suffix}", kind)
        node.meta["nn_module_stack"] = new
        renamed.append(f"{fqn}@{suffix}")
    return renamed


def quantize_static_int8(
    model: nn.Module,
    example_inputs: Sequence[Any],
    calibration: Calibration,
    *,
    compile: bool = True,
) -> StaticInt8Result:
    """Static int8 (activations and weights) through PT2E and ``X86InductorQuantizer``.

    ``model`` is not modified: it is exported with ``torch.export``, annotated, calibrated on
    ``calibration`` and converted; with ``compile=True`` the result goes through
    ``torch.compile`` with Inductor freezing (compiled at once for ``example_inputs``' shapes;
    other shapes recompile without freezing and run slower) so that Inductor lowers the
    quantised patterns to prepacked int8 kernels. Modules called
    more than once (a shared ``nn.ReLU``) are split per call site and reported; any other
    pattern the quantizer rejects raises :class:`UnsupportedLayerError`.
    """
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError as err:
        raise _missing(err) from err
    if not isinstance(example_inputs, tuple | list):
        raise TypeError(
            f"`example_inputs` must be a tuple of inputs, got {type(example_inputs).__name__}; "
            "pass e.g. (x,)."
        )
    batches = _batches(calibration, 256)
    float_model = copy.deepcopy(model).eval()
    try:
        exported = torch.export.export(float_model, tuple(example_inputs)).module()
    except Exception as err:
        raise UnsupportedLayerError(
            f"torch.export could not capture the model ({type(err).__name__}: {err}); make the "
            "forward traceable or use quantize_dynamic_int8_ instead."
        ) from err
    renamed = _split_shared_call_sites(exported.graph)
    if renamed:
        logger.info("split %d shared module call sites: %s", len(renamed), renamed)
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    try:
        prepared = prepare_pt2e(exported, quantizer)
    except Exception as err:
        raise UnsupportedLayerError(
            f"X86InductorQuantizer could not annotate the model ({type(err).__name__}: {err}); "
            "keep the offending layers in float with quantize_dynamic_int8_(..., skip=...)."
        ) from err
    with torch.no_grad():
        for x in batches:
            prepared(x)
    converted = convert_pt2e(prepared)
    out: nn.Module = converted
    if compile:
        import torch._inductor.config as inductor_config

        out = torch.compile(converted)  # type: ignore[assignment]
        # Inductor folds the quantised weights into prepacked int8 kernels only with freezing;
        # compilation happens on the first call, so make it here, for example_inputs' shapes.
        with inductor_config.patch(freezing=True), torch.no_grad():
            out(*example_inputs)
    return StaticInt8Result(model=out, renamed_call_sites=renamed, compiled=compile)


def weight_only_cuda_(
    model: nn.Module, *, bits: Literal[8, 4] = 8, group_size: int = 128
) -> nn.Module:
    """int8 or int4 weight-only quantisation of a CUDA model's Linear layers with torchao's
    kernels, in place. Needs a CUDA device (int4 also needs bf16 weights); raises otherwise."""
    if bits not in (8, 4):
        raise ValueError(f"`bits` must be 8 or 4 for weight-only CUDA kernels, got {bits!r}.")
    if not torch.cuda.is_available():
        raise SlimtuneError(
            "weight_only_cuda_ needs a CUDA device and none is available; on CPU use "
            "quantize_dynamic_int8_ or quantize_static_int8."
        )
    devices = {p.device.type for p in model.parameters()}
    if devices != {"cuda"}:
        raise ValueError(
            f"`model` must be on CUDA for weight-only kernels, its parameters are on {devices}; "
            "call model.cuda() first."
        )
    try:
        from torchao.quantization import (
            Int4WeightOnlyConfig,
            Int8WeightOnlyConfig,
        )
        from torchao.quantization import quantize_ as ao_quantize_
    except ImportError as err:
        raise _missing(err) from err
    config: Any = (
        Int8WeightOnlyConfig() if bits == 8 else Int4WeightOnlyConfig(group_size=group_size)
    )
    ao_quantize_(model, config)
    return model
