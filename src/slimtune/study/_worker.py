"""``run_worker``: the stateless ask -> run -> tell loop behind ``slimtune worker``.

Any number of workers on any hosts may run it against one study. With ``n_trials`` it fills a
study-wide budget: each trial takes one of ``n_trials`` slots, a slot is free again only when
its trial FAILED (so lost and failed trials are replaced), and the study ends with exactly
``n_trials`` trials that did not fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from typing import TYPE_CHECKING, Any

from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import SearchSpaceExhausted, SlimtuneError
from slimtune.executors import WorkerShutdown, shutdown_requested
from slimtune.study._heartbeat import Heartbeat, HeartbeatThread

if TYPE_CHECKING:
    from slimtune.study._study import Study

__all__ = ["TooManyFailures", "run_worker"]

logger = logging.getLogger(__name__)


class TooManyFailures(SlimtuneError, RuntimeError):
    """A worker's trials failed ``max_failures`` times in a row; it stopped."""


def _waiting_on_others(study: Study, budget: int) -> bool:
    """Whether a budget slot is held by a RUNNING trial with a heartbeat (which either
    finishes or is failed as lost, freeing the slot)."""
    st = study._state()
    for k in range(budget):
        holder = st.slots.get(k)
        running = holder is not None and holder.state is TrialState.RUNNING
        if running and holder is not None and holder.trial_id in st.watched:
            return True
    return False


def run_worker(
    study: Study,
    objective: Callable[[Any], Any],
    *,
    n_trials: int | None = None,
    heartbeat: Heartbeat | None = None,
    max_failures: int | None = 10,
    callbacks: Sequence[Callable[[Study, FrozenTrial], None]] = (),
    trial_timeout: float | None = None,
) -> int:
    """Run trials of ``study`` until ``n_trials`` trials of the study (all workers together)
    did not fail, the space is exhausted, or a shutdown is requested. Objective exceptions fail
    their trial and the loop goes on, up to ``max_failures`` in a row. Returns the number of
    trials this worker ran.

    ``trial_timeout`` (seconds) runs each objective in a child process
    (``ProcessExecutor(1, timeout=trial_timeout)``): a trial that runs longer is killed with it
    and recorded FAILED (``WorkerLostError``, naming the timeout); the worker goes on. The
    objective must then be picklable (a module-level function) and the storage a file or
    server the child can open."""
    hb = heartbeat if heartbeat is not None else Heartbeat()
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1
    ):
        raise ValueError(f"`n_trials` must be a positive int or None, got {n_trials!r}.")
    from slimtune.study._optimize import run_asked_trial

    runner = None
    if trial_timeout is not None:
        runner = _ChildRunner(study, objective, callbacks, trial_timeout)

    ran = 0
    failures = 0
    study._heartbeat = hb
    try:
        with HeartbeatThread(study.storage, hb.interval) as beats:
            while True:
                reason = shutdown_requested()
                if reason is not None:
                    raise WorkerShutdown(f"worker received {reason}")
                try:
                    trial = study._ask(budget=n_trials)
                except SearchSpaceExhausted:
                    logger.info("study %r: search space exhausted", study.name)
                    break
                if trial is None:
                    assert n_trials is not None
                    if _waiting_on_others(study, n_trials):
                        time.sleep(min(hb.interval, 1.0))
                        continue
                    break
                beats.add(trial.trial_id)
                try:
                    if runner is None:
                        frozen = run_asked_trial(study, trial, objective, (Exception,), callbacks)
                    else:
                        frozen = runner.run(trial)
                finally:
                    beats.discard(trial.trial_id)
                ran += 1
                failures = failures + 1 if frozen.state is TrialState.FAILED else 0
                if max_failures is not None and failures >= max_failures:
                    raise TooManyFailures(
                        f"the last {failures} trials of this worker failed (the latest: "
                        f"{(frozen.error or {}).get('message')!r}); stopped. Fix the objective, "
                        "or raise --max-failures."
                    )
    finally:
        study._heartbeat = None
        if runner is not None:
            runner.close()
    return ran


class _ChildRunner:
    """Runs one trial at a time in a child process that is killed past ``timeout``."""

    def __init__(
        self,
        study: Study,
        objective: Callable[[Any], Any],
        callbacks: Sequence[Callable[[Study, FrozenTrial], None]],
        timeout: float,
    ) -> None:
        from slimtune.executors import ProcessExecutor
        from slimtune.executors._process import check_timeout
        from slimtune.study._dispatch import check_picklable, shared_storage_url

        checked = check_timeout(
            "trial_timeout", timeout, "trial_timeout=3600 (--trial-timeout 3600)"
        )
        assert checked is not None
        self.url = shared_storage_url(study, "`trial_timeout`")
        check_picklable(study, objective, callbacks, "`trial_timeout`")  # before spawning
        self.study = study
        self.objective = objective
        self.callbacks = callbacks
        self.executor = ProcessExecutor(1, timeout=checked)

    def run(self, trial: Any) -> FrozenTrial:
        from slimtune.executors import objective_running
        from slimtune.study._dispatch import settle, task_for
        from slimtune.study._remote import run_trial_task

        task = task_for(self.study, trial, self.objective, (Exception,), self.url)
        future = self.executor.submit(run_trial_task, task)
        try:
            with objective_running():  # SIGTERM / SIGINT raise WorkerShutdown while we wait
                while not future.done():
                    wait([future], timeout=0.5)
        except BaseException as err:
            reason = {"type": type(err).__name__, "message": str(err), "traceback": ""}
            self.executor.terminate()
            self.study._fail(trial.trial_id, reason, retry=isinstance(err, WorkerShutdown))
            raise
        raised = settle(self.study, trial, future, self.callbacks)
        if raised is not None:  # pragma: no cover - catch=(Exception,) records every exception
            raise raised
        return self.study.storage.get_trial(trial.trial_id).copy()

    def close(self) -> None:
        self.executor.shutdown(wait=True)
