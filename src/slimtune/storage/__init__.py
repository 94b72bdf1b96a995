"""Storage: an append-only journal of study events on memory, SQLite or PostgreSQL."""

from __future__ import annotations

from slimtune.storage._journal import FORMAT_VERSION, JournalBackend
from slimtune.storage._memory import MemoryJournal
from slimtune.storage._postgres import PostgresJournal
from slimtune.storage._sqlite import SQLiteJournal
from slimtune.storage._storage import DEFAULT_STORAGE, Storage, StudySummary, get_storage

__all__ = [
    "DEFAULT_STORAGE",
    "FORMAT_VERSION",
    "JournalBackend",
    "MemoryJournal",
    "PostgresJournal",
    "SQLiteJournal",
    "Storage",
    "StudySummary",
    "get_storage",
]
