"""Metrics, aggregation and tables of ``bench/hpo.py`` (see its docstring for the protocol).

Analytic problems: log10 simple regret of the running minimum at each budget, floored at
``REGRET_FLOOR``. ML problems: bayesmark's normalised score against ``opt`` (the best value any
run saw on the problem) and ``clip`` (the median over every trial of the random samplers).
Paired Wilcoxon signed-rank tests compare slimtune's best sampler with each peer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench._common import fmt, markdown_table
from bench._problems import get_problem

__all__ = [
    "RANDOM_SAMPLERS",
    "REGRET_FLOOR",
    "bayesmark_score",
    "best_at",
    "cpu_summary",
    "log_regret",
    "report",
    "running_min",
    "summarise",
    "wilcoxon",
]

REGRET_FLOOR = 1e-9
RANDOM_SAMPLERS = ("slimtune.Random", "optuna.Random")


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def running_min(values: Sequence[float | None]) -> np.ndarray:
    """Best value after each trial; ``inf`` until the first successful one."""
    arr = np.array([np.inf if v is None else v for v in values], dtype=float)
    return np.minimum.accumulate(arr) if len(arr) else arr


def best_at(run: dict[str, Any], budget: int) -> float:
    rm = running_min(run["values"])
    return float(rm[budget - 1]) if len(rm) >= budget else float("nan")


def log_regret(best: float, optimum: float) -> float:
    if not np.isfinite(best):
        return float("nan")
    return float(np.log10(max(best - optimum, REGRET_FLOOR)))


def bayesmark_score(best: float, opt: float, clip: float) -> float:
    """``100 * (1 - normalised)``; a run with no successful trial scores as a random draw."""
    if np.isnan(best):
        return float("nan")
    if not np.isfinite(best) or clip <= opt:
        normalised = 1.0 if not np.isfinite(best) else 0.0
    else:
        normalised = float(np.clip((best - opt) / (clip - opt), -1.0, 1.0))
    return 100.0 * (1.0 - normalised)


def _mean(xs: Sequence[float]) -> float:
    vals = [x for x in xs if np.isfinite(x)]
    return float(np.mean(vals)) if vals else float("nan")


def _median(xs: Sequence[float]) -> float:
    vals = [x for x in xs if np.isfinite(x)]
    return float(np.median(vals)) if vals else float("nan")


def wilcoxon(
    ours: dict[tuple[str, int], float], theirs: dict[tuple[str, int], float], *, higher: bool
) -> dict[str, Any]:
    """Paired two-sided Wilcoxon signed-rank test over the (problem, seed) pairs both have."""
    from scipy import stats

    keys = sorted(k for k in set(ours) & set(theirs) if np.isfinite(ours[k] + theirs[k]))
    a = np.array([ours[k] for k in keys])
    b = np.array([theirs[k] for k in keys])
    diff = a - b if higher else b - a  # > 0: ours better
    out: dict[str, Any] = {
        "n_pairs": len(keys),
        "wins": int((diff > 0).sum()),
        "ties": int((diff == 0).sum()),
        "losses": int((diff < 0).sum()),
        "median_improvement": float(np.median(diff)) if len(keys) else float("nan"),
        "p_value": float("nan"),
    }
    if len(keys) and np.any(diff != 0):
        out["p_value"] = float(stats.wilcoxon(a, b).pvalue)
    elif len(keys):
        out["p_value"] = 1.0
    return out


def summarise(
    runs: list[dict[str, Any]], samplers: list[str], budgets: Sequence[int]
) -> dict[str, Any]:
    """Per-pair metrics, per-sampler and per-problem aggregates and the Wilcoxon tests."""
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if run["error"] is None:
            by_problem[run["problem"]].append(run)
    analytic: dict[str, Any] = {"per_pair": {}, "per_problem": {}, "per_sampler": {}}
    ml: dict[str, Any] = {"per_pair": {}, "per_problem": {}, "per_sampler": {}, "reference": {}}
    # pair[family][budget][sampler][(problem, seed)] = metric
    pair: dict[str, dict[int, dict[str, dict[tuple[str, int], float]]]] = {
        fam: {b: defaultdict(dict) for b in budgets} for fam in ("analytic", "ml")
    }
    for name, prs in sorted(by_problem.items()):
        problem = get_problem(name)
        if problem.kind == "analytic":
            assert problem.optimum is not None
            for run in prs:
                for b in budgets:
                    metric = log_regret(best_at(run, b), problem.optimum)
                    pair["analytic"][b][run["sampler"]][(name, run["seed"])] = metric
            continue
        finite = [v for run in prs for v in run["values"] if v is not None]
        random_values = [
            v for run in prs if run["sampler"] in RANDOM_SAMPLERS for v in run["values"]
        ]
        random_finite = [v for v in random_values if v is not None]
        opt = min(finite) if finite else float("nan")
        clip = float(np.median(random_finite)) if random_finite else float("nan")
        ml["reference"][name] = {
            "opt": opt,
            "clip": clip,
            "n_random_evaluations": len(random_values),
            "n_random_failed": len(random_values) - len(random_finite),
        }
        for run in prs:
            for b in budgets:
                score = bayesmark_score(best_at(run, b), opt, clip)
                pair["ml"][b][run["sampler"]][(name, run["seed"])] = score
    for fam, out in (("analytic", analytic), ("ml", ml)):
        higher = fam == "ml"
        for b in budgets:
            table = pair[fam][b]
            out["per_sampler"][str(b)] = {
                s: {
                    "mean": _mean(list(table[s].values())),
                    "median": _median(list(table[s].values())),
                    "n_pairs": len(table[s]),
                }
                for s in samplers
                if table.get(s)
            }
            problems = sorted({p for s in table for p, _ in table[s]})
            out["per_problem"][str(b)] = {
                p: {
                    s: _mean([v for (q, _), v in table[s].items() if q == p])
                    for s in samplers
                    if table.get(s)
                }
                for p in problems
            }
            out["per_pair"][str(b)] = {
                s: {f"{p}/{seed}": v for (p, seed), v in table[s].items()}
                for s in samplers
                if table.get(s)
            }
            out.setdefault("wilcoxon", {})[str(b)] = _tests(table, samplers, higher=higher)
    return {"analytic": analytic, "ml": ml}


def _tests(
    table: dict[str, dict[tuple[str, int], float]], samplers: list[str], *, higher: bool
) -> dict[str, Any]:
    ours = [s for s in samplers if s.startswith("slimtune.") and table.get(s)]
    peers = [s for s in samplers if not s.startswith("slimtune.") and table.get(s)]
    if not ours or not peers:
        return {}
    full = max(len(table[s]) for s in ours)
    candidates = [s for s in ours if len(table[s]) >= full / 2] or ours
    sign = 1.0 if higher else -1.0
    best = max(candidates, key=lambda s: sign * _mean(list(table[s].values())))
    return {
        "slimtune_best": best,
        "vs": {p: wilcoxon(table[best], table[p], higher=higher) for p in peers},
    }


def cpu_summary(runs: list[dict[str, Any]], samplers: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in samplers:
        rs = [r for r in runs if r["sampler"] == s]
        trials = sum(len(r["values"]) for r in rs)
        sampler_cpu = sum(r["sampler_cpu_s"] for r in rs if np.isfinite(r["sampler_cpu_s"]))
        out[s] = {
            "runs": len(rs),
            "errors": sum(r["error"] is not None for r in rs),
            "failed_trials": sum(r["n_failed"] for r in rs),
            "trials": trials,
            "cpu_s": sum(r["cpu_s"] for r in rs),
            "sampler_cpu_s": sampler_cpu,
            "eval_cpu_s": sum(r["eval_cpu_s"] for r in rs if np.isfinite(r["eval_cpu_s"])),
            "sampler_ms_per_trial": 1000 * sampler_cpu / trials if trials else float("nan"),
            "wall_s": sum(r["wall_s"] for r in rs),
            "max_worker_peak_rss_mb": max((r["worker_peak_rss_mb"] for r in rs), default=0.0),
            "max_rss_growth_mb": max((r["rss_growth_mb"] for r in rs), default=0.0),
        }
    return out


def _p(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}"


def report(
    summary: dict[str, Any], cpu: dict[str, Any], samplers: list[str], budgets: Sequence[int]
) -> str:
    parts: list[str] = []
    for fam, title, unit in (
        ("analytic", "Analytic functions: log10 simple regret (lower is better)", "log10 regret"),
        (
            "ml",
            "bayesmark-style ML problems: score 100 * (1 - normalised) (higher is better)",
            "score",
        ),
    ):
        data = summary[fam]
        first = data["per_sampler"].get(str(budgets[0]), {})
        if not first:
            continue
        heads = ["sampler"] + [f"{k} {unit} @{b}" for b in budgets for k in ("mean", "median")]
        rows = []
        for s in samplers:
            if s not in first:
                continue
            row: list[Any] = [s]
            for b in budgets:
                agg = data["per_sampler"][str(b)][s]
                row += [f"{agg['mean']:.3f}", f"{agg['median']:.3f}"]
            rows.append(row)
        parts.append(f"### {title}\n\n" + markdown_table(heads, rows))
        b = budgets[-1]
        per_problem = data["per_problem"][str(b)]
        cols = [s for s in samplers if s in first]
        rows = [
            [p] + [f"{per_problem[p].get(s, float('nan')):.2f}" for s in cols] for p in per_problem
        ]
        parts.append(
            f"Mean {unit} per problem over seeds @{b}:\n\n"
            + markdown_table(["problem", *cols], rows)
        )
        rows = []
        for bb in budgets:
            tests = data["wilcoxon"][str(bb)]
            for peer, t in tests.get("vs", {}).items():
                rows.append(
                    [
                        f"@{bb} {tests['slimtune_best']} vs {peer}",
                        t["n_pairs"],
                        f"{t['wins']}/{t['ties']}/{t['losses']}",
                        f"{t['median_improvement']:.3g}",
                        _p(t["p_value"]),
                    ]
                )
        if rows:
            heads = ["pairing (problem x seed)", "pairs", "win/tie/loss", "median gain", "p"]
            parts.append(
                "Paired Wilcoxon signed-rank (two-sided), slimtune's best sampler against each "
                "peer:\n\n" + markdown_table(heads, rows)
            )
    rows = [
        [
            s,
            c["runs"],
            c["errors"],
            c["failed_trials"],
            fmt(c["sampler_cpu_s"]),
            fmt(c["sampler_ms_per_trial"]),
            fmt(c["eval_cpu_s"]),
            fmt(c["max_worker_peak_rss_mb"]),
        ]
        for s, c in cpu.items()
    ]
    heads = [
        "sampler",
        "runs",
        "errors",
        "failed trials",
        "sampler CPU s",
        "sampler ms/trial",
        "objective CPU s",
        "worker peak RSS MB",
    ]
    parts.append("### Process CPU time (1 thread)\n\n" + markdown_table(heads, rows))
    return "\n\n".join(parts)
