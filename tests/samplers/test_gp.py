"""GPSampler: kernel, log EI, GP posterior, slice sampler and sampler behaviour."""

from __future__ import annotations

import math
import pickle
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime
from scipy.stats import norm

import slimtune
from slimtune import Categorical, Float, FrozenTrial, Int, TrialState
from slimtune.samplers import GPSampler, RandomSampler
from slimtune.samplers._gp._acquisition import Acquisition, log_ei, log_h, parego
from slimtune.samplers._gp._kernel import matern52, sq_diffs
from slimtune.samplers._gp._mcmc import slice_sample
from slimtune.samplers._gp._model import GP, Evidence, HyperPrior
from slimtune.space import SearchSpace

BRANIN_MIN = 0.397887


def branin(trial: slimtune.Trial) -> float:
    x1 = trial.suggest_float("x1", -5.0, 10.0)
    x2 = trial.suggest_float("x2", 0.0, 15.0)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


# kernel ------------------------------------------------------------------------------------------
def test_matern52_matches_a_hand_computation():
    X1 = np.array([[0.1, 0.2, 0.25]])
    X2 = np.array([[0.4, 0.6, 0.75]])  # the last coordinate is categorical: Hamming distance 1
    is_cat = np.array([False, False, True])
    lengthscales = np.array([0.5, 2.0, 4.0])
    r2 = sq_diffs(X1, X2, is_cat)[0, 0] @ (1.0 / lengthscales**2)
    r = math.sqrt(0.3**2 / 0.25 + 0.4**2 / 4.0 + 1.0 / 16.0)
    expected = (1 + math.sqrt(5) * r + 5 * r**2 / 3) * math.exp(-math.sqrt(5) * r)
    assert r2 == pytest.approx(r**2)
    assert float(matern52(np.array(r2))) == pytest.approx(expected, rel=1e-12)
    assert float(matern52(np.array(0.0))) == 1.0


def test_matern52_kernel_matrix_is_positive_semidefinite():
    rng = np.random.default_rng(0)
    X = rng.random((60, 4))
    X[:, 3] = (rng.integers(0, 3, 60) + 0.5) / 3
    is_cat = np.array([False, False, False, True])
    K = matern52(sq_diffs(X, X, is_cat) @ (1.0 / np.array([0.3, 1.0, 0.1, 0.5]) ** 2))
    assert np.allclose(K, K.T)
    assert np.linalg.eigvalsh(K).min() > -1e-10


# log EI ------------------------------------------------------------------------------------------
def test_log_h_matches_log_of_ei_where_ei_is_not_tiny():
    z = np.linspace(-8.0, 6.0, 141)
    direct = np.log(norm.pdf(z) + z * norm.cdf(z))
    assert np.allclose(log_h(z), direct, rtol=1e-9, atol=1e-9)


def test_log_ei_matches_closed_form_ei():
    mean, var, best = np.array([0.3, -1.0, 2.0]), np.array([0.5, 0.04, 1.5]), 0.8
    sd = np.sqrt(var)
    z = (mean - best) / sd
    ei = sd * (z * norm.cdf(z) + norm.pdf(z))
    assert np.allclose(log_ei(mean, var, best)[0], np.log(ei), rtol=1e-10)


def test_log_h_stays_finite_and_monotone_far_in_the_tail():
    z = -np.logspace(0.5, 12, 200)[::-1]  # from -1e12 up to about -3
    out = log_h(z)
    assert np.all(np.isfinite(out))
    assert np.all(np.diff(out) > 0)
    # asymptotically log h(z) ~ -z^2/2 - log(2 pi)/2 - 2 log|z|
    assert out[0] == pytest.approx(
        -0.5 * z[0] ** 2 - 0.5 * math.log(2 * math.pi) - 2 * math.log(-z[0])
    )


def test_parego_scales_objectives_and_weights_them():
    Y = np.array([[0.0, 10.0], [1.0, 0.0], [0.5, 5.0]])
    s = parego(Y, np.array([0.5, 0.5]), rho=0.0)
    assert np.allclose(s, [0.5, 0.5, 0.25])


