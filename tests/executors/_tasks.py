"""Module-level tasks for the process executor tests (spawned workers import them)."""

from __future__ import annotations

import os
import time


def add(a: int, b: int = 0) -> int:
    return a + b


def env(name: str) -> str | None:
    return os.environ.get(name)


def die(code: int) -> None:
    os._exit(code)


def fail(message: str) -> None:
    raise ValueError(message)


def nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def signal_self(signum: int) -> None:
    import signal

    os.kill(os.getpid(), signal.Signals(signum))
    time.sleep(5)
