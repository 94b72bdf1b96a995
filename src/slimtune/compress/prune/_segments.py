"""Channel layouts: which source channels make up one dimension of a tensor.

A *source* is a set of channels created by one producer (a convolution's output channels, a
linear layer's output features, attention heads, a parameter's last dimension). A tensor's channel
dimension is a sequence of :class:`Seg` (concatenation gives several); each channel of a segment
may span ``inner`` consecutive positions (``flatten`` of ``(N, C, H, W)`` gives ``inner = H * W``).
Sources that must keep the same channels (residual additions) are joined in a union-find.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Chan", "Member", "Seg", "Sources", "seg_positions", "slice_segs", "total_size"]


@dataclass(frozen=True)
class Seg:
    """Channels ``start .. start + length`` of source ``sid``, each spanning ``inner`` positions."""

    sid: int
    start: int
    length: int
    inner: int = 1


@dataclass(frozen=True)
class Chan:
    """The tracked channel dimension ``dim`` of a tensor and its layout."""

    dim: int
    segs: tuple[Seg, ...]


@dataclass(frozen=True)
class Member:
    """One place where a source's channels live: ``role`` of module (or parameter) ``name``."""

    name: str
    role: str
    segs: tuple[Seg, ...]
    dim: int = 0


def total_size(segs: tuple[Seg, ...]) -> int:
    return sum(s.length * s.inner for s in segs)


def slice_segs(segs: tuple[Seg, ...], a: int, b: int) -> tuple[Seg, ...] | None:
    """Positions ``a .. b`` of a layout; ``None`` when the cut falls inside a channel."""
    out: list[Seg] = []
    pos = 0
    for s in segs:
        size = s.length * s.inner
        lo, hi = max(a, pos), min(b, pos + size)
        if lo < hi:
            if (lo - pos) % s.inner or (hi - pos) % s.inner:
                return None
            first = (lo - pos) // s.inner
            out.append(Seg(s.sid, s.start + first, (hi - lo) // s.inner, s.inner))
        pos += size
    return tuple(out)


def seg_positions(
    segs: tuple[Seg, ...], keep: dict[int, list[int]], find: Callable[[int], int]
) -> list[int]:
    """Positions kept along a dimension laid out as ``segs`` given kept channels per group root."""
    out: list[int] = []
    pos = 0
    for s in segs:
        kept = keep.get(find(s.sid))
        if kept is None:
            chans = list(range(s.length))
        else:
            chans = [k - s.start for k in kept if s.start <= k < s.start + s.length]
        for c in chans:
            base = pos + c * s.inner
            out.extend(range(base, base + s.inner))
        pos += s.length * s.inner
    return out


@dataclass
class Sources:
    """Union-find over channel sources with sizes, blocked flags and block constraints."""

    size: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    blocks: dict[int, int] = field(default_factory=dict)
    heads: set[int] = field(default_factory=set)
    # nn.MultiheadAttention on a source: lcm of its heads (pruned equally per head) and of its
    # head sizes (whole-head units when heads themselves are pruned)
    mha_heads: dict[int, int] = field(default_factory=dict)
    mha_units: dict[int, int] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)

    def new(self, size: int, *, blocked: str | None = None) -> int:
        sid = len(self.size)
        self.size.append(size)
        self.parent.append(sid)
        if blocked is not None:
            self.block(sid, blocked)
        return sid

    def find(self, sid: int) -> int:
        while self.parent[sid] != sid:
            self.parent[sid] = self.parent[self.parent[sid]]
            sid = self.parent[sid]
        return sid

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra

    def block(self, sid: int, reason: str) -> None:
        self.blocked.add(sid)
        self.reasons.setdefault(sid, reason)

    def block_segs(self, segs: tuple[Seg, ...], reason: str) -> None:
        for s in segs:
            self.block(s.sid, reason)

    def unite(self, a: tuple[Seg, ...], b: tuple[Seg, ...], reason: str) -> bool:
        """Join two layouts channel by channel; block both when they do not line up."""
        ok = len(a) == len(b) and all(
            x.inner == y.inner
            and x.length == y.length
            and (
                (x.sid == y.sid and x.start == y.start)
                or (
                    x.start == y.start == 0
                    and x.length == self.size[x.sid]
                    and y.length == self.size[y.sid]
                )
            )
            for x, y in zip(a, b, strict=False)
        )
        if not ok:
            self.block_segs(a, reason)
            self.block_segs(b, reason)
            return False
        for x, y in zip(a, b, strict=True):
            self.union(x.sid, y.sid)
        return True