# GP model ----------------------------------------------------------------------------------------
def _noiseless_gp(X: np.ndarray, y: np.ndarray) -> GP:
    d = X.shape[1]
    theta = np.r_[np.log(np.full(d, 0.3)), 0.0, math.log(1e-6)]
    return GP(X, y, theta, np.zeros(d, dtype=bool))


def test_gp_posterior_interpolates_noiseless_data():
    rng = np.random.default_rng(1)
    X = rng.random((15, 2))
    y = np.sin(6 * X[:, 0]) + X[:, 1] ** 2
    mean, var = _noiseless_gp(X, y).predict(X)
    assert np.allclose(mean[0], y, atol=1e-3)
    assert np.all(var[0] < 1e-4)
    _, far_var = _noiseless_gp(X, y).predict(np.array([[5.0, 5.0]]))
    assert far_var[0, 0] == pytest.approx(1.0, abs=1e-6)  # back to the prior far away


def test_log_marginal_likelihood_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    X = rng.random((25, 3))
    y = np.cos(4 * X[:, 0]) + rng.normal(size=25) * 0.1
    evidence = Evidence(sq_diffs(X, X, np.zeros(3, dtype=bool)), y, HyperPrior(d=3, d_eff=3))
    theta = np.array([-1.0, 0.5, 0.0, 0.2, -3.0])
    value, grad = evidence.value_and_grad(theta)
    assert value == pytest.approx(evidence(theta))
    numeric = approx_fprime(theta, lambda t: evidence.value_and_grad(t)[0], 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-4)


def test_acquisition_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    X = rng.random((20, 2))
    y = np.sin(5 * X[:, 0]) - X[:, 1]
    thetas = np.array([[-1.0, -0.5, 0.0, -5.0], [-1.5, 0.0, 0.3, -4.0]])
    gp = GP(X, y, thetas, np.zeros(2, dtype=bool))
    acq = Acquisition(gp, float(y.max()), [(GP(X, -y, thetas[:1], np.zeros(2, bool)), 0.1)])
    x = np.array([0.37, 0.61])
    value, grad = acq.value_and_grad(x)
    assert value == pytest.approx(float(acq(x[None, :])[0]))
    numeric = approx_fprime(x, lambda z: acq.value_and_grad(z)[0], 1e-7)
    assert np.allclose(grad, numeric, rtol=1e-3, atol=1e-4)


# slice sampler -----------------------------------------------------------------------------------
def test_slice_sampler_recovers_a_gaussian():
    def logp(x: np.ndarray) -> float:
        return float(-0.5 * ((x[0] - 1.5) / 0.7) ** 2)

    samples, _ = slice_sample(
        logp,
        np.array([-3.0]),
        np.random.default_rng(0),
        n_samples=3000,
        n_burn=20,
        thin=1,
        widths=np.array([1.0]),
        lower=np.array([-20.0]),
        upper=np.array([20.0]),
    )
    assert samples.mean() == pytest.approx(1.5, abs=0.08)
    assert samples.std() == pytest.approx(0.7, abs=0.05)


def test_slice_sampler_respects_bounds():
    samples, _ = slice_sample(
        lambda x: 0.0,
        np.array([0.5, 0.5]),
        np.random.default_rng(1),
        n_samples=500,
        n_burn=0,
        thin=1,
        widths=np.array([3.0, 3.0]),
        lower=np.array([0.0, -1.0]),
        upper=np.array([1.0, 2.0]),
    )
    assert samples[:, 0].min() >= 0.0 and samples[:, 0].max() <= 1.0
    assert samples[:, 1].mean() == pytest.approx(0.5, abs=0.25)  # uniform on [-1, 2]


# the sampler -------------------------------------------------------------------------------------
def _best_regret(sampler: object, seed: int, n_trials: int) -> float:
    study = slimtune.create_study(storage="memory", seed=seed, sampler=sampler)  # type: ignore[arg-type]
    study.optimize(branin, n_trials=n_trials)
    return float(study.best_value) - BRANIN_MIN


