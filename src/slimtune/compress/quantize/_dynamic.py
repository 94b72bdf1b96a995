"""Real int8 inference on CPU: Linear layers on PyTorch's quantized dynamic kernels (fbgemm /
x86 / onednn), with weights quantised by slimtune's own observers (per channel, MSE clipping)."""

from __future__ import annotations

import fnmatch
import logging
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from slimtune.compress.quantize._affine import grouped, qparams, quantize
from slimtune.compress.quantize._apply import QuantReport, _set
from slimtune.compress.quantize._observers import make_observer
from slimtune.compress.quantize._spec import QuantSpec
from slimtune.exceptions import UnsupportedLayerError

__all__ = ["Int8DynamicLinear", "quantize_dynamic_int8_"]

logger = logging.getLogger(__name__)

_DEFAULT_SPEC = QuantSpec(bits=8, granularity="channel")


def _check_engine() -> None:
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm", "onednn", "qnnpack")):
        raise UnsupportedLayerError(
            f"this PyTorch build has no quantized CPU engine (supported: {engines}); "
            "use a standard x86 or ARM build of torch."
        )


class Int8DynamicLinear(nn.Module):
    """A Linear computed by ``torch.ops.quantized.linear_dynamic``: int8 weights (per tensor or
    per channel, symmetric), activations quantised per batch at run time, float output.

    ``weight_codes`` (int8), ``weight_scale`` and ``bias`` are buffers: the state dict holds
    the integer weights, not floats.
    """

    weight_codes: torch.Tensor
    weight_scale: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        _check_engine()
        self.in_features = codes.shape[1]
        self.out_features = codes.shape[0]
        self.register_buffer("weight_codes", codes.to(torch.int8).contiguous())
        self.register_buffer("weight_scale", scale.reshape(-1).float().contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self._packed: Any = None

    @classmethod
    def from_linear(cls, linear: nn.Linear, spec: QuantSpec = _DEFAULT_SPEC) -> Int8DynamicLinear:
        """Quantise ``linear``'s weight with ``spec`` (symmetric, per tensor or per channel)."""
        if not spec.symmetric or spec.granularity == "group" or spec.axis != 0:
            raise ValueError(
                f"int8 dynamic kernels need symmetric per-tensor or per-channel (axis 0) weights, "
                f"got symmetric={spec.symmetric}, granularity={spec.granularity!r}, "
                f"axis={spec.axis}."
            )
        w = linear.weight.detach().float()
        observer = make_observer(spec)
        v = grouped(w, spec)
        observer.update(v)
        scale, zero = qparams(*observer.range(), spec)
        codes = quantize(v, scale, zero, spec).reshape(w.shape)
        return cls(codes, scale, linear.bias)

    def dequantized_weight(self) -> torch.Tensor:
        """The float weight the kernel multiplies by."""
        return self.weight_codes.float() * self.weight_scale.unsqueeze(1)

    def _pack(self) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            scale = self.weight_scale.double()
            if scale.numel() == 1:
                qw = torch._make_per_tensor_quantized_tensor(self.weight_codes, float(scale[0]), 0)
            else:
                qw = torch._make_per_channel_quantized_tensor(
                    self.weight_codes, scale, torch.zeros_like(scale, dtype=torch.long), 0
                )
            return torch.ops.quantized.linear_prepack(qw, self.bias)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._packed = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed is None:
            self._packed = self._pack()
        return torch.ops.quantized.linear_dynamic(x.float().contiguous(), self._packed, True)

    def extra_repr(self) -> str:
        per = "channel" if self.weight_scale.numel() > 1 else "tensor"
        return f"in_features={self.in_features}, out_features={self.out_features}, per={per}"


def quantize_dynamic_int8_(
    model: nn.Module,
    *,
    weight: QuantSpec = _DEFAULT_SPEC,
    layers: Mapping[str, QuantSpec | None] | None = None,
    skip: Iterable[str] = (),
) -> QuantReport:
    """Replace ``nn.Linear`` layers by :class:`Int8DynamicLinear` in place (real int8 on CPU).

    ``layers`` maps name patterns to a weight spec, or to ``None`` to keep that layer in float
    (mixed precision, e.g. from :func:`sensitivity`); ``skip`` lists more patterns kept in float.
    Every pattern must match a Linear layer. The model is unchanged if an argument is invalid.
    """
    _check_engine()
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}.")
    if not isinstance(weight, QuantSpec):
        raise TypeError(f"`weight` must be a QuantSpec, got {type(weight).__name__}.")
    layers = dict(layers or {})
    skip = [skip] if isinstance(skip, str) else list(skip)
    linears = {n: m for n, m in model.named_modules() if type(m) is nn.Linear}
    for pattern in [*layers, *skip]:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in linears):
            raise ValueError(
                f"pattern {pattern!r} matches no nn.Linear of the model; check the names in "
                "model.named_modules()."
            )
    report = QuantReport()
    new: dict[str, nn.Module] = {}
    for name, linear in linears.items():
        spec: QuantSpec | None = weight
        for pattern, chosen in layers.items():
            if fnmatch.fnmatchcase(name, pattern):
                spec = chosen
                break
        if spec is None or any(fnmatch.fnmatchcase(name, p) for p in skip):
            report.skipped[name] = "kept in float by the caller"
            continue
        if spec.bits != 8:
            logger.info("%s: %d-bit weights run on the int8 kernel", name, spec.bits)
        new[name] = Int8DynamicLinear.from_linear(linear, spec)
        report.layers[name] = {
            "type": "Linear",
            "method": "int8_dynamic",
            "weight_bits": spec.bits,
            "granularity": spec.granularity,
            "activation_bits": 8,
        }
    for name, module in new.items():
        _set(model, name, module)
    return report
