"""``slimtune worker`` processes: kill -9 mid-trial (SQLite, PostgreSQL), two workers in separate
working folders sharing one PostgreSQL study, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import slimtune
from slimtune import TrialState

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

REPO_SRC = str(Path(slimtune.__file__).resolve().parents[1])

OBJECTIVE = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    def objective(trial):
        x = trial.suggest_float("x", -1.0, 1.0)
        trial.set_user_attr("cwd", os.getcwd())
        Path(f"started_{trial.number}").write_text(str(os.getpid()))
        time.sleep(float(os.environ.get("TRIAL_SECONDS", "0.3")))
        return x * x
    """
)


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "objmod.py").write_text(OBJECTIVE)
    return folder


def _worker(folder: Path, url: str, *extra: str, seconds: float = 0.3) -> subprocess.Popen[str]:
    env = {**os.environ, "TRIAL_SECONDS": str(seconds), "PYTHONPATH": REPO_SRC}
    args = ["--heartbeat-interval", "0.5", "--grace", "2", "--max-retries", "1", *extra]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "slimtune.cli",
            "worker",
            "--storage",
            url,
            "--study",
            "w",
            "--objective",
            "objmod:objective",
            *args,
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return err


def test_kill_9_mid_trial_fails_retries_and_ends_with_exactly_n_complete(
    shared_storage_url, tmp_path
):
    slimtune.create_study("w", storage=shared_storage_url, seed=0)
    a_dir, b_dir = _folder(tmp_path, "a"), _folder(tmp_path, "b")
    a = _worker(a_dir, shared_storage_url, "--n-trials", "6", seconds=1.5)
    _wait_for(a_dir / "started_0")
    b = _worker(b_dir, shared_storage_url, "--n-trials", "6")
    time.sleep(0.3)
    a.kill()  # SIGKILL in the middle of trial 0
    a.wait(timeout=30)
    _finish(b)
    trials = slimtune.load_study("w", storage=shared_storage_url).trials
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    failed = [t for t in trials if t.state is TrialState.FAILED]
    assert len(complete) == 6
    assert all(t.state is not TrialState.RUNNING for t in trials)
    assert [t.number for t in failed] == [0]
    assert failed[0].error is not None and failed[0].error["type"] == "WorkerLost"
    retried = [t for t in complete if t.system_attrs.get("retry_of") == 0]
    assert len(retried) == 1  # retried exactly once, with the same parameters
    assert retried[0].params == failed[0].params
    assert retried[0].system_attrs["retries"] == 1
    assert retried[0].seed == failed[0].seed
    xs = [t.params["x"] for t in complete]
    assert len(set(xs)) == len(xs)  # none duplicated


@pytest.mark.postgres
def test_two_workers_in_separate_folders_share_one_postgres_study(postgres_url, tmp_path):
    slimtune.create_study("w", storage=postgres_url, seed=0)
    folders = [_folder(tmp_path, "host1"), _folder(tmp_path, "host2")]
    procs = [_worker(f, postgres_url, "--n-trials", "12", seconds=0.2) for f in folders]
    for p in procs:
        _finish(p)
    trials = slimtune.load_study("w", storage=postgres_url).trials
    assert len(trials) == 12
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["cwd"] for t in trials} == {str(f) for f in folders}
    assert sorted(t.number for t in trials) == list(range(12))


def test_sigterm_records_the_running_trial_and_exits(tmp_path):
    url = f"sqlite:///{tmp_path}/term.db"
    slimtune.create_study("w", storage=url, seed=0)
    folder = _folder(tmp_path, "a")
    proc = _worker(folder, url, "--n-trials", "3", seconds=60)
    _wait_for(folder / "started_0")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    study = slimtune.load_study("w", storage=url)
    (trial,) = study.trials
    assert trial.state is TrialState.FAILED
    assert trial.error is not None and trial.error["type"] == "WorkerShutdown"
    assert "SIGTERM" in trial.error["message"]
    st = study.storage.study_by_id(study._study_id)
    assert len(st.queue) == 1  # the policy allows a retry: its parameters wait in the queue


HANGS_ON_1 = textwrap.dedent(
    """
    import time
    from pathlib import Path

    def objective(trial):
        x = trial.suggest_float("x", -1.0, 1.0)
        Path(f"started_{trial.number}").write_text("")
        time.sleep(120 if trial.number == 1 else 0.1)
        return x * x
    """
)


def test_trial_timeout_fails_the_hung_trial_and_the_worker_goes_on(tmp_path):
    url = f"sqlite:///{tmp_path}/timeout.db"
    slimtune.create_study("w", storage=url, seed=0)
    folder = _folder(tmp_path, "a")
    (folder / "objmod.py").write_text(HANGS_ON_1)
    proc = _worker(folder, url, "--n-trials", "3", "--trial-timeout", "3")
    err = _finish(proc)
    assert "ran 4 trial(s)" in err
    trials = slimtune.load_study("w", storage=url).trials
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3
    (hung,) = [t for t in trials if t.state is TrialState.FAILED]
    assert hung.number == 1
    assert hung.error is not None and hung.error["type"] == "WorkerLostError"
    assert "timeout=3.0" in hung.error["message"]


def test_sigterm_with_a_trial_timeout_records_the_running_trial(tmp_path):
    url = f"sqlite:///{tmp_path}/term2.db"
    slimtune.create_study("w", storage=url, seed=0)
    folder = _folder(tmp_path, "a")
    proc = _worker(folder, url, "--n-trials", "3", "--trial-timeout", "600", seconds=60)
    _wait_for(folder / "started_0")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (trial,) = slimtune.load_study("w", storage=url).trials
    assert trial.state is TrialState.FAILED
    assert trial.error is not None and trial.error["type"] == "WorkerShutdown"


def test_bad_trial_timeout_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path}/bad.db"
    slimtune.create_study("w", storage=url, seed=0)
    folder = _folder(tmp_path, "a")
    proc = _worker(folder, url, "--n-trials", "1", "--trial-timeout", "-1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "--trial-timeout must be a finite number of seconds > 0, got -1" in err
    assert slimtune.load_study("w", storage=url).trials == []
