"""Capture intermediate features and attention maps with temporary forward hooks.

Hooks are registered for one ``with`` block and removed on exit, so the models are left exactly
as they were (no lasting hooks, no changed outputs).

Attention maps: modules such as :class:`slimtune.testing.SelfAttention` compute their attention
scores internally and return only the attended values. For such a module the maps are
*recomputed* from its input with its own projections: ``softmax(q(x) k(x)^T / sqrt(head_dim))``
per head. A module qualifies when it has ``q`` and ``k`` callables and integer ``num_heads`` and
``head_dim`` attributes, and takes ``(N, T, D)`` input. Gradients flow through the recomputation
into the module's ``q`` and ``k`` weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["attention_maps", "capture_attention", "capture_outputs", "check_attention_module"]


def _module(model: nn.Module, name: str, *, param: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        raise ValueError(
            f"`{param}` names a module {name!r} that {type(model).__name__} does not have; "
            "use a name from model.named_modules()."
        ) from err


def check_attention_module(module: nn.Module, name: str) -> None:
    """Raise a clear error unless ``module`` follows the attention protocol described above."""
    ok = (
        callable(getattr(module, "q", None))
        and callable(getattr(module, "k", None))
        and isinstance(getattr(module, "num_heads", None), int)
        and isinstance(getattr(module, "head_dim", None), int)
    )
    if not ok:
        raise TypeError(
            f"module {name!r} ({type(module).__name__}) is not an attention module slimtune can "
            "read: it needs `q` and `k` projections and int `num_heads` and `head_dim` "
            "(as slimtune.testing.SelfAttention)."
        )


def attention_maps(module: Any, x: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T / sqrt(head_dim))`` of an attention module for input ``(N, T, D)``:
    a tensor ``(N, num_heads, T, T)`` whose rows sum to 1."""
    b, t, _ = x.shape
    h, d = int(module.num_heads), int(module.head_dim)
    q = module.q(x).reshape(b, t, h, d).transpose(1, 2)
    k = module.k(x).reshape(b, t, h, d).transpose(1, 2)
    return ((q @ k.transpose(-2, -1)) / math.sqrt(d)).softmax(dim=-1)


@contextmanager
def capture_outputs(
    model: nn.Module, names: Sequence[str], *, param: str = "names"
) -> Iterator[dict[str, torch.Tensor]]:
    """Inside the block, each forward of ``model`` stores the output of every named submodule
    in the yielded dict (the last call wins when a module runs twice)."""
    store: dict[str, torch.Tensor] = {}
    modules = {name: _module(model, name, param=param) for name in names}
    handles = []

    def make_hook(name: str) -> Any:
        def hook(_mod: nn.Module, _inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f"module {name!r} returned {type(output).__name__}, not a tensor; pick a "
                    "module whose output is one tensor."
                )
            store[name] = output

        return hook

    try:
        for name, mod in modules.items():
            handles.append(mod.register_forward_hook(make_hook(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def capture_attention(
    model: nn.Module, names: Sequence[str], *, param: str = "names"
) -> Iterator[dict[str, torch.Tensor]]:
    """Inside the block, each forward of ``model`` stores the attention maps
    ``(N, heads, T, T)`` of every named attention module in the yielded dict."""
    store: dict[str, torch.Tensor] = {}
    modules = {name: _module(model, name, param=param) for name in names}
    for name, mod in modules.items():
        check_attention_module(mod, name)
    handles = []

    def make_hook(name: str) -> Any:
        def hook(mod: nn.Module, inputs: Any, _output: Any) -> None:
            store[name] = attention_maps(mod, inputs[0])

        return hook

    try:
        for name, mod in modules.items():
            handles.append(mod.register_forward_hook(make_hook(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()
