"""Observers: each gives a sensible clipping range; MSE and KL clip heavy tails."""

from __future__ import annotations

import pytest
import torch

from slimtune.compress.quantize import QuantSpec, fake_quantize, grouped, make_observer, qparams

OBSERVERS = ["minmax", "moving_average", "percentile", "mse", "histogram"]


def _heavy_tailed(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4096, generator=gen)
    x[:4] = torch.tensor([40.0, -35.0, 30.0, -25.0])  # a few outliers
    return x


@pytest.mark.parametrize("name", OBSERVERS)
def test_range_brackets_the_bulk(name: str) -> None:
    spec = QuantSpec(bits=4, observer=name, percentile=99.9)  # type: ignore[arg-type]
    obs = make_observer(spec)
    x = _heavy_tailed()
    for chunk in x.split(1024):
        obs.update(grouped(chunk, spec))
    lo, hi = obs.range()
    assert lo.shape == hi.shape == (1,)
    assert float(lo) < -1.0 and float(hi) > 1.0
    assert float(lo) >= -35.0 and float(hi) <= 40.0


@pytest.mark.parametrize("name", ["percentile", "mse", "histogram"])
def test_clipping_observers_beat_minmax_on_outliers(name: str) -> None:
    x = _heavy_tailed().reshape(1, -1)
    errors = {}
    for obs_name in ("minmax", name):
        spec = QuantSpec(bits=4, observer=obs_name, percentile=99.9)  # type: ignore[arg-type]
        obs = make_observer(spec)
        obs.update(x)
        scale, zero = qparams(*obs.range(), spec)
        errors[obs_name] = float((fake_quantize(x, scale, zero, spec) - x).pow(2).mean())
    assert errors[name] < errors["minmax"]


def test_mse_observer_per_channel() -> None:
    spec = QuantSpec(bits=3, observer="mse", granularity="channel")
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(8, 64, generator=gen) * torch.arange(1, 9).unsqueeze(1)
    obs = make_observer(spec)
    obs.update(grouped(w, spec))
    lo, hi = obs.range()
    assert lo.shape == (8,)
    assert torch.all(hi <= w.amax(dim=1) + 1e-6) and torch.all(lo >= w.amin(dim=1) - 1e-6)


def test_moving_average_follows_slowly() -> None:
    spec = QuantSpec(observer="moving_average", averaging_constant=0.5)
    obs = make_observer(spec)
    obs.update(torch.tensor([[-1.0, 1.0]]))
    obs.update(torch.tensor([[-3.0, 3.0]]))
    lo, hi = obs.range()
    assert float(hi) == pytest.approx(2.0) and float(lo) == pytest.approx(-2.0)


def test_range_before_data_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="calibration"):
        make_observer(QuantSpec()).range()
