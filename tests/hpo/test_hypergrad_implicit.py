from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar

import slimtune
from slimtune.hpo.hypergrad import (
    HypergradTuner,
    ImplicitConfig,
    UnrolledConfig,
    fit_with_hypergradients,
    implicit_hypergradient,
    l2_penalty,
    smoothed_cross_entropy,
    unrolled_hypergradient,
)

torch.set_num_threads(1)
F64 = torch.float64


class Ridge:
    """Ridge regression in float64: closed-form weights and validation loss for any lambda."""

    def __init__(self, seed=0, n=20, nv=60, d=15):
        g = torch.Generator().manual_seed(seed)
        w_true = torch.randn(d, generator=g, dtype=F64)
        self.d, self.n, self.nv = d, n, nv
        self.xt = torch.randn(n, d, generator=g, dtype=F64)
        self.yt = self.xt @ w_true + 3.5 * torch.randn(n, generator=g, dtype=F64)
        self.xv = torch.randn(nv, d, generator=g, dtype=F64)
        self.yv = self.xv @ w_true + 1.5 * torch.randn(nv, generator=g, dtype=F64)

    def train_loss(self, p, h):
        r = self.xt @ p["w"] - self.yt
        return (r @ r) / self.n + torch.exp(h["log_lam"]) * (p["w"] @ p["w"])

    def val_loss(self, p, h):
        r = self.xv @ p["w"] - self.yv
        return (r @ r) / self.nv

    def w_star(self, lam):
        a = self.xt.T @ self.xt / self.n + lam * torch.eye(self.d, dtype=F64)
        return torch.linalg.solve(a, self.xt.T @ self.yt / self.n)

    def val_at(self, log_lam):
        return float(self.val_loss({"w": self.w_star(math.exp(log_lam))}, None))

    def optimal_log_lambda(self):
        res = minimize_scalar(
            self.val_at, bounds=(-8, 4), method="bounded", options={"xatol": 1e-10}
        )
        return float(res.x)


@pytest.mark.parametrize(
    "config",
    [
        ImplicitConfig(method="cg", iterations=50),
        ImplicitConfig(method="neumann", iterations=3000, alpha=0.1),
    ],
    ids=["cg", "neumann"],
)
@pytest.mark.parametrize("log_lam", [-3.0, -1.0, 0.5])
def test_ridge_implicit_hypergradient_matches_finite_differences(config, log_lam):
    r = Ridge()
    w = r.w_star(math.exp(log_lam)).requires_grad_(True)
    h = {"log_lam": torch.tensor(log_lam, dtype=F64, requires_grad=True)}
    hg = implicit_hypergradient(r.train_loss, r.val_loss, {"w": w}, h, config)["log_lam"]
    eps = 1e-5
    fd = (r.val_at(log_lam + eps) - r.val_at(log_lam - eps)) / (2 * eps)
    assert abs(float(hg) - fd) / abs(fd) < 1e-3
    assert w.grad is None and h["log_lam"].grad is None  # nothing modified


@pytest.mark.parametrize("start", [-5.0, 1.0])
def test_ridge_gradient_hpo_converges_to_the_optimal_lambda(start):
    r = Ridge()
    best = r.optimal_log_lambda()
    study = slimtune.create_study(storage="memory")
    w = torch.zeros(r.d, dtype=F64, requires_grad=True)
    h = {"log_lam": torch.tensor(start, dtype=F64, requires_grad=True)}
    tuner = HypergradTuner(h, method=ImplicitConfig(iterations=50), hyper_lr=0.1, study=study)
    fit_with_hypergradients(
        r.train_loss,
        r.val_loss,
        {"w": w},
        tuner,
        optimizer=torch.optim.SGD([w], lr=0.1),
        steps=4000,
        hyper_interval=20,
    )
    lam = math.exp(float(h["log_lam"].detach()))
    assert abs(lam / math.exp(best) - 1) < 0.02
    # recorded in the study: one COMPLETE trial, a report per hyperstep, the trajectory
    (trial,) = study.trials
    assert trial.state is slimtune.TrialState.COMPLETE
    assert len(trial.intermediate_values) == 200
    traj = trial.user_attrs["hparam_trajectory"]
    assert [e["step"] for e in traj[:2]] == [20, 40]
    assert traj[0]["hparams"]["log_lam"] != start
    assert trial.value == pytest.approx(r.val_at(float(h["log_lam"].detach())), rel=1e-4)


