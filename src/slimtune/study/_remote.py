"""The task an executor runs for one trial: open the study from its storage URL, run the
objective on the trial the driver asked, and tell the outcome to the storage."""

from __future__ import annotations

import logging
import pickle
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimtune.study._study import Study

__all__ = ["TrialTask", "run_trial_task"]

logger = logging.getLogger(__name__)

_cache: dict[tuple[str, str], Study] = {}  # a worker process serves a few studies at a time
_cache_lock = threading.Lock()
_CACHE_SIZE = 4


@dataclass
class TrialTask:
    """Everything a worker needs for one trial (pickled to processes and Ray tasks)."""

    storage_url: str
    study_name: str
    trial_id: str
    pending: dict[str, Any]
    rng: np.random.Generator
    objective: Callable[[Any], Any]
    sampler: Any
    scheduler: Any
    catch: tuple[type[BaseException], ...]


def _study_for(task: TrialTask) -> Study:
    key = (task.storage_url, task.study_name)
    with _cache_lock:
        study = _cache.get(key)
        if study is None:
            from slimtune.study._study import load_study

            study = load_study(
                task.study_name,
                storage=task.storage_url,
                sampler=task.sampler,
                scheduler=task.scheduler,
            )
            while len(_cache) >= _CACHE_SIZE:
                old = _cache.pop(next(iter(_cache)))
                close = getattr(old.storage.backend, "close", None)
                if close is not None:
                    close()
            _cache[key] = study
        else:
            study.sampler = task.sampler
            study.scheduler = task.scheduler
    return study


def run_trial_task(task: TrialTask) -> tuple[str, bytes | None, str]:
    """Run one trial; return ``("ok" | "raise", pickled exception, text)``.

    ``raise`` means the objective raised an exception not in ``catch`` (the trial is already
    recorded FAILED): the driver stops the study and re-raises it.
    """
    from slimtune.study._optimize import run_asked_trial
    from slimtune.study._trial import Trial

    study = _study_for(task)
    frozen = study.storage.get_trial(task.trial_id)
    trial = Trial(study, frozen, pending=dict(task.pending), rng=task.rng)
    try:
        run_asked_trial(study, trial, task.objective, task.catch, ())
    except Exception as err:
        try:
            payload: bytes | None = pickle.dumps(err)
        except Exception:
            payload = None
        return ("raise", payload, f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
    return ("ok", None, "")
