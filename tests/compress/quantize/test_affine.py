"""Property tests of the uniform quantisers: rounding error, STE gradients, spec validation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from slimtune.compress.quantize import (
    FakeQuantize,
    QuantSpec,
    dequantize,
    fake_quantize,
    grouped,
    qparams,
    quantize,
    ungrouped,
)

GRANULARITIES = ["tensor", "channel", "group"]


def _spec(bits: int, symmetric: bool, granularity: str) -> QuantSpec:
    return QuantSpec(bits=bits, symmetric=symmetric, granularity=granularity, group_size=4)


@settings(max_examples=120, deadline=None)
@given(
    bits=st.integers(1, 8),
    symmetric=st.booleans(),
    granularity=st.sampled_from(GRANULARITIES),
    seed=st.integers(0, 2**31 - 1),
    spread=st.floats(1e-3, 1e3),
    offset=st.floats(-2.0, 2.0),
)
def test_round_trip_error_at_most_half_a_step(
    bits: int, symmetric: bool, granularity: str, seed: int, spread: float, offset: float
) -> None:
    if symmetric and bits == 1:
        bits = 2
    spec = _spec(bits, symmetric, granularity)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(6, 8, generator=gen) + offset) * spread
    v = grouped(x, spec)
    scale, zero = qparams(v.amin(dim=1), v.amax(dim=1), spec)
    codes = quantize(v, scale, zero, spec)
    assert int(codes.min()) >= spec.qmin and int(codes.max()) <= spec.qmax
    back = dequantize(codes, scale, zero)
    err = (back - v).abs()
    assert torch.all(err <= scale / 2 * (1 + 1e-5) + 1e-6 * v.abs())
    # fake quantisation computes exactly the dequantised codes
    assert torch.equal(fake_quantize(v, scale, zero, spec), back)
    assert torch.equal(ungrouped(v, x, spec), x)


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_ste_gradient_passes_inside_and_stops_outside(granularity: str, symmetric: bool) -> None:
    spec = _spec(4, symmetric, granularity)
    x = torch.linspace(-3, 3, 48).reshape(6, 8)
    v = grouped(x, spec)
    scale, zero = qparams(v.amin(dim=1) / 2, v.amax(dim=1) / 2, spec)  # clip half the range
    v = v.clone().requires_grad_(True)
    fake_quantize(v, scale, zero, spec).sum().backward()
    # the clipping range: values that round onto the grid, [qmin - 1/2, qmax + 1/2] steps
    lo = (spec.qmin - 0.5 - zero) * scale
    hi = (spec.qmax + 0.5 - zero) * scale
    margin = 1e-4 * scale
    inside = (v > lo + margin) & (v < hi - margin)
    outside = (v < lo - margin) | (v > hi + margin)
    assert v.grad is not None
    assert torch.all(v.grad[inside] == 1.0)
    assert torch.all(v.grad[outside] == 0.0)
    assert inside.any() and outside.any()


def test_lsq_scale_receives_gradient() -> None:
    spec = QuantSpec(bits=4, learnable=True)
    fq = FakeQuantize(spec)
    x = torch.randn(64, 8)
    fq(x)  # initialises the step size from the observer
    assert isinstance(fq.scale, torch.nn.Parameter)
    out = fq(x * 3)  # values outside the range pull the step size up
    (out - x * 3).pow(2).sum().backward()
    assert fq.scale.grad is not None and float(fq.scale.grad.abs().sum()) > 0
    fq.freeze()
    assert not fq.scale.requires_grad


@pytest.mark.parametrize("bits", [0, 9, -1, 2.5, True])
def test_bits_outside_1_to_8_rejected(bits: object) -> None:
    with pytest.raises(ValueError, match="`bits` must be an int in \\[1, 8\\]"):
        QuantSpec(bits=bits)  # type: ignore[arg-type]


def test_spec_validation_messages() -> None:
    with pytest.raises(ValueError, match="symmetric=False"):
        QuantSpec(bits=1, symmetric=True)
    with pytest.raises(ValueError, match="granularity"):
        QuantSpec(granularity="row")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="per tensor only"):
        QuantSpec(observer="histogram", granularity="channel")
    with pytest.raises(ValueError, match="group_size"):
        grouped(torch.zeros(4, 6), QuantSpec(granularity="group", group_size=4))


def test_per_channel_along_other_axis() -> None:
    spec = QuantSpec(bits=8, granularity="channel", axis=-1)
    x = torch.randn(3, 5, 7)
    v = grouped(x, spec)
    assert v.shape == (7, 15)
    assert torch.equal(ungrouped(v, x, spec), x)
