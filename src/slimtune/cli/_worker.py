"""``slimtune worker``: a stateless ask -> run -> tell loop against a shared study."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from slimtune.cli._commands import CommandError, open_storage
from slimtune.executors import graceful_shutdown
from slimtune.study import Heartbeat, create_study, load_study
from slimtune.study._worker import run_worker

__all__ = ["SAMPLERS", "cmd_worker", "import_objective"]

#: ``--sampler`` choices: the samplers' defaults (a study's seed makes them reproducible).
SAMPLERS = {
    "random": "RandomSampler",
    "tpe": "TPESampler",
    "qmc": "QMCSampler",
    "gp": "GPSampler",
    "evolution": "EvolutionSampler",
    "auto": "AutoSampler",
}


def import_objective(spec: str) -> Callable[[Any], Any]:
    """The callable named by ``module:function`` (the working folder is importable)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CommandError(
            f"--objective must be 'module:function', got {spec!r}. "
            "Example: --objective train:objective for objective() in train.py."
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # ImportError, or the module itself failed
        raise CommandError(
            f"--objective {spec!r} cannot be imported: {type(err).__name__}: {err}. "
            "Run the worker from the folder that holds the module, or set PYTHONPATH."
        ) from None
    obj: Any = module
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise CommandError(
            f"--objective {spec!r}: module {module_name!r} has no attribute {attr!r}."
        ) from None
    if not callable(obj):
        raise CommandError(f"--objective {spec!r} is not callable ({type(obj).__name__}).")
    return obj  # type: ignore[no-any-return]


def cmd_worker(args: argparse.Namespace, out: Console, err: Console) -> int:
    timeout = args.trial_timeout
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise CommandError(
            f"--trial-timeout must be a finite number of seconds > 0, got {timeout:g}. Pass "
            "e.g. --trial-timeout 3600, or leave it out for no limit."
        )
    objective = import_objective(args.objective)
    try:
        heartbeat = Heartbeat(
            interval=args.heartbeat_interval, grace=args.grace, max_retries=args.max_retries
        )
    except ValueError as e:
        text = str(e).replace("`interval`", "--heartbeat-interval").replace("`grace`", "--grace")
        raise CommandError(text.replace("`max_retries`", "--max-retries")) from None
    import slimtune.samplers

    sampler = getattr(slimtune.samplers, SAMPLERS[args.sampler])()
    if args.create:
        study = create_study(
            args.study,
            storage=args.storage,
            direction=args.direction,
            sampler=sampler,
            load_if_exists=True,
        )
    else:
        study = load_study(args.study, storage=open_storage(args.storage), sampler=sampler)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with graceful_shutdown():
        ran = run_worker(
            study,
            objective,
            n_trials=args.n_trials,
            heartbeat=heartbeat,
            max_failures=args.max_failures,
            trial_timeout=args.trial_timeout,
        )
    err.print(f"worker done: ran {ran} trial(s) of study {study.name!r}.", highlight=False)
    return 0
