"""Structured pruning: slimtune ``prune_`` next to Torch-Pruning's ``MagnitudePruner``.

Reference models from ``slimtune.testing`` are trained briefly on the bundled digits (upsampled
to 32x32 for the CNNs so that latency is meaningful; one token per image row for the
transformer), then each is pruned at global channel ratios 0.3 / 0.5 / 0.7 by both libraries
from the same trained weights: L1 magnitude, layer-wise uniform ratio, the classifier head kept,
no rounding (``--round-to 8`` rounds both). For the transformer both remove whole attention
heads (Torch-Pruning with ``num_heads`` / ``prune_num_heads=True``; its pruned blocks get
``num_heads`` set afterwards, as its documentation asks) and MLP neurons. Reported per model and
ratio: parameters, MACs (traced by ``torch.utils.flop_counter``), size on disk, CPU latency at
one thread (batch 8 for the CNNs, 32 for the transformer; CPU time; unpruned / ours /
Torch-Pruning alternated with the order rotating round by round, median of rounds, each round
the median of ``--inner`` calls), speedups over the unpruned model, and validation accuracy
after the same short fine-tune (same epochs, learning rate and seed).

    python -m bench.prune            # 3 models x 3 ratios, 6 training + 3 fine-tune epochs
    python -m bench.prune --quick    # smoke test: small models, ratio 0.5, 1 + 1 epochs
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    peak_rss_mb,
    pin_threads,
    ratio,
    write_json,
)

THREADS = pin_threads(1)  # before numpy / torch

import torch  # noqa: E402
from torch import nn  # noqa: E402

from slimtune.compress.prune import (  # noqa: E402
    StructuredPruneConfig,
    count_macs,
    count_params,
    prune_,
    size_on_disk,
)
from slimtune.testing import (  # noqa: E402
    Dataset,
    MobileNetV2Like,
    ResNetCNN,
    TransformerClassifier,
    accuracy,
    fit,
    load_digits,
)


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], nn.Module]
    data: Callable[[], Dataset]
    batch: int


def _cases(quick: bool) -> list[Case]:
    size = 16 if quick else 32

    def images() -> Dataset:
        return load_digits(layout="image", image_size=size)

    def rows() -> Dataset:
        return load_digits(layout="sequence", image_size=8)

    resnet_widths = (16, 32, 64) if quick else (32, 64, 128)
    return [
        Case(
            "ResNetCNN",
            lambda: ResNetCNN(widths=resnet_widths, blocks_per_stage=1 if quick else 2),
            images,
            8,
        ),
        Case("MobileNetV2Like", MobileNetV2Like, images, 8),
        Case("TransformerClassifier", TransformerClassifier, rows, 32),
    ]


def _prune_ours(model: nn.Module, x: torch.Tensor, r: float, round_to: int | None = None) -> None:
    cfg = StructuredPruneConfig(ratio=r, criterion="l1", round_to=round_to)
    prune_(model, cfg, example_inputs=x)


def _prune_tp(model: nn.Module, x: torch.Tensor, r: float, round_to: int | None = None) -> None:
    import torch_pruning as tp

    kwargs: dict[str, Any] = {}
    blocks = [m for m in model.modules() if hasattr(m, "num_heads") and hasattr(m, "q")]
    if blocks:
        heads = {getattr(b, p): b.num_heads for b in blocks for p in ("q", "k", "v")}
        kwargs = {
            "num_heads": heads,
            "prune_num_heads": True,
            "prune_head_dims": False,
            "head_pruning_ratio": r,
        }
    head = model.get_submodule("head")
    pruner = tp.pruner.MagnitudePruner(
        model,
        x,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=r,
        ignored_layers=[head],
        round_to=round_to,
        **kwargs,
    )
    pruner.step()
    for b in blocks:  # Torch-Pruning leaves a hand-written block's head count to the user
        b.num_heads = b.q.out_features // b.head_dim


def _latencies(
    models: dict[str, nn.Module], x: torch.Tensor, rounds: int, inner: int
) -> dict[str, float]:
    """Median over rounds of the median CPU time of ``inner`` calls (one thread).

    Variants alternate inside each round and the order rotates from round to round (A B C,
    B C A, ...), so no variant always runs first or after the same neighbour.
    """
    for m in models.values():
        m.eval()
    per: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():  # warm-up
            for _ in range(3):
                m(x)
        names = list(models)
        for i in range(rounds):
            for k in names[i % len(names) :] + names[: i % len(names)]:
                ts = []
                for _ in range(inner):
                    t0 = time.process_time()
                    models[k](x)
                    ts.append(time.process_time() - t0)
                per[k].append(statistics.median(ts))
    return {k: statistics.median(v) for k, v in per.items()}


def _stats(model: nn.Module, x1: torch.Tensor) -> dict[str, Any]:
    return {
        "params": count_params(model),
        "macs": count_macs(model, x1),
        "bytes": size_on_disk(model),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for case in _cases(args.quick):
        if args.models and case.name not in args.models:
            continue
        data = case.data()
        torch.manual_seed(0)
        base = case.make()
        t0 = time.perf_counter()
        base_acc = fit(base, data, epochs=args.epochs, lr=args.lr, seed=0)
        train_s = time.perf_counter() - t0
        x1 = data.x_val[:1]
        xb = data.x_val[: case.batch]
        base_stats = _stats(base, x1)
        print(
            f"# {case.name}: {base_stats['params']:,} params, accuracy {base_acc:.4f} "
            f"after {args.epochs} epochs ({train_s:.0f} s)",
            file=sys.stderr,
        )
        for r in args.ratios:
            row: dict[str, Any] = {"model": case.name, "ratio": r, "base": base_stats}
            row["base"]["accuracy"] = base_acc
            pruned: dict[str, nn.Module] = {}
            for lib, fn in (("slimtune", _prune_ours), ("torch_pruning", _prune_tp)):
                m = copy.deepcopy(base)
                t0 = time.process_time()
                try:
                    fn(m, x1, r, args.round_to)
                except Exception as err:  # a peer failure is a result, not a crash
                    row[lib] = {"error": f"{type(err).__name__}: {err}"}
                    continue
                prune_s = time.process_time() - t0
                row[lib] = {**_stats(m, x1), "prune_cpu_s": prune_s}
                row[lib]["accuracy_pruned"] = accuracy(m, data.x_val, data.y_val)
                pruned[lib] = m
            lat = _latencies({"base": base, **pruned}, xb, args.rounds, args.inner)
            row["base"]["latency_s"] = lat["base"]
            for lib, m in pruned.items():
                row[lib]["latency_s"] = lat[lib]
                row[lib]["speedup"] = ratio(lat["base"], lat[lib])
                row[lib]["accuracy"] = fit(m, data, epochs=args.finetune, lr=args.lr / 2, seed=1)
            results.append(row)
            print(_table([row]), file=sys.stderr)
    return {
        "benchmark": "prune",
        "mode": "quick" if args.quick else "full",
        "config": {
            "ratios": args.ratios,
            "epochs": args.epochs,
            "finetune_epochs": args.finetune,
            "lr": args.lr,
            "rounds": args.rounds,
            "inner": args.inner,
            "round_to": args.round_to,
            "threads": THREADS,
        },
        "environment": environment(["torch", "torch-pruning"]),
        "load_average_end": load_average(),
        "peak_rss_mb": peak_rss_mb(),
        "results": results,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    out = []
    for row in rows:
        base = row["base"]
        for lib in ("slimtune", "torch_pruning"):
            s = row.get(lib, {})
            if "error" in s:
                out.append([row["model"], row["ratio"], lib, s["error"][:60], *["-"] * 6])
                continue
            out.append(
                [
                    row["model"],
                    row["ratio"],
                    lib,
                    f"{s['params']:,}",
                    f"{ratio(base['macs'], s['macs']):.2f}x",
                    f"{s['bytes'] / 1024:.0f}",
                    f"{s['latency_s'] * 1e3:.3g}",
                    f"{s['speedup']:.2f}x",
                    fmt(100 * base["accuracy"], 3),
                    fmt(100 * s["accuracy"], 3),
                ]
            )
    headers = [
        "model",
        "ratio",
        "library",
        "params",
        "MACs reduction",
        "size KiB",
        "latency ms",
        "speedup",
        "acc unpruned %",
        "acc fine-tuned %",
    ]
    return markdown_table(headers, out)


def _summary(results: list[dict[str, Any]]) -> str:
    lines = []
    for row in results:
        a, b = row.get("slimtune", {}), row.get("torch_pruning", {})
        if "speedup" in a and "speedup" in b:
            lines.append(
                f"{row['model']} @ {row['ratio']}: speedup ours / Torch-Pruning "
                f"{a['speedup'] / b['speedup']:.3f}, MACs ours / Torch-Pruning "
                f"{a['macs'] / b['macs']:.3f}, accuracy drop after fine-tune "
                f"{100 * (row['base']['accuracy'] - a['accuracy']):+.2f} points (ours), "
                f"{100 * (row['base']['accuracy'] - b['accuracy']):+.2f} (Torch-Pruning)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke test: small, fast")
    p.add_argument("--ratios", type=float, nargs="+", default=None)
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--finetune", type=int, default=None)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--round-to", type=int, default=None, help="channel multiple, both libraries")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--inner", type=int, default=None)
    p.add_argument("--json", type=Path, default=REPO_ROOT / "bench" / "results" / "prune.json")
    args = p.parse_args(argv)
    quick = args.quick
    args.ratios = args.ratios or ([0.5] if quick else [0.3, 0.5, 0.7])
    args.epochs = args.epochs if args.epochs is not None else (1 if quick else 6)
    args.finetune = args.finetune if args.finetune is not None else (1 if quick else 3)
    args.rounds = args.rounds or (3 if quick else 15)
    args.inner = args.inner or (3 if quick else 10)
    payload = run(args)
    print(f"## Structured pruning ({payload['mode']}; load average {load_average()})\n")
    print(_table(payload["results"]))
    print()
    print(_summary(payload["results"]))
    write_json(args.json, payload)
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
