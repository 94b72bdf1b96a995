"""Tracing with torch.fx: attention blocks kept whole; a failure names the module that caused it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from slimtune.exceptions import PruneTraceError

__all__ = ["is_attention", "trace"]


def is_attention(module: nn.Module) -> bool:
    """A self-attention block with separate ``q``/``k``/``v``/``out`` Linears and whole heads."""
    return (
        all(isinstance(getattr(module, n, None), nn.Linear) for n in ("q", "k", "v", "out"))
        and isinstance(getattr(module, "num_heads", None), int)
        and isinstance(getattr(module, "head_dim", None), int)
    )


class _Tracer(fx.Tracer):
    def __init__(self, leaf: Callable[[nn.Module], bool] | None) -> None:
        super().__init__()
        self._leaf = leaf
        self.stack: list[str] = []

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(
            m, nn.MultiheadAttention | nn.TransformerEncoderLayer | nn.TransformerEncoder
        ) or is_attention(m):
            return True
        if self._leaf is not None and self._leaf(m):
            return True
        if any(True for _ in m.children()):  # torch.nn containers (TransformerEncoder, ...)
            return False
        return super().is_leaf_module(m, module_qualified_name)

    def call_module(
        self,
        m: nn.Module,
        forward: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        name = self.path_of_module(m)
        self.stack.append(name)
        out = super().call_module(m, forward, args, kwargs)
        self.stack.pop()
        return out


def trace(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    *,
    leaf: Callable[[nn.Module], bool] | None = None,
) -> fx.GraphModule:
    """Trace ``model`` and record every node's output shape by running ``example_inputs``."""
    tracer = _Tracer(leaf)
    try:
        graph = tracer.trace(model)
    except Exception as err:
        where = tracer.stack[-1] if tracer.stack else ""
        kind = type(model.get_submodule(where)).__name__ if where else type(model).__name__
        label = f"module {where!r} ({kind})" if where else f"the model's own forward ({kind})"
        raise PruneTraceError(
            f"torch.fx could not trace {label}: {type(err).__name__}: {err}. Declare the "
            "channel groups by hand with `groups=[ChannelGroup(...)]`, or make that module "
            "traceable (no data-dependent control flow)."
        ) from err
    gm = fx.GraphModule(model, graph)
    was_training = model.training
    gm.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*example_inputs)
    except Exception as err:
        raise PruneTraceError(
            f"Running the traced model on `example_inputs` failed: {type(err).__name__}: {err}. "
            "Pass inputs the model accepts, e.g. example_inputs=torch.randn(1, 3, 32, 32)."
        ) from err
    finally:
        model.train(was_training)
    return gm
