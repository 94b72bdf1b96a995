"""PBT over a supernet's training hyperparameters, against the defaults and random search.

Issue 9, item 6: the supernet's training hyperparameters (learning rate, in-place distillation
temperature) are adjusted by performance while its sub-networks train with AdamW. On digits, the
MLP supernet of ``bench/supernet.py``'s preset (BatchNorm, one head per depth) is trained three
ways, each ending in one supernet, at ``epochs`` epochs per member:

* default: lr 2e-3, temperature 1 (one member);
* random search: ``population`` members with hyperparameters drawn from the space, each trained
  for ``epochs``; the best by the PBT score is kept (the same compute as PBT);
* PBT: ``population`` members, ``rounds`` rounds of ``epochs / rounds`` epochs, exploit (the
  bottom quarter copies a top member) and explore (x0.8 / x1.2, or resample with p 0.25).

All train through ``slimtune.pipeline.SupernetTrainer`` (constant learning rate within a step).
Its score, minimised, is the validation error averaged over the largest and the smallest
sub-network on one half of the validation images (the half ``bench/supernet.py`` searches on);
random search and PBT run again with a "spread" score, the mean error of 8 sub-networks of
stratified sizes (``SupernetTrainer(score_archs=)``, none of the 24 evaluated).
Reported per method, median over seeds: that score, and on the other (held-out) half the mean
inherited accuracy of the 24 sub-networks ``bench/supernet.py`` ranks, after BatchNorm
recalibration, and their Kendall tau against that benchmark's stand-alone accuracies, read from
its JSON when it holds the digits MLP rows (``--standalone``).

    python -m bench.supernet_pbt            # 3 seeds, 4 members, 100 epochs (about 7 min)
    python -m bench.supernet_pbt --quick    # smoke test
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import REPO_ROOT, environment, fmt, markdown_table, pin_threads, write_json

pin_threads(1)

import numpy as np  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from bench._supernet_tasks import (  # noqa: E402
    batches,
    digits_task,
    epoch_batches,
    inherited_accuracy,
    make_supernet,
    split_validation,
    stratified_archs,
)
from slimtune import create_study  # noqa: E402
from slimtune.hpo import PBT, MemberStep, PBTConfig, load_training_state  # noqa: E402
from slimtune.nas import Supernet  # noqa: E402
from slimtune.pipeline import SupernetTrainer  # noqa: E402
from slimtune.space import Float, SearchSpace  # noqa: E402

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"seeds": 1, "population": 2, "epochs": 4, "rounds": 2, "k": 6, "k_score": 3},
    "full": {"seeds": 3, "population": 4, "epochs": 100, "rounds": 5, "k": 24, "k_score": 8},
}
DEFAULT_HPARAMS = {"lr": 2e-3, "temperature": 1.0}  # bench/supernet.py's MLP
METHODS = ("default", "random", "pbt", "random, spread score", "pbt, spread score")
SPACE = SearchSpace({"lr": Float(3e-4, 1e-2, log=True), "temperature": Float(1.0, 4.0)})


def make_net() -> Supernet:
    """The preset's MLP supernet (module level: PBT members train in worker processes)."""
    return make_supernet("mlp", seed=0, mlp_norm="batch", mlp_head="per_depth")


def make_data() -> tuple[Any, list[tuple[Any, Any]]]:
    """Training batches (reshuffled every epoch) and the search half of the validation images."""
    data = digits_task().data
    search, _ = split_validation(data, seed=0)
    val = [(search.x_val[i : i + 256], search.y_val[i : i + 256]) for i in range(0, 300, 256)]
    return epoch_batches(data, seed=0), val


@functools.cache
def _evaluation() -> tuple[Any, list[tuple[Any, Any]]]:
    """The held-out half of the validation images and the recalibration batches (built once)."""
    data = digits_task().data
    _, heldout = split_validation(data, seed=0)
    return heldout, batches(data, batch_size=128, seed=99)[:8]


def _score_supernet(
    net: Supernet, archs: list[dict[str, Any]], standalone: list[float] | None
) -> dict[str, float]:
    heldout, recal = _evaluation()
    accs = [inherited_accuracy(net, arch, heldout, recal) for arch in archs]
    tau = float(kendalltau(accs, standalone).statistic) if standalone else float("nan")
    return {"mean_inherited_heldout": float(np.mean(accs)), "tau": tau}


def _finish(
    checkpoint: Path, score: float, archs: list[dict[str, Any]], sa: list[float] | None
) -> dict[str, Any]:
    net = make_net()
    load_training_state(checkpoint, net)
    return {"score": score, **_score_supernet(net, archs, sa)}


