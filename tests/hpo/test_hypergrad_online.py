from __future__ import annotations

import pytest
import torch

import slimtune
from slimtune.hpo.hypergrad import HDConfig, HypergradientOptimizer

torch.set_num_threads(1)
NOISE = 0.05

GRID = [1e-3, 10**-2.5, 1e-2, 10**-1.5, 1e-1, 10**-0.5, 1.0]


def noisy_quadratic(lr, *, hd=None, opt="sgd", steps=300, seed=0, momentum=0.0):
    """Mean true loss 0.5 x'Hx over the last 50 steps of optimising with noisy gradients."""
    gen = torch.Generator().manual_seed(seed)
    d = 20
    h = torch.logspace(-1, 0, d, dtype=torch.float64)
    x = torch.nn.Parameter(torch.full((d,), 3.0, dtype=torch.float64))
    if opt == "sgd":
        inner = torch.optim.SGD([x], lr=lr, momentum=momentum)
    else:
        inner = torch.optim.Adam([x], lr=lr)
    o = inner if hd is None else HypergradientOptimizer(inner, hd)
    losses = []
    for _ in range(steps):
        o.zero_grad()
        noise = torch.randn(d, generator=gen, dtype=torch.float64) * NOISE
        loss = 0.5 * (h * x * x).sum() + (noise * x).sum()
        loss.backward()
        o.step()
        with torch.no_grad():
            losses.append(float(0.5 * (h * x * x).sum()))
    return sum(losses[-50:]) / 50, o


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sgd_hd_reaches_the_best_fixed_learning_rate_of_a_grid(seed):
    best_fixed = min(noisy_quadratic(lr, seed=seed)[0] for lr in GRID)
    # starting from the worst learning rate of the grid
    hd = HDConfig(hyper_lr=0.1, mode="multiplicative")
    loss, opt = noisy_quadratic(1e-3, hd=hd, seed=seed)
    assert loss <= best_fixed
    assert opt.lrs[0] > 1e-2  # it moved far from the bad start
    assert len(opt.history) == 300
    assert opt.history[0]["lr"] == [1e-3]


def test_additive_hd_climbs_from_a_bad_learning_rate():
    fixed, _ = noisy_quadratic(1e-3)
    loss, opt = noisy_quadratic(1e-3, hd=HDConfig(hyper_lr=1e-2))
    assert opt.lrs[0] > 1e-2
    assert loss < fixed / 10


def test_adam_hd_raises_a_too_small_learning_rate():
    fixed, _ = noisy_quadratic(1e-3, opt="adam")
    loss, opt = noisy_quadratic(1e-3, opt="adam", hd=HDConfig(hyper_lr=0.02, mode="multiplicative"))
    assert opt.lrs[0] > 1e-2
    assert loss < fixed / 10


def test_momentum_is_tuned_and_clamped():
    _, opt = noisy_quadratic(
        0.01,
        momentum=0.5,
        hd=HDConfig(hyper_lr=1e-3, tune_momentum=True, momentum_hyper_lr=1e-3),
    )
    momenta = [e["momentum"][0] for e in opt.history]
    assert len(set(momenta)) > 10
    assert all(0.0 <= m <= 0.999 for m in momenta)


def test_history_is_recorded_in_a_trial():
    study = slimtune.create_study(storage="memory")
    trial = study.ask()
    _, opt = noisy_quadratic(0.01, hd=HDConfig(hyper_lr=1e-3, record_every=100))
    opt.record(trial)
    traj = study.trials[0].user_attrs["lr_trajectory"]
    assert [e["step"] for e in traj] == [0, 100, 200]


def test_per_group_learning_rates_adapt_separately():
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(3))
    opt = HypergradientOptimizer(
        torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.001}], lr=0.01),
        HDConfig(hyper_lr=0.01),
    )
    for _ in range(20):
        opt.zero_grad()
        ((a * a).sum() + 0.1 * (b * b).sum()).backward()
        opt.step()
    assert opt.lrs[0] != opt.lrs[1]
    assert all(lr > start for lr, start in zip(opt.lrs, [0.01, 0.001], strict=True))


def test_bad_input_is_rejected_before_anything_changes():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="hyper_lr"):
        HDConfig(hyper_lr=-1.0)
    with pytest.raises(ValueError, match="mode"):
        HDConfig(mode="exp")
    with pytest.raises(TypeError, match="optimizer"):
        HypergradientOptimizer("sgd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tune_momentum"):
        HypergradientOptimizer(torch.optim.SGD([p], lr=0.1), HDConfig(tune_momentum=True))
    with pytest.raises(ValueError, match="tune_momentum"):
        HypergradientOptimizer(torch.optim.RMSprop([p], lr=0.1), HDConfig(tune_momentum=True))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, weight_decay=0.01),
        lambda ps, lr: torch.optim.Adam(ps, lr=lr),
        lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.1),
        lambda ps, lr: torch.optim.RMSprop(ps, lr=lr, momentum=0.5),
    ],
    ids=["sgd-momentum-wd", "adam", "adamw", "rmsprop"],
)
def test_update_direction_is_the_derivative_of_the_step_in_lr(make):
    """The wrapper's d theta / d lr equals a finite difference of the last step in its lr."""
    lr, eps = 0.01, 1e-6

    def three_steps(last_lr, *, wrap):
        gen = torch.Generator().manual_seed(0)
        p = torch.nn.Parameter(torch.randn(5, generator=gen, dtype=torch.float64))
        opt = make([p], lr)
        if wrap:
            opt = HypergradientOptimizer(opt, HDConfig(hyper_lr=1e-12))
        for i in range(3):  # optimizer state built with lr, the last step taken with last_lr
            if i == 2 and not wrap:
                for g in opt.param_groups:
                    g["lr"] = last_lr
            opt.zero_grad()
            ((p - 1.0) ** 4).sum().backward()
            opt.step()
        return p.detach(), opt

    _, opt = three_steps(lr, wrap=True)
    direction = opt._dir_lr[0][0]
    fd = (three_steps(lr + eps, wrap=False)[0] - three_steps(lr - eps, wrap=False)[0]) / (2 * eps)
    assert torch.allclose(direction, fd, rtol=1e-5, atol=1e-9)
