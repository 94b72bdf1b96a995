"""Redundancy merging: neurons / filters whose activations are copies of others are folded away.

If, on calibration data, the activation that consumers read from channel ``j`` equals
``s * a_i`` for a kept channel ``i``, then every consumer computes ``W[:, i] a_i + W[:, j] a_j =
(W[:, i] + s W[:, j]) a_i``: channel ``j`` is removed and its outgoing weights are folded into
channel ``i``. The function is preserved exactly for exact duplicates (and for scaled copies
through positively homogeneous activations such as ReLU).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from slimtune.compress.prune._graph import build_graph
from slimtune.compress.prune._group import Group
from slimtune.compress.prune._plan import PrunePlan, apply_plan_, check_plan
from slimtune.compress.prune._structured import entries_for, groups_of

__all__ = ["MergeReport", "merge_redundant_"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergeReport:
    """``merged[module]`` lists ``(removed, kept, scale)`` per producer; ``plan`` the removal."""

    plan: PrunePlan
    merged: dict[str, list[tuple[int, int, float]]]

    @property
    def removed(self) -> int:
        return sum(len(v) for v in self.merged.values())


def _eligible(g: Group, gm: fx.GraphModule) -> tuple[fx.Node, list[str], str] | None:
    """(input node read by all consumers, consumer names, producer) when ``g`` can merge."""
    if g.heads or len(g.sids) != 1:
        return None
    roles = {m.role for m in g.members}
    if not roles <= {"out", "norm", "in"} or "in" not in roles:
        return None
    producers = [m.name for m in g.members if m.role == "out"]
    consumers = [m.name for m in g.members if m.role == "in"]
    if len(producers) != 1:
        return None
    inputs = {
        n.args[0]
        for n in gm.graph.nodes
        if n.op == "call_module" and n.target in consumers and n.args
    }
    if len(inputs) != 1:
        return None
    node = inputs.pop()
    if not isinstance(node, fx.Node):
        return None
    return node, consumers, producers[0]


def _channel_rows(act: torch.Tensor, consumer: nn.Module, inner: int) -> torch.Tensor:
    """One row per channel: every value the consumers read from it on the calibration data."""
    if isinstance(consumer, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return act.movedim(1, 0).reshape(act.shape[1], -1)
    feats = act.reshape(-1, act.shape[-1] // inner, inner)
    return feats.movedim(1, 0).reshape(feats.shape[1], -1)


def _pairs(rows: torch.Tensor, tol: float) -> list[tuple[int, int, float]]:
    """Greedy (removed j, kept i, scale s) with ``a_j ~= s a_i`` within relative ``tol``."""
    a = rows.double()
    norms = a.norm(dim=1)
    unit = a / norms.clamp_min(1e-300)[:, None]
    close = (unit @ unit.T) ** 2 >= 1.0 - tol**2 - 1e-12  # cheap filter, checked below
    out: list[tuple[int, int, float]] = []
    kept: list[int] = []
    for j in range(len(a)):
        if norms[j] == 0:
            kept.append(j)
            continue
        for i in kept:
            if norms[i] == 0 or not close[j, i]:
                continue
            s = float(a[j] @ a[i] / (norms[i] ** 2))
            if float((a[j] - s * a[i]).norm()) <= tol * float(norms[j]):
                out.append((j, i, s))
                break
        else:
            kept.append(j)
    return out


def merge_redundant_(
    model: nn.Module,
    calibration_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    tol: float = 1e-5,
    ignore: Sequence[str] = (),
) -> MergeReport:
    """Find duplicate or scaled-copy channels on ``calibration_inputs`` and fold them away.

    ``tol`` is the relative residual ``||a_j - s a_i|| / ||a_j||`` below which channel ``j``
    counts as a copy of ``i``. Only groups with one producer whose consumers all read the same
    tensor are merged (not residual streams). Returns the removal plan and the merged pairs;
    save the result with :func:`save_pruned` (the plan alone does not replay the folding).
    """
    if not (isinstance(tol, float | int) and 0.0 <= tol < 1.0):
        raise ValueError(f"`tol` must be in [0, 1), got {tol!r}. Pass e.g. tol=1e-5.")
    inputs = (
        (calibration_inputs,)
        if isinstance(calibration_inputs, torch.Tensor)
        else tuple(calibration_inputs)
    )
    graph = build_graph(model, inputs, ignore=ignore)
    groups = groups_of(model, graph)
    plans: list[tuple[Group, tuple[fx.Node, list[str], str]]] = []
    for g in groups:
        e = _eligible(g, graph.gm)
        if e is not None:
            plans.append((g, e))
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    try:
        for _, (_, consumers, _) in plans:
            name = consumers[0]

            def grab(mod: nn.Module, args: tuple[torch.Tensor, ...], name: str = name) -> None:
                captured[name] = args[0].detach()

            hooks.append(model.get_submodule(name).register_forward_pre_hook(grab))
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(*inputs)
        model.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    keep: dict[int, list[int]] = {}
    folds: list[tuple[list[str], list[tuple[int, int, float]]]] = []
    merged: dict[str, list[tuple[int, int, float]]] = {}
    for g, (_, consumers, producer) in plans:
        first = model.get_submodule(consumers[0])
        rows = _channel_rows(captured[consumers[0]], first, _inner(groups, consumers[0]))
        pairs = _pairs(rows, tol)
        if not pairs:
            continue
        gone = {j for j, _, _ in pairs}
        keep[g.root] = [c for c in range(g.size) if c not in gone]
        folds.append((consumers, pairs))
        merged[producer] = pairs
    plan = PrunePlan(entries=tuple(entries_for(groups, keep)), meta={"merge_tol": tol})
    check_plan(model, plan)
    with torch.no_grad():
        for consumers, pairs in folds:
            for name in consumers:
                weight: torch.Tensor = getattr(model.get_submodule(name), "weight")  # noqa: B009
                _fold(weight, pairs, _inner(groups, name))
    apply_plan_(model, plan)
    logger.info("merged %d redundant channels", sum(len(p) for p in merged.values()))
    return MergeReport(plan, merged)


def _inner(groups: list[Group], name: str) -> int:
    for g in groups:
        for m in g.members:
            if m.name == name and m.role == "in":
                return m.segs[0].inner
    return 1


def _fold(w: torch.Tensor, pairs: list[tuple[int, int, float]], inner: int) -> None:
    for j, i, s in pairs:
        cols_j = slice(j * inner, (j + 1) * inner)
        cols_i = slice(i * inner, (i + 1) * inner)
        w[:, cols_i] += s * w[:, cols_j]