def run_seed(
    seed: int,
    cfg: dict[str, Any],
    archs: list[dict[str, Any]],
    sa: list[float] | None,
    score_archs: list[dict[str, Any]],
) -> dict[str, Any]:
    # the functions by their importable name: spawned workers cannot import ``__main__``'s
    from bench import supernet_pbt

    trainer = SupernetTrainer(supernet_pbt.make_net, supernet_pbt.make_data)
    spread = SupernetTrainer(
        supernet_pbt.make_net, supernet_pbt.make_data, score_archs=tuple(score_archs)
    )
    out: dict[str, Any] = {"seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "default"
        step = MemberStep(dict(DEFAULT_HPARAMS), str(folder), cfg["epochs"], 0, 0, seed)
        out["default"] = {**_finish(folder, trainer(step), archs, sa), "hparams": DEFAULT_HPARAMS}
        for label, rounds, fn in (
            ("random", 1, trainer),
            ("pbt", cfg["rounds"], trainer),
            ("random, spread score", 1, spread),
            ("pbt, spread score", cfg["rounds"], spread),
        ):
            result = PBT(
                fn,
                SPACE,
                study=create_study(storage="memory", seed=seed),
                config=PBTConfig(
                    population_size=cfg["population"],
                    rounds=rounds,
                    interval=cfg["epochs"] // rounds,
                    seed=seed,
                ),
                workdir=Path(tmp) / label.replace(", ", "-").replace(" ", "-"),
            ).run()
            best = result.best_member
            out[label] = {
                **_finish(result.checkpoint_dirs[best], result.best_score, archs, sa),
                "hparams": result.hparams[best] if result.hparams else None,
                "exploits": sum(1 for e in result.events if e.get("kind") == "exploit"),
            }
    return out


def _standalone(path: Path | None, archs: list[dict[str, Any]]) -> list[float] | None:
    """Mean stand-alone accuracies of ``archs`` from a bench/supernet.py JSON, if it has them."""
    if path is None or not path.exists():
        return None
    saved = json.loads(path.read_text())
    for r in saved["results"]:
        if r["task"] == "digits" and r["family"] == "mlp":
            by_arch = {json.dumps(x["arch"], sort_keys=True): x["standalone"] for x in r["rows"]}
            keys = [json.dumps(a, sort_keys=True) for a in archs]
            if all(k in by_arch for k in keys):
                return [float(np.mean(by_arch[k])) for k in keys]
    return None


def report(results: list[dict[str, Any]], k: int) -> str:
    rows = []
    for label in METHODS:
        per = [r[label] for r in results]
        rows.append(
            [
                label,
                fmt(float(np.median([p["score"] for p in per])), 4),
                fmt(float(np.median([p["mean_inherited_heldout"] for p in per])), 4),
                fmt(float(np.median([p["tau"] for p in per])), 3),
                " / ".join(
                    f"lr {p['hparams']['lr']:.2g}, T {p['hparams']['temperature']:.2g}"
                    for p in per
                    if p.get("hparams")
                ),
            ]
        )
    return markdown_table(
        [
            "method",
            "score minimised (search half; spread: 8 sub-networks)",
            f"mean inherited accuracy, {k} sub-networks (held-out half)",
            "tau vs stand-alone",
            "final hyperparameters per seed",
        ],
        rows,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--json", default=None, help="output JSON path")
    parser.add_argument(
        "--standalone",
        default=str(REPO_ROOT / "bench" / "results" / "supernet_mlp.json"),
        help="bench/supernet.py JSON whose digits MLP rows give the stand-alone accuracies",
    )
    args = parser.parse_args(argv)
    cfg = dict(PRESETS["quick" if args.quick else "full"])
    net = make_net()
    archs = stratified_archs(net, cfg["k"], seed=1)  # bench/supernet.py's sub-networks
    # the spread score's sub-networks: another stratified draw, none of the evaluated ones
    score_archs = [
        a for a in stratified_archs(net, cfg["k_score"] + cfg["k"], seed=2) if a not in archs
    ]
    score_archs = [
        score_archs[int(j)] for j in np.linspace(0, len(score_archs) - 1, cfg["k_score"])
    ]
    sa = _standalone(Path(args.standalone) if args.standalone else None, archs)
    start = time.perf_counter()
    results = []
    for seed in range(cfg["seeds"]):
        results.append(run_seed(seed, cfg, archs, sa, score_archs))
        print(f"seed {seed}: {json.dumps(results[-1])}", flush=True)
    table = report(results, cfg["k"])
    mode = "quick" if args.quick else "full"
    print(f"\n## bench.supernet_pbt ({mode}): {time.perf_counter() - start:.0f} s\n")
    print(
        f"digits MLP supernet, {cfg['population']} members, {cfg['epochs']} epochs per member, "
        f"PBT {cfg['rounds']} rounds, {cfg['seeds']} seeds; stand-alone accuracies "
        f"{'from ' + args.standalone if sa else 'not available (tau -)'}\n"
    )
    print(table)
    path = args.json or str(
        REPO_ROOT
        / "bench"
        / "results"
        / ("supernet_pbt_quick.json" if args.quick else "supernet_pbt.json")
    )
    env = environment(["torch", "numpy", "scipy"])
    write_json(path, {"config": cfg, "environment": env, "results": results, "table": table})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
