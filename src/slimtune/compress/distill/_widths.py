"""Width-shrunk students initialised from the teacher: keep the most important channels.

A layer's output width can shrink when torch.fx shows its output flowing, through element-wise
activations, BatchNorm, pooling, dropout and ``flatten`` only, into exactly one ``Linear`` or
``Conv2d`` (groups 1) and nowhere else: the hidden widths of an MLP, the channels of a plain
conv chain (SmallCNN), a transformer block's MLP hidden width (``fc1 -> GELU -> fc2``), the
inner width of a ResNet basic block. Outputs that feed a residual add, a reshape, a LayerNorm or
the model's output keep their width. This is a self-contained slicer for those chains, not a
general dependency graph.
"""

from __future__ import annotations

import copy
import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

__all__ = ["shrink_widths", "shrinkable_layers"]

logger = logging.getLogger(__name__)

_UNARY_MODULES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Hardswish,
    nn.ELU, nn.Dropout, nn.Identity, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
)  # fmt: skip
_UNARY_FUNCTIONS = {
    F.relu, F.relu6, F.gelu, F.silu, F.sigmoid, F.tanh, F.leaky_relu, F.dropout, F.max_pool2d,
    F.avg_pool2d, F.adaptive_avg_pool2d, torch.relu, torch.sigmoid, torch.tanh,
}  # fmt: skip
_UNARY_METHODS = {"relu", "sigmoid", "tanh", "contiguous"}


@dataclass(frozen=True)
class _Link:
    producer: str
    consumer: str
    batchnorms: tuple[str, ...]
    spatial: int  # >1 when a conv map is flattened into a Linear's input


def _is_producer(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)


def _shape(node: fx.Node) -> torch.Size | None:
    meta = node.meta.get("tensor_meta")
    return getattr(meta, "shape", None)


def _follow(gm: fx.GraphModule, node: fx.Node, modules: dict[str, nn.Module]) -> _Link | None:
    producer = modules[str(node.target)]
    conv = isinstance(producer, nn.Conv2d)
    cur, spatial, flattened = node, 1, False
    bns: list[str] = []
    while True:
        users = list(cur.users)
        if len(users) != 1:
            return None
        user = users[0]
        if user.args[:1] != (cur,) or any(isinstance(a, fx.Node) for a in user.args[1:]):
            return None
        if user.op == "call_module":
            mod = modules[str(user.target)]
            if _is_producer(mod):
                if isinstance(mod, nn.Conv2d) and (not conv or flattened):
                    return None
                if isinstance(mod, nn.Linear) and conv and not flattened:
                    return None
                return _Link(str(node.target), str(user.target), tuple(bns), spatial)
            if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d) and not flattened:
                bns.append(str(user.target))
            elif isinstance(mod, nn.Flatten):
                shape = _shape(cur)
                if shape is None or mod.start_dim != 1 or mod.end_dim != -1:
                    return None
                spatial, flattened = int(torch.Size(shape[2:]).numel()), True
            elif not isinstance(mod, _UNARY_MODULES):
                return None
        elif user.op == "call_function" and user.target in _UNARY_FUNCTIONS:
            pass
        elif (user.op == "call_function" and user.target is torch.flatten) or (
            user.op == "call_method" and user.target == "flatten"
        ):
            shape = _shape(cur)
            start = user.args[1] if len(user.args) > 1 else user.kwargs.get("start_dim", 0)
            if shape is None or start != 1 or len(user.args) > 2 or "end_dim" in user.kwargs:
                return None
            spatial, flattened = int(torch.Size(shape[2:]).numel()), True
        elif user.op == "call_method" and user.target in _UNARY_METHODS:
            pass
        elif user.op == "call_function" and user.target is operator.getitem:
            return None
        else:
            return None
        cur = user


def _links(model: nn.Module, example_inputs: torch.Tensor) -> list[_Link]:
    try:
        gm = fx.symbolic_trace(model)
    except Exception as err:
        raise TypeError(
            f"{type(model).__name__} cannot be traced by torch.fx ({err}); width shrinking "
            "needs a traceable model."
        ) from err
    was_training = model.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(example_inputs)
    model.train(was_training)
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    links = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or not _is_producer(modules[str(node.target)]):
            continue
        link = _follow(gm, node, modules)
        if link is None:
            continue
        if any(calls[name] != 1 for name in (link.producer, link.consumer, *link.batchnorms)):
            continue
        links.append(link)
    return links


def shrinkable_layers(model: nn.Module, example_inputs: torch.Tensor) -> list[str]:
    """Names of the layers whose output width :func:`shrink_widths` can reduce."""
    return [link.producer for link in _links(model, example_inputs)]


def _importance(model: nn.Module, link: _Link) -> torch.Tensor:
    prod: Any = model.get_submodule(link.producer)
    cons: Any = model.get_submodule(link.consumer)
    w_out = prod.weight.detach().flatten(1).norm(dim=1)
    w_in = cons.weight.detach().transpose(0, 1)  # (in, out, ...)
    w_in = w_in.reshape(w_out.numel(), link.spatial, -1).flatten(1).norm(dim=1)
    score = w_out * w_in
    for name in link.batchnorms:
        bn: Any = model.get_submodule(name)
        if bn.weight is not None and bn.running_var is not None:
            score = score * (bn.weight.detach().abs() / (bn.running_var + bn.eps).sqrt())
    return score


