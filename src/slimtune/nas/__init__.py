"""Weight-sharing architecture search: elastic layers, supernets, training and extraction.

A supernet holds every sub-network of its space in one set of weights. ``search_space()``
returns ``slimtune.space`` types, so any sampler can search it; ``set_arch(arch)`` activates a
sub-network and ``extract(supernet, arch)`` returns it as an ordinary ``nn.Module``, optionally
fine-tuned (``finetune_subnet``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from slimtune.nas._bn import recalibrate_bn_
from slimtune.nas._cnn import CNNSupernet, ElasticConvBlock
from slimtune.nas._cost import LatencyTable, count_macs, count_params
from slimtune.nas._elastic import (
    ELASTIC_TYPES,
    ElasticBatchNorm1d,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticLayerNorm,
    ElasticLinear,
    ElasticSequential,
)
from slimtune.nas._finetune import finetune_subnet
from slimtune.nas._mlp import MLPSupernet
from slimtune.nas._supernet import Supernet
from slimtune.nas._train import SandwichConfig, load_checkpoint, save_checkpoint, train_supernet
from slimtune.nas._transformer import (
    ElasticSelfAttention,
    ElasticTransformerBlock,
    TransformerSupernet,
)

__all__ = [
    "ELASTIC_TYPES",
    "CNNSupernet",
    "ElasticBatchNorm1d",
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticConvBlock",
    "ElasticLayerNorm",
    "ElasticLinear",
    "ElasticSelfAttention",
    "ElasticSequential",
    "ElasticTransformerBlock",
    "LatencyTable",
    "MLPSupernet",
    "SandwichConfig",
    "Supernet",
    "TransformerSupernet",
    "count_macs",
    "count_params",
    "extract",
    "finetune_subnet",
    "load_checkpoint",
    "recalibrate_bn_",
    "save_checkpoint",
    "train_supernet",
]


def _require_supernet(model: nn.Module, what: str) -> Supernet:
    if isinstance(model, Supernet):
        return model
    has_elastic = any(isinstance(m, ELASTIC_TYPES) for m in model.modules())
    hint = (
        "it has elastic layers but is not a Supernet: subclass slimtune.nas.Supernet"
        if has_elastic
        else "it has no elastic layers: build it from slimtune.nas elastic layers or use "
        "MLPSupernet / CNNSupernet / TransformerSupernet"
    )
    raise TypeError(f"{what} needs a slimtune.nas.Supernet, got {type(model).__name__}; {hint}.")


def extract(
    supernet: nn.Module,
    arch: Mapping[str, Any] | None = None,
    *,
    finetune: Callable[[nn.Module], object] | None = None,
) -> nn.Module:
    """The sub-network ``arch`` (default: the active one) as a plain ``nn.Module``.

    The result holds copies of the sliced weights and no elastic layer; in eval mode it computes
    exactly what the supernet computes with ``arch`` active. ``finetune(module)``, when given,
    then trains the copy (for example ``lambda m: finetune_subnet(m, batches, epochs=3)``); the
    supernet is not changed.
    """
    if finetune is not None and not callable(finetune):
        raise TypeError(
            f"`finetune` must be a callable taking the extracted module, got "
            f"{type(finetune).__name__}; e.g. lambda m: finetune_subnet(m, batches, epochs=3)."
        )
    module = _require_supernet(supernet, "extract").extract(arch)
    if finetune is not None:
        finetune(module)
    return module