def test_unrolled_hypergradient_matches_finite_differences_of_the_unroll():
    r = Ridge(seed=1)
    w0 = torch.zeros(r.d, dtype=F64, requires_grad=True)
    cfg = UnrolledConfig(steps=15, lr=0.1)

    def unrolled_val(log_lam):
        h = {"log_lam": torch.tensor(log_lam, dtype=F64, requires_grad=True)}
        return unrolled_hypergradient(r.train_loss, r.val_loss, {"w": w0}, h, cfg)

    res = unrolled_val(-1.0)
    eps = 1e-6
    fd = (unrolled_val(-1.0 + eps).val_loss - unrolled_val(-1.0 - eps).val_loss) / (2 * eps)
    assert abs(float(res.hypergradients["log_lam"]) - fd) / abs(fd) < 1e-4
    assert torch.equal(w0, torch.zeros(r.d, dtype=F64))
    assert not torch.equal(res.params["w"], w0)


def test_unrolled_tuner_lowers_validation_loss_of_a_small_network():
    """Per-group weight decay and label smoothing of a tiny MLP, tuned by unrolled steps."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    y = (x[:, 0] + 0.5 * torch.randn(64, generator=g) > 0).long()
    xv = torch.randn(64, 5, generator=g)
    yv = (xv[:, 0] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    torch.manual_seed(0)
    params = dict(model.named_parameters())
    hp = {
        "log_wd_0": torch.tensor(-2.0, requires_grad=True),
        "log_wd_1": torch.tensor(-2.0, requires_grad=True),
        "logit_smoothing": torch.tensor(-1.0, requires_grad=True),
    }

    def train_loss(p, h):
        logits = torch.func.functional_call(model, p, (x,))
        loss = smoothed_cross_entropy(logits, y, torch.sigmoid(h["logit_smoothing"]))
        loss = loss + l2_penalty([p["0.weight"]], h["log_wd_0"].exp())
        return loss + l2_penalty([p["2.weight"]], h["log_wd_1"].exp())

    def val_loss(p, h):
        return F.cross_entropy(torch.func.functional_call(model, p, (xv,)), yv)

    tuner = HypergradTuner(
        hp, method=UnrolledConfig(steps=5, lr=0.5), hyper_lr=0.1, bounds={"log_wd_0": (-8, 2)}
    )
    traj = fit_with_hypergradients(
        train_loss,
        val_loss,
        params,
        tuner,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        steps=60,
        hyper_interval=5,
    )
    assert len(traj) == 12
    assert traj[-1]["val_loss"] < traj[0]["val_loss"]
    assert traj[-1]["hparams"]["logit_smoothing"] != -1.0
    assert all(-8 <= e["hparams"]["log_wd_0"] <= 2 for e in traj)


def test_smoothed_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 4, generator=g)
    target = torch.randint(0, 4, (8,), generator=g)
    for s in (0.0, 0.1, 0.7):
        ours = smoothed_cross_entropy(logits, target, s)
        assert torch.allclose(ours, F.cross_entropy(logits, target, label_smoothing=s))


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="method"):
        ImplicitConfig(method="lu")
    with pytest.raises(ValueError, match="iterations"):
        ImplicitConfig(iterations=0)
    with pytest.raises(ValueError, match="steps"):
        UnrolledConfig(steps=0)
    with pytest.raises(ValueError, match="hparams"):
        HypergradTuner({"a": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="direction"):
        HypergradTuner(
            {"a": torch.tensor(1.0, requires_grad=True)},
            study=slimtune.create_study(storage="memory", direction="maximize"),
        )
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="does not require grad"):
        implicit_hypergradient(
            lambda p, h: p["w"].sum(), lambda p, h: p["w"].sum(), {"w": w}, {"a": torch.ones(())}
        )


def test_online_lr_and_implicit_weight_decay_compose():
    """HypergradientOptimizer as the training optimizer of a HypergradTuner run."""
    from slimtune.hpo.hypergrad import HDConfig, HypergradientOptimizer

    r = Ridge()
    w = torch.zeros(r.d, dtype=F64, requires_grad=True)
    h = {"log_lam": torch.tensor(1.0, dtype=F64, requires_grad=True)}
    tuner = HypergradTuner(h, method=ImplicitConfig(iterations=50), hyper_lr=0.1)
    opt = HypergradientOptimizer(
        torch.optim.SGD([w], lr=0.01), HDConfig(hyper_lr=0.05, mode="multiplicative")
    )
    fit_with_hypergradients(
        r.train_loss, r.val_loss, {"w": w}, tuner, optimizer=opt, steps=4000, hyper_interval=20
    )
    assert opt.lrs[0] > 0.05  # the too-small learning rate was raised
    lam = math.exp(float(h["log_lam"].detach()))
    assert abs(lam / math.exp(r.optimal_log_lambda()) - 1) < 0.02
