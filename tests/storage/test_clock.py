"""The journal's clock: records are stamped, and heartbeats judged, by one clock that every host
sharing the journal sees (the PostgreSQL server's), not by each host's own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

import slimtune
from slimtune.storage import MemoryJournal, Storage, get_storage
from slimtune.study import Heartbeat


class _ClockJournal(MemoryJournal):
    """A memory journal with its own clock, as a shared database server has."""

    def __init__(self, start: float) -> None:
        super().__init__()
        self.clock = start

    def now(self) -> float:
        return self.clock


def test_storage_stamps_records_and_judges_heartbeats_by_the_backends_clock():
    backend = _ClockJournal(1_000_000.0)
    study = slimtune.create_study("c", storage=Storage(backend))
    study._heartbeat = Heartbeat(interval=1.0, grace=10.0, max_retries=0)
    trial = study.ask()
    study._heartbeat = None
    assert study.storage.now() == 1_000_000.0
    assert trial.frozen().datetime_start.timestamp() == 1_000_000.0
    # the local clock is decades ahead of the backend's: that alone does not lose the trial
    assert study.storage.lost_trials(study._study_id) == []
    backend.clock += 11.0
    assert [t.trial_id for t in study.storage.lost_trials(study._study_id)] == [trial.trial_id]
    study.storage.heartbeat([trial.trial_id])
    assert study.storage.lost_trials(study._study_id) == []


def test_backends_without_a_clock_use_the_local_one(tmp_path):
    storage = get_storage(f"sqlite:///{tmp_path}/c.db")
    before = time.time()
    assert before <= storage.now() <= time.time()


@pytest.mark.postgres
def test_postgres_clock_is_the_servers_whatever_the_local_clock(postgres_url, monkeypatch):
    from slimtune.storage._postgres import PostgresJournal

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600.0)
    journal = PostgresJournal(postgres_url)
    try:
        assert abs(journal.now() - real()) < 5.0
    finally:
        journal.close()


@pytest.mark.postgres
def test_postgres_clock_offset_is_measured_again_after_the_refresh_interval(
    postgres_url, monkeypatch
):
    from slimtune.storage import _postgres

    real = time.time
    journal = _postgres.PostgresJournal(postgres_url)
    try:
        assert abs(journal.now() - real()) < 5.0
        monkeypatch.setattr(time, "time", lambda: real() + 600.0)  # the local clock jumps
        assert journal.now() - real() > 500.0  # within the interval the old offset holds
        monkeypatch.setattr(_postgres, "CLOCK_REFRESH_SECONDS", 0.0)
        assert abs(journal.now() - real()) < 5.0  # measured again: the server's time
    finally:
        journal.close()


_SKEWED_WORKER = """
import sys, time
_real = time.time
time.time = lambda: _real() + float(sys.argv[2])  # this host's clock is off by argv[2] seconds
import slimtune
from slimtune.study import Heartbeat
study = slimtune.create_study("skew", storage=sys.argv[1], seed=0)
study._heartbeat = Heartbeat(interval=0.1, grace=float(sys.argv[3]), max_retries=0)
trial = study.ask()
study.storage.heartbeat([trial.trial_id])
print(study._study_id, trial.trial_id)
"""


@pytest.mark.postgres
@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_a_skewed_host_neither_loses_a_live_trial_nor_keeps_a_dead_one(postgres_url, skew):
    grace = 2.0
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_SKEWED_WORKER),
            postgres_url,
            str(skew),
            str(grace),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    study_id, trial_id = out[0], out[1]
    storage = get_storage(postgres_url)
    # an hour behind, the heartbeat would look an hour old to this host: it must not be lost
    assert storage.lost_trials(study_id) == []
    assert abs(storage.get_trial(trial_id).datetime_start.timestamp() - time.time()) < 30.0
    # an hour ahead, it would look fresh for an hour: it must be lost once `grace` has passed
    time.sleep(grace + 0.5)
    assert [t.trial_id for t in storage.lost_trials(study_id)] == [trial_id]
