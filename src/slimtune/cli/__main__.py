"""``python -m slimtune.cli``: the same as the ``slimtune`` command."""

from __future__ import annotations

from slimtune.cli._main import main

if __name__ == "__main__":  # guarded: spawned worker processes re-import the main module
    raise SystemExit(main())
