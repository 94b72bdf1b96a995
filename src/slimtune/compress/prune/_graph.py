"""The dependency graph: walk a traced model and couple the channels that must be pruned together.

Every node's output gets a :class:`Chan` (which dimension holds channels and from which sources)
or ``None``. Producers (Conv, Linear, Embedding, attention heads, parameters) create sources;
consumers and norms record :class:`Member` entries; additions, concatenation, split, flatten and
reshapes move or join layouts. Anything the walk cannot follow blocks the channels it touches, so
they are kept: the result is always a consistent model.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from slimtune.compress.prune._segments import Chan, Member, Seg, Sources, slice_segs
from slimtune.compress.prune._trace import is_attention, trace
from slimtune.exceptions import UnsupportedModuleError

__all__ = ["DepGraph", "build_graph"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_INORM = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
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


@dataclass
class DepGraph:
    """Sources, members and the traced module: everything pruning needs."""

    sources: Sources
    members: list[Member]
    gm: fx.GraphModule

    def groups(self) -> dict[int, list[Member]]:
        """Members by group root, for every group that is not blocked."""
        blocked = {self.sources.find(s) for s in self.sources.blocked}
        out: dict[int, list[Member]] = {}
        for m in self.members:
            for s in m.segs:
                root = self.sources.find(s.sid)
                if root not in blocked:
                    out.setdefault(root, [])
                    if m not in out[root]:
                        out[root].append(m)
        return out


def _shape(node: Any) -> tuple[int, ...] | None:
    if not isinstance(node, fx.Node):
        return None
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def _norm_dim(d: Any, ndim: int) -> int | None:
    if not isinstance(d, int) or ndim == 0:
        return None
    return d % ndim


class _Walker:
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

    # -- the walk --------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.val[node] = None
            elif node.op == "get_attr":
                self.val[node] = self.get_attr(node)
            elif node.op == "call_module":
                self.val[node] = self.call_module(node)
            elif node.op in ("call_function", "call_method"):
                self.val[node] = self.call_op(node)
            elif node.op == "output":
                self.block(node.args, "model output")

    def get_attr(self, node: fx.Node) -> Chan | None:
        shape = _shape(node)
        if not shape or shape[-1] <= 1:
            return None
        sid = self.src.new(shape[-1])
        seg = (Seg(sid, 0, shape[-1]),)
        if self.ignored(str(node.target)):
            self.src.block(sid, f"{node.target} is ignored")
        self.members.append(Member(str(node.target), "param", seg, len(shape) - 1))
        return Chan(len(shape) - 1, seg)

    def call_module(self, node: fx.Node) -> Any:
        name = str(node.target)
        mod = self.model.get_submodule(name)
        x = node.args[0] if node.args else None
        c = self.chan(x)
        shape_in, shape_out = _shape(x), _shape(node)
        has_params = any(True for _ in mod.parameters(recurse=True))
        if self.ignored(name) and has_params:
            self.block((node.args, node.kwargs), f"{name} is ignored")
            return None
        if isinstance(mod, _CONV):
            return self.conv(name, mod, c, shape_out)
        if isinstance(mod, nn.Linear):
            if c is not None and shape_in is not None and c.dim == len(shape_in) - 1:
                self.consume(name, "in", c)
            else:
                self.block(x, f"{name} reads channels off its last dimension")
            assert shape_out is not None
            return Chan(len(shape_out) - 1, (self.produce(name, "out", mod.out_features),))
        if isinstance(mod, _BN) or (isinstance(mod, _INORM) and mod.affine):
            if c is not None and c.dim == 1:
                self.consume(name, "norm", c)
                return c
            self.block(x, f"{name} normalises dimension 1")
            return None
        if isinstance(mod, nn.LayerNorm):
            if c is None or shape_in is None:
                return None
            nd = len(mod.normalized_shape)
            if c.dim < len(shape_in) - nd:
                return c
            if nd == 1 and c.dim == len(shape_in) - 1:
                if mod.elementwise_affine:
                    self.consume(name, "norm", c)
                return c
            self.block(x, f"{name} normalises over several dimensions")
            return None
        if isinstance(mod, nn.GroupNorm):
            if c is not None and c.dim == 1 and len(c.segs) == 1:
                self.src.blocks[c.segs[0].sid] = mod.num_groups
                if mod.affine:
                    self.consume(name, "norm", c)
                return c
            self.block(x, f"{name} needs one channel layout on dimension 1")
            return None
        if isinstance(mod, nn.Embedding):
            assert shape_out is not None
            return Chan(len(shape_out) - 1, (self.produce(name, "emb", mod.embedding_dim),))
        if is_attention(mod):
            return self.attention(name, mod, c, shape_in, shape_out)
        if isinstance(mod, nn.MultiheadAttention):
            return self.mha(name, mod, node)
        if has_params:
            raise UnsupportedModuleError(
                f"Module {name!r} ({type(mod).__name__}) has parameters but no pruning handler. "
                f"Add it to the ignore list (ignore=[{name!r}]) to keep its channels, or declare "
                "its channel groups by hand."
            )
        if isinstance(mod, nn.Flatten):
            return self.reshape(c, shape_in, shape_out, x)
        if isinstance(mod, nn.Softmax | nn.LogSoftmax):
            return self.dim_op(c, x, mod.dim, shape_in, shape_out)
        return self.generic(node)

    def conv(self, name: str, mod: Any, c: Chan | None, shape_out: Any) -> Chan | None:
        g, cin, cout = mod.groups, mod.in_channels, mod.out_channels
        if c is not None and c.dim != 1:
            self.src.block_segs(c.segs, f"{name} reads channels off dimension 1")
            c = None
        if g == 1:
            if c is not None:
                self.consume(name, "in", c)
            return Chan(1, (self.produce(name, "out", cout),))
        if g == cin == cout:
            if c is None:
                return Chan(1, self.fixed(cout, f"{name}: depthwise on untracked input"))
            self.consume(name, "dw", c)
            return c
        if c is not None:
            self.src.block_segs(c.segs, f"{name}: grouped convolution keeps its input channels")
        seg = self.produce(name, "out", cout)
        self.src.blocks[seg.sid] = g
        return Chan(1, (seg,))

    def attention(
        self, name: str, mod: Any, c: Chan | None, shape_in: Any, shape_out: Any
    ) -> Chan | None:
        if c is not None and shape_in is not None and c.dim == len(shape_in) - 1:
            for p in ("q", "k", "v"):
                self.consume(f"{name}.{p}", "in", c)
        elif c is not None:
            self.src.block_segs(c.segs, f"{name} reads features off its last dimension")
        self.produce(name, "heads", mod.num_heads, heads=True)
        assert shape_out is not None
        return Chan(len(shape_out) - 1, (self.produce(f"{name}.out", "out", mod.out.out_features),))

    def mha(self, name: str, mod: nn.MultiheadAttention, node: fx.Node) -> Any:
        """Embedding channels pruned with the same indices outside and inside, equal per head."""
        args = list(node.args) + [node.kwargs.get(k) for k in ("query", "key", "value")]
        qkv = [a for a in args if isinstance(a, fx.Node) and _shape(a) is not None][:3]
        chans = [self.chan(a) for a in qkv]
        shapes = [_shape(a) for a in qkv]
        c = chans[0] if chans else None
        ok = (
            c is not None
            and mod._qkv_same_embed_dim
            and mod.bias_k is None
            and len(qkv) == 3
            and all(
                s is not None and x is not None and x.dim == len(s) - 1
                for x, s in zip(chans, shapes, strict=True)
            )
            and len(c.segs) == 1
            and c.segs[0].inner == 1
            and c.segs[0].length == self.src.size[c.segs[0].sid]
        )
        if not ok or c is None:
            self.block((node.args, node.kwargs), f"{name}: nn.MultiheadAttention is kept whole")
            return None
        for other in chans[1:]:
            assert other is not None
            self.src.unite(c.segs, other.segs, f"{name}: query, key and value layouts differ")
        sid = c.segs[0].sid
        self.src.blocks[sid] = math.lcm(self.src.blocks.get(sid, 1), mod.num_heads)
        self.consume(name, "mha", c)
        return (Chan(c.dim, c.segs), None)

    # -- functions and methods -------------------------------------------------------------
    def call_op(self, node: fx.Node) -> Any:
        t = node.target
        name = t if isinstance(t, str) else getattr(t, "__name__", str(t))
        tensors = [a for a in _nodes((node.args, node.kwargs)) if _shape(a) is not None]
        tracked = [a for a in tensors if self.chan(a) is not None]
        if t is operator.getitem:
            return self.getitem(node)
        if _shape(node) is None and not _is_tuple(node):
            if name not in ("getattr", "size", "dim", "numel") and tracked:
                self.block(tracked, f"{name} output is not a tensor")
            return None
        if not tracked:
            return None
        x = node.args[0] if node.args else None
        c, shape_in, shape_out = self.chan(x), _shape(x), _shape(node)
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
        tensors = [a for a in _nodes((node.args, node.kwargs)) if _shape(a) is not None]
        shape_out = _shape(node)
        if shape_out is None:
            self.block(tensors, f"{node.name} has no tensor output")
            return None
        tracked = [a for a in tensors if self.chan(a) is not None]
        if not tracked:
            return None
        if len(tensors) == 1:
            c, shape_in = self.chan(tensors[0]), _shape(tensors[0])
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
            c, s = self.chan(a), _shape(a)
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
            s = _shape(a)
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
            a, b = (_norm_dim(v, nd) for v in args[:2])
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
        dd = _norm_dim(d, len(shape_in))
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
        dd = _norm_dim(d, len(shape))
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
        shape_out = _shape(node)
        items = list(seq) if isinstance(seq, list | tuple) else []
        d = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if shape_out is None or not items:
            self.block(items, "cat with unknown shapes")
            return None
        dd = _norm_dim(d, len(shape_out))
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
                s = _shape(a)
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
        shape_in = _shape(base)
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


def build_graph(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    *,
    ignore: Sequence[str] = (),
    leaf: Callable[[nn.Module], bool] | None = None,
) -> DepGraph:
    """Trace ``model`` on ``example_inputs`` and couple its channels into groups."""
    gm = trace(model, example_inputs, leaf=leaf)
    walker = _Walker(model, gm, ignore)
    walker.run()
    for m in walker.members:
        if walker.ignored(m.name):
            walker.src.block_segs(m.segs, f"{m.name} is ignored")
    return DepGraph(walker.src, walker.members, gm)
