"""Supernet benchmark: does weight sharing rank sub-networks like stand-alone training does?

Protocol (/work/shared/BENCHMARKS.md, "Supernet ranking"): on digits (8x8) and on two harder tasks
generated from it (shifted, contrast-scaled, noisy digits: one corrupted copy of every image, and
six copies, noisy-digits-6x, with fewer epochs), an MLP and a CNN supernet are each
trained once with the sandwich rule and in-place distillation. K sub-networks, one from each of
K parameter-count quantile bins, are evaluated with inherited weights (with and without
BatchNorm recalibration) and trained stand-alone from scratch (2 seeds, half the supernet's
epochs). Reported: Kendall tau between inherited and mean stand-alone accuracy, the seed-to-seed
stand-alone tau (noise ceiling), the tau of parameter count alone, and then a multi-objective
search (accuracy against parameters) with the evolution sampler against random search at equal
evaluations (hypervolume of (error, parameters / largest) up to (1, 1.05)), whose front points
are retrained stand-alone (5 seeds) to compare inherited with retrained accuracy. The search
scores sub-networks on one half of the validation images; front points are compared on the
other half, since a front point's score on the images that selected it is biased upward.

    python -m bench.supernet            # full protocol (about 25 min per family on 1 core)
    python -m bench.supernet --quick    # smoke test (digits, MLP, tiny budgets)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench._common import REPO_ROOT, environment, fmt, markdown_table, pin_threads, write_json

pin_threads(1)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from bench._supernet_tasks import (  # noqa: E402
    activate_recalibrated,
    batches,
    epoch_batches,
    hypervolume_2d,
    inherited_accuracy,
    make_supernet,
    make_task,
    split_validation,
    standalone_accuracy,
    stratified_archs,
    val_accuracy,
)
from slimtune import TrialState  # noqa: E402
from slimtune.nas import (  # noqa: E402
    SandwichConfig,
    count_params,
    extract,
    finetune_subnet,
    train_supernet,
)
from slimtune.nas._bn import has_batchnorm  # noqa: E402
from slimtune.pipeline import rescore_front, search_architectures  # noqa: E402
from slimtune.samplers import EvolutionSampler, RandomSampler  # noqa: E402

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "tasks": ["digits"],
        "families": ["mlp"],
        "epochs": {"mlp": 2, "cnn": 1},
        "sa_epochs": {"mlp": 2, "cnn": 1},
        "lr_schedule": "cosine",
        "sa_weight_decay": 0.01,
        "n_random": 2,
        "k": 6,
        "seeds": 2,
        "trials": 8,
        "front_retrain": 2,
        "front_seeds": 2,
        "mlp_norm": "batch",
        "mlp_head": "per_depth",
    },
    "full": {
        # noisy-digits-6x: six corruptions of every image; on noisy-digits (one) retraining is
        # data-starved and its own seeds disagree by more than the 1.5-point front check
        "tasks": ["digits", "noisy-digits", "noisy-digits-6x"],
        "families": ["mlp", "cnn"],
        # weight sharing needs more epochs than one network (each step trains 4 sub-networks
        # on shared weights): the supernet gets twice the stand-alone runs' epochs, which are
        # enough for those to converge (run D: 60 CNN epochs barely moved them); README run G
        "epochs": {"mlp": 400, "cnn": 60},
        "sa_epochs": {"mlp": 200, "cnn": 30},
        # per-task epochs replacing the two above: six times the images per epoch, so fewer
        # epochs (still about twice the 1x runs' gradient steps, supernet 2:1 stand-alone)
        "task_epochs": {
            "noisy-digits-6x": {
                "epochs": {"mlp": 120, "cnn": 20},
                "sa_epochs": {"mlp": 60, "cnn": 10},
            }
        },
        "lr_schedule": "cosine",  # supernet and stand-alone alike (OFA / BigNAS decay)
        "sa_weight_decay": 0.01,  # AdamW's default, which the supernet uses
        "n_random": 2,  # random sub-networks per step besides the largest and the smallest
        "k": 24,
        "seeds": 2,
        "trials": 150,
        "front_retrain": 4,
        # a front point is one architecture: average more seeds than the K-sample ranking
        # needs, so the 1.5-point check is not dominated by seed noise (sd ~1 point at 539
        # validation images)
        "front_seeds": 5,
        # BatchNorm after every hidden Linear (recalibrated per sub-network, as in the CNN)
        # and one output layer per depth: see MLPSupernet and the README's run F
        "mlp_norm": "batch",
        "mlp_head": "per_depth",
    },
}
LR = {"mlp": 2e-3, "cnn": 3e-3}
SUPERNET_WEIGHT_DECAY = 0.01  # AdamW's default in train_supernet


def _tau(a: list[float], b: list[float]) -> float:
    value = kendalltau(a, b).statistic
    return float(value) if np.isfinite(value) else float("nan")


def _residual_tau(rows: list[dict[str, Any]]) -> float:
    """Kendall tau of inherited against mean stand-alone accuracy after regressing each on
    log(parameters): does the supernet rank architectures of similar size correctly?"""
    logp = np.log([float(r["params"]) for r in rows])
    design = np.stack([np.ones_like(logp), logp], axis=1)

    def residual(v: list[float]) -> list[float]:
        y = np.asarray(v)
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        return list(y - design @ coef)

    return _tau(
        residual([r["inherited"] for r in rows]),
        residual([float(np.mean(r["standalone"])) for r in rows]),
    )


def _standalone(
    net: Any,
    arch: dict[str, Any],
    data: Any,
    cfg: dict[str, Any],
    family: str,
    seeds: int | None = None,
) -> list[float]:
    """Stand-alone accuracy of ``arch`` trained from scratch, one value per seed."""
    return [
        standalone_accuracy(
            net.extract(arch),
            data,
            epochs=cfg["sa_epochs"][family],
            lr=LR[family],
            seed=s,
            weight_decay=cfg["sa_weight_decay"],
            lr_schedule=cfg["lr_schedule"],
            zero_init_residual=cfg.get("zero_init_residual", False),
        )
        for s in range(cfg["seeds"] if seeds is None else seeds)
    ]


def task_config(cfg: dict[str, Any], task_name: str) -> dict[str, Any]:
    """``cfg`` with the supernet and stand-alone epochs of ``task_name`` (its entry in
    ``cfg["task_epochs"]``, when there is one) in place of the default ones."""
    override = cfg.get("task_epochs", {}).get(task_name, {})
    return {**cfg, **{k: dict(v) for k, v in override.items()}}


def _finetuned_accuracy(
    net: Any,
    arch: dict[str, Any],
    data: Any,
    heldout: Any,
    recal: Any,
    epochs: int,
    family: str,
) -> float:
    """Held-out accuracy of ``arch`` extracted with its inherited weights (BatchNorm
    recalibrated) and fine-tuned on the training images for ``epochs`` at half the training
    learning rate, cosine decay."""
    activate_recalibrated(net, arch, recal)
    module = extract(
        net,
        arch,
        finetune=lambda m: finetune_subnet(
            m,
            epoch_batches(data, seed=5),
            epochs=epochs,
            lr=LR[family] / 2,
            lr_schedule="cosine",
        ),
    )
    return val_accuracy(module, heldout)


def run_one(task_name: str, family: str, cfg: dict[str, Any], log: Any) -> dict[str, Any]:
    cfg = task_config(cfg, task_name)
    task = make_task(task_name)
    data = task.data
    sn_seed = cfg.get("supernet_seed", 0)  # the supernet's init, batch order and draws
    net = make_supernet(
        family,
        seed=sn_seed,
        zero_init_residual=cfg.get("zero_init_residual", False),
        mlp_norm=cfg.get("mlp_norm", "none"),
        mlp_head=cfg.get("mlp_head", "shared"),
    )
    t0 = time.perf_counter()
    train_supernet(
        net,
        epoch_batches(data, seed=sn_seed),
        epochs=cfg["epochs"][family],
        lr=LR[family],
        config=SandwichConfig(
            n_random=cfg["n_random"], warmup_epochs=max(cfg["epochs"][family] // 10, 0)
        ),
        seed=sn_seed,
        lr_schedule=cfg["lr_schedule"],
    )
    train_s = time.perf_counter() - t0
    log(f"  {task_name}/{family}: supernet trained in {train_s:.0f} s")
    # BatchNorm statistics are re-estimated per sub-network (CNN, and MLP with norm="batch")
    recal = batches(data, batch_size=128, seed=99)[:8] if has_batchnorm(net) else None
    rows = []
    for i, arch in enumerate(stratified_archs(net, cfg["k"], seed=1)):
        net.set_arch(arch)
        no_recal = val_accuracy(net.eval(), data)
        inherited = inherited_accuracy(net, arch, data, recal)
        sub = net.extract(arch)
        sa = _standalone(net, arch, data, cfg, family)
        rows.append(
            {
                "arch": arch,
                "params": count_params(sub),
                "no_recal": no_recal,
                "inherited": inherited,
                "standalone": sa,
            }
        )
        log(
            f"    arch {i}: params {rows[-1]['params']}, inherited {inherited:.4f}, "
            f"no-recal {no_recal:.4f}, stand-alone {np.mean(sa):.4f}"
        )
    sa_mean = [float(np.mean(r["standalone"])) for r in rows]
    ranking = {
        "tau_supernet": _tau([r["inherited"] for r in rows], sa_mean),
        "tau_no_recal": _tau([r["no_recal"] for r in rows], sa_mean),
        "tau_noise_ceiling": _tau(
            [r["standalone"][0] for r in rows], [r["standalone"][1] for r in rows]
        )
        if cfg["seeds"] > 1
        else float("nan"),
        "tau_params": _tau([float(r["params"]) for r in rows], sa_mean),
        "mean_inherited": float(np.mean([r["inherited"] for r in rows])),
        "mean_no_recal": float(np.mean([r["no_recal"] for r in rows])),
        "mean_standalone": float(np.mean(sa_mean)),
    }
    # search: evolution against random at equal evaluations, scored on one half of the
    # validation images; the front points are judged on the other half
    search_data, heldout_data = split_validation(data, seed=0, groups=task.val_groups)
    largest = count_params(net.extract(net.largest_arch()))
    example = data.x_val[:1]

    def evaluate(model: torch.nn.Module) -> float:
        return val_accuracy(model, search_data)

    searches, studies = {}, {}
    for label, sampler in (("evolution", EvolutionSampler()), ("random", RandomSampler())):
        study = search_architectures(
            net,
            evaluate,
            n_trials=cfg["trials"],
            example_inputs=example,
            objectives=("score", "params"),
            recalibration=recal,
            sampler=sampler,
            seed=0,
        )
        done = [t for t in study.trials if t.state is TrialState.COMPLETE]
        pts = [(1.0 - t.values[0], t.values[1] / largest) for t in done]
        front = study.best_trials
        studies[label] = study
        searches[label] = {
            "evaluations": len(done),
            "hypervolume": hypervolume_2d(pts, (1.0, 1.05)),
            "front": [
                {"arch": t.params, "inherited": t.values[0], "params": t.values[1]} for t in front
            ],
        }
    # retrain a few front points of the evolution search stand-alone
    front = sorted(studies["evolution"].best_trials, key=lambda t: t.values[1])
    pick = [
        front[int(j)]
        for j in np.unique(np.linspace(0, len(front) - 1, cfg["front_retrain"]).round())
    ]
    points = rescore_front(
        net,
        studies["evolution"],
        lambda model: val_accuracy(model, heldout_data),
        trials=pick,
        recalibration=recal,
    )
    retrained = []
    for p in points:
        # same training runs as on the full split; accuracy on the held-out half
        sa = _standalone(net, p.arch, heldout_data, cfg, family, seeds=cfg.get("front_seeds"))
        point = {
            "arch": p.arch,
            "inherited": p.values[0],
            "params": p.values[1],
            "inherited_heldout": p.score,
            "standalone": float(np.mean(sa)),
            "standalone_seeds": sa,
        }
        if cfg.get("finetune_epochs"):
            point["finetuned_heldout"] = _finetuned_accuracy(
                net, p.arch, data, heldout_data, recal, cfg["finetune_epochs"], family
            )
        retrained.append(point)
    return {
        "task": task_name,
        "epochs": cfg["epochs"][family],
        "sa_epochs": cfg["sa_epochs"][family],
        "family": family,
        "train_seconds": train_s,
        "rows": rows,
        "ranking": ranking,
        "search": searches,
        "front_retrained": retrained,
    }


def report(results: list[dict[str, Any]]) -> str:
    out = ["### Ranking: inherited against stand-alone accuracy (Kendall tau)", ""]
    out.append(
        markdown_table(
            [
                "task",
                "supernet",
                "K",
                "tau supernet (BN recal)",
                "tau without recal",
                "noise ceiling (seed vs seed)",
                "tau params",
                "tau after log(params) regressed out",
                "mean acc inherited / no recal / stand-alone",
            ],
            [
                [
                    r["task"],
                    r["family"],
                    len(r["rows"]),
                    fmt(r["ranking"]["tau_supernet"]),
                    fmt(r["ranking"]["tau_no_recal"]),
                    fmt(r["ranking"]["tau_noise_ceiling"]),
                    fmt(r["ranking"]["tau_params"]),
                    fmt(_residual_tau(r["rows"])),
                    f"{r['ranking']['mean_inherited']:.4f} / {r['ranking']['mean_no_recal']:.4f} / "
                    f"{r['ranking']['mean_standalone']:.4f}",
                ]
                for r in results
            ],
        )
    )
    out += [
        "",
        "### Search: evolution against random, accuracy vs parameters (hypervolume; higher is "
        "better)",
        "",
    ]
    out.append(
        markdown_table(
            [
                "task",
                "supernet",
                "evaluations",
                "HV evolution",
                "HV random",
                "front size evolution / random",
            ],
            [
                [
                    r["task"],
                    r["family"],
                    r["search"]["evolution"]["evaluations"],
                    fmt(r["search"]["evolution"]["hypervolume"], 4),
                    fmt(r["search"]["random"]["hypervolume"], 4),
                    f"{len(r['search']['evolution']['front'])} / "
                    f"{len(r['search']['random']['front'])}",
                ]
                for r in results
            ],
        )
    )
    out += [
        "",
        "### Front points: inherited against stand-alone retrained accuracy (held-out half)",
        "",
    ]
    tuned = any("finetuned_heldout" in f for r in results for f in r["front_retrained"])
    rows = []
    for r in results:
        for f in r["front_retrained"]:
            row = [
                r["task"],
                r["family"],
                int(f["params"]),
                f"{f['inherited']:.4f}",
                f"{f['inherited_heldout']:.4f}" if "inherited_heldout" in f else "-",
                f"{f['standalone']:.4f}",
                _seed_range(f),
                _seeds_within(f),
                f"{_difference(f):+.2f}",
            ]
            if tuned:
                ft = f.get("finetuned_heldout")
                row.append("-" if ft is None else f"{100 * (ft - f['standalone']):+.2f}")
            rows.append(row)
    headers = [
        "task",
        "supernet",
        "params",
        "inherited, search half",
        "inherited, held-out half",
        "stand-alone, held-out half (seed mean)",
        "seeds: min..max",
        "seeds within 1.5 of the other seeds' mean",
        "difference (points)",
    ]
    if tuned:
        headers.append("difference after fine-tuning (points)")
    out.append(markdown_table(headers, rows))
    out += ["", _front_summary(results)]
    return "\n".join(out)


def _difference(front_point: dict[str, Any]) -> float:
    """Inherited minus stand-alone accuracy of a front point, in points, on the held-out half
    (files written before the held-out half: on the search's images)."""
    judged = front_point.get("inherited_heldout", front_point["inherited"])
    return 100 * (judged - front_point["standalone"])


def _front_summary(results: list[dict[str, Any]]) -> str:
    """One line: front points within ``FRONT_TOLERANCE`` of retraining, per task and family."""
    parts = []
    for r in results:
        front = r["front_retrained"]
        hits = sum(abs(_difference(f)) <= FRONT_TOLERANCE for f in front)
        parts.append(f"{r['task']} {r['family']} {hits}/{len(front)}")
    return f"Front points within {FRONT_TOLERANCE} points of retraining: " + ", ".join(parts) + "."


FRONT_TOLERANCE = 1.5  # points: issue 9's bound on inherited minus retrained accuracy


def _seeds_within(front_point: dict[str, Any]) -> str:
    """How many stand-alone seeds are within the tolerance of the mean of the other seeds: the
    front-point check applied to retraining itself, its noise ceiling."""
    seeds = front_point.get("standalone_seeds") or []
    if len(seeds) < 2:
        return "-"
    hits = sum(
        abs(v - float(np.mean(seeds[:i] + seeds[i + 1 :]))) * 100 <= FRONT_TOLERANCE
        for i, v in enumerate(seeds)
    )
    return f"{hits}/{len(seeds)}"


def _seed_range(front_point: dict[str, Any]) -> str:
    seeds = front_point.get("standalone_seeds")
    if not seeds:  # files written before per-seed values were kept
        return "-"
    return f"{len(seeds)}: {min(seeds):.4f}..{max(seeds):.4f}"


def _describe(cfg: dict[str, Any]) -> str:
    return (
        f"{'/'.join(cfg['families'])}: supernet epochs {cfg['epochs']}, "
        f"stand-alone epochs {cfg['sa_epochs']}, "
        + "".join(
            f"on {task} supernet epochs {e['epochs']} and stand-alone epochs {e['sa_epochs']}, "
            for task, e in cfg.get("task_epochs", {}).items()
            if task in cfg.get("tasks", ())
        )
        + f"lr schedule {cfg.get('lr_schedule', 'constant')}, "
        f"stand-alone weight decay {cfg.get('sa_weight_decay', 0.0)}, "
        f"random sub-networks per step {cfg.get('n_random', 2)}, "
        f"front points retrained with {cfg.get('front_seeds', cfg.get('seeds', 2))} seeds"
        + (", residual blocks zero-initialised" if cfg.get("zero_init_residual") else "")
        + (
            f", MLP norm {cfg.get('mlp_norm', 'none')}, MLP head {cfg.get('mlp_head', 'shared')}"
            if "mlp" in cfg["families"]
            else ""
        )
        + (f", supernet seed {cfg['supernet_seed']}" if cfg.get("supernet_seed") else "")
        + (
            f", front points also fine-tuned for {cfg['finetune_epochs']} epochs"
            if cfg.get("finetune_epochs")
            else ""
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument(
        "--tasks",
        default=None,
        help="comma list of digits, noisy-digits, noisy-digits-Nx (N corrupted copies per image)",
    )
    parser.add_argument("--families", default=None, help="comma list: mlp,cnn")
    parser.add_argument("--json", default=None, help="output JSON path")
    parser.add_argument(
        "--report",
        nargs="+",
        default=None,
        metavar="JSON",
        help="print the tables of saved result files (no training)",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        default=None,
        help="learning-rate schedule of the supernet and the stand-alone runs (default cosine)",
    )
    parser.add_argument(
        "--sa-epochs",
        default=None,
        help="stand-alone epochs as mlp,cnn for every task (default 200,30 and 60,10 on "
        "noisy-digits-6x, or --epochs when that is given)",
    )
    parser.add_argument(
        "--epochs",
        default=None,
        help="supernet epochs as mlp,cnn for every task (default 400,60 and 120,20 on "
        "noisy-digits-6x); also sets the stand-alone epochs "
        "unless --sa-epochs is given",
    )
    parser.add_argument(
        "--n-random",
        type=int,
        default=None,
        help="random sub-networks per sandwich step (default 2)",
    )
    parser.add_argument(
        "--sa-weight-decay",
        type=float,
        default=None,
        help=f"AdamW weight decay of stand-alone runs (default {SUPERNET_WEIGHT_DECAY}, the "
        "supernet's)",
    )
    parser.add_argument(
        "--supernet-seed",
        type=int,
        default=None,
        help="seed of the supernet's initialisation, batch order and sampled sub-networks "
        "(default 0; the stand-alone runs and the sub-networks compared do not depend on it)",
    )
    parser.add_argument(
        "--zero-init-residual",
        action="store_true",
        help="start every residual block's BatchNorm scale at 0 (CNN), supernet and stand-alone",
    )
    parser.add_argument(
        "--mlp-norm",
        choices=("none", "batch", "layer"),
        default=None,
        help="normalisation after each hidden Linear of the MLP supernet (MLPSupernet(norm=))",
    )
    parser.add_argument(
        "--finetune-epochs",
        type=int,
        default=None,
        help="also fine-tune each front point's extracted sub-network for this many epochs "
        "(half the training learning rate, cosine) and compare it on the held-out half",
    )
    parser.add_argument(
        "--mlp-head",
        choices=("shared", "per_depth"),
        default=None,
        help="one output layer for every depth, or one per depth (MLPSupernet(head=))",
    )
    args = parser.parse_args(argv)
    if args.report:
        saved = [json.loads(Path(p).read_text()) for p in args.report]
        for data in saved:
            print(_describe(data["config"]))
        print()
        print(report([r for data in saved for r in data["results"]]))
        return
    cfg = dict(PRESETS["quick" if args.quick else "full"])
    if args.tasks:
        cfg["tasks"] = args.tasks.split(",")
    if args.families:
        cfg["families"] = args.families.split(",")
    if args.lr_schedule:
        cfg["lr_schedule"] = args.lr_schedule
    if args.epochs or args.sa_epochs:
        cfg["task_epochs"] = {}  # epochs given on the command line hold for every task
    if args.epochs:
        mlp_epochs, cnn_epochs = (int(v) for v in args.epochs.split(","))
        cfg["epochs"] = {"mlp": mlp_epochs, "cnn": cnn_epochs}
        cfg["sa_epochs"] = dict(cfg["epochs"])
    if args.sa_epochs:
        mlp_epochs, cnn_epochs = (int(v) for v in args.sa_epochs.split(","))
        cfg["sa_epochs"] = {"mlp": mlp_epochs, "cnn": cnn_epochs}
    if args.n_random is not None:
        cfg["n_random"] = args.n_random
    if args.sa_weight_decay is not None:
        cfg["sa_weight_decay"] = args.sa_weight_decay
    if args.zero_init_residual:
        cfg["zero_init_residual"] = True
    if args.supernet_seed is not None:
        cfg["supernet_seed"] = args.supernet_seed
    if args.mlp_norm is not None:
        cfg["mlp_norm"] = args.mlp_norm
    if args.mlp_head is not None:
        cfg["mlp_head"] = args.mlp_head
    if args.finetune_epochs is not None:
        if args.finetune_epochs < 0:
            parser.error(f"--finetune-epochs must be >= 0, got {args.finetune_epochs}")
        cfg["finetune_epochs"] = args.finetune_epochs
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = []
    for task in cfg["tasks"]:
        for family in cfg["families"]:
            results.append(run_one(task, family, cfg, lambda m: print(m, flush=True)))
    table = report(results)
    mode = "quick" if args.quick else "full"
    print(f"## bench.supernet ({mode}): {time.perf_counter() - start:.0f} s\n")
    print(_describe(cfg) + "\n")
    print(table)
    path = args.json or str(
        REPO_ROOT / "bench" / "results" / ("supernet_quick.json" if args.quick else "supernet.json")
    )
    env = environment(["torch", "numpy", "scipy"])
    write_json(path, {"config": cfg, "environment": env, "results": results, "table": table})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