def _slice_linear(layer: Any, out_idx: torch.Tensor, in_idx: torch.Tensor) -> nn.Linear:
    new: Any = nn.Linear(len(in_idx), len(out_idx), bias=layer.bias is not None)
    with torch.no_grad():
        new.weight.copy_(layer.weight[out_idx][:, in_idx])
        if layer.bias is not None:
            new.bias.copy_(layer.bias[out_idx])
    return new.to(layer.weight.device, layer.weight.dtype)


def _slice_conv(layer: Any, out_idx: torch.Tensor, in_idx: torch.Tensor) -> nn.Conv2d:
    new: Any = nn.Conv2d(
        len(in_idx), len(out_idx), layer.kernel_size, stride=layer.stride,
        padding=layer.padding, dilation=layer.dilation,
        bias=layer.bias is not None, padding_mode=layer.padding_mode,
    )  # fmt: skip
    with torch.no_grad():
        new.weight.copy_(layer.weight[out_idx][:, in_idx])
        if layer.bias is not None:
            new.bias.copy_(layer.bias[out_idx])
    return new.to(layer.weight.device, layer.weight.dtype)


def _slice_bn(bn: Any, idx: torch.Tensor) -> nn.Module:
    new: Any = copy.deepcopy(bn)
    new.num_features = len(idx)
    for name in ("weight", "bias"):
        p = getattr(bn, name)
        if p is not None:
            setattr(new, name, nn.Parameter(p.detach()[idx].clone()))
    for name in ("running_mean", "running_var"):
        b = getattr(bn, name)
        if b is not None:
            setattr(new, name, b[idx].clone())
    return new


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, module)


def shrink_widths(
    model: nn.Module,
    *,
    keep_ratio: float,
    example_inputs: torch.Tensor,
    include: Sequence[str] | None = None,
) -> nn.Module:
    """A copy of ``model`` whose shrinkable widths keep ``max(1, round(keep_ratio * width))``
    channels, the teacher's most important ones (weight-norm product of the producing row and
    the consuming columns, scaled by BatchNorm's ``|gamma| / sqrt(var + eps)``), with the
    teacher's weights sliced into the student. ``include`` limits it to those producer names
    (see :func:`shrinkable_layers`). Parameters roughly scale like ``keep_ratio ** 2``.
    """
    if (
        isinstance(keep_ratio, bool)
        or not isinstance(keep_ratio, int | float)
        or not 0.0 < keep_ratio <= 1.0
    ):
        raise ValueError(f"`keep_ratio` must be a float in (0, 1], got {keep_ratio!r}.")
    links = _links(model, example_inputs)
    if include is not None:
        known = {link.producer for link in links}
        unknown = sorted(set(include) - known)
        if unknown:
            raise ValueError(
                f"`include` names {unknown}, which are not shrinkable layers; shrinkable: "
                f"{sorted(known)}."
            )
        links = [link for link in links if link.producer in set(include)]
    if not links:
        raise ValueError(
            f"{type(model).__name__} has no shrinkable width (see shrinkable_layers); use "
            "keep_every_kth_layer or low_rank instead."
        )
    was_training = model.training
    model.eval()
    with torch.no_grad():
        expected = model(example_inputs).shape
    model.train(was_training)
    student = copy.deepcopy(model)
    out_sel: dict[str, torch.Tensor] = {}
    in_sel: dict[str, torch.Tensor] = {}
    for link in links:
        score = _importance(student, link)
        keep = max(1, round(keep_ratio * score.numel()))
        idx = score.topk(keep).indices.sort().values
        out_sel[link.producer] = idx
        cols = (idx[:, None] * link.spatial + torch.arange(link.spatial)[None, :]).flatten()
        in_sel[link.consumer] = cols
        for name in link.batchnorms:
            _set(student, name, _slice_bn(student.get_submodule(name), idx))
    for name in sorted(set(out_sel) | set(in_sel)):
        layer: Any = student.get_submodule(name)
        n_out = layer.weight.shape[0]
        n_in = layer.weight.shape[1]
        out_idx = out_sel.get(name, torch.arange(n_out))
        in_idx = in_sel.get(name, torch.arange(n_in))
        if isinstance(layer, nn.Linear):
            _set(student, name, _slice_linear(layer, out_idx, in_idx))
        else:
            _set(student, name, _slice_conv(layer, out_idx, in_idx))
    student.eval()
    with torch.no_grad():
        got = student(example_inputs).shape
    student.train(was_training)
    if got != expected:  # pragma: no cover - the link rules keep shapes consistent
        raise RuntimeError(f"shrunk model output {tuple(got)} != original {tuple(expected)}.")
    logger.debug("shrink_widths: shrank %d layers of %s", len(links), type(model).__name__)
    return student
