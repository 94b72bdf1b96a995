"""Graceful shutdown: SIGTERM / SIGINT become a ``WorkerShutdown`` inside the running objective,
so the trial is recorded (FAILED with the signal's name) before the process exits."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

__all__ = ["WorkerShutdown", "graceful_shutdown", "objective_running", "shutdown_requested"]


class WorkerShutdown(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM or SIGINT). Like ``KeyboardInterrupt`` it is not
    an ``Exception``, so an objective's ``except Exception`` does not swallow it."""


class _State:
    requested: str | None = None
    in_objective = 0


_state = _State()


def shutdown_requested() -> str | None:
    """The name of the signal that asked this process to stop, or ``None``."""
    return _state.requested


def _handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    first = _state.requested is None
    _state.requested = name
    if _state.in_objective or not first:
        raise WorkerShutdown(f"worker received {name}")


@contextlib.contextmanager
def graceful_shutdown(
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> Iterator[None]:
    """Within this block (main thread only), a signal during an objective raises
    ``WorkerShutdown`` there; between trials it only sets :func:`shutdown_requested`, and the
    worker loop stops before asking the next trial. A second signal raises at once."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "graceful_shutdown() installs signal handlers: use it in the main thread."
        )
    previous = {s: signal.getsignal(s) for s in signals}
    _state.requested = None
    for s in signals:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def objective_running() -> Iterator[None]:
    """Marks the objective as running, so a shutdown signal interrupts it."""
    if _state.requested is not None:
        raise WorkerShutdown(f"worker received {_state.requested}")
    _state.in_objective += 1
    try:
        yield
    finally:
        _state.in_objective -= 1
