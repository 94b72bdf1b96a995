"""The scheduler protocol: whether a running trial should stop early."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from slimtune._trial import FrozenTrial

__all__ = ["Decision", "NeverStop", "Scheduler"]


class Decision(enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"


@runtime_checkable
class Scheduler(Protocol):
    """Decides from reported intermediate values whether ``trial`` goes on.

    ``trials`` are all trials of the study (read-only), the deciding trial included.
    ``directions`` says whether lower (``"minimize"``) or higher values are better.
    """

    def decide(
        self, trial: FrozenTrial, trials: Sequence[FrozenTrial], *, directions: Sequence[str]
    ) -> Decision: ...


class NeverStop:
    """The default: every trial runs to the end."""

    def decide(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        directions: Sequence[str] = ("minimize",),
    ) -> Decision:
        return Decision.CONTINUE

    def __repr__(self) -> str:
        return "NeverStop()"
