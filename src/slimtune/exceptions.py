"""Exceptions raised by slimtune.

Every error slimtune raises on purpose derives from :class:`SlimtuneError`; subclasses also mix in
the built-in exception a caller would expect (``ValueError`` for bad values, ``ImportError`` for a
missing optional dependency, ...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "DuplicatedStudyError",
    "InvalidSpaceError",
    "JournalVersionError",
    "MissingExtraError",
    "PlanMismatchError",
    "PruneTraceError",
    "SearchSpaceExhausted",
    "SlimtuneError",
    "StorageError",
    "StudyNotFoundError",
    "TrialStopped",
    "UnsupportedLayerError",
    "UnsupportedModuleError",
]


class SlimtuneError(Exception):
    """Root of every error raised by slimtune."""


class InvalidSpaceError(SlimtuneError, ValueError):
    """A search-space definition or a suggested value breaks a rule of its distribution."""


class StorageError(SlimtuneError, RuntimeError):
    """A storage URL is malformed, unreachable, or its contents cannot be read."""


class JournalVersionError(StorageError):
    """The journal was written by a newer slimtune whose format this version cannot read."""


class StudyNotFoundError(SlimtuneError, KeyError):
    """No study of that name exists in the storage."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class DuplicatedStudyError(SlimtuneError, ValueError):
    """A study of that name already exists and ``load_if_exists`` was not set."""


class MissingExtraError(SlimtuneError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class SearchSpaceExhausted(SlimtuneError):
    """A sampler has no configuration left to propose (for example a finished grid)."""


class TrialStopped(SlimtuneError):
    """Raise inside an objective to stop the trial early; it is recorded STOPPED.

    The trial keeps the last value it reported with :meth:`Trial.report`.
    """


class PruneTraceError(SlimtuneError, TypeError):
    """torch.fx could not trace a model for pruning; the message names the module."""


class UnsupportedModuleError(SlimtuneError, TypeError):
    """A module with parameters has no pruning handler; the message names it and the fix."""


class PlanMismatchError(SlimtuneError, ValueError):
    """A prune plan does not fit the model it is applied to (missing module, wrong size)."""


class UnsupportedLayerError(SlimtuneError, TypeError):
    """A transform met a layer it cannot handle (for example quantising an LSTM in strict mode)."""


class CalibrationError(SlimtuneError, ValueError):
    """Calibration data is missing, empty or does not fit the model."""
