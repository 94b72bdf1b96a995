"""The ``slimtune`` commands that read, export and delete studies."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import slimtune
from slimtune import TrialState
from slimtune.cli import main


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # rich wraps table cells at 80 columns when output is not a terminal; widen it so that
    # assertions can look for whole values
    monkeypatch.setenv("COLUMNS", "250")


def _objective(trial: slimtune.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 4)
    trial.suggest_categorical("kind", ["a", "b"])
    if trial.number == 2:
        raise RuntimeError("boom on purpose")
    return (x - 2.0) ** 2 + n


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite storage with a single-objective study 'quad' (one FAILED trial) and a
    two-objective study 'multi'."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    quad = slimtune.create_study("quad", storage=url, seed=0)
    quad.optimize(_objective, n_trials=6, catch=RuntimeError)
    multi = slimtune.create_study("multi", storage=url, directions=["minimize", "maximize"], seed=1)
    multi.optimize(lambda t: (t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=8)
    return url


def _err_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# version and usage --------------------------------------------------------------------------------
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"slimtune {slimtune.__version__}"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "studies" in capsys.readouterr().err


def test_bad_option_value_is_usage_error(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "quad", "--storage", url, "--limit", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err


# studies ------------------------------------------------------------------------------------------
def test_studies_lists_every_study(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["studies", "--storage", url]) == 0
    out = capsys.readouterr().out
    quad = slimtune.load_study("quad", storage=url)
    quad_line = next(line for line in out.splitlines() if " quad " in line)
    cells = [c.strip() for c in quad_line.strip("│ ").split("│")]
    assert cells[:4] == ["quad", "minimize", "6", "5"]
    assert f"{quad.best_value:.6g}" in cells[4]
    assert f"#{quad.best_trial.number}" in cells[4]
    multi_line = next(line for line in out.splitlines() if " multi " in line)
    assert "minimize, maximize" in multi_line
    n_front = len(slimtune.load_study("multi", storage=url).best_trials)
    assert f"{n_front} Pareto" in multi_line


def test_studies_on_empty_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    slimtune.get_storage(url)  # creates the file with an empty journal
    assert main(["studies", "--storage", url]) == 0
    assert "No studies" in capsys.readouterr().out


def test_missing_sqlite_file_is_an_error_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.db"
    assert main(["studies", "--storage", f"sqlite:///{path}"]) == 2
    assert "typo.db" in _err_line(capsys.readouterr().err)
    assert not path.exists()


# show ---------------------------------------------------------------------------------------------
def test_show_lists_trials(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "quad", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "6 trial(s): 5 complete, 1 failed" in out
    trials = slimtune.load_study("quad", storage=url).trials
    rows = {int(line.split("│")[1]): line for line in out.splitlines() if line.count("│") > 5}
    assert sorted(rows) == [t.number for t in trials]
    for t in trials:
        row = rows[t.number]
        assert t.state.value in row
        assert f"kind={t.params['kind']}" in row
        assert f"n={t.params['n']}" in row
        if t.state is TrialState.COMPLETE:
            assert f"{t.value:.6g}" in row
    assert "RuntimeError: boom on purpose" in rows[2]


def test_show_limit_keeps_the_latest(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "quad", "--storage", url, "--limit", "2"]) == 0
    out = capsys.readouterr().out
    numbers = [int(line.split("│")[1]) for line in out.splitlines() if line.count("│") > 5]
    assert numbers == [4, 5]
    assert "latest 2 of 6" in out


# best ---------------------------------------------------------------------------------------------
def test_best_single_objective(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["best", "quad", "--storage", url]) == 0
    out = capsys.readouterr().out
    best = slimtune.load_study("quad", storage=url).best_trial
    sheet = {
        cells[0]: cells[1]
        for line in out.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 2
    }
    assert sheet["trial"] == str(best.number)
    assert sheet["value (minimize)"] == f"{best.value:.6g}"
    assert sheet["params.x"] == f"{best.params['x']:.4g}"
    assert sheet["params.n"] == str(best.params["n"])
    assert sheet["params.kind"] == best.params["kind"]


def test_best_multi_objective_prints_the_pareto_set(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["best", "multi", "--storage", url]) == 0
    out = capsys.readouterr().out
    front = slimtune.load_study("multi", storage=url).best_trials
    assert f"{len(front)} trial(s)" in out
    numbers = [int(line.split("│")[1]) for line in out.splitlines() if line.count("│") == 5]
    assert sorted(numbers) == sorted(t.number for t in front)


def test_best_without_complete_trials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    slimtune.create_study("fresh", storage=url)
    assert main(["best", "fresh", "--storage", url]) == 1
    assert "no feasible COMPLETE trial" in _err_line(capsys.readouterr().err)


# export -------------------------------------------------------------------------------------------
def test_export_csv_to_stdout_parses_back(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "quad", "--storage", url, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    trials = slimtune.load_study("quad", storage=url).trials
    assert [int(r["number"]) for r in rows] == [t.number for t in trials]
    for row, t in zip(rows, trials, strict=True):
        assert row["state"] == t.state.value
        assert float(row["params_x"]) == pytest.approx(t.params["x"])
        if t.value is not None:
            assert float(row["value"]) == pytest.approx(t.value)


def test_export_json_to_file_parses_back(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out.dat"
    assert main(["export", "multi", "--storage", url, "--format", "json", "-o", str(path)]) == 0
    assert capsys.readouterr().out == ""  # the data went to the file
    data = json.loads(path.read_text())
    assert data["name"] == "multi"
    assert data["directions"] == ["minimize", "maximize"]
    study = slimtune.load_study("multi", storage=url)
    assert [t["values"] for t in data["trials"]] == [t.values for t in study.trials]


def test_export_format_follows_the_output_suffix(url: str, tmp_path: Path) -> None:
    path = tmp_path / "trials.json"
    assert main(["export", "quad", "--storage", url, "--output", str(path)]) == 0
    assert len(json.loads(path.read_text())["trials"]) == 6


def test_export_to_missing_folder(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nope" / "t.csv"
    assert main(["export", "quad", "--storage", url, "-o", str(target)]) == 2
    assert "cannot write" in _err_line(capsys.readouterr().err)


# delete -------------------------------------------------------------------------------------------
class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _names(url: str) -> set[str]:
    return {s.name for s in slimtune.get_storage(url).list_studies()}


def test_delete_with_yes(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["delete", "quad", "--storage", url, "--yes"]) == 0
    assert "Deleted study 'quad'" in capsys.readouterr().out
    assert _names(url) == {"multi"}
    with pytest.raises(slimtune.StudyNotFoundError):
        slimtune.load_study("quad", storage=url)


def test_delete_refuses_without_tty_or_yes(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a terminal
    assert main(["delete", "quad", "--storage", url]) == 2
    assert "--yes" in _err_line(capsys.readouterr().err)
    assert _names(url) == {"quad", "multi"}


@pytest.mark.parametrize(
    ("answer", "code", "left"),
    [("y\n", 0, {"multi"}), ("n\n", 1, {"quad", "multi"}), ("", 1, {"quad", "multi"})],
)
def test_delete_asks_on_a_terminal(
    url: str, monkeypatch: pytest.MonkeyPatch, answer: str, code: int, left: set[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", _FakeTTY(answer))
    assert main(["delete", "quad", "--storage", url]) == code
    assert _names(url) == left


# errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["show", "best", "export", "delete"])
def test_unknown_study(url: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--yes"] if command == "delete" else []
    assert main([command, "nope", "--storage", url, *extra]) == 2
    captured = capsys.readouterr()
    line = _err_line(captured.err)
    assert "'nope'" in line
    assert "Traceback" not in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("command", [["studies"], ["show", "quad"], ["demo", "--n-trials", "1"]])
def test_unknown_storage_scheme(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--storage", "redis://localhost/0"]) == 2
    assert "unknown scheme 'redis'" in _err_line(capsys.readouterr().err)


# the installed entry point ------------------------------------------------------------------------
def test_entry_point_is_declared() -> None:
    (script,) = metadata.entry_points(group="console_scripts", name="slimtune")
    assert script.value == "slimtune.cli:main"


def test_entry_point_in_a_subprocess(url: str) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "slimtune.cli", "studies", "--storage", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "quad" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "slimtune.cli", "show", "nope", "--storage", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert _err_line(bad.stderr).startswith("error: no study named 'nope'")
