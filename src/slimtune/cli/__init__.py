"""The ``slimtune`` command line: list, inspect, export and delete studies; run a demo.

>>> from slimtune.cli import main
>>> main(["studies", "--storage", "sqlite:///slimtune.db"])  # doctest: +SKIP
"""

from __future__ import annotations

from slimtune.cli._main import main

__all__ = ["main"]
