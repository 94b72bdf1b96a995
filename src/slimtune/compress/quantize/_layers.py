"""``QuantizedLayer``: a Linear or Conv layer whose weight and input pass through quantisers."""

from __future__ import annotations

from typing import cast

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

SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


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
        if config.binary_activations:
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
        """The wrapped layer's bias."""
        return cast("torch.Tensor | None", self.layer.bias)

    def quantized_weight(self) -> torch.Tensor:
        """The weight the forward pass uses."""
        return self.weight_quant(self.float_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        w = self.quantized_weight()
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, w, self.bias)
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
