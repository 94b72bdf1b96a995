"""Knowledge distillation on digits: students at 1/4 and 1/8 of the teacher's parameters.

Teachers (``slimtune.testing``, trained once with seed 0 on the full digits training split):
SmallCNN (32, 64) on 16x16 images and TransformerClassifier (dim 64, depth 4, 4 heads) on the
8 rows of each image as tokens. Students are built from the teacher with
``slimtune.compress.distill``: the transformer keeps every 2nd (1/4) or 4th (1/8) block
(``keep_every_kth_layer``), then ``shrink_widths`` keeps the teacher's most important channels
with the largest keep ratio whose parameter count fits the budget (bisection); the CNN is only
width-shrunk. Every student arm uses that same architecture:

* (a) labels only, random init (cross-entropy; ``distill`` with ``alpha=0``);
* (b) KD from random init (``alpha`` * KD at temperature ``T`` + (1 - ``alpha``) * CE);
* (c) KD from the teacher-initialised student (sliced teacher weights);
* (d) control: labels only from the teacher-initialised student (separates the two effects).

Same regime for every arm: the same ``--train-fraction`` of the training split (the first
rows of the seeded, shuffled split: identical examples for every arm), the same epochs,
AdamW (lr ``--lr``, no weight decay), batch 64, batch order seeded by the run seed; random
initialisations are seeded by 1000 + seed. Accuracy is on the full validation split (360
images); "kept" = mean student accuracy / teacher accuracy. "Δ/max sd" = (mean of the arm -
mean of (a)) / the larger of the two standard deviations (sample sd over seeds): the acceptance
check is "kept >= 0.97 at 1/4 and Δ/max sd > 2". Seeds run arm by arm in turn (a b c d a b ...).

    python -m bench.distill            # 5 seeds, 10% of the training labels, 60 epochs
    python -m bench.distill --quick    # smoke test: 2 seeds, 2 epochs, tiny teachers' training
"""

from __future__ import annotations

import argparse
import statistics
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
    markdown_table,
    peak_rss_mb,
    pin_threads,
    source_digest,
    write_json,
)

THREADS = pin_threads(1)  # before numpy / torch

from bench._distill_run import (  # noqa: E402
    ARM_TITLES,
    ARMS,
    TEACHERS,
    data_for,
    n_params,
    run_arm,
    student_at_budget,
    train_teacher,
)
from slimtune.testing import accuracy  # noqa: E402

DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "distill.json"
MODES: dict[str, dict[str, Any]] = {
    "default": {"seeds": 5, "epochs": 60, "teacher_epochs": {"cnn": 15, "transformer": 40}},
    "quick": {"seeds": 2, "epochs": 2, "teacher_epochs": {"cnn": 1, "transformer": 1}},
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smoke test (well under a minute)")
    ap.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 5; quick 2)")
    ap.add_argument("--epochs", type=int, help="student epochs, every arm (default 60; quick 2)")
    ap.add_argument("--teacher-epochs", type=int, help="teacher epochs (default cnn 15, tf 40)")
    ap.add_argument("--train-fraction", type=float, default=0.1, help="share of training split")
    ap.add_argument(
        "--teachers", default="cnn,transformer", help="comma-separated: cnn,transformer"
    )
    ap.add_argument("--budgets", default="4,8", help="parameter denominators (default 4,8)")
    ap.add_argument("--alpha", type=float, default=0.9, help="KD weight (default 0.9)")
    ap.add_argument("--temperature", type=float, default=4.0, help="KD temperature (default 4)")
    ap.add_argument("--lr", type=float, default=1e-3, help="student AdamW lr (default 1e-3)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    return ap.parse_args(argv)


def _stats(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, sd


def summarise(
    runs: list[dict[str, Any]], teachers: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    for t_key, t_info in teachers.items():
        for den, s_info in t_info["students"].items():
            by_arm = {
                arm: [
                    r["val_accuracy"]
                    for r in runs
                    if r["teacher"] == t_key and r["budget"] == den and r["arm"] == arm
                ]
                for arm in ARMS
            }
            base_mean, base_sd = _stats(by_arm["labels"])
            for arm in ARMS:
                mean, sd = _stats(by_arm[arm])
                delta = mean - base_mean
                spread = max(sd, base_sd)
                rows.append(
                    {
                        "teacher": t_key,
                        "budget": den,
                        "params": s_info["params"],
                        "param_fraction": s_info["params"] / t_info["params"],
                        "arm": arm,
                        "n": len(by_arm[arm]),
                        "mean": mean,
                        "sd": sd,
                        "kept": mean / t_info["accuracy"],
                        "delta_vs_labels": delta,
                        "delta_over_max_sd": (delta / spread) if spread > 0 else None,
                    }
                )
    return rows


def table(rows: list[dict[str, Any]], teachers: dict[str, dict[str, Any]]) -> str:
    body = []
    for r in rows:
        z = r["delta_over_max_sd"]
        body.append(
            [
                r["teacher"],
                f"1/{r['budget']} ({r['params']:,}; {r['param_fraction']:.3f})",
                ARM_TITLES[r["arm"]],
                f"{r['mean']:.4f} ± {r['sd']:.4f}",
                f"{r['kept']:.3f}",
                "-" if r["arm"] == "labels" else f"{100 * r['delta_vs_labels']:+.2f}",
                "-" if r["arm"] == "labels" or z is None else f"{z:+.1f}",
            ]
        )
    headers = ["teacher", "student (params; fraction)", "arm", "val acc (mean ± sd)", "kept",
               "Δ vs (a) pp", "Δ/max sd"]  # fmt: skip
    head = [
        [k, t["model"], f"{t['params']:,}", t["epochs"], f"{t['accuracy']:.4f}"]
        for k, t in teachers.items()
    ]
    teacher_table = markdown_table(["teacher", "model", "params", "epochs", "val acc"], head)
    return teacher_table + "\n\n" + markdown_table(headers, body)


def acceptance(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        if r["budget"] != 4 or r["arm"] not in ("kd_random", "kd_teacher_init"):
            continue
        z = r["delta_over_max_sd"]
        kept_ok = r["kept"] >= 0.97
        z_ok = z is not None and z > 2
        z_text = "-" if z is None else f"{z:+.1f}"
        lines.append(
            f"{r['teacher']} 1/4 {ARM_TITLES[r['arm']]}: kept {r['kept']:.3f} (>= 0.97: "
            f"{'yes' if kept_ok else 'no'}), Δ/max sd vs (a) {z_text} (> 2: "
            f"{'yes' if z_ok else 'no'}) -> {'PASS' if kept_ok and z_ok else 'FAIL'}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "default"
    cfg = MODES[mode]
    seeds = list(range(args.seeds if args.seeds is not None else cfg["seeds"]))
    epochs = args.epochs if args.epochs is not None else cfg["epochs"]
    budgets = [int(b) for b in args.budgets.split(",")]
    keys = args.teachers.split(",")
    unknown = [k for k in keys if k not in TEACHERS]
    if unknown:
        raise SystemExit(f"--teachers: unknown {unknown}; choose from {sorted(TEACHERS)}.")
    if not 0.0 < args.train_fraction <= 1.0:
        raise SystemExit(f"--train-fraction must be in (0, 1], got {args.train_fraction}.")
    src_before = source_digest(REPO_ROOT / "src")
    load_before = load_average()
    t_start, c_start = time.perf_counter(), time.process_time()
    teachers: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    for key in keys:
        spec = TEACHERS[key]
        data = data_for(spec)
        t_epochs = args.teacher_epochs or cfg["teacher_epochs"][key]
        c0 = time.process_time()
        teacher = train_teacher(spec, data, epochs=t_epochs)
        info: dict[str, Any] = {
            "model": spec.name,
            "params": n_params(teacher),
            "accuracy": accuracy(teacher, data.x_val, data.y_val),
            "epochs": t_epochs,
            "train_cpu_s": time.process_time() - c0,
            "students": {},
        }
        teachers[key] = info
        print(f"teacher {key}: {info['params']:,} params, val acc {info['accuracy']:.4f}",
              file=sys.stderr, flush=True)  # fmt: skip
        for den in budgets:
            student, build = student_at_budget(spec, teacher, data, den)
            info["students"][den] = {
                "params": n_params(student),
                **build,
                "accuracy_before_training": accuracy(student, data.x_val, data.y_val),
            }
            for seed in seeds:
                for arm in ARMS:
                    run = run_arm(
                        arm, student, teacher, data, seed=seed, epochs=epochs, lr=args.lr,
                        temperature=args.temperature, alpha=args.alpha,
                        train_fraction=args.train_fraction,
                    )  # fmt: skip
                    runs.append({"teacher": key, "budget": den, **run})
            print(f"  1/{den}: {len(seeds)} seeds x {len(ARMS)} arms done",
                  file=sys.stderr, flush=True)  # fmt: skip
    rows = summarise(runs, teachers)
    n_train = {k: round(args.train_fraction * len(data_for(TEACHERS[k]).x_train)) for k in keys}
    elapsed, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    sizes = ", ".join(f"{k} {v}" for k, v in n_train.items())
    print(
        f"## bench.distill ({mode}): seeds {seeds[0]}..{seeds[-1]}, {epochs} epochs, "
        f"{args.train_fraction:.0%} of the training split ({sizes} examples) for every arm, "
        f"alpha {args.alpha}, T {args.temperature}, AdamW lr {args.lr}; "
        f"{elapsed:.0f} s wall, {cpu:.0f} s CPU, 1 thread, peak RSS {peak_rss_mb():.0f} MB, "
        f"load {load_before} -> {load_average()}\n"
    )
    print(table(rows, teachers))
    print("\nAcceptance (1/4 of the parameters):")
    for line in acceptance(rows):
        print(f"- {line}")
    payload = {
        "benchmark": "distill",
        "mode": mode,
        "config": {
            "seeds": seeds,
            "epochs": epochs,
            "train_fraction": args.train_fraction,
            "train_examples": n_train,
            "budgets": budgets,
            "alpha": args.alpha,
            "temperature": args.temperature,
            "lr": args.lr,
            "batch_size": 64,
            "threads": THREADS,
        },
        "environment": environment(["slimtune", "torch", "numpy", "scikit-learn"]),
        "src_changed_during_run": source_digest(REPO_ROOT / "src") != src_before,
        "load_average": {"before": load_before, "after": load_average()},
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "peak_rss_mb": peak_rss_mb(),
        "teachers": teachers,
        "summary": rows,
        "acceptance": acceptance(rows),
        "runs": runs,
    }
    path = write_json(args.json, payload)
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
