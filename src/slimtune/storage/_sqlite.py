"""SQLite journal backend: one file, WAL mode, retried when another process holds the lock."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from slimtune.exceptions import StorageError
from slimtune.storage._journal import (
    FORMAT_VERSION,
    check_format_version,
    decode_record,
    encode_record,
)

__all__ = ["SQLiteJournal"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS slimtune_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS slimtune_journal "
    "(seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)",
)


class SQLiteJournal:
    """The journal in one SQLite file (created on first use, parent folder must exist)."""

    def __init__(self, path: str, *, busy_timeout: float = 60.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise StorageError(
                f"SQLite storage: folder {parent!r} of {path!r} does not exist. Create it first."
            )
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._retry(self._init_schema)
        except sqlite3.DatabaseError as err:
            raise StorageError(
                f"SQLite storage {path!r} cannot be opened: {err}. Is it a slimtune database?"
            ) from err

    def _init_schema(self) -> None:
        cur = self._conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            logger.warning("SQLite storage %s: WAL mode unavailable (%s)", self.path, mode)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA:
                cur.execute(stmt)
            cur.execute(
                "INSERT OR IGNORE INTO slimtune_meta (key, value) VALUES ('format_version', ?)",
                (str(FORMAT_VERSION),),
            )
            row = cur.execute(
                "SELECT value FROM slimtune_meta WHERE key = 'format_version'"
            ).fetchone()
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        check_format_version(int(row[0]), f"SQLite storage {self.path!r}")

    def _retry(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.005
        while True:
            try:
                with self._lock:
                    return fn()
            except sqlite3.OperationalError as err:
                msg = str(err).lower()
                if ("locked" not in msg and "busy" not in msg) or time.monotonic() > deadline:
                    raise StorageError(f"SQLite storage {self.path!r}: {err}") from err
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.2)

    def append(self, records: Sequence[dict[str, Any]]) -> list[int]:
        bodies = [(encode_record(r),) for r in records]

        def write() -> list[int]:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                seqs = []
                for body in bodies:  # one writer at a time (IMMEDIATE): rowids are consecutive
                    cur.execute("INSERT INTO slimtune_journal (body) VALUES (?)", body)
                    seqs.append(int(cur.lastrowid or 0))
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
            return seqs

        return self._retry(write)

    def read(self, after: int) -> list[tuple[int, dict[str, Any]]]:
        def fetch() -> list[tuple[int, str]]:
            return self._conn.execute(
                "SELECT seq, body FROM slimtune_journal WHERE seq > ? ORDER BY seq", (after,)
            ).fetchall()

        rows = self._retry(fetch)
        out = []
        for seq, body in rows:
            record = decode_record(seq, body, f"SQLite storage {self.path!r}")
            if record is not None:
                out.append((seq, record))
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()
