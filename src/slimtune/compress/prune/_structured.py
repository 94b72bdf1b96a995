"""``prune_``: structured pruning that physically removes channels, neurons and heads."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from torch import nn

from slimtune.compress.prune._apply import current_size, owner
from slimtune.compress.prune._config import ChannelGroup, StructuredPruneConfig
from slimtune.compress.prune._graph import DepGraph, build_graph
from slimtune.compress.prune._group import Group
from slimtune.compress.prune._importance import Criterion, RandomImportance, get_criterion
from slimtune.compress.prune._plan import PlanEntry, PrunePlan, apply_plan_, check_plan
from slimtune.compress.prune._segments import Member, Seg, Sources, seg_positions, total_size
from slimtune.exceptions import PlanMismatchError

__all__ = ["entries_for", "find_groups", "groups_of", "plan_pruning", "prune_"]

logger = logging.getLogger(__name__)


def _as_inputs(
    example_inputs: torch.Tensor | Sequence[torch.Tensor] | None,
) -> tuple[torch.Tensor, ...]:
    if example_inputs is None:
        raise ValueError(
            "`example_inputs` is required to trace the model, e.g. "
            "example_inputs=torch.randn(1, 3, 32, 32); or pass groups=[ChannelGroup(...)]."
        )
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def _check_names(model: nn.Module, names: Sequence[str], what: str) -> None:
    known = {n for n, _ in model.named_modules()} | {n for n, _ in model.named_parameters()}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(
            f"`{what}` names {missing} that are not modules of the model. Use names from "
            "model.named_modules(), e.g. 'head'."
        )


def _manual_graph(model: nn.Module, groups: Sequence[ChannelGroup]) -> DepGraph:
    src = Sources()
    members: list[Member] = []
    for g in groups:
        name, role = g.members[0][0], g.members[0][1]
        inner0 = g.members[0][2] if len(g.members[0]) == 3 else 1
        size = current_size(owner(model, name, role), role, -1 if role == "param" else 0)
        size //= inner0
        sid = src.new(size)
        for m in g.members:
            inner = m[2] if len(m) == 3 else 1
            tgt = owner(model, m[0], m[1])
            dim = (tgt.dim() - 1) if m[1] == "param" and isinstance(tgt, torch.Tensor) else 0
            have = current_size(tgt, m[1], dim)
            if have != size * inner:
                raise PlanMismatchError(
                    f"ChannelGroup member {m!r} has {have} channels, the group {size * inner}."
                )
            if m[1] == "heads":
                src.heads.add(sid)
            members.append(Member(m[0], m[1], (Seg(sid, 0, size, inner),), dim))
    from torch import fx

    return DepGraph(src, members, fx.GraphModule(model, fx.Graph()))


def find_groups(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    *,
    ignore: Sequence[str] = (),
    groups: Sequence[ChannelGroup] | None = None,
    num_heads: bool = False,
) -> list[Group]:
    """The prunable channel groups of ``model`` (traced, or declared by hand with ``groups``).

    ``num_heads``: groups that feed ``nn.MultiheadAttention`` are pruned in whole heads (see
    ``StructuredPruneConfig.prune_num_heads``) instead of equally per head."""
    _check_names(model, list(ignore), "ignore")
    if groups is not None:
        graph = _manual_graph(model, groups)
        for m in graph.members:
            if any(m.name == i or m.name.startswith(i + ".") for i in ignore):
                graph.sources.block_segs(m.segs, f"{m.name} is ignored")
    else:
        graph = build_graph(model, _as_inputs(example_inputs), ignore=ignore)
    return groups_of(model, graph, num_heads=num_heads)


def groups_of(model: nn.Module, graph: DepGraph, *, num_heads: bool = False) -> list[Group]:
    """The prunable groups of a built dependency graph (``num_heads``: see ``find_groups``)."""
    src = graph.sources
    out = []
    for root, members in graph.groups().items():
        sids = frozenset(s for s in range(len(src.size)) if src.find(s) == root)
        blocks = units = 1
        for s in sids:
            blocks = math.lcm(blocks, src.blocks.get(s, 1))
            if num_heads:
                units = math.lcm(units, src.mha_units.get(s, 1))
            else:
                blocks = math.lcm(blocks, src.mha_heads.get(s, 1))
        size = src.size[root]
        if size % (blocks * units):
            continue
        heads = any(s in src.heads for s in sids)
        out.append(Group(root, size, members, model, heads, blocks, sids, units))
    out.sort(key=lambda g: g.names)
    return out


def _keep_count(n: int, ratio: float, group: Group, round_to: int | None) -> int:
    """Channels kept: ``floor(n * (1 - ratio))`` (at least ``ratio`` removed, as Torch-Pruning
    counts), rounded to ``round_to``, to equal counts per block and to whole units (heads of
    ``nn.MultiheadAttention``), never below one block of units."""
    keep = math.floor(n * (1.0 - ratio) + 1e-6)
    if round_to and not group.heads and group.units == 1 and n > round_to:
        keep = max(round_to, round(keep / round_to) * round_to)
    step = group.blocks * group.units
    keep = max(keep, step)
    keep -= keep % step
    return min(max(keep, 1), n)


def _select(scores: torch.Tensor, keep: int, blocks: int, units: int = 1) -> list[int]:
    """The ``keep`` best channels, equally many per block, in whole units (summed scores)."""
    n = len(scores)
    per, size = keep // blocks // units, n // blocks // units
    by_unit = scores.reshape(n // units, units).sum(dim=1)
    out: list[int] = []
    for b in range(blocks):
        part = by_unit[b * size : (b + 1) * size]
        top = torch.topk(part, per, largest=True, sorted=False).indices
        for u in top:
            start = (int(u) + b * size) * units
            out.extend(range(start, start + units))
    return sorted(out)


def plan_pruning(
    model: nn.Module,
    config: StructuredPruneConfig,
    *,
    example_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    criterion: Criterion | None = None,
    groups: Sequence[ChannelGroup] | None = None,
) -> PrunePlan:
    """What :func:`prune_` would remove, without changing ``model``."""
    if not isinstance(config, StructuredPruneConfig):
        raise TypeError(f"`config` must be a StructuredPruneConfig, got {type(config).__name__}.")
    _check_names(model, list(config.per_layer), "per_layer")
    found = find_groups(
        model,
        example_inputs,
        ignore=config.ignore,
        groups=groups,
        num_heads=config.prune_num_heads,
    )
    if not config.prune_heads:
        found = [g for g in found if not g.heads]
    if criterion is None:
        crit = (
            RandomImportance(config.seed or 0)
            if config.criterion == "random"
            else get_criterion(config.criterion)
        )
    else:
        crit = get_criterion(criterion)
    prepare = getattr(crit, "prepare", None)
    if callable(prepare) and found:
        prepare(model)
    scores = {g.root: crit(g).detach().double().flatten() for g in found}
    for g in found:
        if scores[g.root].shape != (g.size,):
            raise ValueError(
                f"The criterion returned shape {tuple(scores[g.root].shape)} for a group of "
                f"{g.size} channels; it must return one score per channel."
            )
    keep_n = _allocate(found, scores, config)
    keep: dict[int, list[int]] = {}
    for g in found:
        if keep_n[g.root] < g.size:
            keep[g.root] = _select(scores[g.root], keep_n[g.root], g.blocks, g.units)
    entries = entries_for(found, keep)
    return PrunePlan(entries=tuple(entries), meta={"config": config.to_dict()})


def _ratio_of(g: Group, config: StructuredPruneConfig) -> float | None:
    for name in g.names:
        for key, r in config.per_layer.items():
            if name == key or name.startswith(key + "."):
                return r
    return None


def _allocate(
    found: list[Group], scores: dict[int, torch.Tensor], config: StructuredPruneConfig
) -> dict[int, int]:
    out: dict[int, int] = {}
    pooled: list[Group] = []
    for g in found:
        r = _ratio_of(g, config)
        if r is not None or config.scope == "layer":
            ratio = config.ratio if r is None else r
            out[g.root] = _keep_count(g.size, ratio, g, config.round_to)
        else:
            pooled.append(g)
    if pooled and config.ratio > 0:
        norm = [scores[g.root] / (scores[g.root].mean().abs() + 1e-12) for g in pooled]
        flat = torch.cat(norm)
        k = round(config.ratio * len(flat))
        thr = torch.kthvalue(flat, k).values if k > 0 else flat.min() - 1
        for g, s in zip(pooled, norm, strict=True):
            removed = min(int((s <= thr).sum()), math.floor(config.max_ratio * g.size))
            out[g.root] = _keep_count(g.size, removed / g.size, g, config.round_to)
    for g in pooled:
        out.setdefault(g.root, g.size)
    return out


def entries_for(found: list[Group], keep: dict[int, list[int]]) -> list[PlanEntry]:
    """Plan entries keeping channels ``keep[root]`` of each group (all of any other)."""
    root_of = {s: g.root for g in found for s in g.sids}

    def find(sid: int) -> int:
        return root_of.get(sid, -1 - sid)

    seen: dict[tuple[str, str], PlanEntry] = {}
    for g in found:
        if g.root not in keep:
            continue
        for m in g.members:
            if (m.name, m.role) in seen:
                continue
            pos = seg_positions(m.segs, keep, find)
            size = total_size(m.segs)
            if len(pos) < size:
                seen[(m.name, m.role)] = PlanEntry(
                    name=m.name, role=m.role, size=size, keep=tuple(pos), dim=m.dim
                )
    return list(seen.values())


def prune_(
    model: nn.Module,
    config: StructuredPruneConfig,
    *,
    example_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    criterion: Criterion | None = None,
    groups: Sequence[ChannelGroup] | None = None,
) -> PrunePlan:
    """Remove channels, neurons and heads from ``model`` in place; return the replayable plan.

    The model is traced with torch.fx on ``example_inputs`` (or its groups are declared by hand
    with ``groups``); everything is checked and planned before the model is modified, so a
    failure leaves it unchanged. The result is an ordinary, smaller ``nn.Module``.
    """
    plan = plan_pruning(
        model, config, example_inputs=example_inputs, criterion=criterion, groups=groups
    )
    check_plan(model, plan)
    apply_plan_(model, plan)
    logger.info("pruned %d channel slices in %d entries", plan.removed, len(plan.entries))
    return plan
