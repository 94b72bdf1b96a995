"""Rules of the dependency-graph walk for functions and methods: element-wise ops, cat, split /
chunk, reshapes, transposes, reductions, indexing. The module handlers live in ``_graph``."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import fx, nn

from slimtune.compress.prune._segments import Chan, Member, Seg, Sources, slice_segs

__all__ = ["WalkerBase", "node_shape", "norm_dim"]

_MIX_FUNCS = {
    torch.matmul,
    torch.mm,
    torch.bmm,
    torch.einsum,
    operator.matmul,
    nn.functional.linear,
    nn.functional.conv1d,
    nn.functional.conv2d,
    nn.functional.conv3d,
}
_MIX_METHODS = {"matmul", "mm", "bmm", "__matmul__"}
_DIM_OPS = {"softmax", "log_softmax", "cumsum", "cumprod", "flip", "roll", "normalize", "sort"}
_REDUCE = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "prod", "logsumexp", "norm"}
_RESHAPE = {"view", "reshape", "unsqueeze", "squeeze", "flatten", "unflatten", "view_as"}


def node_shape(node: Any) -> tuple[int, ...] | None:
    if not isinstance(node, fx.Node):
        return None
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def norm_dim(d: Any, ndim: int) -> int | None:
    if not isinstance(d, int) or ndim == 0:
        return None
    return d % ndim


def _op_name(node: fx.Node) -> str:
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _is_tuple(node: fx.Node) -> bool:
    meta = node.meta.get("tensor_meta")  # TensorMetadata is itself a NamedTuple
    return isinstance(meta, list | tuple) and not hasattr(meta, "shape")


def _nodes(arg: Any) -> list[fx.Node]:
    out: list[fx.Node] = []
    fx.node.map_arg(arg, out.append)
    return out


class WalkerBase:
    """State and helpers of the walk, and the rules for functions and methods."""

    def __init__(self, model: nn.Module, gm: fx.GraphModule, ignore: Sequence[str]) -> None:
        self.model = model
        self.gm = gm
        self.ignore = tuple(ignore)
        self.src = Sources()
        self.members: list[Member] = []
        self.val: dict[fx.Node, Any] = {}
        self.out_sid: dict[str, int] = {}

    # -- helpers ---------------------------------------------------------------------------
    def ignored(self, name: str) -> bool:
        return any(name == i or name.startswith(i + ".") for i in self.ignore)

    def chan(self, arg: Any) -> Chan | None:
        v = self.val.get(arg) if isinstance(arg, fx.Node) else None
        return v if isinstance(v, Chan) else None

    def block(self, arg: Any, reason: str) -> None:
        for n in _nodes(arg):
            c = self.chan(n)
            if c is not None:
                self.src.block_segs(c.segs, reason)

    def fixed(self, size: int, reason: str) -> tuple[Seg, ...]:
        return (Seg(self.src.new(size, blocked=reason), 0, size),)

    def produce(self, name: str, role: str, size: int, *, heads: bool = False) -> Seg:
        if name not in self.out_sid:
            sid = self.src.new(size)
            self.out_sid[name] = sid
            if heads:
                self.src.heads.add(sid)
            self.members.append(Member(name, role, (Seg(sid, 0, size),)))
        return Seg(self.out_sid[name], 0, size)

    def consume(self, name: str, role: str, c: Chan, dim: int = 0) -> None:
        for m in self.members:
            if m.name == name and m.role == role:
                self.src.unite(m.segs, c.segs, f"{name} is called on different layouts")
                return
        self.members.append(Member(name, role, c.segs, dim))

    # -- functions and methods -------------------------------------------------------------
    def call_op(self, node: fx.Node) -> Any:
        t = node.target
        name = t if isinstance(t, str) else getattr(t, "__name__", str(t))
        tensors = [a for a in _nodes((node.args, node.kwargs)) if node_shape(a) is not None]
        tracked = [a for a in tensors if self.chan(a) is not None]
        if t is operator.getitem:
            return self.getitem(node)
        if node_shape(node) is None and not _is_tuple(node):
            if name not in ("getattr", "size", "dim", "numel") and tracked:
                self.block(tracked, f"{name} output is not a tensor")
            return None
        if not tracked:
            return None
        x = node.args[0] if node.args else None
        c, shape_in, shape_out = self.chan(x), node_shape(x), node_shape(node)
        if t in _MIX_FUNCS or name in _MIX_METHODS:
            self.block(tracked, f"{name} mixes channels")
            return None
        if name in ("split", "chunk", "tensor_split"):
            return self.split(node, c, shape_in)
        if _is_tuple(node):  # (values, indices) of max / min / sort / topk ...
            metas = node.meta["tensor_meta"]
            first = getattr(metas[0], "shape", None)
            if name in _REDUCE and c is not None and shape_in is not None and first is not None:
                return (self.reduce(node, c, shape_in, tuple(first)), None)
            self.block(tracked, f"{name} is not followed")
            return None
        if name == "cat" or t is torch.cat:
            return self.cat(node)
        if name in ("transpose", "swapaxes", "permute", "movedim"):
            return self.permute(node, c, shape_in)
        if name in _RESHAPE:
            if c is None:
                return self.generic(node)
            return self.reshape(c, shape_in, shape_out, x)
        if name in _DIM_OPS:
            d = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
            return self.dim_op(c, x, d, shape_in, shape_out)
        if name in _REDUCE and c is not None and shape_in is not None:
            return self.reduce(node, c, shape_in, shape_out)
        return self.generic(node)

    def generic(self, node: fx.Node) -> Chan | None:
        tensors = [a for a in _nodes((node.args, node.kwargs)) if node_shape(a) is not None]
        shape_out = node_shape(node)
        if shape_out is None:
            self.block(tensors, f"{node.name} has no tensor output")
            return None
        tracked = [a for a in tensors if self.chan(a) is not None]
        if not tracked:
            return None
        if len(tensors) == 1:
            c, shape_in = self.chan(tensors[0]), node_shape(tensors[0])
            assert c is not None and shape_in is not None
            if len(shape_in) == len(shape_out) and shape_in[c.dim] == shape_out[c.dim]:
                return c
            if math.prod(shape_in) == math.prod(shape_out):
                return self.reshape(c, shape_in, shape_out, tensors[0])
            self.block(tracked, f"{node.name} changes the channel dimension")
            return None
        return self.elementwise(tensors, shape_out, node.name)

    def elementwise(self, tensors: list[Any], shape_out: tuple[int, ...], what: str) -> Chan | None:
        nd = len(shape_out)
        dims: list[tuple[Any, int | None]] = []
        for a in tensors:
            c, s = self.chan(a), node_shape(a)
            assert s is not None
            dims.append((a, None if c is None else c.dim + nd - len(s)))
        known = [(a, d) for a, d in dims if d is not None]
        if not known:
            return None
        ref_node, ref = next(((a, d) for a, d in known if a.op != "get_attr"), known[0])
        ref_chan = self.chan(ref_node)
        assert ref_chan is not None
        reason = f"{what} combines channels with a fixed-size tensor"
        for a, d in dims:
            s = node_shape(a)
            assert s is not None
            c = self.chan(a)
            if c is not None and d == ref:
                self.src.unite(ref_chan.segs, c.segs, f"{what} joins different layouts")
                continue
            if c is not None:  # channels on another dimension: neither side can change
                self.src.block_segs(c.segs, reason)
                self.src.block_segs(ref_chan.segs, reason)
            local = ref - (nd - len(s))
            if local >= 0 and s[local] > 1:
                self.src.unite(ref_chan.segs, self.fixed(s[local], reason), reason)
        return Chan(ref, ref_chan.segs)

    def reshape(self, c: Chan | None, shape_in: Any, shape_out: Any, x: Any) -> Chan | None:
        if c is None or shape_in is None or shape_out is None:
            return None
        before = math.prod(shape_in[: c.dim])
        size = shape_in[c.dim]
        for j in range(len(shape_out)):
            if math.prod(shape_out[:j]) != before:
                continue
            if shape_out[j] == size:
                return Chan(j, c.segs)
            if shape_out[j] % size == 0:
                k = shape_out[j] // size
                after = 1
                for extra in shape_in[c.dim + 1 :]:
                    after *= extra
                    if after == k:
                        segs = tuple(Seg(s.sid, s.start, s.length, s.inner * k) for s in c.segs)
                        return Chan(j, segs)
        self.src.block_segs(c.segs, "a reshape splits or merges channels with other dimensions")
        return None

    def permute(self, node: fx.Node, c: Chan | None, shape_in: Any) -> Chan | None:
        if c is None or shape_in is None:
            return None
        nd = len(shape_in)
        name = _op_name(node)
        args: list[Any] = list(node.args[1:])
        if name in ("transpose", "swapaxes"):
            a, b = (norm_dim(v, nd) for v in args[:2])
            order = list(range(nd))
            if a is None or b is None:
                self.block(node.args[0], "transpose with unknown dimensions")
                return None
            order[a], order[b] = order[b], order[a]
        elif name == "permute":
            dims = args[0] if len(args) == 1 and isinstance(args[0], list | tuple) else args
            order = [d % nd for d in dims]
        else:
            self.block(node.args[0], f"{name} is not followed")
            return None
        return Chan(order.index(c.dim), c.segs)

    def dim_op(self, c: Chan | None, x: Any, d: Any, shape_in: Any, shape_out: Any) -> Chan | None:
        if c is None or shape_in is None:
            return None
        dd = norm_dim(d, len(shape_in))
        if dd is None or dd == c.dim or shape_out != shape_in:
            self.src.block_segs(c.segs, "an operation runs along the channel dimension")
            return None
        return c

    def reduce(self, node: fx.Node, c: Chan, shape_in: Any, shape_out: Any) -> Chan | None:
        d: Any = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        keep = bool(node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False))
        if d is None:
            return None
        dims = {x % len(shape_in) for x in (d if isinstance(d, list | tuple) else [d])}
        if c.dim in dims:
            return None
        if keep:
            return c
        return Chan(c.dim - sum(1 for x in dims if x < c.dim), c.segs)

    def split(self, node: fx.Node, c: Chan | None, shape_in: Any) -> Any:
        shape = shape_in
        name = _op_name(node)
        metas = node.meta.get("tensor_meta")
        if c is None or shape is None or not isinstance(metas, list | tuple):
            return None
        d = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
        dd = norm_dim(d, len(shape))
        sizes = [tuple(m.shape)[dd] if dd is not None else 0 for m in metas]
        if dd != c.dim:
            return tuple(c for _ in sizes)
        equal = len(set(sizes)) == 1 and isinstance(
            node.args[1] if len(node.args) > 1 else None, int
        )
        whole = len(c.segs) == 1 and c.segs[0].length == self.src.size[c.segs[0].sid]
        if name not in ("chunk", "tensor_split") or not equal or not whole:
            self.src.block_segs(c.segs, f"{name} with fixed sizes along the channels")
            return None
        sid = c.segs[0].sid
        self.src.blocks[sid] = math.lcm(self.src.blocks.get(sid, 1), len(sizes))
        out: list[Chan | None] = []
        pos = 0
        for n in sizes:
            segs = slice_segs(c.segs, pos, pos + n)
            if segs is None:
                self.src.block_segs(c.segs, "split inside a channel")
                return None
            out.append(Chan(c.dim, segs))
            pos += n
        return tuple(out)

    def cat(self, node: fx.Node) -> Chan | None:
        seq = node.args[0] if node.args else node.kwargs.get("tensors")
        shape_out = node_shape(node)
        items = list(seq) if isinstance(seq, list | tuple) else []
        d = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if shape_out is None or not items:
            self.block(items, "cat with unknown shapes")
            return None
        dd = norm_dim(d, len(shape_out))
        chans = [self.chan(a) for a in items]
        dims = {c.dim for c in chans if c is not None}
        if len(dims) > 1:
            self.block(items, "cat of tensors with channels on different dimensions")
            return None
        cd = dims.pop()
        if cd != dd:
            return self.elementwise(items, shape_out, node.name)
        segs: list[Seg] = []
        for a, c in zip(items, chans, strict=True):
            if c is not None:
                segs.extend(c.segs)
            else:
                s = node_shape(a)
                assert s is not None
                segs.extend(self.fixed(s[cd], "cat with an untracked tensor"))
        return Chan(cd, tuple(segs))

    def getitem(self, node: fx.Node) -> Any:
        base, idx = node.args[0], node.args[1]
        v = self.val.get(base) if isinstance(base, fx.Node) else None
        if isinstance(v, tuple):
            return v[idx] if isinstance(idx, int) and -len(v) <= idx < len(v) else None
        if not isinstance(v, Chan):
            return None
        shape_in = node_shape(base)
        assert shape_in is not None
        items = idx if isinstance(idx, tuple) else (idx,)
        if any(i is Ellipsis or i is None or not isinstance(i, int | slice) for i in items):
            self.src.block_segs(v.segs, "indexing is not followed")
            return None
        out_dim = 0
        for k, i in enumerate(items):
            if k == v.dim:
                if i == slice(None):
                    return Chan(out_dim, v.segs)
                self.src.block_segs(v.segs, "indexing into the channel dimension")
                return None
            if isinstance(i, slice):
                out_dim += 1
        return Chan(out_dim + v.dim - len(items), v.segs)
