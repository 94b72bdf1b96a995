"""PBT on the multi-fidelity benchmark problems, simulated inline (no worker processes).

``run_pbt(problem, *, seed, max_cost)`` runs :class:`slimtune.hpo.PBT` itself (its exploit and
explore logic, its study records) with an :class:`~slimtune.executors.InlineExecutor` and a
train function that reads the problem's table or formula instead of training. The simulation,
plainly:

* A member's progress is a rung of a fidelity ladder: every 3 epochs (3, 6, ..., 27) on the
  tabular problem, the problem's ``report_steps`` (1, 3, 9, 27, 81) on Hartmann. One PBT round
  moves every member one rung up and its score is the table's / function's error of the member's
  current configuration at that fidelity.
* Exploit copies the winner's configuration and its progress (PBT copies the checkpoint folder
  and the schedule); explore moves to a neighbouring configuration (``PBTConfig`` factors 0.8 /
  1.2, resampling with probability 0.25; the problem maps it onto its table as it maps any
  configuration) that continues at the same fidelity. A network that trained k epochs under
  configuration A and then under B is modelled as B's own learning curve at the same epoch: the
  table has no curves for switched hyperparameters.
* Cost: on the resumable table a member pays only the epochs it adds (of its current
  configuration's recorded seconds); on Hartmann every evaluation pays its full cost.
* A member reaching the top rung is a full-fidelity evaluation (one trace point). When the
  population has reached the top rung and budget is left, a fresh population starts (new seed).
"""

from __future__ import annotations

import logging
import math
import tempfile
from typing import Any

from bench._mf_problems import MFProblem
from slimtune.executors import InlineExecutor
from slimtune.hpo import PBT, MemberStep, PBTConfig, PBTError
from slimtune.study import create_study

__all__ = ["POPULATION", "describe", "ladder", "run_pbt"]

POPULATION = 4  # the budgets are 20-50 full evaluations: small populations finish early


def ladder(problem: MFProblem) -> list[int]:
    """The fidelities of the rounds: every 3rd epoch on a resumable table, else report_steps."""
    if problem.resumable:
        step = 3 if problem.max_fidelity % 3 == 0 else 1
        return list(range(step, problem.max_fidelity + 1, step))
    return list(problem.report_steps)


class _BudgetSpent(Exception):
    """Raised by the simulated train function once the budget is spent: the run stops."""


class _Simulation:
    def __init__(self, problem: MFProblem, max_cost: float) -> None:
        self.problem = problem
        self.max_cost = max_cost
        self.rungs = ladder(problem)
        self.cost = 0.0
        self.best = math.inf
        self.trace: list[tuple[float, float]] = []

    def train(self, step: MemberStep) -> float:
        if self.cost >= self.max_cost:
            raise _BudgetSpent
        p = self.problem
        rung = step.start_step  # PBT's progress counts rounds: one rung per round
        fidelity = self.rungs[rung]
        err, cost = p.evaluate(step.hparams, fidelity)
        if p.resumable and rung > 0:
            cost -= p.evaluate(step.hparams, self.rungs[rung - 1])[1]
        self.cost += cost
        if fidelity == p.max_fidelity:
            self.best = min(self.best, err)
            self.trace.append((self.cost, self.best))
        return err


def run_pbt(problem: MFProblem, *, seed: int, max_cost: float) -> list[tuple[float, float]]:
    """``[(cumulative cost, best full-fidelity error so far), ...]`` of PBT within ``max_cost``."""
    sim = _Simulation(problem, max_cost)
    restart = 0
    while sim.cost < max_cost:
        run_seed = seed * 1000 + restart
        config = PBTConfig(
            population_size=POPULATION,
            interval=1,
            rounds=len(sim.rungs),
            quantile=0.25,
            max_restarts=0,
            seed=run_seed,
        )
        study = create_study(storage="memory", seed=run_seed)
        with tempfile.TemporaryDirectory(prefix="slimtune-mf-pbt-") as workdir:
            pbt = PBT(
                sim.train,
                problem.space,
                config=config,
                study=study,
                executor=InlineExecutor(),
                workdir=workdir,
            )
            quiet = logging.getLogger("slimtune.hpo")
            level = quiet.level
            quiet.setLevel(logging.ERROR)  # the members stopped by the budget are not news
            try:
                pbt.run()
            except PBTError:  # every member stopped: the budget ran out mid-population
                if sim.cost < max_cost:
                    raise
            finally:
                quiet.setLevel(level)
        restart += 1
    return sim.trace


def describe() -> dict[str, Any]:
    """Settings, for the benchmark's JSON."""
    return {
        "population": POPULATION,
        "quantile": 0.25,
        "perturb_factors": [0.8, 1.2],
        "resample_probability": 0.25,
    }
