"""``slimtune plot``: a study drawn to an image file, and its errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import slimtune
from slimtune.cli import main


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    quad = slimtune.create_study("quad", storage=url, seed=0)

    def objective(trial: slimtune.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        for step in range(3):
            trial.report(step, (x - 2.0) ** 2 + 3 - step)
        return (x - 2.0) ** 2

    quad.optimize(objective, n_trials=6)
    three = slimtune.create_study(
        "three", storage=url, directions=["minimize", "maximize", "minimize"], seed=1
    )
    three.optimize(
        lambda t: (t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1), 0.5), n_trials=8
    )
    return url


@pytest.mark.parametrize(
    ("study", "kind", "extra", "suffix", "magic"),
    [
        ("quad", "history", [], ".png", b"\x89PNG"),
        ("quad", "intermediate", [], ".pdf", b"%PDF"),
        ("three", "pareto", ["--objectives", "0", "1"], ".svg", b"<?xml"),
        ("three", "history", ["--objectives", "2"], ".png", b"\x89PNG"),
    ],
)
def test_plot_writes_the_image(url, tmp_path, capsys, study, kind, extra, suffix, magic):
    out = tmp_path / f"plot{suffix}"
    code = main(["plot", study, "--storage", url, "--kind", kind, "-o", str(out), *extra])
    assert code == 0, capsys.readouterr().err
    assert out.read_bytes().startswith(magic)
    assert f"Wrote the {kind} plot of {study!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quad", "--kind", "pareto", "-o", "x.png"], "has one objective and no Pareto front"),
        (["quad", "-o", "x.txt"], "unknown image format '.txt'"),
        (["three", "--kind", "pareto", "--objectives", "0", "3", "-o", "x.png"], "out of range"),
        (["three", "--kind", "pareto", "--objectives", "0", "-o", "x.png"], "needs 2 index"),
        (["nope", "-o", "x.png"], "no study named 'nope'"),
    ],
)
def test_plot_errors_are_one_line_naming_the_fix(url, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["plot", *args, "--storage", url]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.txt").exists()


def test_plot_without_matplotlib_names_the_extra(url, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", "quad", "--storage", url, "-o", str(tmp_path / "x.png")]) == 1
    assert "pip install 'slimtune[report]'" in capsys.readouterr().err
