"""Real int8 inference on CPU: Linear layers on PyTorch's quantized dynamic kernels (fbgemm /
x86 / onednn), with weights quantised by slimtune's own observers (per channel, MSE clipping)."""

from __future__ import annotations

import fnmatch
import functools
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from slimtune.compress.quantize._affine import grouped, qparams, quantize
from slimtune.compress.quantize._apply import (
    Batch,
    Calibration,
    QuantReport,
    _batches,
    _check_calibration,
    _run,
    _set,
)
from slimtune.compress.quantize._observers import make_observer
from slimtune.compress.quantize._spec import QuantSpec
from slimtune.exceptions import CalibrationError, UnsupportedLayerError

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


@functools.cache
def cpu_has_vnni() -> bool:
    """Whether this x86 CPU has VNNI dot-product instructions (Linux ``/proc/cpuinfo``).

    Without them fbgemm multiplies u8 x s8 pairs into saturating int16 sums, so activations
    must use 7 bits ("reduce range"); with them the full 8-bit range is exact.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_vnni", "avx_vnni"} & flags)
    except OSError:
        return False
    return False


class Int8DynamicLinear(nn.Module):
    """A Linear computed by ``torch.ops.quantized.linear_dynamic``: int8 weights (per tensor or
    per channel, symmetric), activations quantised per batch at run time, float output.

    ``weight_codes`` (int8), ``weight_scale`` and ``bias`` are buffers: the state dict holds
    the integer weights, not floats. ``input_scale`` (SmoothQuant) divides the inputs.
    """

    weight_codes: torch.Tensor
    weight_scale: torch.Tensor
    bias: torch.Tensor | None
    input_scale: torch.Tensor | None

    def __init__(
        self,
        codes: torch.Tensor,
        scale: torch.Tensor,
        bias: torch.Tensor | None,
        input_scale: torch.Tensor | None = None,
        *,
        reduce_range: bool | None = None,
    ) -> None:
        super().__init__()
        _check_engine()
        self.reduce_range = (not cpu_has_vnni()) if reduce_range is None else bool(reduce_range)
        self.in_features = codes.shape[1]
        self.out_features = codes.shape[0]
        self.register_buffer("weight_codes", codes.to(torch.int8).contiguous())
        self.register_buffer("weight_scale", scale.reshape(-1).float().contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.register_buffer(
            "input_scale", None if input_scale is None else input_scale.float().clone()
        )
        self._packed: Any = None

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        spec: QuantSpec = _DEFAULT_SPEC,
        *,
        input_absmax: torch.Tensor | None = None,
        smoothing: float = 0.5,
        reduce_range: bool | None = None,
    ) -> Int8DynamicLinear:
        """Quantise ``linear``'s weight with ``spec`` (symmetric, per tensor or per channel).

        With ``input_absmax`` (per input feature, from calibration) the layer is smoothed
        (SmoothQuant, Xiao et al. 2023): inputs are divided by ``s = absmax**a / max|W|**(1-a)``
        (``a = smoothing``) and weight columns multiplied by ``s`` before quantisation, which
        moves activation outliers into the per-channel weights.
        """
        if not spec.symmetric or spec.granularity == "group" or spec.axis != 0:
            raise ValueError(
                f"int8 dynamic kernels need symmetric per-tensor or per-channel (axis 0) weights, "
                f"got symmetric={spec.symmetric}, granularity={spec.granularity!r}, "
                f"axis={spec.axis}."
            )
        w = linear.weight.detach().float()
        input_scale = None
        if input_absmax is not None:
            w_absmax = w.abs().amax(dim=0).clamp_min(1e-5)
            s = input_absmax.float().clamp_min(1e-5).pow(smoothing) / w_absmax.pow(1 - smoothing)
            input_scale = s.clamp_min(1e-5)
            w = w * input_scale
        observer = make_observer(spec)
        v = grouped(w, spec)
        observer.update(v)
        scale, zero = qparams(*observer.range(), spec)
        codes = quantize(v, scale, zero, spec).reshape(w.shape)
        return cls(codes, scale, linear.bias, input_scale, reduce_range=reduce_range)

    def dequantized_weight(self) -> torch.Tensor:
        """The float weight the layer computes with (smoothing folded back in)."""
        w = self.weight_codes.float() * self.weight_scale.unsqueeze(1)
        return w if self.input_scale is None else w / self.input_scale

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
        x = x.float()
        if self.input_scale is not None:
            x = x / self.input_scale
        return torch.ops.quantized.linear_dynamic(x.contiguous(), self._packed, self.reduce_range)

    def extra_repr(self) -> str:
        per = "channel" if self.weight_scale.numel() > 1 else "tensor"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, per={per}, "
            f"reduce_range={self.reduce_range}"
        )


def quantize_dynamic_int8_(
    model: nn.Module,
    *,
    weight: QuantSpec = _DEFAULT_SPEC,
    layers: Mapping[str, QuantSpec | None] | None = None,
    skip: Iterable[str] = (),
    smoothing: float | None = None,
    calibration: Calibration | None = None,
    reduce_range: bool | None = None,
) -> QuantReport:
    """Replace ``nn.Linear`` layers by :class:`Int8DynamicLinear` in place (real int8 on CPU).

    ``layers`` maps name patterns to a weight spec, or to ``None`` to keep that layer in float
    (mixed precision, e.g. from :func:`sensitivity`); ``skip`` lists more patterns kept in float.
    ``smoothing`` (SmoothQuant strength in (0, 1), e.g. 0.5) divides each layer's inputs by
    per-feature scales measured on ``calibration`` (required with it) and folds them into the
    weights. ``reduce_range`` quantises activations to 7 bits (needed on x86 CPUs without VNNI,
    where fbgemm's int16 intermediate sums saturate); ``None`` picks it from the CPU. Every
    pattern must match a Linear layer. The model is unchanged if an argument is
    invalid.
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
    if smoothing is not None:
        if not 0.0 < smoothing < 1.0:
            raise ValueError(f"`smoothing` must be in (0, 1), got {smoothing!r}; e.g. 0.5.")
        if calibration is None:
            raise CalibrationError(
                "`smoothing` needs `calibration` inputs to measure activation ranges."
            )
    absmax: dict[str, torch.Tensor] = {}
    if smoothing is not None and calibration is not None:
        batches = _batches(calibration, 128)
        _check_calibration(model, batches)
        absmax = _input_absmax(model, linears, batches)
    report = QuantReport()
    new: dict[str, Int8DynamicLinear] = {}
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
        module = new[name] = Int8DynamicLinear.from_linear(
            linear,
            spec,
            input_absmax=absmax.get(name),
            smoothing=smoothing or 0.5,
            reduce_range=reduce_range,
        )
        report.layers[name] = {
            "type": "Linear",
            "method": "int8_dynamic",
            "weight_bits": spec.bits,
            "granularity": spec.granularity,
            "activation_bits": 7 if module.reduce_range else 8,
            "smoothing": smoothing,
            "reduce_range": module.reduce_range,
        }
    for name, converted in new.items():
        _set(model, name, converted)
    return report


def _input_absmax(
    model: nn.Module, linears: Mapping[str, nn.Module], batches: Sequence[Batch]
) -> dict[str, torch.Tensor]:
    """Per-input-feature max |x| of every Linear's input over the calibration batches."""
    found: dict[str, torch.Tensor] = {}

    def hook(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def record(_m: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0].detach().float()
            m = x.reshape(-1, x.shape[-1]).abs().amax(dim=0)
            found[name] = torch.maximum(found[name], m) if name in found else m

        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in linears.items()]
    try:
        _run(model, batches)
    finally:
        for h in handles:
            h.remove()
    return found
