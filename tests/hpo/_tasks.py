"""Tasks for the SpawnPool tests; no torch import, so worker processes start quickly."""

from __future__ import annotations

import os
import time


def raise_value_error(x: int) -> int:
    raise ValueError(f"bad {x}")


def exit_process(code: int) -> int:
    os._exit(code)


def square(x: int) -> int:
    return x * x


def sleep_long(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
