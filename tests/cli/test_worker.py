"""``slimtune worker``: runs a shared study's trials; bad input is one ``error:`` line."""

from __future__ import annotations

from pathlib import Path

import pytest

import slimtune
from slimtune import TrialState
from slimtune.cli import main


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "wobj.py").write_text(
        "def objective(trial):\n"
        "    return trial.suggest_float('x', 0.0, 1.0)\n"
        "NOT_CALLABLE = 3\n"
        "def always_fails(trial):\n"
        "    raise RuntimeError('broken objective')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:"), err
    assert len(err.splitlines()) <= 2, err  # one message (rich may wrap a long line once)
    return " ".join(err.split())


def test_worker_runs_a_study_to_n_trials(folder, capsys):
    url = f"sqlite:///{folder}/w.db"
    args = ["worker", "--storage", url, "--study", "s", "--objective", "wobj:objective"]
    assert main([*args, "--create", "--n-trials", "4"]) == 0
    assert main([*args, "--n-trials", "4"]) == 0  # the budget is study-wide: nothing left
    trials = slimtune.load_study("s", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert trials[0].system_attrs["heartbeat"] == {
        "interval": 5.0,
        "grace": 60.0,
        "max_retries": 0,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchmodule:objective", "cannot be imported: ModuleNotFoundError"),
        ("wobj", "must be 'module:function'"),
        ("wobj:missing", "has no attribute 'missing'"),
        ("wobj:NOT_CALLABLE", "is not callable"),
    ],
)
def test_bad_objective_is_one_error_line(folder, capsys, spec, message):
    url = f"sqlite:///{folder}/w.db"
    slimtune.create_study("s", storage=url)
    code = main(["worker", "--storage", url, "--study", "s", "--objective", spec])
    assert code == 2
    assert message in _error_line(capsys)
    assert slimtune.load_study("s", storage=url).trials == []


def test_bad_heartbeat_options_name_the_option(folder, capsys):
    url = f"sqlite:///{folder}/w.db"
    slimtune.create_study("s", storage=url)
    args = ["worker", "--storage", url, "--study", "s", "--objective", "wobj:objective"]
    assert main([*args, "--heartbeat-interval", "5", "--grace", "1"]) == 2
    assert "--grace must be longer than --heartbeat-interval" in _error_line(capsys)


def test_missing_study_is_one_error_line(folder, capsys):
    url = f"sqlite:///{folder}/w.db"
    slimtune.create_study("other", storage=url)
    args = ["worker", "--storage", url, "--study", "nope", "--objective", "wobj:objective"]
    assert main(args) == 2
    assert "no study named 'nope'" in _error_line(capsys)


def test_a_broken_objective_stops_the_worker_after_max_failures(folder, capsys):
    url = f"sqlite:///{folder}/w.db"
    args = ["worker", "--storage", url, "--study", "s", "--objective", "wobj:always_fails"]
    assert main([*args, "--create", "--n-trials", "50", "--max-failures", "3"]) == 2
    assert "the last 3 trials of this worker failed" in _error_line(capsys)
    assert len(slimtune.load_study("s", storage=url).trials) == 3


def test_worker_runs_with_another_sampler(folder):
    url = f"sqlite:///{folder}/w.db"
    args = ["worker", "--storage", url, "--study", "s", "--objective", "wobj:objective"]
    assert main([*args, "--create", "--n-trials", "3", "--sampler", "tpe"]) == 0
    assert len(slimtune.load_study("s", storage=url).trials) == 3


def test_unknown_sampler_is_a_usage_error(folder, capsys):
    args = ["worker", "--study", "s", "--objective", "wobj:objective", "--sampler", "bogus"]
    assert main(args) == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
