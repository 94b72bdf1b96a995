"""The dependency graph: walk a traced model and couple the channels that must be pruned together.

Every node's output gets a :class:`Chan` (which dimension holds channels and from which sources)
or ``None``. Producers (Conv, Linear, Embedding, attention heads, parameters) create sources;
consumers and norms record :class:`Member` entries; additions, concatenation, split, flatten and
reshapes move or join layouts. Anything the walk cannot follow blocks the channels it touches, so
they are kept: the result is always a consistent model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from slimtune.compress.prune._graph_ops import WalkerBase, node_shape
from slimtune.compress.prune._segments import Chan, Member, Seg, Sources
from slimtune.compress.prune._trace import is_attention, trace
from slimtune.exceptions import UnsupportedModuleError

__all__ = ["DepGraph", "build_graph"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVT = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_INORM = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


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


class _Walker(WalkerBase):
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
        shape = node_shape(node)
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
        shape_in, shape_out = node_shape(x), node_shape(node)
        has_params = any(True for _ in mod.parameters(recurse=True))
        if self.ignored(name) and has_params:
            self.block((node.args, node.kwargs), f"{name} is ignored")
            return None
        if isinstance(mod, _CONVT):
            if c is not None and (c.dim != 1 or mod.groups != 1):
                self.src.block_segs(c.segs, f"{name}: transposed convolution input kept")
            elif c is not None:
                self.consume(name, "in", c)
            seg = self.produce(name, "out", mod.out_channels)
            if mod.groups != 1:
                self.src.block(seg.sid, f"{name}: grouped transposed convolution")
            return Chan(1, (seg,))
        if isinstance(mod, nn.PReLU):
            if mod.num_parameters == 1:
                return c
            if c is not None and c.dim == 1:
                self.consume(name, "norm", c)
                return c
            self.block(x, f"{name} has one slope per channel of dimension 1")
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
        if isinstance(mod, nn.TransformerEncoderLayer | nn.TransformerEncoder):
            return self.encoder(name, mod, node)
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
        qkv = [a for a in args if isinstance(a, fx.Node) and node_shape(a) is not None][:3]
        chans = [self.chan(a) for a in qkv]
        shapes = [node_shape(a) for a in qkv]
        c = chans[0] if chans else None
        ok = (
            c is not None
            and len(qkv) == 3
            and all(
                s is not None and x is not None and x.dim == len(s) - 1
                for x, s in zip(chans, shapes, strict=True)
            )
            and _mha_fits(mod, c, self.src.size)
        )
        if not ok or c is None:
            self.block((node.args, node.kwargs), f"{name}: nn.MultiheadAttention is kept whole")
            return None
        for other in chans[1:]:
            assert other is not None
            self.src.unite(c.segs, other.segs, f"{name}: query, key and value layouts differ")
        self.couple_mha(name, mod, c)
        return (Chan(c.dim, c.segs), None)

    def couple_mha(self, name: str, mod: nn.MultiheadAttention, c: Chan) -> None:
        sid = c.segs[0].sid
        self.src.mha_heads[sid] = math.lcm(self.src.mha_heads.get(sid, 1), mod.num_heads)
        self.src.mha_units[sid] = math.lcm(self.src.mha_units.get(sid, 1), mod.head_dim)
        self.consume(name, "mha", c)

    def encoder(self, name: str, mod: nn.Module, node: fx.Node) -> Chan | None:
        """``nn.TransformerEncoder(Layer)``: a residual stream of ``d_model`` channels through
        self-attention and norms, and an independent hidden group per feed-forward block."""
        x = node.args[0] if node.args else node.kwargs.get("src")
        c, shape, shape_out = self.chan(x), node_shape(x), node_shape(node)
        assert shape is not None and shape_out is not None
        if isinstance(mod, nn.TransformerEncoderLayer):
            layers = [(name, mod)]
        else:
            layers = [(f"{name}.layers.{i}", m) for i, m in enumerate(mod.layers)]  # type: ignore[arg-type]
        ok = c is not None and c.dim == len(shape) - 1
        ok = ok and all(_mha_fits(m.self_attn, c, self.src.size) for _, m in layers)
        self.block(tuple(node.args[1:]) + tuple(node.kwargs.values()), f"{name}: masks")
        if not ok or c is None:
            if c is not None:
                self.src.block_segs(c.segs, f"{name} keeps its model dimension")
            c = Chan(len(shape) - 1, self.fixed(shape[-1], f"{name} keeps its model dimension"))
        for lname, layer in layers:
            self.couple_mha(f"{lname}.self_attn", layer.self_attn, c)
            for norm in ("norm1", "norm2"):
                if getattr(layer, norm).elementwise_affine:
                    self.consume(f"{lname}.{norm}", "norm", c)
            self.consume(f"{lname}.linear1", "in", c)
            hidden = self.produce(f"{lname}.linear1", "out", layer.linear1.out_features)
            self.consume(f"{lname}.linear2", "in", Chan(c.dim, (hidden,)))
            out = self.produce(f"{lname}.linear2", "out", layer.linear2.out_features)
            self.src.unite(c.segs, (out,), f"{lname}: residual")
        final = getattr(mod, "norm", None)
        if isinstance(final, nn.LayerNorm) and final.elementwise_affine:
            self.consume(f"{name}.norm", "norm", c)
        return Chan(len(shape_out) - 1, c.segs)


def _mha_fits(mod: nn.MultiheadAttention, c: Chan | None, sizes: list[int]) -> bool:
    return (
        c is not None
        and bool(mod._qkv_same_embed_dim)
        and mod.bias_k is None
        and len(c.segs) == 1
        and c.segs[0].inner == 1
        and c.segs[0].length == sizes[c.segs[0].sid]
    )


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
