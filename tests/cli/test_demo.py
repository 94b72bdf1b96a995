"""``slimtune demo``: the digits objective and the runner."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pytest

import slimtune
from slimtune import FrozenTrial, TrialState
from slimtune.cli import main
from slimtune.cli._demo import BATCH_SIZES, build_mlp, digits_objective, load_digits_split
from slimtune.schedulers import Decision

pytest.importorskip("sklearn")


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


class _StopAfterFirstReport:
    def decide(
        self, trial: FrozenTrial, trials: Sequence[FrozenTrial], *, directions: Sequence[str]
    ) -> Decision:
        return Decision.STOP if trial.intermediate_values else Decision.CONTINUE


def test_digits_split_is_fixed_and_cached() -> None:
    x_tr, y_tr, x_va, y_va = load_digits_split()
    assert x_tr.shape == (len(y_tr), 64) and x_va.shape == (len(y_va), 64)
    assert len(y_tr) + len(y_va) == 1797
    assert float(x_tr.min()) >= 0.0 and float(x_tr.max()) <= 1.0
    assert set(y_va.tolist()) == set(range(10))
    assert load_digits_split()[0] is x_tr


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_build_mlp_depth(depth: int) -> None:
    import torch

    model = build_mlp(width=8, depth=depth, dropout=0.1)
    assert sum(isinstance(m, torch.nn.Linear) for m in model) == depth + 1
    assert model(torch.zeros(5, 64)).shape == (5, 10)


def test_objective_reports_each_epoch_and_returns_the_last_error() -> None:
    study = slimtune.create_study(storage="memory", seed=0)
    study.optimize(partial(digits_objective, epochs=2), n_trials=1)
    (trial,) = study.trials
    assert trial.state is TrialState.COMPLETE
    assert set(trial.params) == {"lr", "width", "depth", "dropout", "weight_decay", "batch_size"}
    assert 1 <= trial.params["depth"] <= 3
    assert trial.params["batch_size"] in BATCH_SIZES
    assert sorted(trial.intermediate_values) == [1, 2]
    assert trial.value == trial.intermediate_values[2]
    assert 0.0 <= trial.value <= 1.0
    assert trial.user_attrs["val_accuracy"] == pytest.approx(1.0 - trial.value)


def test_objective_is_reproducible_from_the_trial_seed() -> None:
    values = []
    for _ in range(2):
        study = slimtune.create_study(storage="memory", seed=3)
        study.optimize(partial(digits_objective, epochs=1), n_trials=1)
        values.append(study.trials[0].value)
    assert values[0] == values[1]


def test_objective_stops_when_the_scheduler_says_so() -> None:
    study = slimtune.create_study(storage="memory", seed=0)
    study.scheduler = _StopAfterFirstReport()
    study.optimize(partial(digits_objective, epochs=3), n_trials=1)
    (trial,) = study.trials
    assert trial.state is TrialState.STOPPED
    assert sorted(trial.intermediate_values) == [1]


def test_objective_can_be_sent_to_worker_processes() -> None:
    restored = pickle.loads(pickle.dumps(partial(digits_objective, epochs=2)))
    assert restored.func is digits_objective and restored.keywords == {"epochs": 2}


def test_demo_needs_scikit_learn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    path = tmp_path / "d.db"
    assert main(["demo", "--storage", f"sqlite:///{path}", "--n-trials", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "pip install 'slimtune[demo]'" in err
    assert not path.exists()


def test_demo_in_memory_uses_threads(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["demo", "--storage", "memory", "--n-trials", "2", "--n-jobs", "2", "--epochs", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Top 2 trials" in out
    assert "best accuracy:" in out


@pytest.mark.slow
def test_demo_end_to_end_with_worker_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    args = ["demo", "--storage", url, "--n-trials", "4", "--n-jobs", "2", "--epochs", "2"]
    assert main([*args, "--seed", "0"]) == 0
    out = capsys.readouterr().out
    study = slimtune.load_study("demo", storage=url)
    trials = study.trials
    assert len(trials) == 4
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials)
    assert "Top 4 trials" in out
    best = study.best_trial
    assert f"best accuracy: {100 * (1 - best.value):.2f}% (trial {best.number}" in out
    # a second run resumes the same study (load_if_exists) and adds trials after the first ones
    assert main([*args, "--n-trials", "2"]) == 0
    assert [t.number for t in slimtune.load_study("demo", storage=url).trials] == list(range(6))


def test_demo_refuses_a_study_that_maximises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    slimtune.create_study("demo", storage=url, direction="maximize")
    assert main(["demo", "--storage", url, "--n-trials", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error: study 'demo' exists with directions ['maximize']")
    assert "--study NAME" in err
    assert slimtune.load_study("demo", storage=url).trials == []
