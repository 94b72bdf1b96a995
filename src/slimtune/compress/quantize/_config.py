"""Quantisation configs: one :class:`LayerConfig` per layer, chosen by name patterns."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from slimtune.compress.quantize._pq import PQSpec
from slimtune.compress.quantize._spec import QuantSpec, check_bits

__all__ = ["LayerConfig", "Method", "QuantConfig"]

Method = Literal["uniform", "binary", "ternary", "pq", "float"]
_METHODS = ("uniform", "binary", "ternary", "pq", "float")


@dataclass(frozen=True, kw_only=True)
class LayerConfig:
    """How one Linear / Conv layer is quantised.

    ``method``: ``"uniform"`` (weights by ``weight``), ``"binary"`` (sign times per-channel mean
    absolute value), ``"ternary"`` (TWN), ``"pq"`` (product quantisation by ``pq``) or
    ``"float"`` (left alone). ``activation`` quantises the layer's input on a uniform grid;
    ``binary_activations`` replaces the input by its sign instead.
    """

    method: Method = "uniform"
    weight: QuantSpec = field(default_factory=lambda: QuantSpec(bits=8, granularity="channel"))
    activation: QuantSpec | None = None
    binary_activations: bool = False
    pq: PQSpec = field(default_factory=PQSpec)
    ternary_threshold: float = 0.7

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"`method` must be one of {_METHODS}, got {self.method!r}.")
        if not isinstance(self.weight, QuantSpec):
            raise TypeError(f"`weight` must be a QuantSpec, got {type(self.weight).__name__}.")
        if self.activation is not None and not isinstance(self.activation, QuantSpec):
            raise TypeError(
                f"`activation` must be a QuantSpec or None, got {type(self.activation).__name__}."
            )
        if self.binary_activations and self.activation is not None:
            raise ValueError(
                "`binary_activations`=True replaces the uniform `activation` quantiser; pass "
                "activation=None with it."
            )
        if not isinstance(self.pq, PQSpec):
            raise TypeError(f"`pq` must be a PQSpec, got {type(self.pq).__name__}.")
        if not 0.0 < self.ternary_threshold < 2.0:
            raise ValueError(
                f"`ternary_threshold` must be in (0, 2), got {self.ternary_threshold!r}."
            )

    @property
    def weight_bits(self) -> float:
        """Storage bits per weight element (before scales): 32 for float, ~log2(K)/d for PQ."""
        if self.method == "float":
            return 32.0
        if self.method == "binary":
            return 1.0
        if self.method == "ternary":
            return 2.0
        if self.method == "pq":
            return 8.0 / self.pq.block_size
        return float(self.weight.bits)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "weight": self.weight.to_dict(),
            "activation": None if self.activation is None else self.activation.to_dict(),
            "binary_activations": self.binary_activations,
            "pq": self.pq.to_dict(),
            "ternary_threshold": self.ternary_threshold,
        }


@dataclass(frozen=True, kw_only=True)
class QuantConfig:
    """What :func:`quantize_` and :func:`prepare_qat_` do to a model.

    ``layers`` maps module-name patterns (``fnmatch``: ``"blocks.*.fc2"``) to a
    :class:`LayerConfig`; the first matching pattern wins, other layers get ``default``. Every
    pattern must match some layer. ``strict=True`` raises on layers with weights that cannot be
    quantised (embeddings, recurrent layers, ...) instead of leaving them in float and reporting
    them. ``bias_correction`` adds ``(W - Wq) E[x]`` to each bias after PTQ (Nagel et al.,
    2019). ``pact_bits`` replaces every ``nn.ReLU`` by a :class:`PACTReLU` of that many bits.
    """

    default: LayerConfig = field(default_factory=LayerConfig)
    layers: Mapping[str, LayerConfig] = field(default_factory=dict)
    strict: bool = False
    bias_correction: bool = True
    pact_bits: int | None = None
    calibration_batch_size: int = 128

    def __post_init__(self) -> None:
        if not isinstance(self.default, LayerConfig):
            raise TypeError(f"`default` must be a LayerConfig, got {type(self.default).__name__}.")
        if not isinstance(self.layers, Mapping):
            raise TypeError(f"`layers` must be a mapping, got {type(self.layers).__name__}.")
        for pattern, cfg in self.layers.items():
            if not isinstance(pattern, str) or not isinstance(cfg, LayerConfig):
                raise TypeError(
                    f"`layers` maps name patterns (str) to LayerConfig, got {pattern!r}: "
                    f"{type(cfg).__name__}."
                )
        object.__setattr__(self, "layers", dict(self.layers))
        if self.pact_bits is not None:
            check_bits(self.pact_bits, name="pact_bits")
        if not isinstance(self.calibration_batch_size, int) or self.calibration_batch_size < 1:
            raise ValueError(
                "`calibration_batch_size` must be an int >= 1, got "
                f"{self.calibration_batch_size!r}."
            )

    def __hash__(self) -> int:
        return hash((self.default, tuple(self.layers.items()), self.strict, self.pact_bits))

    def for_layer(self, name: str) -> LayerConfig:
        """The config of the layer called ``name``."""
        for pattern, cfg in self.layers.items():
            if fnmatch.fnmatchcase(name, pattern):
                return cfg
        return self.default

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "default": self.default.to_dict(),
            "layers": {k: v.to_dict() for k, v in self.layers.items()},
            "strict": self.strict,
            "bias_correction": self.bias_correction,
            "pact_bits": self.pact_bits,
            "calibration_batch_size": self.calibration_batch_size,
        }