@pytest.mark.parametrize("hyperparameters", ["map", "mcmc"])
def test_gp_beats_random_search_on_branin(hyperparameters):
    seeds = range(3)
    gp = [_best_regret(GPSampler(hyperparameters=hyperparameters, seed=s), s, 30) for s in seeds]
    rnd = [_best_regret(RandomSampler(), s, 30) for s in seeds]
    assert np.mean(np.log10(gp)) < np.mean(np.log10(rnd)) - 1.0
    assert max(gp) < 0.1


def test_never_proposes_a_configuration_twice_until_the_space_is_exhausted():
    space = {"n": Int(1, 4), "c": Categorical(["a", "b", "c"])}  # 12 configurations
    study = slimtune.create_study(
        storage="memory", seed=0, sampler=GPSampler(n_startup_trials=3, seed=0), space=space
    )
    study.optimize(lambda t: t.params["n"] + (t.params["c"] == "b"), n_trials=12)
    configs = {(t.params["n"], t.params["c"]) for t in study.trials}
    assert len(configs) == 12
    study.optimize(lambda t: 0.0, n_trials=2)  # exhausted: still valid configurations
    assert all(SearchSpace(space).contains(t.params) for t in study.trials)


def test_no_duplicates_on_a_lattice_with_a_continuous_optimum_at_the_bound():
    space = {"x": Float(0.0, 1.0, step=0.25), "k": Int(0, 2)}  # 15 configurations
    study = slimtune.create_study(storage="memory", seed=1, sampler=GPSampler(seed=1), space=space)
    study.optimize(lambda t: -t.params["x"] - t.params["k"], n_trials=15)
    assert len({(t.params["x"], t.params["k"]) for t in study.trials}) == 15


def _trial(number: int, params: dict, space: SearchSpace, state: TrialState, value=None):
    return FrozenTrial(
        number=number,
        trial_id=f"t{number}",
        state=state,
        params=dict(params),
        distributions={k: space[k] for k in params},
        seed=number,
        datetime_start=datetime(2024, 1, 1),
        values=None if value is None else [value],
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_running_trials_push_suggestions_away(seed):
    space = SearchSpace({"x": Float(-2.0, 2.0), "y": Float(-2.0, 2.0)})
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(10):
        p = space.sample(rng)
        value = math.sin(3 * p["x"]) + math.cos(2 * p["y"]) + 0.1 * p["x"] ** 2
        trials.append(_trial(i, p, space, TrialState.COMPLETE, value))
    sampler = GPSampler(seed=0)
    a = sampler.sample(space, trials, np.random.default_rng(5), directions=["minimize"])
    running = _trial(10, a, space, TrialState.RUNNING)
    b = sampler.sample(space, [*trials, running], np.random.default_rng(5), directions=["minimize"])
    assert np.abs(space.encode(a) - space.encode(b)).max() > 0.05


def test_constraints_lead_to_the_feasible_optimum():
    def objective(trial: slimtune.Trial) -> float:
        x = trial.suggest_float("x", -2.0, 2.0)
        y = trial.suggest_float("y", -2.0, 2.0)
        trial.set_constraints([x + y - 1.0])  # feasible when x + y <= 1
        return (x - 1.0) ** 2 + (y - 1.0) ** 2  # constrained optimum 0.5 at (0.5, 0.5)

    study = slimtune.create_study(
        storage="memory", seed=0, sampler=GPSampler(hyperparameters="map", seed=0)
    )
    study.optimize(objective, n_trials=30)
    best = study.best_trial
    assert best.feasible
    assert best.value == pytest.approx(0.5, abs=0.05)


def test_infeasible_start_moves_to_the_feasible_region():
    def objective(trial: slimtune.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 10.0)
        trial.set_constraints([abs(x - 8.5) - 0.3])  # feasible only for x in [8.2, 8.8]
        return x

    study = slimtune.create_study(
        storage="memory",
        seed=0,
        sampler=GPSampler(hyperparameters="map", n_startup_trials=4, seed=0),
    )
    study.optimize(objective, n_trials=12)
    assert any(t.feasible for t in study.trials)


def test_maximize_direction_is_respected():
    study = slimtune.create_study(
        storage="memory", seed=0, direction="maximize", sampler=GPSampler(hyperparameters="map")
    )
    study.optimize(lambda t: -((t.suggest_float("x", 0.0, 10.0) - 7.0) ** 2), n_trials=20)
    assert study.best_trial.params["x"] == pytest.approx(7.0, abs=0.1)


def test_integers_are_searched_on_their_lattice():
    def objective(trial: slimtune.Trial) -> float:
        n = trial.suggest_int("n", 1, 1000, log=True)
        x = trial.suggest_float("x", 0.0, 1.0)
        return (math.log(n) - math.log(37)) ** 2 + (x - 0.3) ** 2

    study = slimtune.create_study(storage="memory", seed=0, sampler=GPSampler(seed=0))
    study.optimize(objective, n_trials=30)
    assert abs(study.best_trial.params["n"] - 37) <= 3


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"hyperparameters": "nuts"}, ValueError, ["`hyperparameters`", "'nuts'", "'mcmc'"]),
        ({"n_startup_trials": -1}, ValueError, ["`n_startup_trials`", "-1", "n_startup_trials=10"]),
        ({"n_startup_trials": 2.5}, TypeError, ["`n_startup_trials`", "2.5", "int"]),
        ({"n_samples": 0}, ValueError, ["`n_samples`", "0", "n_samples="]),
        ({"seed": "zero"}, TypeError, ["`seed`", "'zero'", "seed=0"]),
    ],
)
def test_argument_validation_names_parameter_value_and_fix(kwargs, error, words):
    with pytest.raises(error) as info:
        GPSampler(**kwargs)
    for w in words:
        assert w in str(info.value)


