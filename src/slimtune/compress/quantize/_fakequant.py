"""Fake-quantisation modules: uniform (with observers, optional LSQ), binary, ternary and PACT."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from slimtune.compress.quantize._affine import (
    fake_quantize,
    grouped,
    qparams,
    quantize,
    ungrouped,
)
from slimtune.compress.quantize._observers import make_observer
from slimtune.compress.quantize._spec import QuantSpec, check_bits

__all__ = [
    "BinaryActivation",
    "BinaryWeight",
    "FakeQuantize",
    "PACTReLU",
    "TernaryWeight",
]


class FakeQuantize(nn.Module):
    """Uniform fake quantisation of a tensor according to a :class:`QuantSpec`.

    While ``observing`` it feeds its observer (``per_call=True``, used for weights, restarts the
    observer on every call); while ``enabled`` it quantises. :meth:`freeze` fixes the scale and
    zero point from the observer and stops observing. With ``spec.learnable`` the scale is an
    ``nn.Parameter`` (LSQ) initialised from the observer on the first call.
    """

    scale: torch.Tensor
    zero_point: torch.Tensor

    def __init__(self, spec: QuantSpec, *, per_call: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.per_call = per_call
        self.observer = make_observer(spec)
        self.observing = True
        self.enabled = True
        self.register_buffer("zero_point", torch.zeros(0))
        if spec.learnable:
            self.scale = nn.Parameter(torch.zeros(0))
        else:
            self.register_buffer("scale", torch.zeros(0))

    @property
    def initialized(self) -> bool:
        """Whether a scale has been computed."""
        return self.scale.numel() > 0

    @torch.no_grad()
    def compute_qparams(self) -> None:
        """Set scale and zero point from the observer's range."""
        scale, zero = qparams(*self.observer.range(), self.spec)
        if isinstance(self.scale, nn.Parameter):
            self.scale.data = scale
        else:
            self.scale = scale
        self.zero_point = zero

    @torch.no_grad()
    def freeze(self) -> None:
        """Fix the quantisation parameters (observing stops, quantising starts)."""
        if self.observer.ready and not (self.spec.learnable and self.initialized):
            self.compute_qparams()
        if not self.initialized:
            raise RuntimeError("FakeQuantize saw no data before freeze(); calibrate first.")
        if isinstance(self.scale, nn.Parameter):  # LSQ: the trained step size becomes fixed
            self.scale.data = self.scale.data.abs().clamp_min(1e-12)
            self.scale.requires_grad_(False)
        self.observing = False
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = grouped(x, self.spec)
        if self.observing:
            if self.per_call:
                self.observer.reset()
            self.observer.update(v)
            if self.enabled and not (self.spec.learnable and self.initialized):
                self.compute_qparams()
        if not self.enabled:
            return x
        if not self.initialized:
            raise RuntimeError("FakeQuantize has no scale yet: calibrate or call freeze().")
        scale = self.scale
        if scale.shape[0] != v.shape[0]:
            raise ValueError(
                f"input of shape {tuple(x.shape)} has {v.shape[0]} quantisation groups, the "
                f"calibrated scale has {scale.shape[0]}; feed inputs shaped like the calibration."
            )
        grad_scale = None
        if self.spec.learnable:
            grad_scale = 1.0 / math.sqrt(max(v.shape[1], 1) * max(self.spec.qmax, 1))
        return ungrouped(
            fake_quantize(v, scale, self.zero_point, self.spec, grad_scale=grad_scale),
            x,
            self.spec,
        )

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes of ``x`` in the grouped layout ``(G, n)`` (uses the frozen scale)."""
        return quantize(grouped(x, self.spec), self.scale.detach(), self.zero_point, self.spec)

    def extra_repr(self) -> str:
        s = self.spec
        return f"bits={s.bits}, symmetric={s.symmetric}, granularity={s.granularity}"


class _StraightThrough(torch.autograd.Function):
    """Forward ``value`` exactly; backward the incoming gradient times ``mask`` to ``x``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(mask)
        return value

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


def straight_through(x: torch.Tensor, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass; ``x`` receives ``grad * mask`` in the backward pass."""
    out: torch.Tensor = _StraightThrough.apply(x, value.detach(), mask.to(x.dtype))
    return out


def _per_channel_mean_abs(w: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    flat = w.detach().abs().reshape(w.shape[0], -1)
    if mask is None:
        return flat.mean(dim=1)
    m = mask.reshape(w.shape[0], -1).float()
    return (flat * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def _bcast(alpha: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return alpha.reshape(-1, *([1] * (w.dim() - 1)))


class BinaryWeight(nn.Module):
    """XNOR-Net weights: ``sign(W) * mean|W|`` per output channel; gradient passes for |W| <= 1."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        alpha = _bcast(_per_channel_mean_abs(w), w)
        signs = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        return straight_through(w, alpha * signs, w.abs() <= 1.0)

    @torch.no_grad()
    def split(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(bits, alpha)``: a bool tensor (True = +1) and the per-channel scales."""
        return w >= 0, _per_channel_mean_abs(w)


class TernaryWeight(nn.Module):
    """Ternary weight networks: threshold 0.7 mean|W|, values ``{-a, 0, +a}`` per output channel."""

    def __init__(self, threshold: float = 0.7) -> None:
        super().__init__()
        if not 0.0 < threshold < 2.0:
            raise ValueError(f"`threshold` must be in (0, 2), got {threshold!r}.")
        self.threshold = threshold

    @torch.no_grad()
    def split(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(codes, alpha)``: int8 codes in {-1, 0, 1} and the per-channel scales."""
        delta = _bcast(self.threshold * _per_channel_mean_abs(w), w)
        mask = w.abs() > delta
        alpha = _per_channel_mean_abs(w, mask)
        codes = (torch.sign(w) * mask).to(torch.int8)
        return codes, alpha

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        codes, alpha = self.split(w)
        return straight_through(w, _bcast(alpha, w) * codes.to(w.dtype), torch.ones_like(w))


class BinaryActivation(nn.Module):
    """``sign(x)`` in {-1, +1}; straight-through gradient for |x| <= 1 (hardtanh)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        signs = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
        return straight_through(x, signs, x.abs() <= 1.0)


class PACTReLU(nn.Module):
    """PACT (Choi et al., 2018): ``clamp(x, 0, alpha)`` with a learned ``alpha``, quantised to
    ``bits`` unsigned levels; ``alpha`` gets gradient from the inputs clipped at the top."""

    def __init__(self, bits: int = 4, alpha: float = 6.0) -> None:
        super().__init__()
        self.bits = check_bits(bits)
        if not alpha > 0:
            raise ValueError(f"`alpha` must be > 0, got {alpha!r}.")
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.abs() + 1e-8
        y = 0.5 * (x.abs() - (x - alpha).abs() + alpha)
        step = alpha.detach() / (2**self.bits - 1)
        return straight_through(y, torch.round(y / step) * step, torch.ones_like(y))

    def extra_repr(self) -> str:
        return f"bits={self.bits}, alpha={float(self.alpha):.3g}"
