"""Training-time hyperparameter optimisation: population-based training and hypergradients.

- :class:`PBT`: population-based training over a :class:`~slimtune.space.SearchSpace`, members in
  worker processes, weights handed forward through safetensors checkpoints, schedules recorded
  in a study and replayable (:func:`replay_schedule`).
- :mod:`slimtune.hpo.hypergrad`: gradient-based hyperparameter optimisation.
"""

from __future__ import annotations

from slimtune.hpo._checkpoint import (
    Checkpoint,
    checkpoint_digest,
    copy_checkpoint,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from slimtune.hpo._explore import PBTConfig, explore, select_exploits
from slimtune.hpo._pbt import PBT, PBTError, PBTResult, SubmitExecutor
from slimtune.hpo._schedule import MemberStep, Segment, TrainFn, replay_schedule, schedule_of

__all__ = [
    "PBT",
    "Checkpoint",
    "MemberStep",
    "PBTConfig",
    "PBTError",
    "PBTResult",
    "Segment",
    "SubmitExecutor",
    "TrainFn",
    "checkpoint_digest",
    "copy_checkpoint",
    "explore",
    "load_checkpoint",
    "load_training_state",
    "replay_schedule",
    "save_checkpoint",
    "save_training_state",
    "schedule_of",
    "select_exploits",
]
