"""``Group``: the coupled channels that are pruned together, as seen by importance criteria."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from slimtune.compress.prune._apply import owner
from slimtune.compress.prune._segments import Member

__all__ = ["Group", "Rows"]


@dataclass(frozen=True)
class Rows:
    """Weights of one member, one row per channel: ``weight[i]`` belongs to channel ``index[i]``.

    ``kind`` is ``out`` (producer filters), ``in`` (consumer columns), ``norm`` (norm scales),
    ``heads``, ``emb`` or ``param``; ``module`` the owning module (``None`` for a parameter);
    ``grad`` the matching gradient rows when the parameter has one.
    """

    kind: str
    module: nn.Module | None
    index: torch.Tensor
    weight: torch.Tensor
    grad: torch.Tensor | None


@dataclass
class Group:
    """Channels ``0 .. size - 1`` shared by ``members``; ``heads`` when a channel is a head."""

    root: int
    size: int
    members: list[Member]
    model: nn.Module
    heads: bool = False
    blocks: int = 1
    sids: frozenset[int] = frozenset()
    units: int = 1  # channels kept or removed together (the heads of nn.MultiheadAttention)

    @property
    def names(self) -> list[str]:
        """Names of the modules (and parameters) in the group."""
        return sorted({m.name for m in self.members})

    def rows(
        self,
        kinds: tuple[str, ...] | None = None,
        *,
        grads: Mapping[int, torch.Tensor] | None = None,
    ) -> Iterator[Rows]:
        """Per-channel weight rows of every member (optionally only the given ``kinds``).

        ``grads`` maps ``id(parameter)`` to a gradient; by default ``parameter.grad`` is used.
        """
        for m in self.members:
            kind = {"dw": "out"}.get(m.role, m.role)
            if kinds is not None and kind not in kinds:
                continue
            target = owner(self.model, m.name, m.role)
            pos = 0
            for s in m.segs:
                n = s.length * s.inner
                if s.sid in self.sids:
                    idx = torch.arange(s.start, s.start + s.length)
                    cols = slice(pos, pos + n)
                    yield from _rows(kind, target, m.dim, cols, s.length, s.inner, idx, grads)
                pos += n


def _pair(
    grads: Mapping[int, torch.Tensor] | None,
    p: torch.Tensor | None,
    fn: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``fn`` of a parameter and of its gradient (from ``grads`` or ``p.grad``)."""
    if p is None:
        return None
    g = p.grad if grads is None else grads.get(id(p))
    return fn(p.detach()), (fn(g) if g is not None else None)


def _rows(
    kind: str,
    target: object,
    dim: int,
    cols: slice,
    length: int,
    inner: int,
    idx: torch.Tensor,
    grads: Mapping[int, torch.Tensor] | None,
) -> Iterator[Rows]:
    if kind == "param":
        assert isinstance(target, torch.Tensor)
        got = _pair(grads, target, lambda t: t.movedim(dim, 0)[cols].reshape(length, -1))
        if got is not None:
            yield Rows(kind, None, idx, got[0], got[1])
        return
    assert isinstance(target, nn.Module)
    if kind == "heads":
        hd = int(target.head_dim)  # type: ignore[arg-type]
        parts = []
        head_grads: list[torch.Tensor | None] = []
        rows = slice(cols.start * hd, cols.stop * hd)

        def head_rows(t: torch.Tensor) -> torch.Tensor:
            return t[rows].reshape(length, -1)

        for p in ("q", "k", "v"):
            got = _pair(grads, getattr(target, p).weight, head_rows)
            assert got is not None
            parts.append(got[0])
            head_grads.append(got[1])
        w = getattr(target, "out").weight  # noqa: B009
        got = _pair(grads, w, lambda t: t[:, rows].reshape(t.shape[0], length, hd).transpose(0, 1))
        assert got is not None
        parts.append(got[0].reshape(length, -1))
        head_grads.append(None if got[1] is None else got[1].reshape(length, -1))
        known = [x for x in head_grads if x is not None]
        g = torch.cat(known, 1) if len(known) == len(head_grads) else None
        yield Rows(kind, target, idx, torch.cat(parts, 1), g)
        return
    if kind == "mha":
        yield _mha_rows(target, cols, length, idx, grads)
        return
    w = getattr(target, "weight", None)
    if w is None:
        return
    if isinstance(target, nn.modules.conv._ConvTransposeNd):  # weight is (in, out, *kernel)
        kind_dim = 0 if kind == "in" else 1
        got = _pair(grads, w, lambda t: t.movedim(kind_dim, 0)[cols].reshape(length, -1))
        if got is not None:
            yield Rows(kind, target, idx, got[0], got[1])
        return
    if kind == "in":
        got = _pair(
            grads,
            w,
            lambda t: (
                t[:, cols]
                .reshape(t.shape[0], length, inner, *t.shape[2:])
                .transpose(0, 1)
                .reshape(length, -1)
            ),
        )
    elif kind == "emb":
        got = _pair(grads, w, lambda t: t[:, cols].transpose(0, 1).reshape(length, -1))
    else:
        got = _pair(grads, w, lambda t: t[cols].reshape(length, -1))
    if got is not None:
        yield Rows(kind, target, idx, got[0], got[1])


def _mha_rows(
    target: nn.Module,
    cols: slice,
    length: int,
    idx: torch.Tensor,
    grads: Mapping[int, torch.Tensor] | None,
) -> Rows:
    """Input columns and q / k / v rows of ``in_proj``, rows and columns of ``out_proj``."""
    assert isinstance(target, nn.MultiheadAttention)
    e = target.embed_dim
    views = (
        (target.in_proj_weight, lambda t: t.reshape(3, e, e)[:, cols].transpose(0, 1)),
        (target.in_proj_weight, lambda t: t[:, cols].transpose(0, 1)),
        (target.out_proj.weight, lambda t: t[cols]),
        (target.out_proj.weight, lambda t: t[:, cols].transpose(0, 1)),
    )
    parts: list[torch.Tensor] = []
    part_grads: list[torch.Tensor | None] = []
    for p, view in views:
        got = _pair(grads, p, view)
        assert got is not None
        parts.append(got[0].reshape(length, -1))
        part_grads.append(None if got[1] is None else got[1].reshape(length, -1))
    known = [x for x in part_grads if x is not None]
    g = torch.cat(known, 1) if len(known) == len(part_grads) else None
    return Rows("mha", target, idx, torch.cat(parts, 1), g)