def test_pickles_for_worker_processes():
    space = SearchSpace({"x": Float(0.0, 1.0)})
    sampler = GPSampler(n_startup_trials=2, seed=4)
    trials = [_trial(i, {"x": x}, space, TrialState.COMPLETE, x) for i, x in enumerate([0.2, 0.9])]
    sampler.sample(space, trials, np.random.default_rng(0), directions=["minimize"])
    copy = pickle.loads(pickle.dumps(sampler))
    assert repr(copy) == repr(sampler)
    assert space.contains(
        copy.sample(space, trials, np.random.default_rng(0), directions=["minimize"])
    )


def test_define_by_run_parameters_outside_the_space_are_drawn_from_rng():
    dist = Float(0.0, 1.0)

    def first_z(seed):
        study = slimtune.create_study(storage="memory", seed=seed, sampler=GPSampler())
        return study.ask().suggest("z", dist)  # no history yet: outside the modelled space

    a, b = first_z(3), first_z(3)
    assert a == b and dist.contains(a)


_DISTRIBUTIONS = st.sampled_from(
    [
        Float(-1.0, 3.0),
        Float(1e-4, 1.0, log=True),
        Float(0.0, 1.0, step=0.25),
        Float(2.0, 2.0),
        Int(0, 5),
        Int(1, 1000, log=True),
        Int(0, 100, step=5),
        Categorical(["a", "b", "c"]),
        Categorical([True]),
    ]
)


@settings(max_examples=25, deadline=None)
@given(
    dists=st.lists(_DISTRIBUTIONS, min_size=1, max_size=4),
    states=st.lists(st.sampled_from(list(TrialState)), min_size=0, max_size=12),
    n_objectives=st.integers(1, 2),
    constrained=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_proposals_are_members_of_the_space_whatever_the_history(
    dists, states, n_objectives, constrained, seed
):
    space = SearchSpace({f"p{i}": d for i, d in enumerate(dists)})
    rng = np.random.default_rng(seed)
    trials = []
    for i, state in enumerate(states):
        t = _trial(i, space.sample(rng), space, state)
        if state in (TrialState.COMPLETE, TrialState.STOPPED):
            t.values = [float(v) for v in rng.normal(size=n_objectives)]
            t.constraints = [float(rng.normal())] if constrained else None
        trials.append(t)
    sampler = GPSampler(hyperparameters="map" if seed % 2 else "mcmc", n_startup_trials=2)
    directions = ["minimize", "maximize"][:n_objectives]
    params = sampler.sample(space, trials, rng, directions=directions)
    assert space.contains(params)
