"""``optimize``: the ask -> run -> tell loop, inline or in several worker processes."""

from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import SearchSpaceExhausted, SlimtuneError, TrialStopped

if TYPE_CHECKING:
    from slimtune.study._study import Study

__all__ = ["ObjectiveError", "optimize", "run_trial"]

logger = logging.getLogger(__name__)

Objective = Callable[[Any], Any]
Callback = Callable[["Study", FrozenTrial], None]


class ObjectiveError(SlimtuneError, RuntimeError):
    """An objective raised in a worker process and the exception could not be sent back."""


def run_trial(
    study: Study,
    objective: Objective,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callback],
) -> FrozenTrial:
    """Ask one trial, run ``objective`` on it and tell the outcome. Re-raises exceptions that
    are not in ``catch`` (after recording the trial FAILED) and KeyboardInterrupt."""
    trial = study.ask()
    try:
        result = objective(trial)
    except TrialStopped:
        frozen = study.tell(trial, state=TrialState.STOPPED)
    except KeyboardInterrupt as err:
        study.tell(trial, error=err)
        logger.warning("trial %d interrupted; recorded FAILED", trial.number)
        raise
    except Exception as err:
        frozen = study.tell(trial, error=err)
        if not isinstance(err, catch):
            raise
        logger.warning("trial %d failed with %s: %s", trial.number, type(err).__name__, err)
    else:
        frozen = study.tell(trial, result)
    for cb in callbacks:
        cb(study, frozen)
    return frozen


class _Budget:
    """Shared trial count and deadline (threads or processes)."""

    def __init__(self, n_trials: int | None, deadline: float | None, counter: Any, stop: Any):
        self.n_trials = n_trials
        self.deadline = deadline
        self.counter = counter
        self.stop = stop

    def take(self) -> bool:
        if self.stop.is_set():
            return False
        if self.deadline is not None and time.time() >= self.deadline:
            return False
        if self.n_trials is None:
            return True
        with self.counter.get_lock():
            if self.counter.value >= self.n_trials:
                return False
            self.counter.value += 1
            return True


def _loop(
    study: Study,
    objective: Objective,
    budget: _Budget,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callback],
) -> None:
    while budget.take():
        try:
            run_trial(study, objective, catch, callbacks)
        except SearchSpaceExhausted:
            logger.info("study %r: search space exhausted", study.name)
            return
        except BaseException:
            budget.stop.set()
            raise


def _check_args(n_trials: int | None, timeout: float | None, n_jobs: int) -> None:
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0
    ):
        raise ValueError(f"`n_trials` must be a non-negative int or None, got {n_trials!r}.")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
        raise ValueError(f"`timeout` must be a non-negative number of seconds, got {timeout!r}.")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"`n_jobs` must be a positive int or -1 (all cores), got {n_jobs!r}.")


def optimize(
    study: Study,
    objective: Objective,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    n_jobs: int = 1,
    catch: type[BaseException] | tuple[type[BaseException], ...] = (),
    callbacks: Sequence[Callback] = (),
) -> None:
    """Run trials until ``n_trials`` (counted over all jobs of this call), ``timeout`` or the
    end of the sampler's space.

    With ``n_jobs > 1`` each job is a spawned worker process with its own storage connection
    (the objective and callbacks must be importable, i.e. defined at module level); with the
    in-memory storage, which no other process can see, jobs are threads instead.
    """
    _check_args(n_trials, timeout, n_jobs)
    catch_t = catch if isinstance(catch, tuple) else (catch,)
    if n_jobs == -1:
        n_jobs = mp.cpu_count()
    deadline = None if timeout is None else time.time() + timeout
    if n_trials is not None:
        n_jobs = max(1, min(n_jobs, n_trials))
    if n_jobs == 1:
        _loop(
            study,
            objective,
            _Budget(n_trials, deadline, _LocalCounter(), threading.Event()),
            catch_t,
            callbacks,
        )
        return
    if study.storage.url in (None, "memory"):
        _run_threads(study, objective, n_jobs, n_trials, deadline, catch_t, callbacks)
    else:
        _run_processes(study, objective, n_jobs, n_trials, deadline, catch_t, callbacks)


