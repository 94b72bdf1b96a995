"""The driver loop for executors: ask in this process, run objectives where the executor puts
them, keep ``max_workers`` trials in flight, and record trials whose worker died."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import SearchSpaceExhausted, SlimtuneError
from slimtune.executors import WorkerShutdown
from slimtune.study._heartbeat import HeartbeatThread
from slimtune.study._remote import TrialTask, run_trial_task

if TYPE_CHECKING:
    from slimtune.executors import Executor
    from slimtune.study._study import Study
    from slimtune.study._trial import Trial

__all__ = [
    "ObjectiveError",
    "check_picklable",
    "run_on_executor",
    "settle",
    "shared_storage_url",
    "task_for",
]

logger = logging.getLogger(__name__)

Callback = Callable[["Study", FrozenTrial], None]


class ObjectiveError(SlimtuneError, RuntimeError):
    """An objective raised in a worker process and the exception could not be sent back."""


def check_picklable(study: Study, objective: Any, callbacks: Sequence[Any], where: str) -> None:
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
                f"{where} runs trials in worker processes, but the {what} cannot be "
                f"pickled ({err}). Define it at module level (not a lambda or a closure), or "
                "use n_jobs=1."
            ) from err


class _InMemoryStorageError(SlimtuneError, ValueError):
    """Objectives would run in other processes, which cannot see an in-memory storage."""


def shared_storage_url(study: Study, where: str) -> str:
    """The URL other processes open ``study``'s storage with; a clear error for memory."""
    url = study.storage.url
    if url is None or url == "memory":
        raise _InMemoryStorageError(
            f"{where} runs objectives in other processes, which cannot see the in-memory "
            "storage. Use storage='sqlite:///slimtune.db' (one host) or a PostgreSQL URL."
        )
    return url


def task_for(
    study: Study,
    trial: Trial,
    objective: Callable[[Any], Any],
    catch: tuple[type[BaseException], ...],
    url: str,
) -> TrialTask:
    """What a worker process needs to run the asked ``trial`` (pickled to it)."""
    return TrialTask(
        storage_url=url,
        study_name=study.name,
        trial_id=trial.trial_id,
        pending=dict(trial._pending),
        rng=trial._rng,
        objective=objective,
        sampler=study.sampler,
        scheduler=study.scheduler,
        catch=catch,
    )


def _unpickle_error(payload: bytes | None) -> BaseException | None:
    if payload is None:
        return None
    try:
        obj = pickle.loads(payload)  # our own worker's exception, sent back by our executor
    except Exception:
        return None
    return obj if isinstance(obj, BaseException) else None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def run_on_executor(
    study: Study,
    objective: Any,
    executor: Executor,
    n_trials: int | None,
    deadline: float | None,
    catch: tuple[type[BaseException], ...],
    callbacks: Sequence[Callback],
    beats: HeartbeatThread | None,
) -> None:
    url = shared_storage_url(study, repr(executor))
    capacity = max(1, int(executor.max_workers))
    in_flight: dict[Future[Any], Trial] = {}
    asked = 0
    stopping = False
    error: BaseException | None = None

    def budget_left() -> bool:
        if stopping:
            return False
        if deadline is not None and time.time() >= deadline:
            return False
        return n_trials is None or asked < n_trials

    try:
        while True:
            while len(in_flight) < capacity and budget_left():
                try:
                    trial = study.ask()
                except SearchSpaceExhausted:
                    logger.info("study %r: search space exhausted", study.name)
                    stopping = True
                    break
                asked += 1
                if beats is not None:
                    beats.add(trial.trial_id)
                task = task_for(study, trial, objective, catch, url)
                in_flight[executor.submit(run_trial_task, task)] = trial
            if not in_flight:
                break
            done, _ = wait(list(in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                trial = in_flight.pop(future)
                if beats is not None:
                    beats.discard(trial.trial_id)
                raised = settle(study, trial, future, callbacks)
                if raised is not None and error is None:
                    error, stopping = raised, True
    except BaseException as err:
        reason = {"type": type(err).__name__, "message": str(err), "traceback": ""}
        for future, trial in in_flight.items():
            future.cancel()
            study._fail(trial.trial_id, reason, retry=isinstance(err, WorkerShutdown))
            logger.warning("trial %d interrupted (%s); recorded FAILED", trial.number, reason)
        raise
    if error is not None:
        raise error


def settle(
    study: Study, trial: Trial, future: Future[Any], callbacks: Sequence[Callback]
) -> BaseException | None:
    """Record the end of one task; return an exception the study must re-raise, if any."""
    err = future.exception()
    if err is not None:  # the task never reported: its worker died, or the executor failed
        reason = {"type": type(err).__name__, "message": _first_line(err), "traceback": ""}
        frozen = study._fail(trial.trial_id, reason, retry=True)
        logger.warning("trial %d failed: %s", trial.number, reason["message"])
    else:
        kind, payload, text = future.result()
        if kind == "raise":
            return _unpickle_error(payload) or ObjectiveError(
                f"trial {trial.number} failed in a worker:\n{text}"
            )
        frozen = study.storage.get_trial(trial.trial_id).copy()
    if frozen.state is TrialState.RUNNING:  # only if the storage lost our write
        return None
    for cb in callbacks:
        cb(study, frozen)
    return None
