"""``Storage``: the journal of one backend plus its replayed state, and the URL parser."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slimtune._pareto import best_single
from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import (
    DuplicatedStudyError,
    SlimtuneError,
    StorageError,
    StudyNotFoundError,
)
from slimtune.space import Distribution
from slimtune.storage._journal import JournalBackend
from slimtune.storage._memory import MemoryJournal
from slimtune.storage._replay import JournalState, StudyState

__all__ = ["DEFAULT_STORAGE", "Storage", "StudySummary", "get_storage"]

#: The embedded default: one SQLite file in the working directory.
DEFAULT_STORAGE = "sqlite:///slimtune.db"


@dataclass(frozen=True)
class StudySummary:
    """What ``slimtune studies`` lists."""

    name: str
    directions: list[str]
    n_trials: int
    n_complete: int
    best_values: list[float] | None
    datetime_created: datetime


class Storage:
    """Study state replayed from an append-only journal.

    Every write is one journal append; every read first replays the records other processes
    appended since the last read. Many ``Storage`` objects (threads, processes, hosts) may share
    one journal.
    """

    def __init__(self, backend: JournalBackend, *, url: str | None = None) -> None:
        self.backend = backend
        self.url = url
        self._state = JournalState()
        self._lock = threading.RLock()
        # the journal's clock: a backend shared by many hosts (PostgreSQL) gives its server's,
        # so record times and heartbeat ages do not depend on which host's clock wrote them
        self._clock = getattr(backend, "now", None) or time.time

    def now(self) -> float:
        """Seconds since the epoch by the journal's clock (the server's for PostgreSQL, the local
        clock otherwise): the time every record is stamped with and heartbeats are judged by."""
        return float(self._clock())

    # pickling: a storage travels to worker processes as its URL -------------------------------
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self.url is None or self.url == "memory":
            raise StorageError(
                "in-memory storage cannot be shared with other processes. Use a SQLite or "
                "PostgreSQL URL, e.g. storage='sqlite:///slimtune.db'."
            )
        return (get_storage, (self.url,))

    def __repr__(self) -> str:
        return f"Storage({self.url or type(self.backend).__name__!r})"

    # journal ----------------------------------------------------------------------------------
    def sync(self) -> JournalState:
        """Replay every record appended since the last call; return the state."""
        with self._lock:
            for seq, record in self.backend.read(self._state.last_seq):
                self._state.apply(seq, record)
            return self._state

    def _write(self, record: dict[str, Any]) -> JournalState:
        record.setdefault("time", self.now())
        with self._lock:
            seqs = self.backend.append([record])
            if seqs and seqs[0] == self._state.last_seq + 1:
                # nothing was appended between our last read and this record: apply it here
                # instead of reading it back (records are built JSON-normal, so replaying the
                # stored copy would give the same state)
                self._state.apply(seqs[0], record)
                return self._state
            return self.sync()

    # studies ----------------------------------------------------------------------------------
    def create_study(
        self,
        name: str,
        *,
        directions: Sequence[str],
        seed: int | None,
        space: dict[str, Any] | None = None,
        load_if_exists: bool = False,
    ) -> str:
        """Create a study (or find it when ``load_if_exists``); return its id."""
        with self._lock:
            state = self.sync()
            if name in state.by_name:
                if load_if_exists:
                    return state.by_name[name]
                raise DuplicatedStudyError(
                    f"study {name!r} already exists in {self!r}. Pass load_if_exists=True to "
                    "resume it, or choose another name."
                )
            study_id = uuid.uuid4().hex
            state = self._write(
                {
                    "op": "create_study",
                    "study_id": study_id,
                    "name": name,
                    "directions": list(directions),
                    "seed": seed,
                    "space": space,
                }
            )
            winner = state.by_name.get(name)
            if winner != study_id and not load_if_exists:
                raise DuplicatedStudyError(
                    f"study {name!r} was created by another process at the same time. "
                    "Pass load_if_exists=True to share it."
                )
            assert winner is not None
            return winner

    def study_state(self, name: str) -> StudyState:
        state = self.sync()
        study_id = state.by_name.get(name)
        if study_id is None:
            known = sorted(state.by_name)
            hint = (
                f" Known studies: {', '.join(known[:10])}." if known else " The storage is empty."
            )
            raise StudyNotFoundError(f"no study named {name!r} in {self!r}.{hint}")
        return state.studies[study_id]

    def study_by_id(self, study_id: str) -> StudyState:
        state = self.sync()
        st = state.studies.get(study_id)
        if st is None:
            raise StudyNotFoundError(f"study {study_id!r} was deleted from {self!r}.")
        return st

    def delete_study(self, name: str) -> None:
        st = self.study_state(name)
        self._write({"op": "delete_study", "study_id": st.study_id})

    def set_study_attr(self, study_id: str, key: str, value: Any, *, system: bool = False) -> None:
        self._write(
            {
                "op": "study_attr",
                "study_id": study_id,
                "key": key,
                "value": _plain(f"study attribute {key!r}", value),
                "system": system,
            }
        )

    def list_studies(self) -> list[StudySummary]:
        with self._lock:
            state = self.sync()
            out = []
            for st in state.studies.values():
                done = [t for t in st.trials if t.state is TrialState.COMPLETE]
                top = best_single(done, st.directions[0]) if len(st.directions) == 1 else None
                best = None if top is None else top.values
                out.append(
                    StudySummary(
                        st.name,
                        list(st.directions),
                        len(st.trials),
                        len(done),
                        best,
                        st.datetime_created,
                    )
                )
            return out

    def enqueue(
        self, study_id: str, params: dict[str, Any], *, system_attrs: dict[str, Any] | None = None
    ) -> str:
        """Queue ``params`` for the next trial; ``system_attrs`` are copied onto that trial."""
        enqueue_id = uuid.uuid4().hex
        record: dict[str, Any] = {
            "op": "enqueue",
            "study_id": study_id,
            "enqueue_id": enqueue_id,
            "params": _plain("enqueued parameters", params),
        }
        if system_attrs:
            record["system_attrs"] = _plain("enqueued system attributes", system_attrs)
        self._write(record)
        return enqueue_id

    # trials -----------------------------------------------------------------------------------
    def create_trial(
        self,
        study_id: str,
        *,
        number: int,
        seed: int,
        params: dict[str, Any],
        distributions: dict[str, Distribution],
        claim: str | None = None,
        system_attrs: dict[str, Any] | None = None,
        slot: int | None = None,
    ) -> FrozenTrial | None:
        """Append a trial; return it, or ``None`` when journal order gave its number, claim or
        budget ``slot`` to another process first."""
        trial_id = uuid.uuid4().hex
        extra: dict[str, Any] = {} if slot is None else {"slot": int(slot)}
        state = self._write(
            {
                **extra,
                "op": "create_trial",
                "study_id": study_id,
                "trial_id": trial_id,
                "number": number,
                "seed": seed,
                "params": _plain("trial parameters", params),
                "distributions": {k: d.to_json() for k, d in distributions.items()},
                "claim": claim,
                "system_attrs": _plain("trial system attributes", system_attrs or {}),
            }
        )
        entry = state.trials.get(trial_id)
        return None if entry is None else entry[1]

    def get_trials(
        self, study_id: str, *, states: Iterable[TrialState] | None = None, copy: bool = True
    ) -> list[FrozenTrial]:
        with self._lock:
            trials = self.study_by_id(study_id).trials
            if states is not None:
                wanted = set(states)
                trials = [t for t in trials if t.state in wanted]
            return [t.copy() for t in trials] if copy else list(trials)

    def get_trial(self, trial_id: str) -> FrozenTrial:
        entry = self.sync().trials.get(trial_id)
        if entry is None:
            raise StorageError(f"trial {trial_id!r} is not in {self!r}.")
        return entry[1]

    def set_param(self, trial_id: str, name: str, value: Any, dist: Distribution) -> None:
        self._write(
            {
                "op": "set_param",
                "trial_id": trial_id,
                "name": name,
                "value": value,
                "distribution": dist.to_json(),
            }
        )

    def report(self, trial_id: str, step: int, value: float) -> None:
        self._write({"op": "report", "trial_id": trial_id, "step": step, "value": value})

    def set_trial_attr(self, trial_id: str, key: str, value: Any, *, system: bool = False) -> None:
        self._write(
            {
                "op": "trial_attr",
                "trial_id": trial_id,
                "key": key,
                "value": _plain(f"trial attribute {key!r}", value),
                "system": system,
            }
        )

    def set_constraints(self, trial_id: str, values: Sequence[float]) -> None:
        self._write({"op": "constraints", "trial_id": trial_id, "values": list(values)})

    def heartbeat(self, trial_ids: Sequence[str]) -> None:
        """Record that ``trial_ids`` are alive (one append, no read back)."""
        if trial_ids:
            record = {"op": "heartbeat", "trial_ids": list(trial_ids), "time": self.now()}
            self.backend.append([record])

    def lost_trials(self, study_id: str, *, now: float | None = None) -> list[FrozenTrial]:
        """RUNNING trials with a heartbeat policy whose last heartbeat is older than its grace
        (by the journal's clock, ``now()``)."""
        now = self.now() if now is None else now
        with self._lock:
            st = self.study_by_id(study_id)
            if not st.watched:
                return []
            state = self._state
            out = []
            for trial_id, last in st.watched.items():
                t = state.trials[trial_id][1]
                policy = t.system_attrs.get("heartbeat") or {}
                if now - last > float(policy.get("grace", float("inf"))):
                    out.append(t)
            return out

    def finish_trial(
        self,
        trial_id: str,
        state: TrialState,
        *,
        values: Sequence[float] | None = None,
        error: dict[str, str] | None = None,
        retry: dict[str, Any] | None = None,
    ) -> FrozenTrial:
        """Record the end of a trial; the first finish in journal order wins. ``retry``
        (``{"params": ..., "system_attrs": ...}``) is enqueued only if this finish wins."""
        if state is TrialState.RUNNING:
            raise ValueError("finish_trial needs a finished state, got RUNNING.")
        record: dict[str, Any] = {
            "op": "finish",
            "trial_id": trial_id,
            "state": state.value,
            "values": None if values is None else [float(v) for v in values],
            "error": error,
        }
        if retry is not None:
            record["retry"] = {
                "enqueue_id": uuid.uuid4().hex,
                "params": _plain("retried parameters", retry.get("params", {})),
                "system_attrs": _plain("retry attributes", retry.get("system_attrs", {})),
            }
        new = self._write(record)
        entry = new.trials.get(trial_id)
        if entry is None:
            raise StorageError(f"trial {trial_id!r} vanished from {self!r} (study deleted?).")
        return entry[1]


def _plain(what: str, value: Any) -> Any:
    """A JSON-normalised deep copy of a user value (tuples become lists, ...), or a clear error."""
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as err:
        raise SlimtuneError(
            f"{what} must be JSON-able (numbers, strings, lists, dicts), got "
            f"{type(value).__name__}: {err}. Convert it first, e.g. to a list or a str."
        ) from err


def get_storage(storage: str | Storage | None) -> Storage:
    """A ``Storage`` from a URL: ``memory``, ``sqlite:///path.db`` or ``postgresql://...``."""
    if isinstance(storage, Storage):
        return storage
    if storage is None:
        storage = DEFAULT_STORAGE
    if not isinstance(storage, str):
        raise StorageError(
            f"`storage` must be a URL string or a Storage, got {storage!r}. "
            f"Pass e.g. {DEFAULT_STORAGE!r}."
        )
    url = storage.strip()
    if url in ("memory", "memory://", ":memory:"):
        return Storage(MemoryJournal(), url="memory")
    if url.startswith("sqlite:///"):
        from slimtune.storage._sqlite import SQLiteJournal

        path = url[len("sqlite:///") :]
        if not path or path == ":memory:":
            raise StorageError(
                f"`storage` {url!r} names no file. Use e.g. 'sqlite:///slimtune.db', or 'memory'."
            )
        return Storage(SQLiteJournal(os.path.expanduser(path)), url=url)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from slimtune.storage._postgres import PostgresJournal

        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        return Storage(PostgresJournal(dsn), url=url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise StorageError(
        f"`storage` has unknown scheme {scheme!r} in {url!r}. Use 'memory', "
        "'sqlite:///path.db' or 'postgresql://user:pass@host:port/db'."
    )
