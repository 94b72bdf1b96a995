"""Gradual pruning during training: the cubic sparsity schedule of Zhu and Gupta (2017)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from slimtune.compress.prune._unstructured import UnstructuredPruneConfig, magnitude_prune_

__all__ = ["GradualPruner", "cubic_sparsity"]


def cubic_sparsity(step: int, *, initial: float, final: float, begin: int, end: int) -> float:
    """``s_t = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))^3``, clamped to ``[t0, t1]``."""
    if step <= begin:
        return initial
    if step >= end:
        return final
    frac = (step - begin) / (end - begin)
    return final + (initial - final) * (1.0 - frac) ** 3


class GradualPruner:
    """Raise unstructured sparsity from ``initial_sparsity`` to ``final_sparsity`` on a cubic
    schedule between steps ``begin_step`` and ``end_step``, updating masks every ``frequency``
    steps. Call :meth:`step` after each optimiser step, or pass the pruner as ``on_epoch_end``
    to :func:`slimtune.testing.fit` (one step per epoch). :func:`bake_` makes it permanent.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        final_sparsity: float,
        end_step: int,
        begin_step: int = 0,
        frequency: int = 1,
        initial_sparsity: float = 0.0,
        scope: Literal["layer", "global"] = "layer",
        ignore: tuple[str, ...] = (),
    ) -> None:
        UnstructuredPruneConfig(sparsity=final_sparsity, scope=scope, ignore=ignore)
        UnstructuredPruneConfig(sparsity=initial_sparsity)
        if not (isinstance(begin_step, int) and isinstance(end_step, int)) or not (
            0 <= begin_step < end_step
        ):
            raise ValueError(
                f"`begin_step` and `end_step` must be ints with 0 <= begin_step < end_step, got "
                f"{begin_step!r} and {end_step!r}."
            )
        if not isinstance(frequency, int) or frequency < 1:
            raise ValueError(f"`frequency` must be an int >= 1, got {frequency!r}.")
        self.model = model
        self.final_sparsity = float(final_sparsity)
        self.initial_sparsity = float(initial_sparsity)
        self.begin_step, self.end_step, self.frequency = begin_step, end_step, frequency
        self.scope: Literal["layer", "global"] = scope
        self.ignore = tuple(ignore)
        self.steps = 0
        self.current = 0.0

    def sparsity_at(self, step: int) -> float:
        return cubic_sparsity(
            step,
            initial=self.initial_sparsity,
            final=self.final_sparsity,
            begin=self.begin_step,
            end=self.end_step,
        )

    def step(self) -> float:
        """Advance one step; update the masks when the schedule says so; return the target."""
        self.steps += 1
        t = self.steps
        due = (t - self.begin_step) % self.frequency == 0 or t == self.end_step
        if self.begin_step <= t <= self.end_step and due:
            target = self.sparsity_at(t)
            if target > self.current:
                cfg = UnstructuredPruneConfig(sparsity=target, scope=self.scope, ignore=self.ignore)
                magnitude_prune_(self.model, cfg)
                self.current = target
        return self.current

    def __call__(self, epoch: int, metric: float) -> None:
        """``on_epoch_end`` hook: one schedule step per epoch."""
        self.step()
