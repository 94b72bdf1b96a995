"""The ``Executor`` protocol (a subset of ``concurrent.futures.Executor``), its errors, and the
in-process executor."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from slimtune.exceptions import SlimtuneError

__all__ = ["Executor", "ExecutorError", "InlineExecutor", "WorkerLostError"]


class WorkerLostError(SlimtuneError, RuntimeError):
    """A worker process (or Ray task) died while running a task: killed, crashed, out of memory.

    An executor sets it on that task's future only and stays usable; a study records the trial
    FAILED with this message.
    """


class ExecutorError(SlimtuneError, RuntimeError):
    """An executor cannot start: a Ray address that is unreachable, bad resources, ..."""


@runtime_checkable
class Executor(Protocol):
    """Where objectives run: ``submit`` returns a ``concurrent.futures.Future``; ``max_workers``
    is how many tasks run at once; ``shutdown`` releases the workers."""

    @property
    def max_workers(self) -> int: ...

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


class InlineExecutor:
    """Runs each task at once in the calling thread (``study.optimize`` then runs trials inline,
    exactly as with ``n_jobs=1``)."""

    @property
    def max_workers(self) -> int:
        return 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # KeyboardInterrupt and SystemExit propagate
            future.set_exception(err)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return "InlineExecutor()"
