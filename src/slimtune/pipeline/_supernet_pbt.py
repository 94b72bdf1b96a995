"""Population-based training of a supernet's training hyperparameters.

Sub-networks train with Adam(W) while the hyperparameters of that training are adjusted by
performance: each PBT member is a whole supernet trained with the sandwich rule; members that
fall behind copy a leader's weights and hyperparameters and explore around them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from slimtune.hpo import MemberStep, load_training_state, save_training_state
from slimtune.nas import SandwichConfig, Supernet, recalibrate_bn_, train_supernet
from slimtune.nas._bn import has_batchnorm

__all__ = ["SupernetTrainer"]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def _accuracy(model: torch.nn.Module, batches: Batches) -> float:
    correct = total = 0
    for x, y in batches:
        correct += int((model(x).argmax(dim=1) == y).sum())
        total += len(y)
    return correct / max(total, 1)


@dataclass(frozen=True)
class SupernetTrainer:
    """A :class:`slimtune.hpo.PBT` train function for a supernet.

    ``make_supernet()`` builds a fresh supernet and ``make_data()`` returns ``(train_batches,
    val_batches)``; both must be module-level functions (members train in worker processes).
    Hyperparameters read from the member's ``hparams``: ``lr`` (required), ``weight_decay``
    (default 0), ``temperature`` (in-place distillation, default 1) and ``n_random`` (default 2).
    One PBT step is one epoch of sandwich training. The score, minimised, is the validation
    error averaged over ``score_archs`` (default: the largest and the smallest sub-network;
    pass a spread of sizes to score the whole space), BatchNorm recalibrated on the first
    ``recalibration_batches`` training batches when the supernet has BatchNorm.
    """

    make_supernet: Callable[[], Supernet]
    make_data: Callable[[], tuple[Batches, Batches]]
    recalibration_batches: int = 8
    score_archs: tuple[Mapping[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        if self.score_archs is not None and (
            not self.score_archs or not all(isinstance(a, Mapping) for a in self.score_archs)
        ):
            raise ValueError(
                f"`score_archs` must be a non-empty tuple of architecture dicts or None, got "
                f"{self.score_archs!r}; e.g. (net.largest_arch(), net.smallest_arch())."
            )

    def __call__(self, step: MemberStep) -> float:
        hp = step.hparams
        if "lr" not in hp:
            raise KeyError("SupernetTrainer needs an 'lr' hyperparameter in the PBT space.")
        net = self.make_supernet()
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=float(hp["lr"]), weight_decay=float(hp.get("weight_decay", 0.0))
        )
        load_training_state(step.checkpoint_dir, net, optimizer)
        for group in optimizer.param_groups:  # the member's (possibly explored) values win
            group["lr"] = float(hp["lr"])
            group["weight_decay"] = float(hp.get("weight_decay", 0.0))
        train, val = self.make_data()
        config = SandwichConfig(
            n_random=int(hp.get("n_random", 2)), temperature=float(hp.get("temperature", 1.0))
        )
        train_supernet(
            net, train, epochs=step.steps, optimizer=optimizer, config=config, seed=step.seed
        )
        save_training_state(step.checkpoint_dir, net, optimizer)
        errors = []
        archs = self.score_archs or (net.largest_arch(), net.smallest_arch())
        for arch in archs:
            net.set_arch(arch)
            if has_batchnorm(net):
                recal: list[Any] = []
                for i, batch in enumerate(train):
                    if i >= self.recalibration_batches:
                        break
                    recal.append(batch)
                recalibrate_bn_(net, recal)
            net.eval()
            errors.append(1.0 - _accuracy(net, val))
        return sum(errors) / len(errors)
