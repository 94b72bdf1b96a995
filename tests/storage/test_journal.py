"""Journal format versioning, corrupt data and storage URLs."""

from __future__ import annotations

import logging
import sqlite3

import pytest

import slimtune
from slimtune import TrialState
from slimtune.exceptions import JournalVersionError, SlimtuneError, StorageError
from slimtune.storage import FORMAT_VERSION, MemoryJournal, Storage, get_storage


def test_newer_record_version_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path}/v.db"
    slimtune.create_study("s", storage=url)
    conn = sqlite3.connect(tmp_path / "v.db")
    conn.execute(
        "INSERT INTO slimtune_journal (body) VALUES (?)",
        (f'{{"v": {FORMAT_VERSION + 1}, "op": "from_the_future"}}',),
    )
    conn.commit()
    conn.close()
    with pytest.raises(JournalVersionError, match="Upgrade slimtune"):
        slimtune.load_study("s", storage=url)


def test_newer_file_format_is_refused_on_open(tmp_path):
    url = f"sqlite:///{tmp_path}/v.db"
    slimtune.create_study("s", storage=url)
    conn = sqlite3.connect(tmp_path / "v.db")
    conn.execute("UPDATE slimtune_meta SET value = '99' WHERE key = 'format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(JournalVersionError, match="format 99"):
        get_storage(url)


def test_newer_version_on_postgres(postgres_url):
    import psycopg

    get_storage(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE slimtune_meta SET value = '7' WHERE key = 'format_version'")
    with pytest.raises(JournalVersionError):
        get_storage(postgres_url)


def test_corrupt_record_is_skipped_and_nothing_else_is_lost(tmp_path, caplog):
    url = f"sqlite:///{tmp_path}/c.db"
    study = slimtune.create_study("s", storage=url, seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.execute("INSERT INTO slimtune_journal (body) VALUES ('{not json')")
    conn.commit()
    conn.close()
    with caplog.at_level(logging.WARNING):
        again = slimtune.load_study("s", storage=url)
        again.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert "not valid JSON" in caplog.text
    trials = slimtune.load_study("s", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5


def test_a_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "junk.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot be opened") as info:
        get_storage(f"sqlite:///{bad}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://localhost/db", "unknown scheme 'mysql'"),
        ("slimtune.db", "unknown scheme"),
        ("sqlite:///", "names no file"),
    ],
)
def test_bad_urls(url, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError, match=fragment) as info:
        slimtune.create_study("s", storage=url)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_missing_folder_creates_nothing(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        get_storage(f"sqlite:///{tmp_path}/no/such/dir/x.db")
    assert list(tmp_path.iterdir()) == []


def test_unreachable_postgres_is_one_line():
    # port 1 on loopback: nothing listens there
    with pytest.raises(StorageError, match="unreachable") as info:
        get_storage("postgresql://nobody@127.0.0.1:1/nothing")
    assert "\n" not in str(info.value)
    assert isinstance(info.value, SlimtuneError)


def test_storage_url_password_is_redacted():
    with pytest.raises(StorageError) as info:
        get_storage("postgresql://user:secret@127.0.0.1:1/db")
    assert "secret" not in str(info.value)


def test_memory_storage_cannot_be_pickled():
    import pickle

    with pytest.raises(StorageError, match="in-memory storage cannot be shared"):
        pickle.dumps(Storage(MemoryJournal(), url="memory"))


def test_sqlite_storage_pickles_as_its_url(tmp_path):
    import pickle

    url = f"sqlite:///{tmp_path}/p.db"
    slimtune.create_study("s", storage=url)
    clone = pickle.loads(pickle.dumps(get_storage(url)))
    assert clone.url == url and [s.name for s in clone.list_studies()] == ["s"]
