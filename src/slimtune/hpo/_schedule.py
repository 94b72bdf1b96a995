"""A PBT member's hyperparameter schedule: segments that retrain the member from scratch."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slimtune._trial import FrozenTrial

__all__ = ["MemberStep", "Segment", "TrainFn", "replay_schedule", "schedule_of"]

SCHEDULE_KEY = "pbt_schedule"


@dataclass(frozen=True)
class MemberStep:
    """What a PBT train function receives: train ``steps`` more steps with ``hparams``.

    Load the member's state from ``checkpoint_dir`` when it holds one (it is empty for a fresh
    member), train, save the state back into ``checkpoint_dir`` (e.g. with
    :func:`save_training_state`) and return the score. ``start_step`` is the number of steps the
    checkpoint has already trained; ``seed`` seeds this step's randomness (data order, dropout)
    so a replay gives the same result.
    """

    hparams: dict[str, Any]
    checkpoint_dir: str
    steps: int
    start_step: int
    member: int
    seed: int


TrainFn = Callable[[MemberStep], float]
"""``train_fn(step: MemberStep) -> score``; a module-level function so it pickles."""


@dataclass(frozen=True)
class Segment:
    """``steps`` training steps from ``start_step`` with ``hparams`` and ``seed``, trained by
    ``member`` in round ``round`` (a member that exploited another inherits its segments)."""

    start_step: int
    steps: int
    hparams: dict[str, Any]
    seed: int
    member: int
    round: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Segment:
        return cls(
            start_step=int(data["start_step"]),
            steps=int(data["steps"]),
            hparams=dict(data["hparams"]),
            seed=int(data["seed"]),
            member=int(data["member"]),
            round=int(data["round"]),
        )


def schedule_of(trial: FrozenTrial) -> list[Segment]:
    """The schedule PBT recorded on a member's trial (user attribute ``"pbt_schedule"``)."""
    if not isinstance(trial, FrozenTrial):
        raise TypeError(f"`trial` must be a FrozenTrial (study.trials[i]), got {trial!r}.")
    data = trial.user_attrs.get(SCHEDULE_KEY)
    if data is None:
        raise ValueError(
            f"trial {trial.number} has no {SCHEDULE_KEY!r} user attribute; it is not a PBT member."
        )
    return [Segment.from_json(s) for s in data]


def replay_schedule(
    train_fn: TrainFn,
    schedule: Sequence[Segment] | FrozenTrial,
    checkpoint_dir: str | os.PathLike[str],
) -> float:
    """Retrain a member from scratch in this process by following its schedule.

    ``checkpoint_dir`` must be empty or missing; it holds the retrained member at the end.
    Returns the last score. With a deterministic ``train_fn`` the result equals the member's.
    """
    segments = schedule_of(schedule) if isinstance(schedule, FrozenTrial) else list(schedule)
    if not segments or not all(isinstance(s, Segment) for s in segments):
        raise ValueError(
            f"`schedule` must be a non-empty list of Segment, got {schedule!r}. Use "
            "schedule_of(study.trials[i]) or PBTResult.schedules[member]."
        )
    folder = Path(checkpoint_dir)
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(
            f"`checkpoint_dir` {str(folder)!r} is not empty; replay starts from scratch. Pass an "
            "empty or new folder."
        )
    folder.mkdir(parents=True, exist_ok=True)
    score = math.nan
    for seg in segments:
        step = MemberStep(
            hparams=dict(seg.hparams),
            checkpoint_dir=str(folder),
            steps=seg.steps,
            start_step=seg.start_step,
            member=seg.member,
            seed=seg.seed,
        )
        score = float(train_fn(step))
    return score
