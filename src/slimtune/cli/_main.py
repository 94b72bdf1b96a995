"""Argument parsing and dispatch; turns slimtune errors into one ``error:`` line and exit 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from slimtune import __version__
from slimtune.cli import _commands, _render
from slimtune.cli._commands import CommandError
from slimtune.cli._demo import DEFAULT_EPOCHS, run_demo  # torch is imported only when it runs
from slimtune.cli._plot import KINDS, cmd_plot  # matplotlib is imported only when it runs
from slimtune.cli._worker import SAMPLERS, cmd_worker
from slimtune.exceptions import SlimtuneError
from slimtune.storage import DEFAULT_STORAGE

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace, Console, Console], int]

#: Exit statuses: 0 success, 1 nothing to show / declined / missing extra, 2 usage or
#: slimtune error, 130 interrupted.
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        msg = f"must be a positive integer or -1, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or -1 (all cores), got {value}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slimtune",
        description="Inspect slimtune studies kept in a storage, or run a demo search.",
    )
    parser.add_argument("--version", action="version", version=f"slimtune {__version__}")
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        metavar="URL",
        help="storage URL: 'sqlite:///path.db', 'postgresql://user:pass@host:port/db' or "
        f"'memory' (default: {DEFAULT_STORAGE})",
    )
    study = argparse.ArgumentParser(add_help=False)
    study.add_argument("study", metavar="STUDY", help="study name")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(
        name: str, handler: Handler, help_: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[*parents, storage], help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    add("studies", _commands.cmd_studies, "list the studies in a storage")
    p = add("show", _commands.cmd_show, "list the trials of a study", study)
    p.add_argument("--limit", type=_positive_int, metavar="N", help="show only the latest N")
    add("best", _commands.cmd_best, "the best trial (or the Pareto set) of a study", study)
    p = add("export", _commands.cmd_export, "export a study's trials as CSV or JSON", study)
    p.add_argument(
        "--format",
        choices=("csv", "json"),
        help="output format (default: json for an --output ending in .json, else csv)",
    )
    p.add_argument(
        "--output", "-o", metavar="PATH", help="file to write (default: standard output)"
    )
    p = add(
        "plot",
        cmd_plot,
        "draw a study to an image file: history, Pareto front or learning curves "
        "(needs the report extra)",
        study,
    )
    p.add_argument(
        "--kind", choices=KINDS, default="history", help="what to draw (default: history)"
    )
    p.add_argument(
        "--output", "-o", required=True, metavar="PATH", help="image file: .png, .svg or .pdf"
    )
    p.add_argument(
        "--objectives",
        type=int,
        nargs="+",
        metavar="I",
        help="objective index(es) to draw: one for history, two for pareto (default: 0, or 0 1)",
    )
    p = add("delete", _commands.cmd_delete, "delete a study and its trials", study)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    p = add(
        "worker",
        cmd_worker,
        "run trials of a shared study: a stateless ask -> run -> tell loop (any host)",
    )
    p.add_argument("--study", required=True, metavar="NAME", help="study name")
    p.add_argument(
        "--objective",
        required=True,
        metavar="MODULE:FUNCTION",
        help="the objective, importable from the working folder, e.g. train:objective",
    )
    p.add_argument(
        "--n-trials",
        type=_positive_int,
        metavar="N",
        help="stop when the study holds N trials that did not fail, counting every worker "
        "(default: run until stopped)",
    )
    p.add_argument(
        "--sampler",
        choices=sorted(SAMPLERS),
        default="random",
        help="sampler with its defaults (default: random)",
    )
    p.add_argument(
        "--create",
        action="store_true",
        help="create the study when it does not exist yet",
    )
    p.add_argument(
        "--direction",
        choices=("minimize", "maximize"),
        default=None,
        help="direction of a study made by --create (default: minimize)",
    )
    p.add_argument(
        "--heartbeat-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between heartbeats of the running trial (default: 5)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="a trial without heartbeat for this long is failed as 'worker lost' (default: 60)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=0,
        metavar="N",
        help="enqueue the parameters of a lost trial again up to N times (default: 0)",
    )
    p.add_argument(
        "--max-failures",
        type=_positive_int,
        default=10,
        metavar="N",
        help="stop after N failed trials in a row (default: 10)",
    )
    p.add_argument(
        "--trial-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="run each objective in a child process and fail a trial that runs longer "
        "(default: no limit)",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="log each trial to stderr")

    p = add("demo", run_demo, "tune a small PyTorch MLP on the digits data (needs scikit-learn)")
    p.add_argument("--study", default="demo", metavar="NAME", help="study name (default: demo)")
    p.add_argument(
        "--n-trials", type=_positive_int, default=30, metavar="N", help="trials (default: 30)"
    )
    p.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=2,
        metavar="N",
        help="parallel workers; processes unless --storage memory (default: 2)",
    )
    p.add_argument("--seed", type=int, default=0, help="study seed (default: 0)")
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=DEFAULT_EPOCHS,
        metavar="N",
        help=f"training epochs per trial (default: {DEFAULT_EPOCHS})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``slimtune`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    out = Console(highlight=False, markup=False)
    err = Console(stderr=True, highlight=False, markup=False)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return handler(args, out, err)
    except CommandError as e:
        _render.print_error(err, str(e))
        return e.code
    except SlimtuneError as e:
        _render.print_error(err, str(e) or type(e).__name__)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _render.print_error(err, "interrupted.")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `slimtune export demo | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
