"""``studies``, ``show``, ``best``, ``export`` and ``delete``: read-mostly views of a storage."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.prompt import Confirm
from rich.text import Text

from slimtune._pareto import best_single, pareto_front
from slimtune._trial import TrialState
from slimtune.cli import _render
from slimtune.exceptions import StorageError
from slimtune.storage import Storage, get_storage
from slimtune.study import Study, load_study

__all__ = [
    "CommandError",
    "cmd_best",
    "cmd_delete",
    "cmd_export",
    "cmd_show",
    "cmd_studies",
    "load_named_study",
    "open_storage",
]

_SQLITE_PREFIX = "sqlite:///"


class CommandError(Exception):
    """A failure the CLI reports as one ``error:`` line with exit status ``code``."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def open_storage(url: str, *, create: bool = False) -> Storage:
    """The storage at ``url``; a SQLite file must already exist unless ``create``.

    Read-only commands must not leave an empty database behind after a typo in the path.
    """
    stripped = url.strip()
    if not create and stripped.startswith(_SQLITE_PREFIX):
        path = os.path.expanduser(stripped[len(_SQLITE_PREFIX) :])
        if path and path != ":memory:" and not os.path.exists(path):
            raise StorageError(
                f"no slimtune database at {path!r} ({stripped}). Check --storage, or run a "
                "study first (e.g. `slimtune demo`)."
            )
    return get_storage(stripped)


def load_named_study(args: argparse.Namespace) -> Study:
    """The study named by the STUDY argument, in the storage given by ``--storage``."""
    if not args.study.strip():
        raise CommandError("STUDY must be a non-empty name.")
    return load_study(args.study, storage=open_storage(args.storage))


def _best_text(study: Study) -> str:
    done = study.get_trials([TrialState.COMPLETE])
    if len(study.directions) == 1:
        best = best_single(done, study.directions[0])
        return "-" if best is None else f"{_render.fmt_values(best.values)} (#{best.number})"
    front = pareto_front(done, study.directions)
    return f"{len(front)} Pareto trial(s)" if front else "-"


# commands -----------------------------------------------------------------------------------------
def cmd_studies(args: argparse.Namespace, out: Console, err: Console) -> int:
    storage = open_storage(args.storage)
    summaries = sorted(storage.list_studies(), key=lambda s: (s.datetime_created, s.name))
    if not summaries:
        out.print(f"No studies in {storage.url}.", highlight=False)
        return 0
    rows: list[dict[str, Any]] = []
    for s in summaries:
        study = load_study(s.name, storage=storage)
        rows.append(
            {
                "name": s.name,
                "directions": s.directions,
                "n_trials": s.n_trials,
                "n_complete": s.n_complete,
                "best": _best_text(study),
                "created": s.datetime_created,
            }
        )
    out.print(_render.studies_table(rows, title=f"Studies in {storage.url}"))
    return 0


def cmd_show(args: argparse.Namespace, out: Console, err: Console) -> int:
    study = load_named_study(args)
    trials = study.trials
    counts = {state: sum(t.state is state for t in trials) for state in TrialState}
    summary = ", ".join(f"{n} {state.value.lower()}" for state, n in counts.items() if n)
    title = f"Study {study.name!r} ({', '.join(study.directions)}): {len(trials)} trial(s)"
    if summary:
        title += f": {summary}"
    shown = trials[-args.limit :] if args.limit is not None else trials
    caption = f"latest {len(shown)} of {len(trials)}" if len(shown) < len(trials) else None
    out.print(_render.trials_table(shown, study.directions, title=title, caption=caption))
    return 0


def cmd_best(args: argparse.Namespace, out: Console, err: Console) -> int:
    study = load_named_study(args)
    done = study.get_trials([TrialState.COMPLETE])
    if len(study.directions) == 1:
        best = best_single(done, study.directions[0])
        if best is None:
            raise CommandError(f"study {study.name!r} has no feasible COMPLETE trial yet.", code=1)
        title = f"Best trial of study {study.name!r}"
        out.print(_render.best_table(best, study.directions[0], title=title))
        return 0
    front = study.best_trials
    if not front:
        raise CommandError(f"study {study.name!r} has no feasible COMPLETE trial yet.", code=1)
    title = f"Pareto set of study {study.name!r}: {len(front)} trial(s)"
    out.print(_render.pareto_table(front, study.directions, title=title))
    return 0


def _export_format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    if args.output is not None and Path(args.output).suffix.lower() == ".json":
        return "json"
    return "csv"


def cmd_export(args: argparse.Namespace, out: Console, err: Console) -> int:
    study = load_named_study(args)
    fmt = _export_format(args)
    text = study.to_json() if fmt == "json" else study.to_csv()
    if args.output is None or args.output == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return 0
    path = Path(args.output)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise CommandError(f"cannot write {str(path)!r}: {e.strerror or e}.") from e
    err.print(
        f"Wrote {len(study.trials)} trial(s) of {study.name!r} as {fmt} to {path}", highlight=False
    )
    return 0


def cmd_delete(args: argparse.Namespace, out: Console, err: Console) -> int:
    study = load_named_study(args)
    n = len(study.trials)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError(
                f"refusing to delete study {study.name!r} without confirmation: stdin is not a "
                "terminal. Pass --yes to delete it."
            )
        question = f"Delete study {study.name!r} and its {n} trial(s) from {study.storage.url}?"
        try:
            confirmed = Confirm.ask(Text(question), console=out, default=False)
        except EOFError:
            confirmed = False
        if not confirmed:
            err.print("Aborted; nothing deleted.", highlight=False)
            return 1
    study.storage.delete_study(study.name)
    out.print(f"Deleted study {study.name!r} ({n} trial(s)).", highlight=False)
    return 0
