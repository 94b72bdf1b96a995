"""Heartbeats: RUNNING trials prove they are alive; trials of dead workers fail and are retried.

A trial asked under a :class:`Heartbeat` policy carries the policy in its system attributes
(``heartbeat``), so every process that shares the study judges it by the same rule. Whoever
notices first that its last heartbeat is older than ``grace`` seconds records it FAILED
("WorkerLost"); journal order makes the first such record win, and a retry travels inside that
record, so the parameters are enqueued again exactly once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from slimtune._trial import FrozenTrial, TrialState
from slimtune.storage import Storage

__all__ = ["Heartbeat", "HeartbeatThread", "reap_lost_trials", "retry_of"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Heartbeat:
    """Heartbeat and retry policy of the trials a process runs.

    ``interval``: seconds between heartbeats of a RUNNING trial. ``grace``: a trial whose last
    heartbeat is older than this is failed as "worker lost" (keep it several intervals long, and
    above the clock skew between hosts). ``max_retries``: how often a lost trial's parameters are
    enqueued again (0: never).
    """

    interval: float = 5.0
    grace: float = 60.0
    max_retries: int = 0

    def __post_init__(self) -> None:
        for name in ("interval", "grace"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(
                    f"`{name}` must be a positive number of seconds, got {value!r}. "
                    "Pass e.g. Heartbeat(interval=5.0, grace=60.0)."
                )
        if self.grace <= self.interval:
            raise ValueError(
                f"`grace` must be longer than `interval` ({self.interval}), got {self.grace!r}. "
                f"Use several intervals, e.g. grace={4 * self.interval:g}."
            )
        r = self.max_retries
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ValueError(f"`max_retries` must be a non-negative int, got {r!r}.")

    def to_json(self) -> dict[str, Any]:
        return {
            "interval": float(self.interval),
            "grace": float(self.grace),
            "max_retries": self.max_retries,
        }


def retry_of(trial: FrozenTrial) -> dict[str, Any] | None:
    """The retry to enqueue for a trial that failed through no fault of its objective (its
    worker was lost or shut down), or ``None`` when its policy allows no more retries."""
    policy = trial.system_attrs.get("heartbeat")
    if not isinstance(policy, dict):
        return None
    done = int(trial.system_attrs.get("retries", 0))
    if done >= int(policy.get("max_retries", 0)):
        return None
    history = [*list(trial.system_attrs.get("retry_history", [])), trial.number]
    return {
        "params": dict(trial.params),
        "system_attrs": {
            "retry_seed": trial.seed,
            "retries": done + 1,
            "retry_of": history[0],
            "retry_history": history,
        },
    }


def reap_lost_trials(storage: Storage, study_id: str) -> list[FrozenTrial]:
    """Fail (and retry, per their policy) the study's trials whose worker stopped beating.

    Returns the trials this call recorded FAILED (another process may have been first)."""
    reaped = []
    for t in storage.lost_trials(study_id):
        policy = t.system_attrs.get("heartbeat") or {}
        token = f"{socket.gethostname()}:{os.getpid()}:{time.time():.6f}"
        error = {
            "type": "WorkerLost",
            "message": (
                f"worker lost: no heartbeat for more than {policy.get('grace')} s "
                f"(heartbeat every {policy.get('interval')} s)"
            ),
            "traceback": "",
            "by": token,
        }
        retry = retry_of(t)
        done = storage.finish_trial(t.trial_id, TrialState.FAILED, error=error, retry=retry)
        if done.error is not None and done.error.get("by") == token:
            logger.warning(
                "trial %d: worker lost (no heartbeat); recorded FAILED%s",
                t.number,
                "" if retry is None else f", retry {retry['system_attrs']['retries']} enqueued",
            )
            reaped.append(done)
    return reaped


class HeartbeatThread:
    """A daemon thread that writes one heartbeat record for all registered trials per
    ``interval``. Use as a context manager; ``add`` / ``discard`` trial ids while it runs."""

    def __init__(self, storage: Storage, interval: float) -> None:
        self._storage = storage
        self._interval = interval
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slimtune-heartbeat", daemon=True)

    def __enter__(self) -> HeartbeatThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=max(1.0, 2 * self._interval))

    def add(self, trial_id: str) -> None:
        with self._lock:
            self._ids.add(trial_id)

    def discard(self, trial_id: str) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                ids = sorted(self._ids)
            try:
                self._storage.heartbeat(ids)
            except Exception as err:  # a storage hiccup must not kill the thread
                logger.warning("heartbeat for %d trial(s) failed: %s", len(ids), err)
