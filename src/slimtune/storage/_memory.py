"""In-process journal backend; nothing survives the process."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from slimtune.storage._journal import encode_record

__all__ = ["MemoryJournal"]


class MemoryJournal:
    """A list in memory, safe to share between threads of one process."""

    def __init__(self) -> None:
        self._records: list[str] = []
        self._lock = threading.Lock()

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        # kept as JSON text, like every other backend: compact, no aliasing, same value types
        copies = [encode_record(r) for r in records]
        with self._lock:
            self._records.extend(copies)

    def read(self, after: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            tail = self._records[max(after, 0) :]
            start = max(after, 0)
        return [(start + i + 1, json.loads(r)) for i, r in enumerate(tail)]
