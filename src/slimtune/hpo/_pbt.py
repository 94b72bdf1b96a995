"""Population-based training (Jaderberg et al. 2017).

Synchronous by default: every round each member trains ``interval`` steps in a worker process,
from a fresh copy of its last checkpoint. Then the bottom quantile copies a top member's
checkpoint (byte-exact, checked by SHA-256) and hyperparameters and explores them. A member whose
step fails (its process dies or it raises) is retried from its last checkpoint; after
``max_restarts`` it ranks last and is re-seeded by exploit. Each member is one trial of the
study: intermediate values per round, the schedule (``"pbt_schedule"``) and events
(``"pbt_events"``) in its user attributes. With ``PBTConfig(synchronous=False)`` a member decides
as soon as its own step ends (see :meth:`Population.run_async`).
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from slimtune._rng import spawn_seed
from slimtune.executors import ProcessExecutor
from slimtune.hpo._explore import PBTConfig
from slimtune.hpo._population import PBTError, PBTResult, Population
from slimtune.hpo._schedule import (
    TrainFn,
    replay_schedule,
)
from slimtune.space import SearchSpace

if TYPE_CHECKING:  # the study layer sits above hpo: PBT only uses the study it is given
    from slimtune.study import Study, Trial

__all__ = ["PBT", "PBTError", "PBTResult", "SubmitExecutor"]

logger = logging.getLogger(__name__)


def _check_picklable(train_fn: Any) -> None:
    try:
        pickle.dumps(train_fn)
    except Exception as err:
        raise TypeError(
            f"`train_fn` {train_fn!r} does not pickle, so it cannot run in worker processes "
            f"({err}). Define it at module level, or pass executor=InlineExecutor() from "
            "slimtune.executors to run members in this process."
        ) from err


class SubmitExecutor(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]: ...


class PBT:
    """Population-based training of ``train_fn`` over ``space``.

    ``train_fn(step: MemberStep) -> score`` trains one member ``step.steps`` steps (see
    :class:`MemberStep`); it must be a module-level function so it pickles into worker
    processes. ``study`` (one objective; e.g. ``create_study(storage="memory", seed=0)``) gets
    one trial per member; its sampler draws the initial population. ``executor``: anything
    with ``submit(fn, *args)`` returning a future (``slimtune.executors.ProcessExecutor``,
    ``InlineExecutor``, a thread pool); by default PBT runs its own
    ``ProcessExecutor(config.n_workers, timeout=config.step_timeout)``, whose workers survive a
    member's crash and kill a step running past ``config.step_timeout``. ``workdir`` holds the
    checkpoints (default: a new temporary folder, kept after the run).
    """

    def __init__(
        self,
        train_fn: TrainFn,
        space: SearchSpace,
        *,
        study: Study,
        config: PBTConfig | None = None,
        executor: SubmitExecutor | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        if not callable(train_fn):
            raise TypeError(f"`train_fn` must be callable, got {train_fn!r}.")
        if isinstance(space, dict):
            space = SearchSpace(space)
        if not isinstance(space, SearchSpace) or not len(space):
            raise TypeError(
                f"`space` must be a non-empty SearchSpace, got {space!r}. Pass e.g. "
                "SearchSpace({'lr': Float(1e-4, 1e-1, log=True)})."
            )
        config = PBTConfig() if config is None else config
        if not isinstance(config, PBTConfig):
            raise TypeError(f"`config` must be a PBTConfig, got {config!r}.")
        if not all(callable(getattr(study, m, None)) for m in ("ask", "tell", "set_user_attr")):
            raise TypeError(
                f"`study` must be a slimtune Study, got {study!r}. Pass e.g. "
                "study=slimtune.create_study(storage='memory', seed=0)."
            )
        if len(study.directions) != 1:
            raise ValueError(f"`study` must have one objective, got directions {study.directions}.")
        if study.space is not None and study.space != space:
            raise ValueError(
                "`study` declares a different space than `space`. Create the study "
                "without a space or with the same one."
            )
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise TypeError(f"`executor` must have a submit(fn, *args) method, got {executor!r}.")
        if workdir is not None and not isinstance(workdir, str | Path):
            raise TypeError(f"`workdir` must be a path or None, got {workdir!r}.")
        self.train_fn = train_fn
        self.space = space
        self.config = config
        self.study = study
        self.executor = executor
        self.workdir = Path(workdir) if workdir is not None else None

    # replay -----------------------------------------------------------------------------------
    replay_schedule = staticmethod(replay_schedule)

    # the run ----------------------------------------------------------------------------------
    def run(self) -> PBTResult:
        """Train the population for ``config.rounds`` rounds; return the result."""
        cfg = self.config
        n = cfg.population_size
        root = (
            self.workdir
            if self.workdir is not None
            else Path(tempfile.mkdtemp(prefix="slimtune-pbt-"))
        )
        if root.exists() and any(root.glob("member-*")):
            raise ValueError(
                f"`workdir` {str(root)!r} already holds a PBT run (member-* folders); members "
                "would start from its checkpoints. Pass an empty or new folder."
            )
        own = self.executor is None
        if own:
            _check_picklable(self.train_fn)
        root.mkdir(parents=True, exist_ok=True)
        base = cfg.seed if cfg.seed is not None else spawn_seed(None, 0)  # fresh entropy
        direction = self.study.direction
        trials = [self._new_member(i) for i in range(n)]
        run = Population(
            pbt=self,
            root=root,
            base_seed=base,
            direction=direction,
            trials=trials,
            hparams=[t.params for t in trials],
        )
        self.study.set_user_attr(
            "pbt_config",
            {**asdict(cfg), "space": self.space.to_json(), "trials": [t.number for t in trials]},
        )
        pool: Any = (
            ProcessExecutor(cfg.n_workers, timeout=cfg.step_timeout) if own else self.executor
        )
        failed = False
        try:
            if not cfg.synchronous:
                run.run_async(pool)
            for r in range(cfg.rounds if cfg.synchronous else 0):
                run.train_round(pool, r)
                if r < cfg.rounds - 1:
                    run.exploit_and_explore(r)
        except BaseException as err:
            failed = True
            run.abandon(err)
            raise
        finally:
            if own and failed:  # the run is abandoned: steps still running are of no use
                pool.terminate()  # (workers ignore Ctrl-C, so waiting could take a whole step)
            elif own:
                pool.shutdown(wait=True)
        return run.finish()

    def _new_member(self, member: int) -> Trial:
        trial = self.study.ask()
        params: dict[str, Any] = {}
        for name in self.space:
            if self.space.is_active(name, params):
                params[name] = trial.suggest(name, self.space[name])
        trial.set_user_attr("pbt_member", member)
        return trial
