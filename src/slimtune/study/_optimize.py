"""``optimize``: the ask -> run -> tell loop, inline or in several worker processes."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import SearchSpaceExhausted, TrialStopped
from slimtune.executors import Executor, InlineExecutor, WorkerShutdown, objective_running
from slimtune.study._dispatch import ObjectiveError, check_picklable, run_on_executor
from slimtune.study._heartbeat import Heartbeat, HeartbeatThread
from slimtune.study._study import TrialFinishedError

if TYPE_CHECKING:
    from slimtune.study._study import Study
    from slimtune.study._trial import Trial

__all__ = ["ObjectiveError", "optimize", "run_asked_trial", "run_trial"]

logger = logging.getLogger(__name__)

Objective = Callable[[Any], Any]
Callback = Callable[["Study", FrozenTrial], None]


def run_trial(
    study: Study,
    objective: Objective,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callback],
) -> FrozenTrial:
    """Ask one trial, run ``objective`` on it and tell the outcome. Re-raises exceptions that
    are not in ``catch`` (after recording the trial FAILED) and KeyboardInterrupt."""
    return run_asked_trial(study, study.ask(), objective, catch, callbacks)


def _error_info(err: BaseException) -> dict[str, str]:
    return {
        "type": type(err).__name__,
        "message": str(err),
        "traceback": "".join(traceback.format_exception(err)),
    }


def _tell(study: Study, trial: Trial, *args: Any, **kwargs: Any) -> FrozenTrial:
    """``study.tell``, except that a trial another process already finished (for example
    failed as "worker lost" while this one was paused) is logged, not raised."""
    try:
        return study.tell(trial, *args, **kwargs)
    except TrialFinishedError as err:
        logger.warning("trial %d: %s Its result is dropped.", trial.number, err)
        return trial.frozen()


def run_asked_trial(
    study: Study,
    trial: Trial,
    objective: Objective,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callback],
) -> FrozenTrial:
    """Run ``objective`` on an asked ``trial`` and tell the outcome (see :func:`run_trial`).

    A :class:`~slimtune.executors.WorkerShutdown` (SIGTERM / SIGINT under
    ``graceful_shutdown``) records the trial FAILED with the signal's name, enqueues a retry
    when the trial's heartbeat policy allows one, and propagates."""
    try:
        with objective_running():
            result = objective(trial)
    except TrialStopped:
        frozen = _tell(study, trial, state=TrialState.STOPPED)
    except WorkerShutdown as err:
        study._fail(trial.trial_id, _error_info(err), retry=True)
        logger.warning("trial %d interrupted by %s; recorded FAILED", trial.number, err)
        raise
    except KeyboardInterrupt as err:
        _tell(study, trial, error=err)
        logger.warning("trial %d interrupted; recorded FAILED", trial.number)
        raise
    except Exception as err:
        frozen = _tell(study, trial, error=err)
        if not isinstance(err, catch):
            raise
        logger.warning("trial %d failed with %s: %s", trial.number, type(err).__name__, err)
    else:
        frozen = _tell(study, trial, result)
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
    beats: HeartbeatThread | None = None,
) -> None:
    while budget.take():
        try:
            trial = study.ask()
            if beats is not None:
                beats.add(trial.trial_id)
            try:
                run_asked_trial(study, trial, objective, catch, callbacks)
            finally:
                if beats is not None:
                    beats.discard(trial.trial_id)
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
    executor: Executor | None = None,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Run trials until ``n_trials`` (counted over all jobs of this call), ``timeout`` or the
    end of the sampler's space.

    ``n_jobs > 1`` runs every objective in a :class:`~slimtune.executors.ProcessExecutor` of
    that many spawned processes (the objective and callbacks must be importable, i.e. defined at
    module level); a process that dies fails only its trial. With the in-memory storage, which no
    other process can see, jobs are threads instead. ``executor`` picks where objectives run
    (``InlineExecutor``, ``ProcessExecutor``, ``RayExecutor``); it is not shut down here.
    ``heartbeat`` makes RUNNING trials write heartbeats, so that another process fails (and
    retries, per the policy) the trials of this one if it dies.
    """
    _check_args(n_trials, timeout, n_jobs)
    if heartbeat is not None and not isinstance(heartbeat, Heartbeat):
        raise TypeError(
            f"`heartbeat` must be a slimtune.study.Heartbeat or None, got {heartbeat!r}."
        )
    if executor is not None:
        if not isinstance(executor, Executor):
            raise TypeError(
                "`executor` must have submit(fn, *args), shutdown() and max_workers (e.g. "
                f"slimtune.executors.ProcessExecutor()), got {executor!r}."
            )
        if n_jobs != 1:
            raise ValueError(
                f"pass either `n_jobs` ({n_jobs}) or `executor`, not both. Size the executor "
                "instead, e.g. ProcessExecutor(max_workers=4)."
            )
    catch_t = catch if isinstance(catch, tuple) else (catch,)
    if n_jobs == -1:
        n_jobs = mp.cpu_count()
    deadline = None if timeout is None else time.time() + timeout
    if n_trials is not None:
        n_jobs = max(1, min(n_jobs, n_trials))
    study._heartbeat = heartbeat
    try:
        with _beats(study, heartbeat) as beats:
            if (executor is None and n_jobs == 1) or isinstance(executor, InlineExecutor):
                budget = _Budget(n_trials, deadline, _LocalCounter(), threading.Event())
                _loop(study, objective, budget, catch_t, callbacks, beats)
            elif executor is None and study.storage.url in (None, "memory"):
                _run_threads(
                    study, objective, n_jobs, n_trials, deadline, catch_t, callbacks, beats
                )
            elif executor is None:
                from slimtune.executors import ProcessExecutor

                check_picklable(study, objective, callbacks, f"n_jobs={n_jobs}")
                pool = ProcessExecutor(max_workers=n_jobs)
                try:
                    run_on_executor(
                        study, objective, pool, n_trials, deadline, catch_t, callbacks, beats
                    )
                except BaseException:
                    pool.terminate()
                    raise
                pool.shutdown(wait=True)
            else:
                if type(executor).__name__ == "ProcessExecutor":
                    check_picklable(study, objective, callbacks, repr(executor))
                run_on_executor(
                    study, objective, executor, n_trials, deadline, catch_t, callbacks, beats
                )
    finally:
        study._heartbeat = None


@contextlib.contextmanager
def _beats(study: Study, heartbeat: Heartbeat | None) -> Iterator[HeartbeatThread | None]:
    if heartbeat is None:
        yield None
        return
    with HeartbeatThread(study.storage, heartbeat.interval) as beats:
        yield beats


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
    beats: HeartbeatThread | None,
) -> None:
    budget = _Budget(n_trials, deadline, _LocalCounter(), threading.Event())
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _loop(study, objective, budget, catch, callbacks, beats)
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
