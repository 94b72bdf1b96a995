"""Where objectives run: inline, in spawned processes (one crash fails one trial), or on Ray.

Executors follow a subset of ``concurrent.futures.Executor`` (``submit``, ``shutdown``, plus
``max_workers``); pass one to ``study.optimize(..., executor=...)``. ``graceful_shutdown`` turns
SIGTERM / SIGINT into a recorded trial in worker processes.
"""

from __future__ import annotations

from slimtune.executors._base import Executor, ExecutorError, InlineExecutor, WorkerLostError
from slimtune.executors._process import ProcessExecutor
from slimtune.executors._ray import RayExecutor
from slimtune.executors._shutdown import (
    WorkerShutdown,
    graceful_shutdown,
    objective_running,
    shutdown_requested,
)

__all__ = [
    "Executor",
    "ExecutorError",
    "InlineExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "WorkerLostError",
    "WorkerShutdown",
    "graceful_shutdown",
    "objective_running",
    "shutdown_requested",
]
