"""Shared helpers for the benchmarks in ``bench/``: threads, timing, memory, tables and JSON.

Import this module before numpy / torch / optuna: :func:`pin_threads` only takes effect on
libraries that are loaded after it ran (torch is pinned directly when it is already loaded).
Timing follows /work/shared/BENCHMARKS.md: process time and wall time side by side, variants
alternated round by round, medians and ratios of medians quoted with the load average seen.
"""

from __future__ import annotations

import cProfile
import gc
import hashlib
import importlib.util
import io
import json
import os
import platform
import pstats
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "REPO_ROOT",
    "Timing",
    "current_rss_mb",
    "environment",
    "fmt",
    "load_average",
    "machine_info",
    "markdown_table",
    "median",
    "package_source",
    "peak_rss_mb",
    "pin_threads",
    "profile_call",
    "profile_table",
    "ratio",
    "source_digest",
    "time_call",
    "write_json",
]

REPO_ROOT = Path(__file__).resolve().parents[1]

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "BLIS_NUM_THREADS",
)


def pin_threads(n: int = 1) -> dict[str, Any]:
    """Limit BLAS / OpenMP / torch to ``n`` threads; return what was set (for the JSON)."""
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    out: dict[str, Any] = {var: str(n) for var in _THREAD_VARS}
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
        out["torch.get_num_threads"] = torch.get_num_threads()
    else:
        out["torch"] = "not imported"
    if "numpy" in sys.modules:
        out["warning"] = "numpy was imported before pin_threads(); its BLAS may not be pinned"
    return out


@dataclass
class Timing:
    """Process (CPU) and wall seconds of one measured call, plus what the call returned."""

    cpu_s: float
    wall_s: float
    result: Any = field(default=None, repr=False)


def time_call(fn: Callable[[], Any], *, collect: bool = True) -> Timing:
    """Run ``fn`` once under ``time.process_time`` and ``time.perf_counter``.

    ``collect`` runs the garbage collector first so one variant's garbage is not billed to the
    next; the collector stays enabled while ``fn`` runs (its cost is part of real overhead).
    """
    if collect:
        gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    c1, w1 = time.process_time(), time.perf_counter()
    return Timing(cpu_s=c1 - c0, wall_s=w1 - w0, result=result)


def median(xs: Iterable[float]) -> float:
    vals = list(xs)
    return statistics.median(vals) if vals else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` survives ``execve``, so
    a fresh subprocess would report its parent's peak. Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Current resident set size in MiB (Linux ``/proc``; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def environment(
    dists: Iterable[str], *, package: str = "slimtune", **extra_versions: str | None
) -> dict[str, Any]:
    """Versions of ``dists`` (plus SQLite and ``extra_versions``), the machine, the git commit
    of this checkout (and whether its ``src/`` had uncommitted changes), and where ``package``
    is imported from with a digest of its sources."""

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    def git(*cmd: str) -> str:
        proc = subprocess.run(
            ["git", *cmd], capture_output=True, text=True, cwd=REPO_ROOT, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    versions = {d: version(d) for d in dists} | {"sqlite": sqlite3.sqlite_version}
    return {
        "versions": versions | extra_versions,
        "machine": machine_info(),
        "git": {
            "commit": git("rev-parse", "HEAD") or None,
            "src_uncommitted_changes": bool(git("status", "--porcelain", "--", "src")),
        },
        **package_source(package),
    }


def package_source(package: str = "slimtune") -> dict[str, Any]:
    """Where ``package`` is imported from (the working tree, or a snapshot put first on
    ``PYTHONPATH``) and a digest of its sources: what the benchmark actually measured."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return {"package_path": None, "package_sha1": None}
    root = Path(spec.origin).parent
    return {"package_path": str(root), "package_sha1": source_digest(root)}


def source_digest(root: Path) -> str:
    """SHA-1 over every ``.py`` file under ``root`` (path and bytes): compare it at the start
    and the end of a run to catch sources edited while the benchmark ran."""
    h = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant figures, ``-`` for missing."""
    if x is None or x != x:  # None or NaN
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; the first column is left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return "| " + " | ".join(parts) + " |"

    sep = ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    return "\n".join([line(cells[0]), "| " + " | ".join(sep) + " |", *map(line, cells[1:])])


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (NaN becomes null), creating parent folders."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_nan_to_none(payload), indent=2, sort_keys=False) + "\n")
    return out


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, Mapping):
        return {str(k): _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def profile_call(
    fn: Callable[[], Any], *, top: int = 20, focus: str = "slimtune/"
) -> dict[str, Any]:
    """cProfile one call of ``fn``: the ``top`` functions by self time, and the ``top`` functions
    whose short name starts with ``focus`` by cumulative time; shares are of the profiled total."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    raw: dict[Any, Any] = pstats.Stats(prof, stream=io.StringIO()).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or float("nan")
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        where = "{built-in}" if filename == "~" else f"{_short_path(filename)}:{line}"
        rows.append(
            {
                "function": f"{where}:{func}",
                "ncalls": ncalls,
                "tottime_s": tottime,
                "cumtime_s": cumtime,
                "tottime_share": tottime / total,
                "cumtime_share": cumtime / total,
            }
        )
    by_self = sorted(rows, key=lambda r: -r["tottime_s"])[:top]
    focused = [r for r in rows if r["function"].startswith(focus)]
    by_cum = sorted(focused, key=lambda r: -r["cumtime_s"])[:top]
    return {"total_s": total, "by_tottime": by_self, "focus_by_cumtime": by_cum}


def profile_table(rows: Sequence[Mapping[str, Any]]) -> str:
    return markdown_table(
        ["function", "calls", "self s", "self %", "cum s", "cum %"],
        [
            [
                r["function"],
                r["ncalls"],
                f"{r['tottime_s']:.3f}",
                f"{100 * r['tottime_share']:.1f}",
                f"{r['cumtime_s']:.3f}",
                f"{100 * r['cumtime_share']:.1f}",
            ]
            for r in rows
        ],
    )


def _short_path(filename: str) -> str:
    """``slimtune/...`` for our sources, the path below site-packages, or ``stdlib/...``."""
    for marker, head in (("/src/slimtune/", "slimtune/"), ("/site-packages/", "")):
        i = filename.find(marker)
        if i >= 0:
            return head + filename[i + len(marker) :]
    i = filename.find("/lib/python3")
    if i >= 0:
        return "stdlib/" + filename[i + 1 :].split("/", 2)[-1]
    return filename
