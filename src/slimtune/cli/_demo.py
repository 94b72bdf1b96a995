"""``slimtune demo``: tune a small PyTorch MLP on scikit-learn's bundled digits data.

The objective is a module-level function so that ``optimize(n_jobs=2)`` can send it to spawned
worker processes; each process loads the data once and keeps it in a module-level cache.
"""

from __future__ import annotations

import argparse
import functools
import logging
import shlex
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from slimtune._trial import FrozenTrial, TrialState
from slimtune.cli import _render
from slimtune.cli._commands import CommandError, open_storage
from slimtune.exceptions import TrialStopped
from slimtune.study import Study, Trial, create_study

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_EPOCHS", "build_mlp", "digits_objective", "load_digits_split", "run_demo"]

logger = logging.getLogger(__name__)

#: Training epochs per trial; the digits set is tiny, so an epoch takes a few milliseconds.
DEFAULT_EPOCHS = 20
BATCH_SIZES = (32, 64, 128)
_N_FEATURES = 64  # 8x8 images
_N_CLASSES = 10
_SPLIT_SEED = 0  # the train/validation split is fixed, so trials compare on the same data
_POLL_SECONDS = 0.5

_Split = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor", "torch.Tensor"]
_DATA: _Split | None = None  # per-process cache
_DATA_LOCK = threading.Lock()


def load_digits_split() -> _Split:
    """``(x_train, y_train, x_val, y_val)``: digits scaled to [0, 1], a stratified 75/25 split."""
    global _DATA
    with _DATA_LOCK:
        if _DATA is None:
            import torch
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split

            x, y = load_digits(return_X_y=True)
            x_tr, x_va, y_tr, y_va = train_test_split(
                x / 16.0, y, test_size=0.25, stratify=y, random_state=_SPLIT_SEED
            )
            _DATA = (
                torch.as_tensor(x_tr, dtype=torch.float32),
                torch.as_tensor(y_tr, dtype=torch.long),
                torch.as_tensor(x_va, dtype=torch.float32),
                torch.as_tensor(y_va, dtype=torch.long),
            )
        return _DATA


def build_mlp(*, width: int, depth: int, dropout: float) -> torch.nn.Sequential:
    """``depth`` hidden layers of ``width`` units (Linear, ReLU, Dropout), then a linear head."""
    from torch import nn

    layers: list[nn.Module] = []
    n_in = _N_FEATURES
    for _ in range(depth):
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    layers.append(nn.Linear(n_in, _N_CLASSES))
    return nn.Sequential(*layers)


def digits_objective(trial: Trial, *, epochs: int = DEFAULT_EPOCHS) -> float:
    """Validation error of an MLP trained with Adam for ``epochs`` epochs (minimise it).

    Reports the validation error after each epoch and stops early when the study's scheduler
    says so.
    """
    import torch
    from torch.nn import functional

    torch.set_num_threads(1)  # one core per worker process
    lr = trial.suggest_float("lr", 1e-4, 3e-2, log=True)
    width = trial.suggest_int("width", 16, 256, log=True)
    depth = trial.suggest_int("depth", 1, 3)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    batch_size = int(trial.suggest_categorical("batch_size", list(BATCH_SIZES)))

    x_tr, y_tr, x_va, y_va = load_digits_split()
    torch.manual_seed(trial.seed)
    shuffle = torch.Generator().manual_seed(trial.seed)
    model = build_mlp(width=width, depth=depth, dropout=dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    val_error = 1.0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x_tr), generator=shuffle)
        for start in range(0, len(x_tr), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
            cast(Any, loss).backward()  # Tensor.backward is untyped
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_va).argmax(dim=1) == y_va).float().mean().item()
        val_error = 1.0 - accuracy
        trial.report(epoch, val_error)
        if trial.should_stop():
            raise TrialStopped(f"stopped after epoch {epoch} (val error {val_error:.4f})")
    trial.set_user_attr("val_accuracy", 1.0 - val_error)
    return val_error


