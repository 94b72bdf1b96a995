"""PostgreSQL for benchmarks: a fresh database per run, or a throw-away server of our own."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench._common import REPO_ROOT

__all__ = ["POSTGRES_SCRIPT", "FreshDatabases", "throwaway_postgres"]

POSTGRES_SCRIPT = REPO_ROOT / ".ci" / "postgres.sh"


class FreshDatabases:
    """Hands out a fresh database per run (dropped afterwards) on the server at ``url``.

    Where the role may not create databases, every run gets ``url``'s own database and callers
    must use distinct study names instead (``shared`` is then true). Raises ``psycopg.Error``
    (or ``ImportError``) when the server cannot be reached.
    """

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with self._admin() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        self.server_version = str(row[0]) if row else "?"
        self.shared = False
        try:
            self.drop(self.new_database())
        except psycopg.Error:
            self.shared = True

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, connect_timeout=10, autocommit=True)

    def new_database(self) -> str:
        """The ``postgresql://`` URL of a new, empty database."""
        if self.shared:
            return self.url
        name = f"slimtune_bench_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return urlunsplit(urlsplit(self.url)._replace(path="/" + name))

    def drop(self, url: str) -> None:
        if self.shared or url == self.url:
            return
        name = urlsplit(url).path.lstrip("/")
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """Start a server with ``.ci/postgres.sh`` in a temporary folder; yield its URL, or ``None``
    (with a note on stderr) when it cannot start. The server is stopped on exit."""
    folder = tempfile.mkdtemp(prefix="slimtune-bench-pg-")
    url: str | None = None
    try:
        proc = subprocess.run(
            ["bash", str(POSTGRES_SCRIPT), "start", folder],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        lines = proc.stdout.strip().splitlines()
        url = lines[-1].strip() if lines else None
    except (OSError, subprocess.SubprocessError) as err:
        detail = str(getattr(err, "stderr", None) or err).strip()[-300:]
        print(f"note: could not start a throw-away PostgreSQL: {detail}", file=sys.stderr)
    try:
        yield url
    finally:
        if url is not None:
            subprocess.run(
                ["bash", str(POSTGRES_SCRIPT), "stop", folder],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)
