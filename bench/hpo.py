"""HPO quality: slimtune's samplers next to Optuna's on the same problems, seeds and budgets.

One process pool (``--workers``, default 2, ``spawn``) runs every (problem, sampler, seed) for
the largest budget; smaller budgets are prefixes of that run (the running minimum is kept at
every trial). Samplers:

* slimtune: whichever of Random, QMC, TPE, GP (``hyperparameters="map"`` and ``"mcmc"`` when
  ``GPSampler`` takes that argument) and Evolution exist in ``slimtune.samplers`` (a missing one
  is skipped with a printed note); study seed and sampler seed (where it takes one) = run seed.
* Optuna: RandomSampler, TPESampler, GPSampler with default arguments and ``seed`` = run seed
  (GPSampler wants ``greenlet``, from the ``bench`` extra); the version is in the JSON.
* HEBO, the 2020 challenge winner, when importable: only with ``--full`` (or when named in
  ``--samplers``), on the first ``--hebo-seeds`` seeds, since it takes seconds per suggestion.

Problems (``bench/_problems.py``): six analytic functions on asymmetric domains (log10 simple
regret, floored at 1e-9) and bayesmark-style scikit-learn tuning problems scored as bayesmark
does: with ``S_t`` the running minimum, ``opt`` the best value any run of this benchmark saw on
the problem and ``clip`` the median of one random evaluation, ``normalised = clip((S_t - opt) /
(clip - opt), -1, 1)`` and score ``100 * (1 - normalised)``. ``clip`` is the median over every
trial of the random samplers (slimtune Random and Optuna Random, all seeds): each of their
trials is an independent random evaluation, so no extra evaluations are needed. Scores are
averaged over (problem, seed) pairs; Wilcoxon signed-rank tests (two-sided, scipy) pair
slimtune's best sampler (chosen by its mean on the same data) with each Optuna sampler over
(problem, seed).

Modes (run from the repository root)::

    python -m bench.hpo            # 6 analytic + 10 ML problems (kNN, SVM, DT, RF, lasso on
                                   # iris nll and diabetes mse),
                                   # 10 seeds, budgets 50 and 100
    python -m bench.hpo --full     # 6 analytic + 80 ML problems (every model x data set x metric)
    python -m bench.hpo --quick    # smoke test: 2 analytic + 1 ML problem, 2 seeds, 12 trials
    python -m bench.hpo --resume   # go on from the runs a stopped run left in <json>.partial.jsonl
    python -m bench.hpo --summarise  # tables from that file now (seeds finished everywhere)

Runs go seed by seed, so a stopped run leaves whole seeds behind.

Time is process CPU time of the worker (one BLAS / torch thread), split into sampler and
objective; memory is the worker's peak RSS (workers run many tasks, so it is an upper bound).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    REPO_ROOT,
    environment,
    load_average,
    pin_threads,
    source_digest,
    write_json,
)

THREADS = pin_threads(1)  # before numpy: the workers inherit the environment

import numpy as np  # noqa: E402

from bench._hpo_metrics import (  # noqa: E402
    RANDOM_SAMPLERS,
    REGRET_FLOOR,
    cpu_summary,
    report,
    running_min,
    summarise,
)
from bench._hpo_run import discover_samplers, init_worker, run_task  # noqa: E402
from bench._problems import ANALYTIC, DEFAULT_ML, all_ml_problems, get_problem  # noqa: E402

DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "hpo.json"
MODES: dict[str, dict[str, Any]] = {
    "quick": {
        "analytic": ("branin", "hartmann6"),
        "ml": ("kNN-iris-nll",),
        "seeds": 2,
        "budgets": (6, 12),
    },
    "default": {"analytic": ANALYTIC, "ml": DEFAULT_ML, "seeds": 10, "budgets": (50, 100)},
    "full": {"analytic": ANALYTIC, "ml": all_ml_problems(), "seeds": 10, "budgets": (50, 100)},
}


# --------------------------------------------------------------------------------------------
# running and reporting
# --------------------------------------------------------------------------------------------


def _order(task: tuple[str, str, int, int]) -> tuple[int, int, int]:
    """Seed by seed (a stopped run leaves whole seeds behind), the slow runs first in each."""
    problem, key, seed, _ = task
    heavy = int("GP" in key or key == "hebo")
    return (seed, -heavy, -int(problem not in ANALYTIC))


def load_partial(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_all(
    tasks: list[tuple[str, str, int, int]], workers: int, partial: Path, *, resume: bool
) -> list[dict[str, Any]]:
    """Run every task on a spawn pool; each finished run is also appended to ``partial``, and
    ``resume`` keeps the runs already there (same problem, sampler, seed and trial count, and
    made from the same ``src/``: a digest of it is stored with every run)."""
    wanted = set(tasks)
    src = source_digest(REPO_ROOT / "src")
    runs = [
        r
        for r in (load_partial(partial) if resume else [])
        if r["error"] is None
        and r.get("src_sha1") == src  # never mix sampler versions in one table
        and (r["problem"], r["sampler"], r["seed"], len(r["values"])) in wanted
    ]
    done = {(r["problem"], r["sampler"], r["seed"], len(r["values"])) for r in runs}
    todo = sorted((t for t in tasks if t not in done), key=_order)
    if resume:
        print(f"  resuming: {len(runs)} runs kept, {len(todo)} to go", file=sys.stderr)
    t0 = time.perf_counter()
    step = max(1, len(todo) // 40)
    ctx = mp.get_context("spawn")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with (
        ctx.Pool(workers, initializer=init_worker) as pool,
        partial.open("a" if resume else "w") as sink,  # every finished run: survives a stop
    ):
        for i, run in enumerate(pool.imap_unordered(run_task, todo, chunksize=1), 1):
            runs.append(run)
            sink.write(json.dumps(run) + "\n")
            sink.flush()
            if run["error"] is not None:
                print(
                    f"  ! {run['sampler']} on {run['problem']} seed {run['seed']}: {run['error']}",
                    file=sys.stderr,
                    flush=True,
                )
            if i % step == 0 or i == len(todo):
                elapsed = time.perf_counter() - t0
                print(f"  {i}/{len(todo)} runs, {elapsed:.0f} s", file=sys.stderr, flush=True)
    return sorted(runs, key=lambda r: (r["problem"], r["sampler"], r["seed"]))


def complete_blocks(
    runs: list[dict[str, Any]], tasks: list[tuple[str, str, int, int]]
) -> list[dict[str, Any]]:
    """The runs of the seeds for which every task of ``tasks`` finished, all from the ``src/``
    of the latest run (runs of another version of the samplers are left out)."""
    runs = [r for r in runs if r["error"] is None]
    if runs:
        latest = runs[-1].get("src_sha1")
        runs = [r for r in runs if r.get("src_sha1") == latest]
    have = {(r["problem"], r["sampler"], r["seed"]) for r in runs}
    seeds = {t[2] for t in tasks}
    whole = {s for s in seeds if all(t[:3] in have for t in tasks if t[2] == s)}
    keep = {t[:3] for t in tasks if t[2] in whole}
    return [r for r in runs if (r["problem"], r["sampler"], r["seed"]) in keep]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke test (well under a minute)")
    mode.add_argument("--full", action="store_true", help="every ML model x data set x metric")
    ap.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 10; quick 2)")
    ap.add_argument("--budgets", help="comma-separated trial budgets (default 50,100; quick 6,12)")
    ap.add_argument("--samplers", help="comma-separated sampler keys to run (default: all found)")
    ap.add_argument("--problems", help="comma-separated problem names (default: the mode's set)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--resume", action="store_true", help="keep the runs in the partial file")
    ap.add_argument(
        "--summarise",
        action="store_true",
        help="no runs: tables from the partial file of a stopped run (whole seeds only)",
    )
    ap.add_argument("--hebo-seeds", type=int, default=3, help="seeds for HEBO (default 3)")
    ap.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"output (default {DEFAULT_JSON})"
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full" if args.full else "default"
    cfg = MODES[mode]
    seeds = list(range(args.seeds if args.seeds is not None else cfg["seeds"]))
    budgets = (
        tuple(sorted(int(b) for b in args.budgets.split(","))) if args.budgets else cfg["budgets"]
    )
    problems = args.problems.split(",") if args.problems else [*cfg["analytic"], *cfg["ml"]]
    for name in problems:
        get_problem(name)  # fail fast on a typo
    found, notes = discover_samplers()
    if args.samplers:
        wanted = args.samplers.split(",")
        unknown = [s for s in wanted if s not in found]
        notes += [f"{s}: requested but not available here; skipped." for s in unknown]
        samplers = [s for s in found if s in wanted]
    else:
        samplers = [s for s in found if s != "hebo" or mode == "full"]
        if "hebo" in found and mode != "full":
            notes.append("hebo: importable, but runs only with --full (or --samplers hebo).")
    if any(get_problem(p).kind == "ml" for p in problems) and not set(samplers) & set(
        RANDOM_SAMPLERS
    ):
        raise SystemExit("ML scores need a random sampler for `clip`: include slimtune.Random.")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    tasks = [
        (p, s, seed, budgets[-1])
        for p in problems
        for s in samplers
        for seed in (seeds[: args.hebo_seeds] if s == "hebo" else seeds)
    ]
    print(
        f"bench.hpo {mode}: {len(problems)} problems x {len(samplers)} samplers x "
        f"{len(seeds)} seeds = {len(tasks)} runs of {budgets[-1]} trials on {args.workers} workers",
        file=sys.stderr,
        flush=True,
    )
    src_before = source_digest(REPO_ROOT / "src")
    load_before = load_average()
    t0 = time.perf_counter()
    partial = args.json.with_suffix(".partial.jsonl")
    if args.summarise:  # tables from whatever finished: whole (problem, seed) blocks only
        runs = complete_blocks(load_partial(partial), tasks)
        seeds = sorted({r["seed"] for r in runs})
        if not seeds:
            raise SystemExit(f"{partial}: no seed has finished on every problem and sampler yet.")
        problems = [p for p in problems if any(r["problem"] == p for r in runs)]
        notes.append(
            f"--summarise: {len(runs)} of {len(tasks)} runs, every sampler on seeds {seeds} only."
        )
    else:
        runs = run_all(tasks, args.workers, partial, resume=args.resume)
    elapsed = time.perf_counter() - t0
    summary = summarise(runs, samplers, budgets)
    cpu = cpu_summary(runs, samplers)
    env = environment(
        ["slimtune", "optuna", "scikit-learn", "numpy", "scipy", "torch", "greenlet", "hebo"]
    )
    print(
        f"## bench.hpo ({mode}): {len(problems)} problems, seeds {seeds[0]}..{seeds[-1]}, "
        f"budgets {', '.join(map(str, budgets))}; optuna {env['versions']['optuna']}; "
        + (
            f"summarised from {partial.name}"
            if args.summarise
            else f"{elapsed:.0f} s on {args.workers} workers; "
            f"load {load_before} -> {load_average()}"
        )
        + "\n"
    )
    print(report(summary, cpu, samplers, budgets))
    if notes:
        print("\nNotes:\n" + "\n".join(f"- {n}" for n in notes))
    payload = {
        "benchmark": "hpo",
        "mode": mode,
        "config": {
            "problems": problems,
            "samplers": samplers,
            "seeds": seeds,
            "hebo_seeds": seeds[: args.hebo_seeds],
            "budgets": list(budgets),
            "workers": args.workers,
            "regret_floor": REGRET_FLOOR,
            "clip_source": "median over every trial of " + " and ".join(RANDOM_SAMPLERS),
            "opt_source": "best value any run of this benchmark saw on the problem",
            "threads": THREADS,
        },
        "notes": notes,
        "environment": env,
        "src_changed_during_run": source_digest(REPO_ROOT / "src") != src_before,
        "src_sha1_of_runs": sorted({str(r.get("src_sha1")) for r in runs}),
        "load_average": {"before": load_before, "after": load_average()},
        "elapsed_s": elapsed,
        "analytic": summary["analytic"],
        "ml": summary["ml"],
        "cpu": cpu,
        "runs": [
            {**r, "running_min": [v if np.isfinite(v) else None for v in running_min(r["values"])]}
            for r in runs
        ],
    }
    path = write_json(args.json, payload)
    if not args.summarise:
        partial.unlink(missing_ok=True)
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
