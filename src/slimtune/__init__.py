"""slimtune: find and shrink PyTorch models.

The core is a :class:`Study` of trials over a search space, kept in an append-only journal on
memory, SQLite or PostgreSQL. Around it: ``slimtune.samplers`` (random to GP-BO),
``slimtune.schedulers`` (stop early), ``slimtune.hpo`` (PBT, hypergradients),
``slimtune.executors`` (processes, Ray), ``slimtune.nas`` (supernets), ``slimtune.compress``
(``prune``, ``quantize``, ``distill``) and ``slimtune.pipeline`` (nas meets search).

>>> import slimtune
>>> study = slimtune.create_study(storage="memory", seed=0)
>>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 2) ** 2, n_trials=20)
"""

from __future__ import annotations

from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import (
    DuplicatedStudyError,
    InvalidSpaceError,
    JournalVersionError,
    MissingExtraError,
    SearchSpaceExhausted,
    SlimtuneError,
    StorageError,
    StudyNotFoundError,
    TrialStopped,
)
from slimtune.samplers import GridSampler, QMCSampler, RandomSampler
from slimtune.space import Categorical, Conditional, Float, Int, SearchSpace
from slimtune.storage import get_storage
from slimtune.study import (
    Heartbeat,
    Study,
    Trial,
    TrialFinishedError,
    create_study,
    delete_study,
    load_study,
)

__version__ = "0.1.0"

__all__ = [
    "Categorical",
    "Conditional",
    "DuplicatedStudyError",
    "Float",
    "FrozenTrial",
    "GridSampler",
    "Heartbeat",
    "Int",
    "InvalidSpaceError",
    "JournalVersionError",
    "MissingExtraError",
    "QMCSampler",
    "RandomSampler",
    "SearchSpace",
    "SearchSpaceExhausted",
    "SlimtuneError",
    "StorageError",
    "Study",
    "StudyNotFoundError",
    "Trial",
    "TrialFinishedError",
    "TrialState",
    "TrialStopped",
    "__version__",
    "create_study",
    "delete_study",
    "get_storage",
    "load_study",
]