# the runner ---------------------------------------------------------------------------------------
class _Poller:
    """Polls the study every half second and updates the progress bar (a daemon thread)."""

    def __init__(self, study: Study, first: int, progress: Progress, task: TaskID) -> None:
        self._study = study
        self._first = first  # trials numbered below this existed before this run
        self._progress = progress
        self._task = task
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slimtune-demo-poll", daemon=True)

    def __enter__(self) -> _Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._safe_update()  # the final counts

    def _run(self) -> None:
        while not self._stop.wait(_POLL_SECONDS):
            self._safe_update()

    def _safe_update(self) -> None:
        try:
            self.update()
        except Exception:  # a transient storage error must not kill the progress bar
            logger.debug("progress poll failed", exc_info=True)

    def update(self) -> None:
        trials = self._study.trials
        mine = [t for t in trials if t.number >= self._first]
        count = {s: sum(t.state is s for t in mine) for s in TrialState}
        ranked = _ranked(trials)
        best = ranked[0] if ranked else None
        self._progress.update(
            self._task,
            completed=len(mine) - count[TrialState.RUNNING],
            complete=count[TrialState.COMPLETE],
            failed=count[TrialState.FAILED],
            stopped=count[TrialState.STOPPED],
            best="-" if best is None else _accuracy(best),
        )


def _ranked(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE trials, lowest validation error first (ties: lower number first)."""
    done = [t for t in trials if t.state is TrialState.COMPLETE and t.values]
    return sorted(done, key=lambda t: (t.values[0] if t.values else 1.0, t.number))


def _accuracy(trial: FrozenTrial) -> str:
    assert trial.values is not None
    return f"{100 * (1 - trial.values[0]):.2f}%"


def _check_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as err:
        raise CommandError(
            "the demo needs scikit-learn; install it with: pip install 'slimtune[demo]'", code=1
        ) from err


def run_demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    _check_sklearn()
    storage = open_storage(args.storage, create=True)
    try:
        study = create_study(
            args.study, storage=storage, direction="minimize", seed=args.seed, load_if_exists=True
        )
    except ValueError as e:  # an existing study of that name that maximises, or a bad name
        raise CommandError(f"{e} Use --study NAME.") from e
    first = len(study.trials)
    out.print(
        Text.assemble(
            ("Tuning an MLP on the digits data", "bold"),
            f": {args.n_trials} trial(s) of {args.epochs} epoch(s), n_jobs={args.n_jobs}, "
            f"study {study.name!r} in {study.storage.url}",
        )
    )
    objective = functools.partial(digits_objective, epochs=args.epochs)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "[green]{task.fields[complete]} ok[/] [yellow]{task.fields[stopped]} stopped[/] "
            "[red]{task.fields[failed]} failed[/]"
        ),
        TextColumn("best accuracy [bold]{task.fields[best]}[/]"),
        TimeElapsedColumn(),
        console=out,
    )
    with progress:
        task = progress.add_task(
            "demo", total=args.n_trials, complete=0, stopped=0, failed=0, best="-"
        )
        with _Poller(study, first, progress, task):
            study.optimize(objective, n_trials=args.n_trials, n_jobs=args.n_jobs)

    trials = study.trials
    done = _ranked(trials)
    mine = [t for t in trials if t.number >= first]
    n_failed = sum(t.state is TrialState.FAILED for t in mine)
    if not done:
        raise CommandError(
            f"no trial of study {study.name!r} completed ({n_failed} failed). "
            f"See: slimtune show {shlex.quote(study.name)} --storage {study.storage.url}",
            code=1,
        )
    out.print(_render.top_trials_table(done[:5], title=f"Top {min(5, len(done))} trials"))
    best = done[0]
    out.print(
        Text.assemble(
            ("best accuracy: ", "bold"),
            (_accuracy(best), "bold green"),
            f" (trial {best.number}, {_render.fmt_params(best.params)})",
        ),
        soft_wrap=True,
    )
    url = study.storage.url or "memory"
    if url != "memory":
        out.print(
            f"{len(mine)} new trial(s) in study {study.name!r}; inspect them with: "
            f"slimtune show {shlex.quote(study.name)} --storage {shlex.quote(url)}, or draw "
            f"them with: slimtune plot {shlex.quote(study.name)} --storage {shlex.quote(url)} "
            "--kind intermediate --output demo.png (needs the report extra)",
            soft_wrap=True,
        )
    return 0
