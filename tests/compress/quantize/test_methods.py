"""Binary, ternary, PACT and product quantisation."""

from __future__ import annotations

import pytest
import torch

from slimtune.compress.quantize import (
    BinaryActivation,
    BinaryWeight,
    PACTReLU,
    PQSpec,
    TernaryWeight,
    pq_reconstruct,
    product_quantize,
)


def _weight(shape: tuple[int, ...] = (16, 32), seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.1


def test_binary_weights_are_plus_minus_channel_mean() -> None:
    w = _weight((8, 3, 3, 3))
    out = BinaryWeight()(w)
    alpha = w.abs().reshape(8, -1).mean(dim=1)
    for c in range(8):
        assert set(out[c].unique().tolist()) <= {float(alpha[c]), -float(alpha[c])}
    assert torch.equal(out > 0, w >= 0)


def test_binary_weight_gradient_is_clipped_ste() -> None:
    w = torch.tensor([[0.5, -2.0, 0.1, 1.5]], requires_grad=True)
    BinaryWeight()(w).sum().backward()
    assert w.grad is not None
    assert w.grad.tolist() == [[1.0, 0.0, 1.0, 0.0]]


def test_ternary_weights_take_three_values_per_channel() -> None:
    w = _weight()
    out = TernaryWeight()(w)
    codes, alpha = TernaryWeight().split(w)
    assert set(codes.unique().tolist()) <= {-1, 0, 1}
    for c in range(w.shape[0]):
        assert set(out[c].unique().tolist()) <= {-float(alpha[c]), 0.0, float(alpha[c])}
    delta = 0.7 * w.abs().mean(dim=1, keepdim=True)
    assert torch.equal(codes == 0, w.abs() <= delta)


def test_binary_activations() -> None:
    x = torch.tensor([-3.0, -0.2, 0.0, 0.4, 2.0], requires_grad=True)
    y = BinaryActivation()(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad is not None and x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_pact_clips_quantises_and_learns_alpha() -> None:
    act = PACTReLU(bits=2, alpha=1.5)
    x = torch.tensor([-1.0, 0.2, 0.7, 1.2, 4.0])
    y = act(x)
    step = 1.5 / 3
    assert torch.allclose(y, torch.tensor([0.0, 0.0, step, 2 * step, 1.5]))
    y.sum().backward()
    assert act.alpha.grad is not None and float(act.alpha.grad) == pytest.approx(1.0)


@pytest.mark.parametrize("codebooks", ["layer", "block"])
def test_pq_codes_are_uint8_and_error_falls_as_codebooks_grow(codebooks: str) -> None:
    w = _weight((256, 64))
    errors = []
    for k in (2, 8, 32, 128):
        spec = PQSpec(block_size=4, codebook_size=k, codebooks=codebooks)  # type: ignore[arg-type]
        codes, books = product_quantize(w, spec)
        assert codes.dtype == torch.uint8 and codes.shape == (256, 16)
        assert books.shape == ((16 if codebooks == "block" else 1), k, 4)
        rec = pq_reconstruct(codes, books, w.shape)
        errors.append(float((rec - w).pow(2).mean()))
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.3 * errors[0]


def test_pq_validation() -> None:
    with pytest.raises(ValueError, match="codebook_size"):
        PQSpec(codebook_size=512)
    with pytest.raises(ValueError, match="block_size"):
        product_quantize(_weight((8, 6)), PQSpec(block_size=4))
