"""Uniform quantisation arithmetic: grouped views, scales and zero points, STE fake quantisation.

Every quantiser works on a 2-D *grouped view* ``(G, n)`` of a tensor: one row per scale
(``G = 1`` per tensor, ``G = C`` per channel, ``G = C * n_groups`` per group).
"""

from __future__ import annotations

import torch

from slimtune.compress.quantize._spec import QuantSpec

__all__ = [
    "dequantize",
    "fake_quantize",
    "grouped",
    "qparams",
    "quantize",
    "ungrouped",
]

_EPS = 1e-12


def grouped(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """The ``(G, n)`` view of ``x`` for ``spec``'s granularity (a copy when axis is not 0)."""
    if spec.granularity == "tensor":
        return x.reshape(1, -1)
    axis = spec.axis % x.dim() if x.dim() else 0
    xc = x.movedim(axis, 0).reshape(x.shape[axis], -1)
    if spec.granularity == "channel":
        return xc
    if xc.shape[1] % spec.group_size:
        raise ValueError(
            f"`group_size`={spec.group_size} must divide the {xc.shape[1]} elements per channel "
            f"of a tensor of shape {tuple(x.shape)}; pick a divisor or granularity='channel'."
        )
    return xc.reshape(-1, spec.group_size)


def ungrouped(v: torch.Tensor, like: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Inverse of :func:`grouped`: reshape ``v`` back to ``like``'s shape."""
    if spec.granularity == "tensor":
        return v.reshape(like.shape)
    axis = spec.axis % like.dim()
    moved = list(like.movedim(axis, 0).shape)
    return v.reshape(moved).movedim(0, axis)


def qparams(
    lo: torch.Tensor, hi: torch.Tensor, spec: QuantSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and integer zero point, both ``(G, 1)``, for clipping ranges ``[lo, hi]`` ``(G,)``.

    The range is widened to contain 0 so that zero is exact (padding, ReLU outputs).
    """
    lo = torch.minimum(lo.detach().float(), torch.zeros_like(lo, dtype=torch.float32))
    hi = torch.maximum(hi.detach().float(), torch.zeros_like(hi, dtype=torch.float32))
    if spec.symmetric:
        amax = torch.maximum(-lo, hi)
        scale = (amax / spec.qmax).clamp_min(_EPS)
        zero = torch.zeros_like(scale)
    else:
        scale = ((hi - lo) / (spec.qmax - spec.qmin)).clamp_min(_EPS)
        zero = (spec.qmin - torch.round(lo / scale)).clamp(spec.qmin, spec.qmax)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def fake_quantize(
    v: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor,
    spec: QuantSpec,
    *,
    grad_scale: float | None = None,
) -> torch.Tensor:
    """Quantise then dequantise the grouped view ``v``, with straight-through gradients.

    The gradient with respect to ``v`` is 1 inside the clipping range (values that round onto
    the grid, ``[(qmin - 1/2 - zero) * scale, (qmax + 1/2 - zero) * scale]``) and 0 outside. When
    ``scale`` requires grad it receives the LSQ gradient, multiplied by ``grad_scale``.
    """
    if grad_scale is not None and scale.requires_grad:
        scale = (scale - scale * grad_scale).detach() + scale * grad_scale
    scale = scale.abs().clamp_min(_EPS) if scale.requires_grad else scale
    codes = torch.clamp(_round_ste(v / scale) + zero, spec.qmin, spec.qmax)
    return (codes - zero) * scale


@torch.no_grad()
def quantize(
    v: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, spec: QuantSpec
) -> torch.Tensor:
    """Integer codes of the grouped view ``v`` (int8 for symmetric grids, uint8 otherwise)."""
    codes = torch.clamp(torch.round(v / scale) + zero, spec.qmin, spec.qmax)
    return codes.to(torch.int8 if spec.symmetric else torch.uint8)


def dequantize(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """Float values of integer ``codes`` ``(G, n)``."""
    return (codes.float() - zero) * scale
