"""Sampler adapters and the one-run loop of ``bench/hpo.py`` (imported by its worker processes).

A sampler is named by a key: ``slimtune.<Name>`` for the samplers found in
``slimtune.samplers`` at run time, ``optuna.<Name>`` for Optuna's (default arguments), and
``hebo`` when HEBO is importable. :func:`run_task` runs one (problem, sampler, seed) with the
ask/tell loop of its library and returns every trial's value (NaN for a failed evaluation),
the process CPU seconds split into sampler and evaluation, wall seconds and memory.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import os
import time
import warnings
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

from bench._common import REPO_ROOT, current_rss_mb, peak_rss_mb, source_digest
from bench._problems import Problem, get_problem

__all__ = [
    "OPTUNA_SAMPLERS",
    "SLIMTUNE_SAMPLERS",
    "discover_samplers",
    "init_worker",
    "make_slimtune_sampler",
    "optuna_distribution",
    "run_task",
]

# key -> (class name in slimtune.samplers, extra keyword arguments)
SLIMTUNE_SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "slimtune.Random": ("RandomSampler", {}),
    "slimtune.QMC": ("QMCSampler", {}),
    "slimtune.TPE": ("TPESampler", {}),
    "slimtune.GP-map": ("GPSampler", {"hyperparameters": "map"}),
    "slimtune.GP-mcmc": ("GPSampler", {"hyperparameters": "mcmc"}),
    "slimtune.Evolution": ("EvolutionSampler", {}),
}
OPTUNA_SAMPLERS = {
    "optuna.Random": "RandomSampler",
    "optuna.TPE": "TPESampler",
    "optuna.GP": "GPSampler",
}


def discover_samplers() -> tuple[list[str], list[str]]:
    """The sampler keys that can run here, and a note for each one that cannot."""
    import slimtune.samplers

    keys: list[str] = []
    notes: list[str] = []
    for key, (cls_name, kwargs) in SLIMTUNE_SAMPLERS.items():
        cls = getattr(slimtune.samplers, cls_name, None)
        if cls is None:
            notes.append(f"{key}: slimtune.samplers has no {cls_name} yet; skipped.")
            continue
        params = inspect.signature(cls).parameters
        if "hyperparameters" in kwargs and "hyperparameters" not in params:
            if key.endswith("-map"):  # run the GP once, under its own defaults
                keys.append("slimtune.GP")
                notes.append(
                    f"slimtune.GP: {cls_name} takes no `hyperparameters`; one GP variant only."
                )
            continue
        keys.append(key)
    if importlib.util.find_spec("optuna") is None:
        notes.append("optuna is not installed: no Optuna samplers (pip install 'slimtune[bench]').")
    else:
        keys.extend(OPTUNA_SAMPLERS)
        if importlib.util.find_spec("greenlet") is None:
            notes.append("optuna.GP: greenlet is missing, so Optuna's GPSampler runs a slow path.")
    if importlib.util.find_spec("hebo") is not None:
        keys.append("hebo")
    else:
        notes.append(
            "hebo: not importable; skipped. BENCHMARKS.md ('The strongest peer') says how to "
            "install HEBO 0.3.6: `pip install --no-deps hebo`, then its dependencies with "
            "pymoo==0.6.0 (0.6.2 wants moocore), which itself wants autograd, cma, "
            "alive-progress, dill, deprecated and matplotlib."
        )
    return keys, notes


_SRC_SHA1: str | None = None  # src/ as this worker imported it (samplers change under us)


def init_worker() -> None:
    """Pool initialiser: one thread, quiet libraries, slimtune's samplers imported once (so a
    worker runs one version of them) and a digest of ``src/`` taken right after."""
    global _SRC_SHA1
    warnings.simplefilter("ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency of slimtune
        pass
    if importlib.util.find_spec("optuna") is not None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
    if importlib.util.find_spec("sklearn") is not None:  # import once, outside any timing
        import sklearn.ensemble
        import sklearn.model_selection
        import sklearn.neural_network
        import sklearn.svm  # noqa: F401
    import slimtune.samplers  # noqa: F401

    _SRC_SHA1 = source_digest(REPO_ROOT / "src")


@cache
def _problem(name: str) -> Problem:
    return get_problem(name)


def make_slimtune_sampler(key: str, seed: int) -> Any:
    import slimtune.samplers

    if key == "slimtune.GP":
        cls_name, kwargs = "GPSampler", {}
    else:
        cls_name, kwargs = SLIMTUNE_SAMPLERS[key]
    cls = getattr(slimtune.samplers, cls_name)
    if "seed" in inspect.signature(cls).parameters:
        kwargs = {**kwargs, "seed": seed}
    return cls(**kwargs)


def _run_slimtune(
    problem: Problem, key: str, seed: int, n_trials: int
) -> tuple[list[float], float]:
    import slimtune

    study = slimtune.create_study(
        storage="memory",
        direction="minimize",
        seed=seed,
        space=problem.space,
        sampler=make_slimtune_sampler(key, seed),
    )
    values: list[float] = []
    eval_cpu = 0.0
    for _ in range(n_trials):
        trial = study.ask()
        params = trial.params
        c0 = time.process_time()
        value = problem.evaluate(params)
        eval_cpu += time.process_time() - c0
        study.tell(trial, value)  # a NaN makes the trial FAILED
        values.append(value)
    return values, eval_cpu


def optuna_distribution(dist: Any) -> Any:
    from optuna import distributions as od

    from slimtune import Categorical, Float, Int

    if isinstance(dist, Float):
        return od.FloatDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, Int):
        return od.IntDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, Categorical):
        return od.CategoricalDistribution(list(dist.choices))
    raise TypeError(f"no Optuna equivalent for {dist!r}")


def _run_optuna(problem: Problem, key: str, seed: int, n_trials: int) -> tuple[list[float], float]:
    import optuna

    sampler = getattr(optuna.samplers, OPTUNA_SAMPLERS[key])(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    dists = {name: optuna_distribution(d) for name, d in problem.space.items()}
    values: list[float] = []
    eval_cpu = 0.0
    for _ in range(n_trials):
        trial = study.ask(dists)
        params = trial.params
        c0 = time.process_time()
        value = problem.evaluate(params)
        eval_cpu += time.process_time() - c0
        if math.isfinite(value):
            study.tell(trial, value)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        values.append(value)
    return values, eval_cpu


def _hebo_space(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    from slimtune import Categorical, Float, Int

    out: list[dict[str, Any]] = []
    for name, d in space.items():
        if isinstance(d, Float):
            kind = "pow" if d.log else "num"
            out.append({"name": name, "type": kind, "lb": d.low, "ub": d.high})
        elif isinstance(d, Int):
            kind = "pow_int" if d.log else "int"
            out.append({"name": name, "type": kind, "lb": d.low, "ub": d.high})
        elif isinstance(d, Categorical):
            labels = [str(i) for i in range(len(d.choices))]
            out.append({"name": name, "type": "cat", "categories": labels})
        else:
            raise TypeError(f"no HEBO equivalent for {d!r}")
    return out


def _run_hebo(problem: Problem, seed: int, n_trials: int) -> tuple[list[float], float]:
    """HEBO 0.3.6 through its suggest/observe API. HEBO draws from the global numpy and torch
    generators, so both are seeded here. A failed evaluation is observed as the worst value
    seen so far (HEBO needs a finite y); the recorded value stays NaN."""
    import torch
    from hebo.design_space.design_space import DesignSpace
    from hebo.optimizers.hebo import HEBO

    from slimtune import Categorical, Float, Int

    np.random.seed(seed)  # HEBO has no generator argument
    torch.manual_seed(seed)
    kwargs = (
        {"scramble_seed": seed} if "scramble_seed" in inspect.signature(HEBO).parameters else {}
    )
    opt = HEBO(DesignSpace().parse(_hebo_space(problem.space)), **kwargs)
    values: list[float] = []
    eval_cpu = 0.0
    for _ in range(n_trials):
        rec = opt.suggest(n_suggestions=1)
        row = rec.iloc[0].to_dict()
        params: dict[str, Any] = {}
        for name, d in problem.space.items():
            if isinstance(d, Categorical):
                params[name] = d.choices[int(row[name])]
            elif isinstance(d, Int):
                params[name] = min(max(round(float(row[name])), d.low), d.high)
            elif isinstance(d, Float):
                params[name] = min(max(float(row[name]), d.low), d.high)
        c0 = time.process_time()
        value = problem.evaluate(params)
        eval_cpu += time.process_time() - c0
        finite = [v for v in values if math.isfinite(v)]
        seen = value if math.isfinite(value) else max(finite, default=1e10)
        opt.observe(rec, np.array([[seen]]))
        values.append(value)
    return values, eval_cpu


def run_task(task: tuple[str, str, int, int]) -> dict[str, Any]:
    """Run ``(problem, sampler key, seed, n_trials)``; never raises (errors are recorded)."""
    problem_name, key, seed, n_trials = task
    problem = _problem(problem_name)
    rss0 = current_rss_mb()
    c0, w0 = time.process_time(), time.perf_counter()
    error = None
    values: list[float] = []
    eval_cpu = float("nan")
    try:
        if key.startswith("slimtune."):
            values, eval_cpu = _run_slimtune(problem, key, seed, n_trials)
        elif key.startswith("optuna."):
            values, eval_cpu = _run_optuna(problem, key, seed, n_trials)
        elif key == "hebo":
            values, eval_cpu = _run_hebo(problem, seed, n_trials)
        else:
            raise ValueError(f"unknown sampler key {key!r}")
    except Exception as err:  # a sampler under development may crash: record, go on
        error = f"{type(err).__name__}: {err}"
    cpu = time.process_time() - c0
    return {
        "problem": problem_name,
        "sampler": key,
        "seed": seed,
        "values": [v if math.isfinite(v) else None for v in values],
        "n_failed": sum(1 for v in values if not math.isfinite(v)),
        "cpu_s": cpu,
        "eval_cpu_s": eval_cpu,
        "sampler_cpu_s": cpu - eval_cpu,
        "wall_s": time.perf_counter() - w0,
        "rss_growth_mb": current_rss_mb() - rss0,
        "worker_peak_rss_mb": peak_rss_mb(),
        "worker_pid": os.getpid(),
        "src_sha1": _SRC_SHA1,
        "error": error,
    }
