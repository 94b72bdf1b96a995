"""The journal: an append-only log of study events, and the protocol its backends implement."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from slimtune.exceptions import JournalVersionError

__all__ = ["FORMAT_VERSION", "JournalBackend", "decode_record", "encode_record"]

logger = logging.getLogger(__name__)

#: Version of the record format this slimtune writes and the newest it can read.
FORMAT_VERSION = 1


@runtime_checkable
class JournalBackend(Protocol):
    """Where journal records live. Two methods; order is the backend's sequence order.

    ``append`` writes all ``records`` atomically and in order, after every record already in the
    journal (first writer wins); it may return their sequence numbers (``None`` when it cannot
    tell), which lets a writer that saw every earlier record skip reading its own back. ``read``
    returns ``(seq, record)`` pairs with ``seq > after`` in increasing order; no record may ever
    appear with a smaller ``seq`` than one already returned.

    A backend that many hosts share may also offer ``now() -> float``, seconds since the epoch
    by one clock they all see (a database server's); ``Storage`` then stamps records and judges
    heartbeats by it instead of the local clock.
    """

    def append(self, records: Sequence[dict[str, Any]]) -> list[int] | None: ...

    def read(self, after: int) -> list[tuple[int, dict[str, Any]]]: ...


def encode_record(record: dict[str, Any]) -> str:
    return json.dumps({"v": FORMAT_VERSION, **record}, separators=(",", ":"), allow_nan=True)


def check_format_version(version: int, where: str) -> None:
    if version > FORMAT_VERSION:
        raise JournalVersionError(
            f"{where} was written with journal format {version}, newer than the {FORMAT_VERSION} "
            "this slimtune reads. Upgrade slimtune (pip install -U slimtune) to open it."
        )


def decode_record(seq: int, body: str | bytes, where: str) -> dict[str, Any] | None:
    """Parse one stored record; ``None`` (with a warning) for a corrupt one."""
    try:
        record = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        logger.warning("%s: journal record %d is not valid JSON; skipped", where, seq)
        return None
    if not isinstance(record, dict) or "op" not in record:
        logger.warning("%s: journal record %d has no 'op'; skipped", where, seq)
        return None
    version = record.get("v", 1)
    if not isinstance(version, int):
        logger.warning("%s: journal record %d has a bad version %r; skipped", where, seq, version)
        return None
    check_format_version(version, f"{where} (record {seq})")
    return record
