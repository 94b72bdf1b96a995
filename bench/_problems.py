"""Benchmark problems for ``bench/hpo.py``: analytic functions and bayesmark-style ML tuning.

Every :class:`Problem` exposes a slimtune space (a dict of ``slimtune.Float`` / ``Int`` /
``Categorical``) and ``evaluate(params) -> float`` (minimise), so slimtune, Optuna and HEBO all
evaluate exactly the same function. Problems are built by name (:func:`get_problem`) so a worker
process can rebuild one from a string.

Analytic functions (see /work/shared/BENCHMARKS.md) sit on shifted or asymmetric domains, with
the optimum away from the centre of the box; ``optimum`` is the known minimum f*.

ML problems follow uber/bayesmark's ``SklearnModel``: the loss is the mean 5-fold
cross-validated loss (``cross_val_score(cv=5)``) on the 80% training part of
``train_test_split(test_size=0.2, random_state=0)``, with bayesmark's search spaces (its
"logit" parameters are plain floats here: slimtune has no logit warping). Two deliberate
differences from bayesmark: every model with a ``random_state`` gets ``random_state=0`` so the
objective is deterministic (both libraries see the same function, not two noisy draws), and
classification "lasso" / "linear" use ``OneVsRestClassifier(LogisticRegression(solver=
"liblinear"))`` because recent scikit-learn dropped ``multi_class="ovr"``. Regression "lasso" /
"linear" are ``Lasso`` / ``Ridge`` with bayesmark's regression spaces, less the ``normalize``
flag that scikit-learn removed. scikit-learn runs with ``n_jobs=1``. A configuration whose
fit raises or whose loss is not finite returns NaN, which both libraries record as a failed
trial.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from slimtune import Categorical, Float, Int
from slimtune.space import Distribution

__all__ = [
    "ANALYTIC",
    "DATASETS",
    "DEFAULT_ML",
    "ML_MODELS",
    "Problem",
    "all_ml_problems",
    "get_problem",
]


@dataclass(frozen=True)
class Problem:
    """A minimisation problem: ``evaluate(params)`` over ``space``; ``optimum`` is f* if known."""

    name: str
    kind: str  # "analytic" | "ml"
    space: dict[str, Distribution]
    evaluate: Callable[[Mapping[str, Any]], float] = field(repr=False)
    optimum: float | None = None


# --------------------------------------------------------------------------------------------
# analytic functions
# --------------------------------------------------------------------------------------------


def _branin(x: np.ndarray) -> float:
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def _hartmann6(x: np.ndarray) -> float:
    return float(-(_H6_ALPHA @ np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(axis=1))))


def _levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    head = math.sin(math.pi * w[0]) ** 2
    mid = ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2)).sum()
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + mid + tail)


def _rosenbrock(x: np.ndarray) -> float:
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


def _styblinski_tang(x: np.ndarray) -> float:
    return float(0.5 * (x**4 - 16 * x**2 + 5 * x).sum())


def _ackley(x: np.ndarray) -> float:
    d = len(x)
    a = -20 * math.exp(-0.2 * math.sqrt(float((x**2).sum()) / d))
    b = -math.exp(float(np.cos(2 * math.pi * x).sum()) / d)
    return float(a + b + 20 + math.e)


# name: (function, dimension, per-dimension bounds, f*)
_ANALYTIC: dict[
    str, tuple[Callable[[np.ndarray], float], int, list[tuple[float, float]], float]
] = {
    "branin": (_branin, 2, [(-5.0, 10.0), (0.0, 15.0)], 0.397887357729739),
    "hartmann6": (_hartmann6, 6, [(0.0, 1.0)] * 6, -3.322368011415515),
    "levy5": (_levy, 5, [(-10.0, 10.0)] * 5, 0.0),
    "rosenbrock4": (_rosenbrock, 4, [(-5.0, 10.0)] * 4, 0.0),
    "styblinski_tang8": (_styblinski_tang, 8, [(-5.0, 5.0)] * 8, -39.16616570377142 * 8),
    "ackley5": (_ackley, 5, [(-20.0, 32.768)] * 5, 0.0),
}
ANALYTIC = tuple(_ANALYTIC)


def _analytic(name: str) -> Problem:
    fn, dim, bounds, fstar = _ANALYTIC[name]
    names = [f"x{i}" for i in range(dim)]
    space: dict[str, Distribution] = {
        n: Float(lo, hi) for n, (lo, hi) in zip(names, bounds, strict=True)
    }

    def evaluate(params: Mapping[str, Any]) -> float:
        return fn(np.array([float(params[n]) for n in names]))

    return Problem(name=name, kind="analytic", space=space, evaluate=evaluate, optimum=fstar)


# --------------------------------------------------------------------------------------------
# bayesmark-style ML problems
# --------------------------------------------------------------------------------------------

DATASETS = {
    "digits": "classification",
    "breast": "classification",
    "wine": "classification",
    "iris": "classification",
    "diabetes": "regression",
}
METRICS = {"classification": ("nll", "error"), "regression": ("mse", "mae")}
ML_MODELS = ("kNN", "SVM", "DT", "RF", "MLP-adam", "ada", "lasso", "linear")

# The default subset of bench/hpo.py: 5 models x 2 data sets, one metric each (10 problems:
# a classification nll and a regression mse, 0.01-0.09 CPU s per evaluation), so that 100
# trials x 10 seeds x every sampler fit in about an hour on 2 cores (the GP samplers cost more
# CPU than the objectives). ``--full`` runs every model x data set x metric (80 problems):
# MLP-adam, AdaBoost and anything on digits or breast cancer cost 0.1-1.8 s per evaluation.
DEFAULT_ML = tuple(
    f"{model}-{data}-{metric}"
    for model in ("kNN", "SVM", "DT", "RF", "lasso")
    for data, metric in (("iris", "nll"), ("diabetes", "mse"))
)

_TREE = {
    "max_depth": Int(1, 15),
    "min_samples_split": Float(0.01, 0.99),
    "min_samples_leaf": Float(0.01, 0.49),
    "min_weight_fraction_leaf": Float(0.01, 0.49),
    "max_features": Float(0.01, 0.99),
    "min_impurity_decrease": Float(0.0, 0.5),
}
_SPACES: dict[str, dict[str, Distribution]] = {
    "kNN": {"n_neighbors": Int(1, 25), "p": Int(1, 4)},
    "SVM": {
        "C": Float(1.0, 1e3, log=True),
        "gamma": Float(1e-4, 1e-3, log=True),
        "tol": Float(1e-5, 1e-1, log=True),
    },
    "DT": dict(_TREE),
    "RF": dict(_TREE),
    "MLP-adam": {
        "hidden_layer_sizes": Int(50, 200),
        "alpha": Float(1e-5, 1e1, log=True),
        "batch_size": Int(10, 250),
        "learning_rate_init": Float(1e-5, 1e-1, log=True),
        "tol": Float(1e-5, 1e-1, log=True),
        "validation_fraction": Float(0.1, 0.9),
        "beta_1": Float(0.5, 0.99),
        "beta_2": Float(0.9, 1.0 - 1e-6),
        "epsilon": Float(1e-9, 1e-6, log=True),
    },
    "ada": {"n_estimators": Int(10, 100), "learning_rate": Float(1e-4, 1e1, log=True)},
    "lasso": {
        "C": Float(1e-2, 1e2, log=True),
        "intercept_scaling": Float(1e-2, 1e2, log=True),
    },
    "linear": {
        "C": Float(1e-2, 1e2, log=True),
        "intercept_scaling": Float(1e-2, 1e2, log=True),
    },
}
_REGRESSION_SPACES: dict[str, dict[str, Distribution]] = {
    "lasso": {
        "alpha": Float(1e-2, 1e2, log=True),
        "fit_intercept": Categorical([True, False]),
        "max_iter": Int(10, 5000, log=True),
        "tol": Float(1e-5, 1e-1, log=True),
        "positive": Categorical([True, False]),
    },
    "linear": {
        "alpha": Float(1e-2, 1e2, log=True),
        "fit_intercept": Categorical([True, False]),
        "max_iter": Int(10, 5000, log=True),
        "tol": Float(1e-4, 1e-1, log=True),
    },
}
_SCORING = {"nll": "neg_log_loss", "error": "accuracy", "mse": "neg_mean_squared_error"}
_SCORING["mae"] = "neg_mean_absolute_error"


def _build_model(model: str, task: str, params: Mapping[str, Any]) -> Any:
    from sklearn import ensemble, linear_model, multiclass, neighbors, neural_network, svm, tree

    p = dict(params)
    clf = task == "classification"
    if model == "kNN":
        cls = neighbors.KNeighborsClassifier if clf else neighbors.KNeighborsRegressor
        return cls(n_jobs=1, **p)
    if model == "SVM":
        return svm.SVC(kernel="rbf", probability=True, random_state=0, **p) if clf else svm.SVR(**p)
    if model == "DT":
        cls = tree.DecisionTreeClassifier if clf else tree.DecisionTreeRegressor
        return cls(random_state=0, **p)
    if model == "RF":
        cls = ensemble.RandomForestClassifier if clf else ensemble.RandomForestRegressor
        return cls(n_estimators=10, random_state=0, n_jobs=1, **p)
    if model == "MLP-adam":
        cls = neural_network.MLPClassifier if clf else neural_network.MLPRegressor
        p["hidden_layer_sizes"] = (int(p["hidden_layer_sizes"]),)
        return cls(solver="adam", early_stopping=True, random_state=0, **p)
    if model == "ada":
        cls = ensemble.AdaBoostClassifier if clf else ensemble.AdaBoostRegressor
        return cls(random_state=0, **p)
    if model in ("lasso", "linear"):
        if clf:
            penalty = "l1" if model == "lasso" else "l2"
            base = linear_model.LogisticRegression(
                penalty=penalty, solver="liblinear", fit_intercept=True, random_state=0, **p
            )
            return multiclass.OneVsRestClassifier(base, n_jobs=1)
        if model == "lasso":
            return linear_model.Lasso(random_state=0, **p)
        return linear_model.Ridge(solver="auto", random_state=0, **p)
    raise ValueError(f"unknown model {model!r}; expected one of {ML_MODELS}.")


@cache
def _data(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    loaders = {
        "digits": datasets.load_digits,
        "breast": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
        "diabetes": datasets.load_diabetes,
    }
    x, y = loaders[dataset](return_X_y=True)
    x_train, _x_test, y_train, _y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    return x_train, y_train


def _ml(name: str) -> Problem:
    model, dataset, metric = name.split("-") if name.count("-") == 2 else _split_mlp(name)
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r} in {name!r}; expected one of {DATASETS}.")
    task = DATASETS[dataset]
    if metric not in METRICS[task]:
        raise ValueError(f"metric {metric!r} does not fit {task}; expected {METRICS[task]}.")
    if model not in ML_MODELS:
        raise ValueError(f"unknown model {model!r} in {name!r}; expected one of {ML_MODELS}.")
    regression = task == "regression" and model in _REGRESSION_SPACES
    space = dict(_REGRESSION_SPACES[model] if regression else _SPACES[model])
    scoring = _SCORING[metric]

    def evaluate(params: Mapping[str, Any]) -> float:
        from sklearn.model_selection import cross_val_score

        x, y = _data(dataset)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and numerical warnings on odd configs
            try:
                scores = cross_val_score(
                    _build_model(model, task, params),
                    x,
                    y,
                    scoring=scoring,
                    cv=5,
                    n_jobs=1,
                    error_score="raise",
                )
            except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                return float("nan")
        mean = float(np.mean(scores))
        loss = 1.0 - mean if metric == "error" else -mean
        return loss if math.isfinite(loss) else float("nan")

    return Problem(name=name, kind="ml", space=space, evaluate=evaluate)


def _split_mlp(name: str) -> tuple[str, str, str]:
    # "MLP-adam-digits-nll": the model name itself holds a dash
    if name.startswith("MLP-adam-"):
        dataset, _, metric = name.removeprefix("MLP-adam-").partition("-")
        return "MLP-adam", dataset, metric
    raise ValueError(f"ML problem names are MODEL-DATASET-METRIC, got {name!r}.")


def all_ml_problems() -> tuple[str, ...]:
    """Every model x data set x metric combination (the ``--full`` ML set)."""
    return tuple(
        f"{model}-{data}-{metric}"
        for model in ML_MODELS
        for data, task in DATASETS.items()
        for metric in METRICS[task]
    )


def get_problem(name: str) -> Problem:
    """The problem called ``name``: an analytic function name or ``MODEL-DATASET-METRIC``."""
    if name in _ANALYTIC:
        return _analytic(name)
    return _ml(name)
