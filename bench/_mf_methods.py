"""The multi-fidelity methods the benchmark compares, each run to a cost budget on one problem.

Every runner returns a trace: ``[(cumulative cost, best full-fidelity error so far), ...]``, one
point per full-fidelity evaluation (the only evaluations that count as results). The cost of a
trial is charged as it goes: a resumable problem pays each added fidelity step, another pays
every evaluation in full. On a problem that does not resume, each report is an evaluation of
its own, so a Hyperband trial (slimtune's or Optuna's) evaluates only the fidelities its bracket
acts on: its first rung ``min_resource * eta**bracket`` and above (the evaluations Hyperband
makes; lower ones would be paid and never read by its decisions). Trials run one after the other
(one worker); a trial that is running when the budget runs out finishes, and the metrics read
the trace only up to the budget.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._mf_problems import MFProblem

__all__ = ["METHODS", "available_methods", "run_method"]

Trace = list[tuple[float, float]]


class _Meter:
    """Cumulative cost and the best full-fidelity error, shared by the trials of one run."""

    def __init__(self, problem: MFProblem) -> None:
        self.problem = problem
        self.cost = 0.0
        self.best = math.inf
        self.trace: Trace = []
        self.n_trials = 0

    def run_trial(
        self,
        config: dict[str, Any],
        report: Callable[[int, float], None],
        should_stop: Callable[[], bool],
        *,
        full_only: bool = False,
        first_step: int = 1,
    ) -> tuple[float, bool]:
        """Evaluate ``config`` up the fidelity ladder; ``(last error, stopped early)``. On a
        problem that does not resume, fidelities below ``first_step`` are skipped."""
        p = self.problem
        self.n_trials += 1
        steps = (p.max_fidelity,) if full_only else p.report_steps
        if not p.resumable:
            steps = tuple(f for f in steps if f >= first_step) or (p.max_fidelity,)
        paid = 0.0
        err = math.nan
        for f in steps:
            err, cost = p.evaluate(config, f)
            self.cost += cost - paid if p.resumable else cost
            paid = cost
            if f == p.max_fidelity:
                if err < self.best:
                    self.best = err
                self.trace.append((self.cost, self.best))
            report(f, err)
            if f < p.max_fidelity and should_stop():
                return err, True
        return err, False


# ------------------------------------------------------------------------------------ slimtune
def _slimtune(sampler: str, scheduler: str) -> Callable[[MFProblem, int, float], Trace]:
    def run(problem: MFProblem, seed: int, max_cost: float) -> Trace:
        import slimtune
        from slimtune.samplers import BOHBSampler, RandomSampler, TPESampler
        from slimtune.schedulers import ASHA, Hyperband, NeverStop

        top = problem.max_fidelity
        samplers: dict[str, Any] = {
            "random": RandomSampler,
            "tpe": TPESampler,
            "bohb": BOHBSampler,
            "bohb_paper": lambda: BOHBSampler(stopped_as_bad=False),
        }
        schedulers: dict[str, Any] = {
            "none": NeverStop,
            "asha": lambda: ASHA(min_resource=1, max_resource=top, reduction_factor=3),
            "hyperband": lambda: Hyperband(min_resource=1, max_resource=top, reduction_factor=3),
        }
        study = slimtune.create_study(
            storage="memory",
            seed=seed,
            sampler=samplers[sampler](),
            scheduler=schedulers[scheduler](),
            space=problem.space,
        )
        meter = _Meter(problem)
        sched = study.scheduler
        while meter.cost < max_cost:
            trial = study.ask()
            first = 1
            if isinstance(sched, Hyperband):
                first = sched.min_resource * sched.reduction_factor ** sched.bracket_of(
                    trial.number
                )
            err, stopped = meter.run_trial(
                trial.params,
                trial.report,
                trial.should_stop,
                full_only=scheduler == "none",
                first_step=first,
            )
            if stopped:
                study.tell(trial, state=slimtune.TrialState.STOPPED)
            else:
                study.tell(trial, err)
        return meter.trace

    return run


# -------------------------------------------------------------------------------------- Optuna
def _optuna(pruner: str) -> Callable[[MFProblem, int, float], Trace]:
    def run(problem: MFProblem, seed: int, max_cost: float) -> Trace:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        top = problem.max_fidelity
        pruners: dict[str, Any] = {
            "sha": lambda: optuna.pruners.SuccessiveHalvingPruner(
                min_resource=1, reduction_factor=3
            ),
            "hyperband": lambda: optuna.pruners.HyperbandPruner(
                min_resource=1, max_resource=top, reduction_factor=3
            ),
        }
        # a fixed study name: Optuna's HyperbandPruner assigns brackets from a hash of the study
        # name and the trial number, and the default name is a random UUID
        study = optuna.create_study(
            study_name=f"bench-multifidelity-{seed}",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=pruners[pruner](),
        )
        dists = _optuna_distributions(problem, optuna)
        meter = _Meter(problem)
        hb = study.pruner if pruner == "hyperband" else None
        while meter.cost < max_cost:
            trial = study.ask(dists)
            first = 1
            if hb is not None:  # its bracket (private API: Optuna exposes no public one)
                if not hb._pruners:
                    hb._try_initialization(study)
                first = hb._min_resource * hb._reduction_factor ** hb._get_bracket_id(study, trial)
            err, stopped = meter.run_trial(
                dict(trial.params),
                lambda f, v, t=trial: t.report(v, f),
                trial.should_prune,
                first_step=first,
            )
            if stopped:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, err)
        return meter.trace

    return run


def _optuna_distributions(problem: MFProblem, optuna: Any) -> dict[str, Any]:
    from slimtune.space import Float, Int

    out: dict[str, Any] = {}
    for name, dist in problem.space.items():
        if isinstance(dist, Float):
            out[name] = optuna.distributions.FloatDistribution(dist.low, dist.high, log=dist.log)
        elif isinstance(dist, Int):
            out[name] = optuna.distributions.IntDistribution(dist.low, dist.high, log=dist.log)
        else:  # pragma: no cover - the problems use floats and ints only
            raise TypeError(f"no Optuna distribution for {dist!r}")
    return out


# ------------------------------------------------------------------------------------------ PBT
_PBT_PATH = Path(__file__).resolve().parent / "_mf_pbt.py"


def _pbt(problem: MFProblem, seed: int, max_cost: float) -> Trace:
    from bench import _mf_pbt  # type: ignore[attr-defined]

    out = _mf_pbt.run_pbt(problem, seed=seed, max_cost=max_cost)
    if isinstance(out, dict):
        out = out["trace"]
    return [(float(c), float(e)) for c, e in out]


def _pbt_available() -> bool:
    if not _PBT_PATH.exists():
        return False
    try:
        from bench import _mf_pbt  # type: ignore[attr-defined]
    except Exception:
        logging.getLogger(__name__).warning("bench/_mf_pbt.py does not import; PBT skipped")
        return False
    return callable(getattr(_mf_pbt, "run_pbt", None))


# key -> (label, runner); the order of the table
METHODS: dict[str, tuple[str, Callable[[MFProblem, int, float], Trace]]] = {
    "random": ("random search (full budget)", _slimtune("random", "none")),
    "asha": ("slimtune ASHA (random)", _slimtune("random", "asha")),
    "asha_tpe": ("slimtune ASHA + TPE", _slimtune("tpe", "asha")),
    "hyperband": ("slimtune Hyperband (random)", _slimtune("random", "hyperband")),
    "bohb": ("slimtune BOHB", _slimtune("bohb", "hyperband")),
    "bohb_paper": (
        "slimtune BOHB, paper's rule (stopped_as_bad=False)",
        _slimtune("bohb_paper", "hyperband"),
    ),
    "optuna_sha_tpe": ("Optuna SuccessiveHalving + TPE", _optuna("sha")),
    "optuna_hb_tpe": ("Optuna Hyperband + TPE", _optuna("hyperband")),
    "pbt": ("slimtune PBT", _pbt),
}


def available_methods() -> list[str]:
    out = []
    for key in METHODS:
        if key.startswith("optuna") and importlib.util.find_spec("optuna") is None:
            continue
        if key == "pbt" and not _pbt_available():
            continue
        out.append(key)
    return out


def run_method(key: str, problem: MFProblem, seed: int, max_cost: float) -> Trace:
    return METHODS[key][1](problem, seed, max_cost)
