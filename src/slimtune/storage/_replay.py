"""Replay of journal records into study and trial state. Deterministic: same journal, same state.

Conflicts are settled by journal order: the first record wins, later conflicting ones are ignored.
A ``create_trial`` record is accepted only when its ``number`` is the study's next trial number and
its ``claim`` and budget ``slot`` (if any) are not held by a trial that did not fail, so no two
trials share a number, a claim or a slot.

Heartbeats: a trial created with a ``heartbeat`` policy in its system attributes is *watched*;
``heartbeat`` records move its last-seen time forward. A ``finish`` record may carry a ``retry``
(parameters to enqueue again); it takes effect only when that finish is the one that wins, so a
lost trial is failed and retried exactly once however many processes notice it. These records are
additions to format 1: older journals replay unchanged, and an older slimtune skips them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slimtune._trial import FrozenTrial, TrialState
from slimtune.space import Distribution, distribution_from_json

__all__ = ["JournalState", "StudyState"]

logger = logging.getLogger(__name__)


def _time(record: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(record.get("time", 0.0)), tz=UTC)


@dataclass
class StudyState:
    study_id: str
    name: str
    directions: list[str]
    seed: int | None
    space: dict[str, Any] | None
    datetime_created: datetime
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    trials: list[FrozenTrial] = field(default_factory=list)
    claims: dict[str, FrozenTrial] = field(default_factory=dict)
    queue: dict[str, dict[str, Any]] = field(default_factory=dict)  # enqueue_id -> params
    queue_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)  # enqueue_id -> attrs
    slots: dict[int, FrozenTrial] = field(default_factory=dict)  # budget slot -> holder
    watched: dict[str, float] = field(default_factory=dict)  # RUNNING trial_id -> last beat
    n_finished: int = 0


class JournalState:
    """Every live study and trial, built by applying records in journal order."""

    def __init__(self) -> None:
        self._dists: dict[
            tuple[Any, ...], Distribution
        ] = {}  # distributions are immutable: share them
        self.studies: dict[str, StudyState] = {}  # by study_id
        self.by_name: dict[str, str] = {}  # name -> study_id
        self.trials: dict[str, tuple[StudyState, FrozenTrial]] = {}  # by trial_id
        self.last_seq = 0

    def _dist(self, data: dict[str, Any]) -> Distribution:
        key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(data.items()))
        dist = self._dists.get(key)
        if dist is None:
            dist = self._dists[key] = distribution_from_json(data)
        return dist

    def apply(self, seq: int, record: dict[str, Any]) -> None:
        self.last_seq = max(self.last_seq, seq)
        handler = getattr(self, "_op_" + str(record.get("op")), None)
        if handler is None:
            logger.warning("journal record %d has unknown op %r; skipped", seq, record.get("op"))
            return
        try:
            handler(record)
        except (KeyError, TypeError, ValueError) as err:
            logger.warning(
                "journal record %d (%s) is malformed: %s; skipped", seq, record.get("op"), err
            )

    # studies ----------------------------------------------------------------------------------
    def _op_create_study(self, r: dict[str, Any]) -> None:
        if r["name"] in self.by_name:
            return  # first writer wins
        st = StudyState(
            study_id=r["study_id"],
            name=r["name"],
            directions=list(r["directions"]),
            seed=r.get("seed"),
            space=r.get("space"),
            datetime_created=_time(r),
            user_attrs=dict(r.get("user_attrs") or {}),
            system_attrs=dict(r.get("system_attrs") or {}),
        )
        self.studies[st.study_id] = st
        self.by_name[st.name] = st.study_id

    def _op_delete_study(self, r: dict[str, Any]) -> None:
        st = self.studies.pop(r["study_id"], None)
        if st is None:
            return
        self.by_name.pop(st.name, None)
        for t in st.trials:
            self.trials.pop(t.trial_id, None)

    def _op_study_attr(self, r: dict[str, Any]) -> None:
        st = self.studies.get(r["study_id"])
        if st is not None:
            target = st.system_attrs if r.get("system") else st.user_attrs
            target[r["key"]] = r["value"]

    def _op_enqueue(self, r: dict[str, Any]) -> None:
        st = self.studies.get(r["study_id"])
        if st is not None:
            st.queue[r["enqueue_id"]] = dict(r["params"])
            attrs = r.get("system_attrs")
            if attrs:
                st.queue_attrs[r["enqueue_id"]] = dict(attrs)

    # trials -----------------------------------------------------------------------------------
    def _op_create_trial(self, r: dict[str, Any]) -> None:
        st = self.studies.get(r["study_id"])
        if st is None or r["trial_id"] in self.trials or r["number"] != len(st.trials):
            return
        claim = r.get("claim")
        if claim is not None:
            holder = st.claims.get(claim)
            if holder is not None and holder.state is not TrialState.FAILED:
                return
        slot = r.get("slot")
        if slot is not None:
            slot = int(slot)
            holder = st.slots.get(slot)
            if holder is not None and holder.state is not TrialState.FAILED:
                return
        dists = {k: self._dist(v) for k, v in r.get("distributions", {}).items()}
        trial = FrozenTrial(
            number=r["number"],
            trial_id=r["trial_id"],
            state=TrialState.RUNNING,
            params=dict(r.get("params", {})),
            distributions=dists,
            seed=int(r["seed"]),
            datetime_start=_time(r),
            system_attrs=dict(r.get("system_attrs") or {}),
            user_attrs=dict(r.get("user_attrs") or {}),
        )
        st.trials.append(trial)
        self.trials[trial.trial_id] = (st, trial)
        if claim is not None:
            st.claims[claim] = trial
            if claim.startswith("enqueue:"):
                st.queue.pop(claim[len("enqueue:") :], None)
                st.queue_attrs.pop(claim[len("enqueue:") :], None)
        if slot is not None:
            st.slots[slot] = trial
        if isinstance(trial.system_attrs.get("heartbeat"), dict):
            st.watched[trial.trial_id] = float(r.get("time", 0.0))

    def _op_heartbeat(self, r: dict[str, Any]) -> None:
        when = float(r.get("time", 0.0))
        for trial_id in r["trial_ids"]:
            entry = self.trials.get(trial_id)
            if entry is None:
                continue
            st, t = entry
            if t.state is TrialState.RUNNING and trial_id in st.watched:
                st.watched[trial_id] = max(st.watched[trial_id], when)

    def _running(self, r: dict[str, Any]) -> FrozenTrial | None:
        entry = self.trials.get(r["trial_id"])
        if entry is None or entry[1].state is not TrialState.RUNNING:
            return None
        return entry[1]

    def _op_set_param(self, r: dict[str, Any]) -> None:
        t = self._running(r)
        if t is not None and r["name"] not in t.params:
            t.distributions[r["name"]] = self._dist(r["distribution"])
            t.params[r["name"]] = r["value"]

    def _op_report(self, r: dict[str, Any]) -> None:
        t = self._running(r)
        if t is not None and int(r["step"]) not in t.intermediate_values:
            t.intermediate_values[int(r["step"])] = float(r["value"])

    def _op_trial_attr(self, r: dict[str, Any]) -> None:
        t = self._running(r)
        if t is not None:
            target = t.system_attrs if r.get("system") else t.user_attrs
            target[r["key"]] = r["value"]

    def _op_constraints(self, r: dict[str, Any]) -> None:
        t = self._running(r)
        if t is not None:
            t.constraints = [float(c) for c in r["values"]]

    def _op_finish(self, r: dict[str, Any]) -> None:
        entry = self.trials.get(r["trial_id"])
        if entry is None or entry[1].state is not TrialState.RUNNING:
            return
        st, t = entry
        state = TrialState(r["state"])
        retry = r.get("retry")
        requeue: tuple[str, dict[str, Any], dict[str, Any]] | None = None
        if isinstance(retry, dict):  # parsed before any change: a malformed record changes nothing
            attrs = dict(retry.get("system_attrs") or {})
            requeue = (str(retry["enqueue_id"]), dict(retry["params"]), attrs)
        values = r.get("values")
        t.values = None if values is None else [float(v) for v in values]
        t.error = r.get("error")
        t.datetime_complete = _time(r)
        st.n_finished += 1
        st.watched.pop(t.trial_id, None)
        if requeue is not None:
            st.queue[requeue[0]] = requeue[1]
            st.queue_attrs[requeue[0]] = requeue[2]
        t.state = state  # last: a thread reading the live record never sees a half-finished one