class _LocalCounter:
    """In-process stand-in for ``multiprocessing.Value``."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def get_lock(self) -> threading.Lock:
        return self._lock


def _run_threads(
    study: Study,
    objective: Objective,
    n_jobs: int,
    n_trials: int | None,
    deadline: float | None,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callback],
) -> None:
    budget = _Budget(n_trials, deadline, _LocalCounter(), threading.Event())
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _loop(study, objective, budget, catch, callbacks)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n_jobs)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        budget.stop.set()
        raise
    if errors:
        raise errors[0]


def _process_main(
    study_name: str,
    storage: Any,
    sampler: Any,
    scheduler: Any,
    objective: Objective,
    n_trials: int | None,
    deadline: float | None,
    counter: Any,
    stop: Any,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callback],
    results: Any,
) -> None:
    from slimtune.study._study import load_study

    try:
        study = load_study(study_name, storage=storage, sampler=sampler, scheduler=scheduler)
        _loop(study, objective, _Budget(n_trials, deadline, counter, stop), catch, callbacks)
    except KeyboardInterrupt:
        results.put(("interrupted", None, ""))
    except BaseException as err:
        try:
            payload: bytes | None = pickle.dumps(err)
        except Exception:
            payload = None
        results.put(("error", payload, f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
    else:
        results.put(("ok", None, ""))


def _run_processes(
    study: Study,
    objective: Objective,
    n_jobs: int,
    n_trials: int | None,
    deadline: float | None,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callback],
) -> None:
    ctx = mp.get_context("spawn")
    for what, obj in (
        ("objective", objective),
        ("callbacks", list(callbacks)),
        ("sampler", study.sampler),
        ("scheduler", study.scheduler),
    ):
        try:
            pickle.dumps(obj)
        except Exception as err:
            raise SlimtuneError(
                f"n_jobs={n_jobs} runs trials in worker processes, but the {what} cannot be "
                f"pickled ({err}). Define it at module level (not a lambda or a closure), or "
                "use n_jobs=1."
            ) from err
    counter = ctx.Value("q", 0, lock=True)
    stop = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_main,
            args=(
                study.name,
                study.storage,
                study.sampler,
                study.scheduler,
                objective,
                n_trials,
                deadline,
                counter,
                stop,
                catch,
                list(callbacks),
                results,
            ),
            daemon=False,
        )
        for _ in range(n_jobs)
    ]
    for p in procs:
        p.start()
    outcomes: list[tuple[str, bytes | None, str]] = []
    try:
        while len(outcomes) < n_jobs:
            try:
                outcomes.append(results.get(timeout=0.2))
            except Exception:  # queue.Empty
                if all(not p.is_alive() for p in procs):
                    # a worker died without reporting (killed, os._exit): collect what is left
                    while True:
                        try:
                            outcomes.append(results.get(timeout=0.1))
                        except Exception:
                            break
                    break
    except KeyboardInterrupt:
        stop.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        raise
    for p in procs:
        p.join()
    for kind, payload, text in outcomes:
        if kind == "error":
            original = _unpickle_error(payload)
            if original is not None:
                raise original
            raise ObjectiveError(f"a worker process failed:\n{text}")
        if kind == "interrupted":
            raise KeyboardInterrupt
    dead = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if dead and len(outcomes) < n_jobs:
        raise ObjectiveError(
            f"{len(dead)} worker process(es) exited without reporting (exit codes {dead}); "
            "completed trials are kept in the storage."
        )


def _unpickle_error(payload: bytes | None) -> BaseException | None:
    if payload is None:
        return None
    try:
        obj = pickle.loads(payload)  # our own worker's exception, sent over a local queue
    except Exception:
        return None
    return obj if isinstance(obj, BaseException) else None
