"""``slimtune plot``: draw a study to an image file (the ``report`` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from slimtune import report
from slimtune._trial import FrozenTrial
from slimtune.cli._commands import CommandError, load_named_study
from slimtune.exceptions import MissingExtraError
from slimtune.report._axes import matplotlib_module, objective_label

__all__ = ["KINDS", "cmd_plot"]

KINDS = ("history", "pareto", "intermediate")


def _value(trial: FrozenTrial, i: int) -> float:
    assert trial.values is not None  # the plots draw COMPLETE trials only
    return trial.values[i]


def _objectives(args: argparse.Namespace, n_obj: int, want: int) -> list[int]:
    chosen = list(args.objectives) if args.objectives else list(range(want))
    if len(chosen) != want:
        raise CommandError(
            f"--objectives needs {want} index(es) for --kind {args.kind}, got {chosen}."
        )
    for i in chosen:
        if not 0 <= i < n_obj:
            raise CommandError(
                f"--objectives {i} is out of range: the study has {n_obj} objective(s), "
                f"indexes 0..{n_obj - 1}."
            )
    return chosen


def cmd_plot(args: argparse.Namespace, out: Console, err: Console) -> int:
    try:
        matplotlib_module().use("Agg")  # files only; no window
        plt = matplotlib_module("matplotlib.pyplot")
    except MissingExtraError as e:
        raise CommandError(str(e), code=1) from e
    path = Path(args.output)
    study = load_named_study(args)
    n_obj = len(study.directions)
    names = [objective_label(i, d) for i, d in enumerate(study.directions)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if path.suffix.lower().lstrip(".") not in fig.canvas.get_supported_filetypes():
        plt.close(fig)
        raise CommandError(
            f"--output {str(path)!r}: unknown image format {path.suffix!r}; end it in .png, "
            ".svg or .pdf."
        )
    try:
        if args.kind == "history":
            (i,) = _objectives(args, n_obj, 1)
            kwargs: dict[str, Any] = {}
            if n_obj > 1:
                kwargs = {"target": lambda t: _value(t, i), "target_name": names[i]}
            report.plot_optimization_history(study, ax=ax, **kwargs)
        elif args.kind == "pareto":
            if n_obj < 2:
                raise CommandError(
                    f"study {study.name!r} has one objective and no Pareto front; use "
                    "--kind history."
                )
            i, j = _objectives(args, n_obj, 2)
            report.plot_pareto_front(
                study,
                targets=lambda t: (_value(t, i), _value(t, j)),
                target_names=[names[i], names[j]],
                ax=ax,
            )
        else:
            report.plot_intermediate_values(study, ax=ax)
        ax.set_title(f"{ax.get_title()}: {study.name}")
        fig.tight_layout()
        try:
            fig.savefig(path)
        except OSError as e:
            raise CommandError(f"cannot write {str(path)!r}: {e.strerror or e}.") from e
    finally:
        plt.close(fig)
    err.print(f"Wrote the {args.kind} plot of {study.name!r} to {path}", highlight=False)
    return 0
