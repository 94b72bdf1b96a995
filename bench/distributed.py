"""Distributed trials: throughput, wall time, parallel efficiency and per-trial coordination
overhead with 1 and 2 workers, slimtune next to Optuna, in one run.

Objectives sleep for ``--durations`` seconds (0.1 s and 1 s) after suggesting two floats with a
random sampler (both sides). Variants, alternated within every (duration, workers) cell
(A B C D E, A B C D E, ... over ``--repeats`` rounds):

* ``slimtune-processes``: ``study.optimize(..., executor=ProcessExecutor(max_workers=W))``
  (a warm pool; the driver asks and tells, objectives run in spawned processes)
* ``slimtune-ray``: ``RayExecutor`` on a local Ray started once with ``num_cpus=2``
* ``slimtune-workers``: W ``slimtune worker --n-trials N`` processes on one PostgreSQL study
* ``optuna-threads``: Optuna ``study.optimize(n_jobs=W)`` (threads, ``InMemoryStorage``)
* ``optuna-rdb-processes``: W processes running Optuna's ``optimize`` on one ``RDBStorage``
  study in the same PostgreSQL server (N / W trials each)

Storage: a fresh PostgreSQL database per run for every slimtune variant and Optuna's RDB
variant (``--postgres-url`` / ``SLIMTUNE_TEST_POSTGRES_URL``, else a throw-away server from
``.ci/postgres.sh``; SQLite when none can start). ``wall`` is the timed ``optimize`` call for
in-process variants and, for the process variants, the span from the first trial's start to
the last trial's end as stored (``process wall`` adds interpreter start-up and imports).
``efficiency = N * d / (W * wall)`` (1.0: the workers did nothing but run objectives);
``overhead = (W * wall - N * d) / N``: worker time per trial spent outside the objective.

Run from the repository root::

    python -m bench.distributed            # 0.1 s and 1 s objectives, 1 and 2 workers, 2 rounds
    python -m bench.distributed --quick    # smoke test: 0.05 s objectives, 2 workers, 4 trials
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    REPO_ROOT,
    environment,
    fmt,
    load_average,
    markdown_table,
    median,
    peak_rss_mb,
    pin_threads,
    write_json,
)
from bench._postgres import FreshDatabases, throwaway_postgres

DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "distributed.json"
VARIANTS = (
    "slimtune-processes",
    "slimtune-ray",
    "slimtune-workers",
    "optuna-threads",
    "optuna-rdb-processes",
)
SUBPROCESS_VARIANTS = ("slimtune-workers", "optuna-rdb-processes")


class Context:
    def __init__(self, tmp: str, pg: FreshDatabases | None, seed: int) -> None:
        self.tmp = tmp
        self.pg = pg
        self.seed = seed
        self.pools: dict[int, Any] = {}
        self.ray_executors: dict[int, Any] = {}

    def new_url(self) -> tuple[str, Callable[[], None]]:
        if self.pg is not None:
            url = self.pg.new_database()
            pg = self.pg
            return url, lambda: pg.drop(url)
        path = Path(self.tmp) / f"{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: None


def _env() -> dict[str, str]:
    path = os.pathsep.join(
        [str(REPO_ROOT), str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    )
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _slimtune_span(url: str, name: str) -> tuple[float, int]:
    import slimtune

    trials = slimtune.load_study(name, storage=url).trials
    done = [t for t in trials if t.datetime_complete is not None]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in done if t.datetime_complete is not None)
    n = sum(t.state is slimtune.TrialState.COMPLETE for t in trials)
    return (end - start).total_seconds(), n


def run_variant(variant: str, ctx: Context, workers: int, seconds: float, n: int) -> dict[str, Any]:
    from bench._dist_objective import SleepObjective

    out: dict[str, Any] = {"variant": variant, "workers": workers, "seconds": seconds, "n": n}
    objective = SleepObjective(seconds)
    if variant.startswith("slimtune"):
        import slimtune

        url, drop = ctx.new_url()
        name = "dist-" + uuid.uuid4().hex[:8]
        slimtune.create_study(name, storage=url, sampler=slimtune.RandomSampler(), seed=ctx.seed)
        try:
            if variant == "slimtune-workers":
                env = {**_env(), "SLIMTUNE_BENCH_SLEEP": str(seconds)}
                cmd = [sys.executable, "-m", "slimtune.cli", "worker", "--storage", url]
                cmd += ["--study", name, "--objective", "bench._dist_objective:from_env"]
                cmd += ["--n-trials", str(n)]
                t0 = time.perf_counter()
                procs = [
                    subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE)
                    for _ in range(workers)
                ]
                for p in procs:
                    _, err = p.communicate(timeout=3600)
                    if p.returncode != 0:
                        raise RuntimeError(f"slimtune worker failed: {err.decode()[-2000:]}")
                out["process_wall_s"] = time.perf_counter() - t0
                out["wall_s"], out["n_complete"] = _slimtune_span(url, name)
            else:
                executor = (
                    ctx.pools[workers]
                    if variant == "slimtune-processes"
                    else ctx.ray_executors[workers]
                )
                study = slimtune.load_study(name, storage=url, sampler=slimtune.RandomSampler())
                t0 = time.perf_counter()
                study.optimize(objective, n_trials=n, executor=executor)
                out["wall_s"] = time.perf_counter() - t0
                out["n_complete"] = len(study.get_trials([slimtune.TrialState.COMPLETE]))
        finally:
            drop()
    elif variant == "optuna-threads":
        import optuna

        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=ctx.seed))
        t0 = time.perf_counter()
        study.optimize(objective, n_trials=n, n_jobs=workers)
        out["wall_s"] = time.perf_counter() - t0
        out["n_complete"] = len(study.get_trials(states=[optuna.trial.TrialState.COMPLETE]))
    else:  # optuna-rdb-processes
        import optuna

        url, drop = ctx.new_url()
        rdb_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        name = "dist-" + uuid.uuid4().hex[:8]
        try:
            storage = optuna.storages.RDBStorage(rdb_url)
            optuna.create_study(study_name=name, storage=storage)
            shares = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
            t0 = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench._dist_optuna_worker",
                        rdb_url,
                        name,
                        str(k),
                        str(seconds),
                    ],
                    cwd=REPO_ROOT,
                    env=_env(),
                    stderr=subprocess.PIPE,
                )
                for k in shares
            ]
            for p in procs:
                _, err = p.communicate(timeout=3600)
                if p.returncode != 0:
                    raise RuntimeError(f"Optuna worker failed: {err.decode()[-2000:]}")
            out["process_wall_s"] = time.perf_counter() - t0
            trials = optuna.load_study(study_name=name, storage=storage).trials
            start = min(t.datetime_start for t in trials if t.datetime_start is not None)
            end = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
            out["wall_s"] = (end - start).total_seconds()
            out["n_complete"] = sum(t.state.name == "COMPLETE" for t in trials)
            storage.engine.dispose()
        finally:
            drop()
    ideal = n * seconds
    out["trials_per_s"] = n / out["wall_s"]
    out["efficiency"] = ideal / (workers * out["wall_s"])
    out["overhead_ms"] = 1000 * (workers * out["wall_s"] - ideal) / n
    return out


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells: dict[tuple[str, int, float], list[dict[str, Any]]] = {}
    for r in runs:
        cells.setdefault((r["variant"], r["workers"], r["seconds"]), []).append(r)
    rows = []
    for (variant, workers, seconds), rs in cells.items():
        row: dict[str, Any] = {"variant": variant, "workers": workers, "seconds": seconds}
        row["n"] = rs[0]["n"]
        row["repeats"] = len(rs)
        for key in ("wall_s", "trials_per_s", "efficiency", "overhead_ms", "process_wall_s"):
            vals = [r[key] for r in rs if key in r]
            row[key] = median(vals) if vals else None
        row["all_complete"] = all(r["n_complete"] == r["n"] for r in rs)
        rows.append(row)
    for row in rows:  # scaling: wall with 1 worker / (W * wall with W workers), same variant
        base = next(
            (
                x
                for x in rows
                if x["variant"] == row["variant"]
                and x["seconds"] == row["seconds"]
                and x["workers"] == 1
            ),
            None,
        )
        if base is not None and base["n"] == row["n"]:
            row["scaling"] = base["wall_s"] / (row["workers"] * row["wall_s"])
        else:
            row["scaling"] = None
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows.sort(key=lambda r: (r["seconds"], r["workers"], order[r["variant"]]))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        [
            "variant",
            "objective s",
            "workers",
            "trials",
            "wall s",
            "trials/s",
            "efficiency",
            "scaling 1->W",
            "overhead ms/trial",
            "process wall s",
        ],
        [
            [
                r["variant"] + ("" if r["all_complete"] else " (!)"),
                fmt(r["seconds"], 2),
                r["workers"],
                r["n"],
                fmt(r["wall_s"]),
                fmt(r["trials_per_s"]),
                fmt(r["efficiency"]),
                "-" if r["workers"] == 1 else fmt(r["scaling"]),
                fmt(r["overhead_ms"]),
                fmt(r["process_wall_s"]),
            ]
            for r in rows
        ],
    )


def verdicts(rows: list[dict[str, Any]], long: float, short: float) -> list[str]:
    def get(variant: str, workers: int, seconds: float) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows
                if r["variant"] == variant and r["workers"] == workers and r["seconds"] == seconds
            ),
            None,
        )

    out = []
    for v in ("slimtune-processes", "slimtune-ray", "slimtune-workers"):
        r = get(v, 2, long)
        if r is not None:
            ok = r["efficiency"] >= 0.9
            out.append(
                f"{v}: efficiency {r['efficiency']:.3f} at 2 workers, {long:g} s objectives "
                f"({'>=' if ok else '<'} 0.9: {'PASS' if ok else 'FAIL'})"
            )
    for w in (1, 2):
        ours, peer = get("slimtune-workers", w, short), get("optuna-rdb-processes", w, short)
        if ours is not None and peer is not None:
            ok = ours["overhead_ms"] <= peer["overhead_ms"]
            out.append(
                f"coordination overhead on PostgreSQL, {w} worker(s), {short:g} s objectives: "
                f"slimtune workers {ours['overhead_ms']:.1f} ms/trial vs Optuna RDB processes "
                f"{peer['overhead_ms']:.1f} ms/trial ({'PASS' if ok else 'FAIL'})"
            )
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--durations", default="0.1,1.0", help="objective seconds (default 0.1,1.0)")
    p.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    p.add_argument(
        "--trials-per-worker-second",
        type=float,
        default=10.0,
        help="trials per run = this * 2 / d, at least 8 (default: 20 trials of 1 s, 200 of 0.1 s)",
    )
    p.add_argument("--max-trials", type=int, default=80, help="cap on trials per run (default 80)")
    p.add_argument("--repeats", type=int, default=2, help="rounds (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    p.add_argument("--postgres-url", default=os.environ.get("SLIMTUNE_TEST_POSTGRES_URL"))
    p.add_argument("--json", default=str(DEFAULT_JSON), help=f"output (default {DEFAULT_JSON})")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 0.05 s objectives, 2 workers, 4 trials, 1 round",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.durations, args.workers, args.repeats, args.max_trials = "0.05", "2", 1, 4
    args.duration_list = [float(x) for x in args.durations.split(",")]
    args.worker_list = [int(x) for x in args.workers.split(",")]
    args.variant_list = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(args.variant_list) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    return args


def n_trials_for(args: argparse.Namespace, seconds: float) -> int:
    n = max(8, math.ceil(args.trials_per_worker_second * 2 / seconds))
    n = min(n, args.max_trials)
    return n + n % 2  # even: equal shares for 2 workers


def setup(args: argparse.Namespace, ctx: Context, notes: list[str]) -> None:
    if any(v.startswith("slimtune") for v in args.variant_list):
        from slimtune.executors import ProcessExecutor

        for w in args.worker_list:
            ctx.pools[w] = ProcessExecutor(max_workers=w)
    if "slimtune-ray" in args.variant_list:
        try:
            import ray

            from slimtune.executors import RayExecutor

            ray.init(
                num_cpus=max(args.worker_list),
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": _env()["PYTHONPATH"]}},
            )
            for w in args.worker_list:
                ctx.ray_executors[w] = RayExecutor(resources={"num_cpus": 1}, max_workers=w)
        except ImportError:
            notes.append("Ray is not installed: slimtune-ray skipped")
            args.variant_list.remove("slimtune-ray")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    threads = pin_threads(1)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    notes: list[str] = []
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="slimtune-dist-"))
        url = args.postgres_url
        if url is None:
            url = stack.enter_context(throwaway_postgres())
        pg = None
        if url is not None:
            try:
                pg = FreshDatabases(url)
            except Exception as err:
                notes.append(f"PostgreSQL unusable ({type(err).__name__}: {err}); SQLite used")
        else:
            notes.append("no PostgreSQL server: SQLite used for slimtune, Optuna RDB skipped")
        if pg is None and "optuna-rdb-processes" in args.variant_list:
            args.variant_list.remove("optuna-rdb-processes")
        ctx = Context(tmp, pg, args.seed)
        setup(args, ctx, notes)
        env = environment(
            ("slimtune", "optuna", "ray", "psycopg", "sqlalchemy"),
            postgresql_server=None if pg is None else pg.server_version,
        )
        load_before = load_average()
        print(f"load average {load_before}; variants {args.variant_list}", file=sys.stderr)
        for w in args.worker_list:  # warm-up: every worker process (and Ray worker) starts
            for v in args.variant_list:  # and imports slimtune; objectives long enough that
                if v in ("slimtune-processes", "slimtune-ray"):  # each worker gets one
                    run_variant(v, ctx, w, 0.05 if args.quick else 0.3, 2 * w)
        for rep in range(args.repeats):
            for seconds in args.duration_list:
                n = n_trials_for(args, seconds)
                for w in args.worker_list:
                    for v in args.variant_list:
                        r = run_variant(v, ctx, w, seconds, n)
                        r["round"] = rep
                        runs.append(r)
                        print(
                            f"  round {rep + 1} d={seconds:g}s W={w} {v:22s} wall "
                            f"{r['wall_s']:7.3f}s eff {r['efficiency']:.3f} overhead "
                            f"{r['overhead_ms']:7.1f} ms/trial",
                            file=sys.stderr,
                        )
        load_after = load_average()
        for pool in ctx.pools.values():
            pool.shutdown()
        if ctx.ray_executors:
            import ray

            ray.shutdown()
    rows = summarise(runs)
    long, short = max(args.duration_list), min(args.duration_list)
    print(
        f"\n## Distributed trials: sleep objectives, random sampler, median of {args.repeats} "
        "round(s)\n"
    )
    print(table(rows) + "\n")
    checks = verdicts(rows, long, short)
    for line in checks:
        print("-", line)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"\nslimtune {env['versions']['slimtune']} (checkout {str(env['git']['commit'])[:10]}), "
        f"Optuna {optuna.__version__}, Ray {env['versions']['ray']}, PostgreSQL "
        f"{env['versions']['postgresql_server'] or 'not run'}; {os.cpu_count()} CPUs; load "
        f"average before {load_before}, after {load_after}. Peak RSS: driver "
        f"{peak_rss_mb():.0f} MB, largest child {children:.0f} MB."
    )
    for note in notes:
        print("-", note)
    payload = {
        "benchmark": "distributed",
        "mode": "quick" if args.quick else "full",
        "config": {k: v for k, v in vars(args).items() if k not in ("postgres_url",)},
        "environment": env,
        "threads": threads,
        "load": {"before": load_before, "after": load_after},
        "runs": runs,
        "results": rows,
        "checks": checks,
        "notes": notes,
    }
    out = write_json(args.json, payload)
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
