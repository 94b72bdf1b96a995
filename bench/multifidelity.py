"""Multi-fidelity search: early stopping against random search at full budget, and Optuna.

Problems (``bench/_mf_problems.py``), needing no download:

* ``mlp-digits-table``: learning curves of an MLP (SGD) on digits, 432 configurations x 27
  epochs, read from ``bench/data/mlp_digits_curves.npz`` (built once with ``--build-table``).
  Cost = recorded CPU seconds of the epochs trained (training resumes: a continued trial pays
  only its new epochs).
* ``hartmann6-<preset>``: multi-fidelity Hartmann-6 with the mf-prior-bench (bias, noise) presets
  (default, good, moderate, bad, terrible); fidelities 1, 3, 9, 27, 81 (z = 1.2 ... 100), each
  evaluation pays ``0.05 + 0.95 (z / 100)^2`` (no resuming).

Methods, one worker each, run until their cumulative cost reaches the budget ``C``:

* random search at full budget (slimtune ``RandomSampler``, every trial at full fidelity);
* slimtune ``ASHA`` (with ``RandomSampler``, and with ``TPESampler``), ``Hyperband`` (random),
  BOHB (``BOHBSampler`` + ``Hyperband``), all with eta = 3, min resource 1;
* Optuna ``SuccessiveHalvingPruner`` and ``HyperbandPruner`` (eta = 3, min resource 1) with
  ``TPESampler`` (Optuna's Hyperband gives TPE the trials of the trial's own bracket);
* PBT, when ``bench/_mf_pbt.py`` exposes ``run_pbt(problem, *, seed, max_cost)``.

Only full-fidelity evaluations count as results. Metrics per seed: the best full-fidelity error
at C/9, C/3 and C; the cost-to-target, where the target is the final best error of random search
run for the same seed (its best after spending C; it draws from its own seed stream, so the
methods driven by ``RandomSampler`` do not replay its configurations): ``fraction`` =
cost-to-target / C (the acceptance asks for a median <= 1/3), ``speedup`` = C /
cost-to-target, and ``speedup vs random's own time`` = (cost at which random search first
reached its final error) / cost-to-target. Medians
and interquartile ranges over seeds; a method that never reaches the target within C counts
as fraction inf, speedup 0. All studies use in-memory storage.

    python -m bench.multifidelity                 # 4 problems, 20 seeds
    python -m bench.multifidelity --quick         # smoke test: 2 problems, 2 seeds, small budgets
    python -m bench.multifidelity --build-table   # rebuild the learning-curve table (~10 min)
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO_ROOT, environment, load_average, pin_threads, write_json

pin_threads(1)

import numpy as np  # noqa: E402

from bench._mf_methods import METHODS, available_methods, run_method  # noqa: E402
from bench._mf_problems import make_problem  # noqa: E402

CURVE_POINTS = 90  # the best-error curve is read at C k / 90, k = 1..90
CURVE_GRID = range(1, CURVE_POINTS + 1)
DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "multifidelity.json"
# budget C in units of one full-fidelity evaluation (the median one for the table)
# The random-search baseline of seed s runs with study seed s + BASELINE_SEED_OFFSET. Trial n's
# draws depend only on (study seed, n), so with the same seed every RandomSampler-driven method
# (ASHA, Hyperband) would evaluate exactly the configurations random search evaluates and reach
# its final error as soon as it fully evaluates random search's best configuration: the target
# would not be independent of the method measured against it.
BASELINE_SEED_OFFSET = 1_000_000
BUDGET_FULL_EVALS = {"mlp-digits-table": 50.0, "mlp-digits-grid": 50.0, "hartmann6": 50.0}


def budget_for(problem: Any, full_evals: float) -> float:
    if hasattr(problem, "cum_seconds"):
        return float(full_evals * np.median(problem.cum_seconds[:, -1]))
    return full_evals * problem.evaluate(dict.fromkeys(problem.space, 0.5), problem.max_fidelity)[1]


def best_at(trace: Sequence[tuple[float, float]], cost: float) -> float:
    best = math.inf
    for c, e in trace:
        if c > cost:
            break
        best = e
    return best


def cost_to(trace: Sequence[tuple[float, float]], target: float, limit: float) -> float:
    for c, e in trace:
        if c > limit:
            break
        if e <= target:
            return c
    return math.inf


def _quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile that keeps infinities (no inf - inf)."""
    pos = q * (len(sorted_xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = sorted_xs[lo], sorted_xs[hi]
    if lo == hi or a == b:
        return float(a)
    if math.isinf(a) or math.isinf(b):
        return float(b if pos - lo >= 0.5 else a)
    return float(a + (b - a) * (pos - lo))


def _quantiles(xs: Sequence[float]) -> tuple[float, float, float]:
    """(median, 25th, 75th percentile)."""
    if not xs:
        return math.nan, math.nan, math.nan
    s = sorted(xs)
    return _quantile(s, 0.5), _quantile(s, 0.25), _quantile(s, 0.75)


def _fmt(x: float, digits: int = 3) -> str:
    if math.isinf(x):
        return "inf"
    if x != x:
        return "-"
    return f"{x:.{digits}g}"


def summarise(problem: str, runs: dict[str, list[dict[str, Any]]], budget: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    random_final = float(np.median([r["best_c"] for r in runs["random"]]))
    for key, rows in runs.items():
        curve = np.median(np.array([r["curve"] for r in rows]), axis=0)
        hit = np.flatnonzero(curve <= random_final)
        fr = [r["fraction"] for r in rows]
        sp = [r["speedup"] for r in rows]
        sr = [r["speedup_vs_random_time"] for r in rows]
        out[key] = {
            "label": METHODS[key][0],
            "seeds": len(rows),
            "best_c9": _quantiles([r["best_c9"] for r in rows]),
            "best_c3": _quantiles([r["best_c3"] for r in rows]),
            "best_c": _quantiles([r["best_c"] for r in rows]),
            "fraction": _quantiles(fr),
            "speedup": _quantiles(sp),
            "speedup_vs_random_time": _quantiles(sr),
            "reached": sum(math.isfinite(f) for f in fr),
            "mean_trials": float(np.mean([r["n_full"] for r in rows])),
            "median_curve": [float(v) for v in curve],
            "median_curve_fraction": (
                float(CURVE_GRID[hit[0]] / CURVE_POINTS) if len(hit) else math.inf
            ),
        }
    return {"problem": problem, "budget": budget, "methods": out}


def table(summary: dict[str, Any]) -> str:
    head = (
        "| method | best err @C/9 | @C/3 | @C | cost-to-target / C, median [IQR] | "
        "speedup C/cost, median [IQR] | speedup vs random's time | reached | "
        "median curve at random's median final |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in summary["methods"].values():
        f, s, sr = m["fraction"], m["speedup"], m["speedup_vs_random_time"]
        lines.append(
            f"| {m['label']} | {_fmt(m['best_c9'][0], 4)} | {_fmt(m['best_c3'][0], 4)} | "
            f"{_fmt(m['best_c'][0], 4)} | {_fmt(f[0])} [{_fmt(f[1])}, {_fmt(f[2])}] | "
            f"{_fmt(s[0])} [{_fmt(s[1])}, {_fmt(s[2])}] | {_fmt(sr[0])} [{_fmt(sr[1])}, "
            f"{_fmt(sr[2])}] | {m['reached']}/{m['seeds']} | "
            f"{_fmt(m['median_curve_fraction'])} C |"
        )
    return "\n".join(lines)


def _wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired per-seed results (1 when all tie)."""
    from scipy.stats import wilcoxon

    if np.all(a == b) or len(a) < 2:
        return 1.0
    return float(wilcoxon(a, b).pvalue)


def verdicts(summary: dict[str, Any], per_seed: dict[str, list[dict[str, Any]]]) -> list[str]:
    ms = summary["methods"]
    out = []
    for key in ("asha", "asha_tpe", "bohb"):
        if key in ms:
            med = ms[key]["fraction"][0]
            ok = "holds" if med <= 1 / 3 else "does NOT hold"
            curve = ms[key]["median_curve_fraction"]
            ok2 = "holds" if curve <= 1 / 3 else "does NOT hold"
            out.append(
                f"{ms[key]['label']}: per seed, median cost to that seed's random-search final "
                f"error = {_fmt(med)} C (<= 1/3: {ok}); median curve reaches random search's "
                f"median final error at {_fmt(curve)} C (<= 1/3: {ok2})"
            )
    if "asha_tpe" in per_seed and "optuna_sha_tpe" in per_seed:
        ours, theirs = per_seed["asha_tpe"], per_seed["optuna_sha_tpe"]
        for col, name in (("best_c9", "C/9"), ("best_c3", "C/3"), ("best_c", "C")):
            a = np.array([r[col] for r in ours])
            b = np.array([r[col] for r in theirs])
            wins, ties = int(np.sum(a < b)), int(np.sum(a == b))
            p = _wilcoxon_p(a, b)
            if np.median(a) <= np.median(b):
                verdict = "at least as good"
            elif p < 0.05:
                verdict = "WORSE"
            else:
                verdict = "median behind, not a significant difference"
            out.append(
                f"ASHA+TPE vs Optuna SH+TPE at {name}: median {_fmt(float(np.median(a)), 4)} vs "
                f"{_fmt(float(np.median(b)), 4)} ({verdict}), better on {wins}, tied on {ties} "
                f"of {len(a)} seeds, Wilcoxon signed-rank p = {_fmt(p, 2)}"
            )
    return out


def run_problem(
    name: str, methods: Sequence[str], seeds: int, full_evals: float, *, first_seed: int = 0
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    problem = make_problem(name)
    budget = budget_for(problem, full_evals)
    per_seed: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for seed in range(first_seed, first_seed + seeds):
        traces = {}
        for m in methods:  # methods alternate within each seed
            t0 = time.process_time()
            run_seed = seed + BASELINE_SEED_OFFSET if m == "random" else seed
            traces[m] = run_method(m, problem, run_seed, budget)
            traces[m + ":cpu"] = time.process_time() - t0  # type: ignore[assignment]
        rand = traces["random"]
        target = best_at(rand, budget)
        t_random = cost_to(rand, target, budget)
        for m in methods:
            tr = traces[m]
            c = cost_to(tr, target, budget)
            per_seed[m].append(
                {
                    "seed": seed,
                    "best_c9": best_at(tr, budget / 9),
                    "best_c3": best_at(tr, budget / 3),
                    "best_c": best_at(tr, budget),
                    "target": target,
                    "cost_to_target": c,
                    "fraction": c / budget,
                    "speedup": budget / c if c > 0 else math.inf,
                    "speedup_vs_random_time": t_random / c if c > 0 else math.inf,
                    "n_full": sum(1 for cc, _ in tr if cc <= budget),
                    "curve": [best_at(tr, budget * k / CURVE_POINTS) for k in CURVE_GRID],
                    "driver_cpu_s": traces[m + ":cpu"],
                }
            )
        logging.getLogger(__name__).info("%s seed %d done", name, seed)
    return summarise(name, per_seed, budget), per_seed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smoke test (well under a minute)")
    ap.add_argument("--build-table", action="store_true", help="rebuild the learning-curve table")
    ap.add_argument("--seeds", type=int, help="number of seeds (default 20; quick 2)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds start here (default 0)")
    ap.add_argument("--problems", help="comma-separated problem names")
    ap.add_argument("--methods", help="comma-separated method keys (random is always run)")
    ap.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.build_table:
        from bench._mf_table import build_table

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        path = build_table()
        print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
        return 0
    seeds = args.seeds or (2 if args.quick else 20)
    if args.problems:
        problems = args.problems.split(",")
    elif args.quick:
        problems = ["mlp-digits-table", "hartmann6-default"]
    else:
        problems = ["mlp-digits-table", "hartmann6-default", "hartmann6-bad", "mlp-digits-grid"]
    methods = available_methods()
    if args.methods:
        wanted = set(args.methods.split(",")) | {"random"}
        methods = [m for m in methods if m in wanted]
    scale = 0.25 if args.quick else 1.0
    payload: dict[str, Any] = {
        "benchmark": "multifidelity",
        "mode": "quick" if args.quick else "default",
        "config": {
            "seeds": seeds,
            "first_seed": args.first_seed,
            "problems": problems,
            "methods": methods,
            "scale": scale,
        },
        "environment": environment(["torch", "numpy", "optuna"]),
        "load_average_start": load_average(),
        "problems": {},
    }
    missing = [m for m in METHODS if m not in methods and m != "pbt"]
    if "pbt" not in methods and "pbt" not in available_methods():
        print(
            "note: PBT skipped (bench/_mf_pbt.py with run_pbt(problem, *, seed, max_cost) absent)"
        )
    if missing:
        print(f"note: skipped {missing}")
    for name in problems:
        key = "hartmann6" if name.startswith("hartmann6") else name
        summary, per_seed = run_problem(
            name, methods, seeds, BUDGET_FULL_EVALS[key] * scale, first_seed=args.first_seed
        )
        payload["problems"][name] = {"summary": summary, "per_seed": per_seed}
        print(
            f"\n### {name}: budget C = {_fmt(summary['budget'])} cost units "
            f"({BUDGET_FULL_EVALS[key] * scale:g} full evaluations), {seeds} seeds\n"
        )
        print(table(summary))
        print()
        for line in verdicts(summary, per_seed):
            print(f"- {line}")
        payload["problems"][name]["verdicts"] = verdicts(summary, per_seed)
    payload["load_average_end"] = load_average()
    path = write_json(args.json, payload)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
