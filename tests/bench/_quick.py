"""Runs a benchmark's ``--quick`` mode in a fresh interpreter, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_quick(module: str, out: Path, *args: str, timeout: int = 300) -> tuple[str, Any]:
    """``python -m module --quick *args --json out``; assert it succeeds and return its stdout
    and the JSON it wrote."""
    proc = subprocess.run(
        [sys.executable, "-m", module, "--quick", *args, "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout, json.loads(out.read_text())
