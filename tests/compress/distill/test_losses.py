from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from slimtune.compress.distill import (
    attention_loss,
    distillation_loss,
    feature_loss,
    kd_loss,
    soft_targets,
)

S = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
T = torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])


def _hand_kl(s: list[float], t: list[float], temp: float) -> float:
    def softmax(z: list[float]) -> list[float]:
        e = [math.exp(v / temp) for v in z]
        return [v / sum(e) for v in e]

    p, q = softmax(t), softmax(s)
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True)) * temp * temp


def test_kd_loss_matches_hand_computed_kl() -> None:
    for temp in (1.0, 2.0, 4.0):
        rows = [_hand_kl(S[i].tolist(), T[i].tolist(), temp) for i in range(2)]
        got = kd_loss(S, T, temperature=temp, reduction="none")
        torch.testing.assert_close(got, torch.tensor(rows), rtol=1e-5, atol=1e-6)
        mean = kd_loss(S, T, temperature=temp)
        assert mean.item() == pytest.approx(sum(rows) / 2, rel=1e-5)
        assert kd_loss(S, T, temperature=temp, reduction="sum").item() == pytest.approx(
            sum(rows), rel=1e-5
        )
    # the same as torch's KL divergence with batchmean and the T^2 factor
    ref = F.kl_div(
        F.log_softmax(S / 3, -1), F.log_softmax(T / 3, -1), reduction="batchmean", log_target=True
    )
    assert kd_loss(S, T, temperature=3.0).item() == pytest.approx(9 * ref.item(), rel=1e-5)


def test_kd_loss_is_zero_for_identical_logits_and_nonnegative() -> None:
    assert kd_loss(T, T).item() == pytest.approx(0.0, abs=1e-7)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    assert bool((kd_loss(a, b, reduction="none") >= 0).all())


def test_kd_loss_gradcheck_double_precision() -> None:
    g = torch.Generator().manual_seed(1)
    s = torch.randn(4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.randn(4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    for temp in (1.0, 3.0):
        assert torch.autograd.gradcheck(
            lambda a, b, temp=temp: kd_loss(a, b, temperature=temp), (s, t)
        )
        assert torch.autograd.gradcheck(
            lambda a, b, temp=temp: kd_loss(a, b, temperature=temp, reduction="none"), (s, t)
        )


def test_soft_targets_approach_uniform_as_temperature_grows() -> None:
    gaps = [float((soft_targets(T, temp) - 1 / 3).abs().max()) for temp in (1, 10, 100, 1000)]
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 1e-3


def test_kd_loss_tends_to_logit_matching_at_high_temperature() -> None:
    g = torch.Generator().manual_seed(2)
    s = torch.randn(8, 10, dtype=torch.float64, generator=g)
    t = torch.randn(8, 10, dtype=torch.float64, generator=g)
    sc, tc = s - s.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)
    limit = ((sc - tc) ** 2).sum(-1) / (2 * 10)
    values = [kd_loss(s, t, temperature=temp, reduction="none") for temp in (1.0, 10.0, 1e3)]
    torch.testing.assert_close(values[-1], limit, rtol=1e-3, atol=0)
    errors = [float((v - limit).abs().max()) for v in values]
    assert errors == sorted(errors, reverse=True)
    # bounded: T^2-scaled loss never exceeds the limit by much at any temperature >= 10
    assert float(values[1].max()) < 2 * float(limit.max())


def test_kd_loss_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="`temperature`"):
        kd_loss(S, T, temperature=0.0)
    with pytest.raises(ValueError, match="`temperature`"):
        kd_loss(S, T, temperature=float("inf"))
    with pytest.raises(ValueError, match="`reduction`"):
        kd_loss(S, T, reduction="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(S, T[:, :2])


def test_distillation_loss_mixes_soft_and_hard_by_alpha() -> None:
    y = torch.tensor([1, 2])
    soft = kd_loss(S, T, temperature=2.0)
    hard = F.cross_entropy(S, y)
    got = distillation_loss(S, T, y, alpha=0.3, temperature=2.0)
    assert got.item() == pytest.approx(0.3 * soft.item() + 0.7 * hard.item(), rel=1e-6)
    assert distillation_loss(S, T, None, alpha=1.0, temperature=2.0).item() == pytest.approx(
        soft.item()
    )
    with pytest.raises(ValueError, match="`labels`"):
        distillation_loss(S, T, None, alpha=0.5)
    with pytest.raises(ValueError, match="`alpha`"):
        distillation_loss(S, T, y, alpha=1.5)


def test_feature_loss_mse_and_cosine() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(2, 4, 3, 3, generator=g)
    assert feature_loss(a, a).item() == 0.0
    assert feature_loss(a, 2 * a, kind="cosine").item() == pytest.approx(0.0, abs=1e-6)
    assert feature_loss(a, -a, kind="cosine").item() == pytest.approx(2.0, abs=1e-6)
    assert feature_loss(a, a + 1).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="HintProjection"):
        feature_loss(a, a[:, :2])
    with pytest.raises(ValueError, match="`kind`"):
        feature_loss(a, a, kind="l1")  # type: ignore[arg-type]


def test_attention_loss_kl_and_head_averaging() -> None:
    g = torch.Generator().manual_seed(4)
    t = torch.randn(2, 4, 5, 5, generator=g).softmax(-1)
    s = torch.randn(2, 4, 5, 5, generator=g).softmax(-1)
    assert attention_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    kl = (t * (t.log() - s.log())).sum(-1).mean()
    assert attention_loss(s, t).item() == pytest.approx(kl.item(), rel=1e-5)
    # two student heads against four teacher heads compare head means
    s2 = s[:, :2]
    mean_kl = attention_loss(s2.mean(1, keepdim=True), t.mean(1, keepdim=True))
    assert attention_loss(s2, t).item() == pytest.approx(mean_kl.item())
    with pytest.raises(ValueError, match="sequence length"):
        attention_loss(s[..., :3, :3], t)
