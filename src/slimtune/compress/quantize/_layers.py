"""``QuantizedLayer``: a Linear or Conv layer whose weight and input pass through quantisers."""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from slimtune.compress.quantize._config import LayerConfig
from slimtune.compress.quantize._fakequant import (
    BinaryActivation,
    BinaryWeight,
    FakeQuantize,
    TernaryWeight,
)
from slimtune.compress.quantize._pq import PQWeight

__all__ = ["SUPPORTED_LAYERS", "QuantizedLayer"]

SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Embedding,
)


class QuantizedLayer(nn.Module):
    """Wraps ``layer`` (kept, with its float parameters, as ``self.layer``).

    ``forward(x) = layer_op(input_quant(x), weight_quant(layer.weight), layer.bias)``. During
    QAT the optimiser keeps training the float weight; the quantised one is what the forward
    sees.
    """

    layer: nn.Module
    weight_quant: nn.Module
    input_quant: nn.Module

    def __init__(self, layer: nn.Module, config: LayerConfig) -> None:
        super().__init__()
        self._cache: tuple[Any, torch.Tensor] | None = None
        if not isinstance(layer, SUPPORTED_LAYERS):
            raise TypeError(f"cannot quantise a {type(layer).__name__}")
        self.layer = layer
        self.config = config
        w = self.float_weight
        if config.method == "uniform":
            fq = FakeQuantize(config.weight, per_call=True)
            self.weight_quant = fq
        elif config.method == "binary":
            self.weight_quant = BinaryWeight()
        elif config.method == "ternary":
            self.weight_quant = TernaryWeight(config.ternary_threshold)
        elif config.method == "pq":
            self.weight_quant = PQWeight(w, config.pq)
        else:
            self.weight_quant = nn.Identity()
        if isinstance(layer, nn.Embedding):  # inputs are indices: weights only
            self.input_quant = nn.Identity()
        elif config.binary_activations:
            self.input_quant = BinaryActivation()
        elif config.activation is not None:
            self.input_quant = FakeQuantize(config.activation)
        else:
            self.input_quant = nn.Identity()

    @property
    def float_weight(self) -> torch.Tensor:
        """The wrapped layer's float weight (the parameter QAT trains)."""
        return cast(torch.Tensor, self.layer.weight)

    @property
    def bias(self) -> torch.Tensor | None:
        """The wrapped layer's bias (None for embeddings)."""
        return cast("torch.Tensor | None", getattr(self.layer, "bias", None))

    def quantized_weight(self) -> torch.Tensor:
        """The weight the forward pass uses.

        Once the weight quantiser is frozen, inference (no gradient needed) reuses a cached
        copy until the float weight changes, instead of quantising the weight on every call.
        """
        w = self.float_weight
        wq = self.weight_quant
        observing = isinstance(wq, FakeQuantize) and wq.observing
        if observing or (torch.is_grad_enabled() and w.requires_grad):
            return wq(w)
        key = (w._version, w.data_ptr(), w.device)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, wq(w).detach())
        return self._cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        w = self.quantized_weight()
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, w, self.bias)
        if isinstance(self.layer, nn.Embedding):
            e = self.layer
            return F.embedding(
                x, w, e.padding_idx, e.max_norm, e.norm_type, e.scale_grad_by_freq, e.sparse
            )
        conv = cast(nn.Conv2d, self.layer)  # Conv1d / Conv3d share _conv_forward's signature
        return conv._conv_forward(x, w, self.bias)

    def set_calibrating(self, on: bool) -> None:
        """Activation observers record without quantising (``on``), or quantise (``off``)."""
        if isinstance(self.input_quant, FakeQuantize):
            if on:
                self.input_quant.observing, self.input_quant.enabled = True, False
            else:
                self.input_quant.freeze()

    def freeze(self) -> None:
        """Fix every quantisation parameter (end of calibration or of QAT)."""
        if isinstance(self.weight_quant, FakeQuantize):
            self.weight_quant.observing = True
            self.weight_quant.enabled = True
            self.weight_quant(self.float_weight.detach())
            self.weight_quant.freeze()
        if isinstance(self.input_quant, FakeQuantize) and self.input_quant.observing:
            self.input_quant.freeze()
