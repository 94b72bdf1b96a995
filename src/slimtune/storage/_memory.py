"""In-process journal backend; nothing survives the process."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["MemoryJournal"]


class MemoryJournal:
    """A list in memory, safe to share between threads of one process.

    Records are kept as given: ``Storage`` builds a fresh record for every write and copies user
    values (attributes, enqueued parameters) through JSON first, and replay never mutates a record,
    so nothing is aliased with the caller.
    """

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def append(self, records: Sequence[dict[str, Any]]) -> list[int]:
        with self._lock:
            start = len(self._records)
            self._records.extend(records)
            return list(range(start + 1, start + 1 + len(records)))

    def read(self, after: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            start = max(after, 0)
            tail = self._records[start:]
        return [(start + i + 1, r) for i, r in enumerate(tail)]
