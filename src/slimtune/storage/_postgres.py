"""PostgreSQL journal backend: one table shared by processes on many hosts.

Appends take a transaction-level advisory lock before drawing sequence numbers, so numbers are
handed out in commit order and a reader that has seen record ``n`` can never later find a record
below ``n``. Each append and each read is one statement (one round trip) in autocommit mode.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from slimtune.exceptions import MissingExtraError, StorageError
from slimtune.storage._journal import (
    FORMAT_VERSION,
    check_format_version,
    decode_record,
    encode_record,
)

__all__ = ["PostgresJournal"]

_LOCK_KEY = 0x5EED5_1173  # advisory-lock key for journal appends and schema creation

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS slimtune_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS slimtune_journal (seq BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)",
)


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


#: How often (seconds) ``PostgresJournal.now`` re-measures the server clock's offset.
CLOCK_REFRESH_SECONDS = 60.0


class PostgresJournal:
    """The journal in a PostgreSQL database given by a ``postgresql://`` URL."""

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        try:
            import psycopg
        except ImportError as err:
            raise MissingExtraError(
                "PostgreSQL storage needs psycopg. "
                "Install it with: pip install 'slimtune[postgres]'"
            ) from err
        self.url = url
        self._where = f"PostgreSQL storage {_redact(url)!r}"
        self._lock = threading.Lock()
        self._offset = 0.0  # server clock minus local clock, seconds
        self._offset_at: float | None = None  # time.monotonic() of the last measurement
        try:
            self._conn = psycopg.connect(
                url, connect_timeout=max(1, int(connect_timeout)), autocommit=True
            )
        except psycopg.Error as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise StorageError(
                f"{self._where} is unreachable: {first}. Check host, port, user and that the "
                "server is running."
            ) from err
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                for stmt in _SCHEMA:
                    self._conn.execute(stmt)
                self._conn.execute(
                    "INSERT INTO slimtune_meta (key, value) VALUES ('format_version', %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (str(FORMAT_VERSION),),
                )
                row = self._conn.execute(
                    "SELECT value FROM slimtune_meta WHERE key = 'format_version'"
                ).fetchone()
        except psycopg.Error as err:
            self._conn.close()
            raise StorageError(f"{self._where}: cannot prepare the journal: {err}") from err
        assert row is not None
        check_format_version(int(row[0]), self._where)

    def append(self, records: Sequence[dict[str, Any]]) -> list[int]:
        import psycopg

        bodies = [encode_record(r) for r in records]
        with self._lock:
            try:
                # one statement = one transaction: the lock is taken (CTE) before any nextval
                rows = self._conn.execute(
                    "WITH lock AS (SELECT pg_advisory_xact_lock(%s)) "
                    "INSERT INTO slimtune_journal (body) "
                    "SELECT b FROM lock, unnest(%b::text[]) WITH ORDINALITY AS r(b, i) ORDER BY i "
                    "RETURNING seq",
                    (_LOCK_KEY, bodies),
                ).fetchall()
            except psycopg.Error as err:
                raise StorageError(f"{self._where}: append failed: {err}") from err
        return sorted(int(r[0]) for r in rows)

    def read(self, after: int) -> list[tuple[int, dict[str, Any]]]:
        import psycopg

        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT seq, body FROM slimtune_journal WHERE seq > %s ORDER BY seq",
                    (after,),
                ).fetchall()
            except psycopg.Error as err:
                raise StorageError(f"{self._where}: read failed: {err}") from err
        out = []
        for seq, body in rows:
            record = decode_record(int(seq), body, self._where)
            if record is not None:
                out.append((int(seq), record))
        return out

    def now(self) -> float:
        """Seconds since the epoch by the server's clock.

        Every host that shares the journal stamps its records and judges heartbeats by this one
        clock, so skew between the hosts' own clocks cannot fail a live trial or keep a dead one.
        It is the local clock plus an offset measured against ``clock_timestamp()`` (one small
        query, repeated at most every ``CLOCK_REFRESH_SECONDS``)."""
        import psycopg

        with self._lock:
            if (
                self._offset_at is None
                or time.monotonic() - self._offset_at > CLOCK_REFRESH_SECONDS
            ):
                try:
                    before = time.time()
                    row = self._conn.execute(
                        "SELECT extract(epoch FROM clock_timestamp())"
                    ).fetchone()
                    after = time.time()
                except psycopg.Error as err:
                    raise StorageError(
                        f"{self._where}: reading the server clock failed: {err}"
                    ) from err
                assert row is not None
                self._offset = float(row[0]) - (before + after) / 2
                self._offset_at = time.monotonic()
            return time.time() + self._offset

    def close(self) -> None:
        with self._lock:
            self._conn.close()
