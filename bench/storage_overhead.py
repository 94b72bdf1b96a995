"""Per-trial ask+tell overhead of slimtune's storages, side by side with Optuna's.

Every variant runs the same define-by-run loop (5-D: three floats, one log float, one int; the
objective is trivial arithmetic) for ``--n-trials`` trials with a seeded random sampler::

    t = study.ask(); x0 = t.suggest_float("x0", -5, 5); ...; study.tell(t, value)

Variants, alternated round by round in one process (A B C ... A B C ...):

* slimtune: ``memory``, ``sqlite:///<tmp>/x.db``, ``postgresql://...`` (fresh database each run)
* Optuna: ``InMemoryStorage``, ``RDBStorage("sqlite:///...")``,
  ``JournalStorage(JournalFileBackend(...))``, ``RDBStorage("postgresql+psycopg://...")``

Time is process time (CPU of this process) and wall time (which also counts waiting on the
database server and on fsync) per trial, median over ``--repeats``; study creation is not timed.
Memory comes from a separate, untimed pass that runs each variant in a fresh subprocess (peak
RSS of that process, its growth over the loop, and the tracemalloc peak of a second loop), so
one variant's allocations never inflate another's numbers.

Run from the repository root::

    python -m bench.storage_overhead                   # 1,000 trials, 3 repeats
    python -m bench.storage_overhead --quick           # smoke test: 100 trials, 1 repeat
    python -m bench.storage_overhead --profile slimtune   # add a cProfile of each slimtune variant

While others edit ``src/``, measure a frozen commit instead of the working tree (a path on
PYTHONPATH comes before the editable install)::

    git archive HEAD src | tar -x -C /tmp/snap && PYTHONPATH=/tmp/snap/src \\
        python -m bench.storage_overhead
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    REPO_ROOT,
    current_rss_mb,
    environment,
    fmt,
    load_average,
    markdown_table,
    median,
    package_source,
    peak_rss_mb,
    pin_threads,
    profile_call,
    profile_table,
    ratio,
    time_call,
    write_json,
)
from bench._postgres import FreshDatabases, throwaway_postgres

DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "storage_overhead.json"
WARMUP_TRIALS = 20


@dataclass(frozen=True)
class Variant:
    name: str
    side: str  # "slimtune" | "optuna"
    backend: str  # "memory" | "sqlite" | "journal-file" | "postgres"
    label: str


VARIANTS = (
    Variant("slimtune-memory", "slimtune", "memory", "slimtune memory"),
    Variant("optuna-memory", "optuna", "memory", "Optuna InMemoryStorage"),
    Variant("slimtune-sqlite", "slimtune", "sqlite", "slimtune SQLite"),
    Variant("optuna-rdb-sqlite", "optuna", "sqlite", "Optuna RDBStorage (SQLite)"),
    Variant("optuna-journal-file", "optuna", "journal-file", "Optuna JournalFileBackend"),
    Variant("slimtune-postgres", "slimtune", "postgres", "slimtune PostgreSQL"),
    Variant("optuna-rdb-postgres", "optuna", "postgres", "Optuna RDBStorage (PostgreSQL)"),
)
BY_NAME = {v.name: v for v in VARIANTS}

COMPARISONS = (  # (row label, slimtune variant, Optuna peer)
    ("memory", "slimtune-memory", "optuna-memory"),
    ("SQLite", "slimtune-sqlite", "optuna-rdb-sqlite"),
    ("SQLite vs journal file", "slimtune-sqlite", "optuna-journal-file"),
    ("PostgreSQL", "slimtune-postgres", "optuna-rdb-postgres"),
)

NOTES = (
    "ratio = slimtune / Optuna, a ratio of medians (< 1: slimtune is faster); cpu = "
    "time.process_time of this process, wall = time.perf_counter (also counts waiting on the "
    "database server and on fsync).",
    "Memory: each variant run again in a fresh subprocess, untimed: peak RSS (VmHWM) of that "
    "process (interpreter + imports + study), and the tracemalloc peak of a second loop.",
    "Durability differs: slimtune SQLite runs WAL with synchronous=NORMAL (no fsync per "
    "commit); Optuna's RDB SQLite keeps SQLite's defaults (rollback journal, synchronous=FULL); "
    "Optuna's journal file fsyncs every append. Optuna logging is at WARNING (it logs each tell "
    "at INFO).",
)


# -- the workload ----------------------------------------------------------------------------
def run_trials(study: Any, n_trials: int) -> None:
    """The measured loop; slimtune's and Optuna's ask/tell APIs are the same here."""
    for _ in range(n_trials):
        t = study.ask()
        x0 = t.suggest_float("x0", -5.0, 5.0)
        x1 = t.suggest_float("x1", -5.0, 5.0)
        x2 = t.suggest_float("x2", -5.0, 5.0)
        lr = t.suggest_float("lr", 1e-5, 1e-1, log=True)
        units = t.suggest_int("units", 1, 128)
        value = (x0 - 1.0) ** 2 + (x1 + 2.0) ** 2 + x2 * x2 + (math.log10(lr) + 3.0) ** 2
        study.tell(t, value + units / 128.0)


def count_complete(variant: Variant, study: Any) -> int:
    if variant.side == "slimtune":
        from slimtune import TrialState

        return len(study.get_trials([TrialState.COMPLETE]))
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


@dataclass
class Context:
    tmp_root: str
    seed: int
    postgres: FreshDatabases | None


def make_study(variant: Variant, ctx: Context, seed: int) -> tuple[Any, Callable[[], None]]:
    """A fresh, empty study of ``variant`` and the function that releases its storage."""
    name = f"bench-{variant.name}-{uuid.uuid4().hex[:10]}"
    folder = tempfile.mkdtemp(prefix=variant.name + "-", dir=ctx.tmp_root)
    pg_url: str | None = None
    if variant.backend == "postgres":
        if ctx.postgres is None:
            raise RuntimeError(f"{variant.name} needs a PostgreSQL server")
        pg_url = ctx.postgres.new_database()
    release: list[Callable[[], None]] = []
    study: Any
    if variant.side == "slimtune":
        import slimtune

        urls = {"memory": "memory", "sqlite": f"sqlite:///{folder}/x.db", "postgres": pg_url}
        study = slimtune.create_study(
            name, storage=urls[variant.backend], seed=seed, sampler=slimtune.RandomSampler()
        )
        if hasattr(study.storage.backend, "close"):
            release.append(study.storage.backend.close)
    else:
        import optuna

        storage: Any = None  # InMemoryStorage
        if variant.backend == "sqlite":
            storage = optuna.storages.RDBStorage(f"sqlite:///{folder}/x.db")
        elif variant.backend == "journal-file":
            from optuna.storages.journal import JournalFileBackend

            storage = optuna.storages.JournalStorage(JournalFileBackend(f"{folder}/journal.log"))
        elif variant.backend == "postgres":
            assert pg_url is not None
            storage = optuna.storages.RDBStorage(
                pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
            )
        sampler = optuna.samplers.RandomSampler(seed=seed)
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler)
        if isinstance(storage, optuna.storages.RDBStorage):
            release.append(storage.engine.dispose)

    def close() -> None:
        for fn in release:
            with contextlib.suppress(Exception):
                fn()
        if pg_url is not None and ctx.postgres is not None:
            ctx.postgres.drop(pg_url)
        shutil.rmtree(folder, ignore_errors=True)

    return study, close


def measure(variant: Variant, ctx: Context, n_trials: int, seed: int) -> dict[str, Any]:
    """Time one run of ``n_trials`` on a fresh study; check every trial completed."""
    study, close = make_study(variant, ctx, seed)
    try:
        t = time_call(lambda: run_trials(study, n_trials))
        done = count_complete(variant, study)
        best = float(study.best_value)
    finally:
        close()
    if done != n_trials:
        raise RuntimeError(f"{variant.name}: {done} COMPLETE trials, expected {n_trials}")
    return {"cpu_s": t.cpu_s, "wall_s": t.wall_s, "best_value": best}


# -- memory: one fresh subprocess per variant ------------------------------------------------
def memory_worker(args: argparse.Namespace) -> dict[str, Any]:
    """In a fresh interpreter: RSS over one loop, then the tracemalloc peak of another."""
    variant = BY_NAME[args.memory_worker]
    if variant.side == "optuna":  # import the library first: "after import" includes it
        import optuna
        import optuna.storages._rdb.storage  # SQLAlchemy, as the RDB variants load it

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    else:
        import slimtune  # noqa: F401
    pg = FreshDatabases(args.postgres_url) if variant.backend == "postgres" else None
    ctx = Context(tmp_root=args.tmpdir or tempfile.gettempdir(), seed=args.seed, postgres=pg)
    rss_import = current_rss_mb()
    study, close = make_study(variant, ctx, args.seed)
    try:
        rss_before = current_rss_mb()
        run_trials(study, args.n_trials)
        peak = peak_rss_mb()
    finally:
        close()
    del study
    study, close = make_study(variant, ctx, args.seed)
    try:
        tracemalloc.start()
        run_trials(study, args.n_trials)
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    finally:
        close()
    return {
        "rss_after_import_mb": rss_import,
        "rss_before_loop_mb": rss_before,
        "peak_rss_mb": peak,
        "loop_rss_growth_mb": peak - rss_before,
        "traced_peak_mb": traced_peak,
    }


def memory_pass(variant: Variant, args: argparse.Namespace, pg_url: str | None) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_memory-worker",
        variant.name,
        "--n-trials",
        str(args.n_trials),
        "--seed",
        str(args.seed),
        "--tmpdir",
        args.tmp_root,
    ]
    if pg_url is not None:
        cmd += ["--postgres-url", pg_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    if proc.returncode != 0:
        print(
            f"note: memory pass of {variant.name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr
        )
        return {"error": proc.stderr.strip()[-2000:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- report ----------------------------------------------------------------------------------
def summarise(name: str, runs: list[dict[str, Any]], n_trials: int) -> dict[str, Any]:
    cpu = [1000 * r["cpu_s"] / n_trials for r in runs]
    wall = [1000 * r["wall_s"] / n_trials for r in runs]
    return {
        "label": BY_NAME[name].label,
        "cpu_ms_per_trial": cpu,
        "wall_ms_per_trial": wall,
        "cpu_ms_per_trial_median": median(cpu),
        "wall_ms_per_trial_median": median(wall),
        "best_value_first_repeat": runs[0]["best_value"],
    }


def comparisons(summary: dict[str, Any], memory: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for label, ours, peer in COMPARISONS:
        if ours not in summary or peer not in summary:
            continue
        row: dict[str, Any] = {"storage": label, "slimtune": ours, "optuna": peer}
        for kind in ("cpu", "wall"):
            a, b = summary[ours][f"{kind}_ms_per_trial"], summary[peer][f"{kind}_ms_per_trial"]
            row[f"ratio_{kind}"] = ratio(median(a), median(b))
            row[f"paired_ratio_{kind}_median"] = median(x / y for x, y in zip(a, b, strict=True))
        for side, name in (("slimtune", ours), ("optuna", peer)):
            for key in ("peak_rss_mb", "traced_peak_mb"):
                row[f"{side}_{key}"] = memory.get(name, {}).get(key)
        out.append(row)
    return out


def tables(summary: dict[str, Any], rows: list[dict[str, Any]], memory: dict[str, Any]) -> str:
    main_rows = []
    for r in rows:
        a, b = summary[r["slimtune"]], summary[r["optuna"]]
        main_rows.append(
            [
                r["storage"],
                fmt(a["cpu_ms_per_trial_median"]),
                fmt(a["wall_ms_per_trial_median"]),
                BY_NAME[r["optuna"]].label,
                fmt(b["cpu_ms_per_trial_median"]),
                fmt(b["wall_ms_per_trial_median"]),
                f"{r['ratio_cpu']:.2f}x",
                f"{r['ratio_wall']:.2f}x",
                f"{fmt(r['slimtune_peak_rss_mb'])} / {fmt(r['optuna_peak_rss_mb'])}",
                f"{fmt(r['slimtune_traced_peak_mb'])} / {fmt(r['optuna_traced_peak_mb'])}",
            ]
        )
    main = markdown_table(
        [
            "storage",
            "slimtune ms/trial cpu",
            "slimtune ms/trial wall",
            "Optuna peer",
            "Optuna ms/trial cpu",
            "Optuna ms/trial wall",
            "ratio cpu",
            "ratio wall",
            "peak RSS MiB slimtune / Optuna",
            "traced peak MiB slimtune / Optuna",
        ],
        main_rows,
    )
    detail_rows = []
    for name, s in summary.items():
        cpu, wall, mem = s["cpu_ms_per_trial"], s["wall_ms_per_trial"], memory.get(name, {})
        detail_rows.append(
            [
                s["label"],
                f"{fmt(median(cpu))} [{fmt(min(cpu))}-{fmt(max(cpu))}]",
                f"{fmt(median(wall))} [{fmt(min(wall))}-{fmt(max(wall))}]",
                *(
                    fmt(mem.get(k))
                    for k in (
                        "rss_after_import_mb",
                        "peak_rss_mb",
                        "loop_rss_growth_mb",
                        "traced_peak_mb",
                    )
                ),
            ]
        )
    detail = markdown_table(
        [
            "variant",
            "cpu ms/trial median [min-max]",
            "wall ms/trial median [min-max]",
            "RSS after import MiB",
            "peak RSS MiB",
            "loop RSS growth MiB",
            "traced peak MiB",
        ],
        detail_rows,
    )
    return main + "\n\n" + detail


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n-trials", type=int, default=1000, help="trials per run (default 1000)")
    p.add_argument("--repeats", type=int, default=3, help="rounds of all variants (default 3)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed of round 1 (+1 per round)")
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("SLIMTUNE_TEST_POSTGRES_URL"),
        help="server for the PostgreSQL rows (default $SLIMTUNE_TEST_POSTGRES_URL; "
        "without one, a throw-away server is started with .ci/postgres.sh)",
    )
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    p.add_argument("--variants", help="comma-separated subset of: " + ", ".join(BY_NAME))
    p.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    p.add_argument(
        "--profile",
        default="",
        help="comma-separated variants to cProfile once "
        "after timing ('slimtune' = every slimtune variant)",
    )
    p.add_argument("--tmpdir", help="folder for the database files (default: the system's)")
    p.add_argument("--json", default=str(DEFAULT_JSON), help=f"output (default {DEFAULT_JSON})")
    p.add_argument("--quick", action="store_true", help="smoke test: 100 trials, 1 repeat")
    p.add_argument("--_memory-worker", dest="memory_worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.n_trials, args.repeats = 100, 1
    if args.n_trials < 1 or args.repeats < 1:
        p.error("--n-trials and --repeats must be >= 1")
    names = args.variants.split(",") if args.variants else list(BY_NAME)
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(BY_NAME)}")
    args.variant_names = names
    return args


def open_postgres(args: argparse.Namespace, stack: contextlib.ExitStack, notes: list[str]) -> Any:
    """The FreshDatabases of the server to use, or ``None`` (with a note) to skip its rows."""
    if args.no_postgres or not any(BY_NAME[n].backend == "postgres" for n in args.variant_names):
        return None
    url, args.pg_source = args.postgres_url, "--postgres-url / SLIMTUNE_TEST_POSTGRES_URL"
    if url is None:
        url, args.pg_source = stack.enter_context(throwaway_postgres()), ".ci/postgres.sh"
    if url is None:
        notes.append("no PostgreSQL server available: PostgreSQL rows skipped")
        return None
    try:
        pg = FreshDatabases(url)
    except Exception as err:
        notes.append(f"PostgreSQL unusable ({type(err).__name__}: {err}); its rows skipped")
        return None
    if pg.shared:
        notes.append("cannot CREATE DATABASE: PostgreSQL runs share one database")
    return pg


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    threads = pin_threads(1)  # before numpy / optuna / slimtune are imported
    if args.memory_worker:
        print(json.dumps(memory_worker(args)))
        return 0
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        args.tmp_root = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="slimtune-bench-", dir=args.tmpdir)
        )
        pg = open_postgres(args, stack, notes)
        variants = [BY_NAME[n] for n in args.variant_names]
        variants = [v for v in variants if pg is not None or v.backend != "postgres"]
        for note in notes:
            print("note:", note, file=sys.stderr)
        ctx = Context(tmp_root=args.tmp_root, seed=args.seed, postgres=pg)
        env = environment(  # at the start: what the timed code is
            ("slimtune", "optuna", "sqlalchemy", "psycopg", "numpy"),
            postgresql_server=None if pg is None else pg.server_version,
        )
        load_before = load_average()
        print(
            f"load average {load_before}; {len(variants)} variants x {args.repeats} rounds x "
            f"{args.n_trials} trials",
            file=sys.stderr,
        )
        for v in variants:  # warm-up (untimed): imports, first-use code paths
            measure(v, ctx, WARMUP_TRIALS, args.seed)
        runs: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
        round_loads = []
        for rep in range(args.repeats):
            for v in variants:  # A B C ... in every round
                r = measure(v, ctx, args.n_trials, args.seed + rep)
                runs[v.name].append(r)
                print(
                    f"  round {rep + 1}/{args.repeats} {v.name:20s} cpu "
                    f"{1000 * r['cpu_s'] / args.n_trials:8.3f}  wall "
                    f"{1000 * r['wall_s'] / args.n_trials:8.3f} ms/trial",
                    file=sys.stderr,
                )
            round_loads.append(load_average())
        load_after = load_average()
        memory: dict[str, Any] = {}
        if not args.no_memory:
            print("memory pass (a fresh subprocess per variant)...", file=sys.stderr)
            for v in variants:
                memory[v.name] = memory_pass(v, args, None if pg is None else pg.url)
        wanted = [s for s in args.profile.split(",") if s]
        if "slimtune" in wanted:
            wanted = [v.name for v in variants if v.side == "slimtune"]
        profiles = {}
        for v in variants:
            if v.name in wanted:
                study, close = make_study(v, ctx, args.seed)
                try:
                    profiles[v.name] = profile_call(
                        functools.partial(run_trials, study, args.n_trials)
                    )
                finally:
                    close()
        if package_source()["package_sha1"] != env["package_sha1"]:
            notes.append(
                f"slimtune's sources under {env['package_path']} changed while this ran: the "
                "numbers may mix two versions (run from a snapshot on PYTHONPATH, see --help)"
            )

    summary = {name: summarise(name, rs, args.n_trials) for name, rs in runs.items()}
    rows = comparisons(summary, memory)
    print(
        f"\n## Storage overhead: {args.n_trials} trials of ask + 5 suggests + tell, random "
        f"sampler, median of {args.repeats} round(s)\n"
    )
    print(tables(summary, rows, memory) + "\n")
    print(
        f"slimtune {env['versions']['slimtune']} from {env['package_path']} (checkout at "
        f"{str(env['git']['commit'])[:10]}), "
        f"Optuna {optuna.__version__}, SQLite {env['versions']['sqlite']}, PostgreSQL "
        f"{env['versions']['postgresql_server'] or 'not run'}. Load average before "
        f"{load_before}, after {load_after}; {os.cpu_count()} CPUs; threads pinned to 1."
    )
    for note in (*NOTES, *notes):
        print("-", note)
    for name, prof in profiles.items():
        print(
            f"\n### cProfile of {name}: {args.n_trials} trials, {prof['total_s']:.2f} s "
            "profiled (cProfile's wall-clock timer, so waiting on a server counts); top "
            "functions by self time\n"
        )
        print(profile_table(prof["by_tottime"]))
        print("\nslimtune functions by cumulative time:\n")
        print(profile_table(prof["focus_by_cumtime"]))
    payload = {
        "benchmark": "storage_overhead",
        "command": [Path(sys.executable).name, *sys.argv],
        "pythonpath": os.environ.get("PYTHONPATH"),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "n_trials": args.n_trials,
            "repeats": args.repeats,
            "seed": args.seed,
            "warmup_trials": WARMUP_TRIALS,
            "variants": [v.name for v in variants],
            "postgres": None
            if pg is None
            else {"source": args.pg_source, "fresh_database_per_run": not pg.shared},
        },
        **env,
        "threads": threads,
        "load_average": {
            "before": load_before,
            "after_each_round": round_loads,
            "after": load_after,
        },
        "memory_method": "fresh subprocess per variant: VmHWM after one loop; tracemalloc peak "
        "of a second loop in the same subprocess",
        "main_process_peak_rss_mb": peak_rss_mb(),
        "results": summary,
        "memory": memory,
        "comparisons": rows,
        "profiles": profiles,
        "notes": [*NOTES, *notes],
    }
    print(f"\nJSON: {write_json(args.json, payload)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
