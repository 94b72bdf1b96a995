"""Sampler overhead: ask+tell CPU seconds per trial, slimtune's TPE and GP next to Optuna's.

Each variant runs one in-memory study of the longest length, timing every ``ask`` + ``tell``
with ``time.process_time`` (one BLAS / torch thread); the objective is a few floating-point
operations and is not timed. "Per trial at N trials" is the mean over the ``--window`` trials
that end at trial N (e.g. trials 991-1,000), then the median over ``--repeats``. Variants
alternate inside each repeat (A B A B ...), repeat r uses seed r for both libraries.

* TPE, 8-D mixed space (two floats, two log floats, an int, a log int, two categoricals):
  at 100 / 500 / 1,000 trials; slimtune ``TPESampler()`` vs Optuna ``TPESampler(seed=r)``.
* GP, 5-D continuous (the Levy function on [-10, 10]^5): at 50 / 100 / 200 trials; each
  slimtune GP variant found (``hyperparameters="map"`` / ``"mcmc"`` when ``GPSampler`` takes
  that argument) vs Optuna ``GPSampler(seed=r)`` (with greenlet installed).

Both libraries get the whole space up front (slimtune ``create_study(space=...)``, Optuna
``study.ask(fixed_distributions)``). Memory: RSS growth of the process over each run and the
process peak at the end (one process runs every variant, so the peak is shared).

    python -m bench.overhead            # 3 repeats, window 10
    python -m bench.overhead --quick    # smoke test: TPE 20 / 50, GP 12 / 20, 1 repeat
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
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
    peak_rss_mb,
    pin_threads,
    ratio,
    source_digest,
    write_json,
)

THREADS = pin_threads(1)  # before numpy / torch

import numpy as np  # noqa: E402

from bench._hpo_run import discover_samplers, make_slimtune_sampler, optuna_distribution  # noqa: E402
from bench._problems import get_problem  # noqa: E402
from slimtune import Categorical, Float, Int  # noqa: E402
from slimtune.space import Distribution  # noqa: E402

DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "overhead.json"

TPE_SPACE: dict[str, Distribution] = {
    "x0": Float(-5.0, 5.0),
    "x1": Float(0.0, 1.0),
    "lr": Float(1e-5, 1e-1, log=True),
    "wd": Float(1e-6, 1e-2, log=True),
    "depth": Int(1, 8),
    "units": Int(16, 512, log=True),
    "optimizer": Categorical(["adam", "sgd", "rmsprop"]),
    "activation": Categorical(["relu", "gelu", "tanh", "silu"]),
}
_OPT_BONUS = {"adam": 0.0, "sgd": 0.3, "rmsprop": 0.1}
_ACT_BONUS = {"relu": 0.1, "gelu": 0.0, "tanh": 0.4, "silu": 0.05}


def tpe_objective(p: Mapping[str, Any]) -> float:
    return (
        (p["x0"] - 1.3) ** 2
        + (p["x1"] - 0.2) ** 2
        + (math.log10(p["lr"]) + 3) ** 2
        + 0.1 * (math.log10(p["wd"]) + 4) ** 2
        + 0.05 * abs(p["depth"] - 3)
        + 0.1 * abs(math.log2(p["units"]) - 7)
        + _OPT_BONUS[p["optimizer"]]
        + _ACT_BONUS[p["activation"]]
    )


def run_slimtune(
    key: str, space: Mapping[str, Distribution], objective: Callable[..., float], n: int, seed: int
) -> list[float]:
    """CPU seconds of each ask+tell."""
    import slimtune

    study = slimtune.create_study(
        storage="memory", seed=seed, space=space, sampler=make_slimtune_sampler(key, seed)
    )
    out = []
    for _ in range(n):
        c0 = time.process_time()
        trial = study.ask()
        c1 = time.process_time()
        value = objective(trial.params)
        c2 = time.process_time()
        study.tell(trial, value)
        out.append(time.process_time() - c2 + (c1 - c0))
    return out


def run_optuna(
    key: str, space: Mapping[str, Distribution], objective: Callable[..., float], n: int, seed: int
) -> list[float]:
    import optuna

    sampler_cls = {"optuna.TPE": optuna.samplers.TPESampler, "optuna.GP": optuna.samplers.GPSampler}
    study = optuna.create_study(sampler=sampler_cls[key](seed=seed))
    dists = {name: optuna_distribution(d) for name, d in space.items()}
    out = []
    for _ in range(n):
        c0 = time.process_time()
        trial = study.ask(dists)
        c1 = time.process_time()
        value = objective(trial.params)
        c2 = time.process_time()
        study.tell(trial, value)
        out.append(time.process_time() - c2 + (c1 - c0))
    return out


def measure(
    variants: list[str],
    space: Mapping[str, Distribution],
    objective: Callable[..., float],
    points: Sequence[int],
    *,
    repeats: int,
    window: int,
) -> dict[str, Any]:
    """Per-trial CPU seconds at each point, per variant: per repeat and the median."""
    n = max(points)
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(repeats):
        for v in variants:  # alternate: A B A B ...
            run = run_optuna if v.startswith("optuna.") else run_slimtune
            rss0 = current_rss_mb()
            w0 = time.perf_counter()
            try:
                per_trial = run(v, space, objective, n, r)
            except Exception as err:  # a sampler under development may crash: record, go on
                print(f"  ! {v} repeat {r}: {type(err).__name__}: {err}", file=sys.stderr)
                raw[v].append({"error": f"{type(err).__name__}: {err}"})
                continue
            wall = time.perf_counter() - w0
            raw[v].append(
                {
                    "at": {
                        str(p): float(np.mean(per_trial[max(0, p - window) : p])) for p in points
                    },
                    "cumulative_cpu_s": {str(p): float(np.sum(per_trial[:p])) for p in points},
                    "wall_s": wall,
                    "rss_growth_mb": current_rss_mb() - rss0,
                }
            )
            print(f"  {v} repeat {r}: {wall:.1f} s wall", file=sys.stderr, flush=True)
    out: dict[str, Any] = {}
    for v, reps in raw.items():
        ok = [rep for rep in reps if "error" not in rep]
        out[v] = {
            "per_trial_s": {str(p): median(rep["at"][str(p)] for rep in ok) for p in points},
            "cumulative_cpu_s": {
                str(p): median(rep["cumulative_cpu_s"][str(p)] for rep in ok) for p in points
            },
            "max_rss_growth_mb": max((rep["rss_growth_mb"] for rep in ok), default=float("nan")),
            "repeats": reps,
        }
    return out


def table(result: Mapping[str, Any], variants: list[str], peer: str, points: Sequence[int]) -> str:
    ours = [v for v in variants if v != peer]
    heads = ["trials", *(f"{v} ms" for v in variants), *(f"{v} / {peer}" for v in ours)]
    rows = []
    for p in points:
        t = {v: result[v]["per_trial_s"][str(p)] for v in variants}
        rows.append(
            [p]
            + [fmt(1000 * t[v]) for v in variants]
            + [fmt(ratio(t[v], t[peer]), 2) + "x" for v in ours]
        )
    return markdown_table(heads, rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: short runs, 1 repeat")
    ap.add_argument("--repeats", type=int, help="repeats per variant (default 3; quick 1)")
    ap.add_argument("--window", type=int, help="trials averaged at each point (default 10)")
    ap.add_argument("--skip-gp", action="store_true", help="TPE only")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    repeats = args.repeats or (1 if args.quick else 3)
    window = args.window or (5 if args.quick else 10)
    tpe_points = (20, 50) if args.quick else (100, 500, 1000)
    gp_points = (12, 20) if args.quick else (50, 100, 200)
    found, notes = discover_samplers()
    notes = [n for n in notes if not n.startswith("hebo")]
    tpe_variants = [v for v in ("slimtune.TPE", "optuna.TPE") if v in found]
    ours_gp = [v for v in ("slimtune.GP-map", "slimtune.GP-mcmc", "slimtune.GP") if v in found]
    gp_variants = [] if args.skip_gp else [*ours_gp, "optuna.GP"]
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    src_before, load_before = source_digest(REPO_ROOT / "src"), load_average()
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    sections: list[str] = []
    levy = get_problem("levy5")
    for name, variants, space, objective, points, peer in (
        ("tpe", tpe_variants, TPE_SPACE, tpe_objective, tpe_points, "optuna.TPE"),
        ("gp", gp_variants, levy.space, levy.evaluate, gp_points, "optuna.GP"),
    ):
        if len(variants) < 2:
            sections.append(f"### {name.upper()}: skipped (have only {variants}).")
            continue
        print(f"{name}: {variants} to {max(points)} trials", file=sys.stderr, flush=True)
        res = measure(variants, space, objective, points, repeats=repeats, window=window)
        results[name] = {"points": list(points), "variants": res}
        dim = len(space)
        sections.append(
            f"### {name.upper()}, {dim}-D: ask+tell CPU ms per trial (mean of the {window} trials "
            f"ending at N, median of {repeats} repeats)\n\n" + table(res, variants, peer, points)
        )
    elapsed = time.perf_counter() - t0
    env = environment(["slimtune", "optuna", "numpy", "scipy", "torch", "greenlet"])
    print(
        f"## bench.overhead{' (quick)' if args.quick else ''}: optuna {env['versions']['optuna']}, "
        f"1 thread, {elapsed:.0f} s; load {load_before} -> {load_average()}; "
        f"process peak RSS {peak_rss_mb():.0f} MB\n"
    )
    print("\n\n".join(sections))
    if notes:
        print("\nNotes:\n" + "\n".join(f"- {n}" for n in notes))
    payload = {
        "benchmark": "overhead",
        "mode": "quick" if args.quick else "default",
        "config": {
            "repeats": repeats,
            "window": window,
            "tpe_points": list(tpe_points),
            "gp_points": list(gp_points),
            "tpe_space": {k: d.to_json() for k, d in TPE_SPACE.items()},
            "gp_problem": "levy5",
            "threads": THREADS,
        },
        "notes": notes,
        "environment": env,
        "src_changed_during_run": source_digest(REPO_ROOT / "src") != src_before,
        "load_average": {"before": load_before, "after": load_average()},
        "elapsed_s": elapsed,
        "peak_rss_mb": peak_rss_mb(),
        "results": results,
    }
    path = write_json(args.json, payload)
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
