"""Hypergradients through truncated unrolled differentiation of a few SGD steps.

The training loss is minimised for ``steps`` plain gradient steps
``w_{k+1} = w_k - lr * dL_T(w_k, lam)/dw`` kept in the autograd graph, and the validation loss
at ``w_K`` is differentiated with respect to the hyperparameters (reverse mode through the
unrolled steps). Exact for the truncated procedure; memory grows with ``steps`` and the model, so
it suits small models. Losses can call ``torch.func.functional_call(model, params, inputs)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from slimtune.hpo.hypergrad._implicit import LossFn, _check_tensors, _grads

__all__ = ["UnrolledConfig", "UnrolledResult", "unrolled_hypergradient"]


@dataclass(frozen=True, kw_only=True)
class UnrolledConfig:
    """``steps`` unrolled gradient steps of size ``lr`` on the training loss."""

    steps: int = 10
    lr: float = 0.1

    def __post_init__(self) -> None:
        s = self.steps
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ValueError(f"`steps` must be an int >= 1, got {s!r}.")
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr):
            raise ValueError(f"`lr` must be a finite real number, got {lr!r}.")
        if lr <= 0:
            raise ValueError(f"`lr` must be > 0, got {lr!r}.")


@dataclass(frozen=True)
class UnrolledResult:
    """Hypergradients, the validation loss at the end of the unroll and the unrolled weights."""

    hypergradients: dict[str, torch.Tensor]
    val_loss: float
    params: dict[str, torch.Tensor]


def unrolled_hypergradient(
    train_loss: LossFn,
    val_loss: LossFn,
    params: Mapping[str, torch.Tensor],
    hparams: Mapping[str, torch.Tensor],
    config: UnrolledConfig | None = None,
) -> UnrolledResult:
    """Differentiate ``val_loss`` after ``config.steps`` SGD steps from ``params``.

    ``params`` are not modified; the unrolled weights are returned (detached) so a caller may
    continue training from them.
    """
    config = UnrolledConfig() if config is None else config
    if not isinstance(config, UnrolledConfig):
        raise TypeError(f"`config` must be an UnrolledConfig, got {config!r}.")
    p0 = _check_tensors("params", params)
    h = _check_tensors("hparams", hparams)
    for key, t in h.items():
        if not t.requires_grad:
            raise ValueError(
                f"`hparams[{key!r}]` does not require grad. Create it with requires_grad=True."
            )
    names = list(p0)
    hl = list(h.values())
    with torch.enable_grad():
        w = {k: t.detach().clone().requires_grad_(True) for k, t in p0.items()}
        for _ in range(config.steps):
            loss = train_loss(w, h)
            gs = _grads(loss, [w[k] for k in names], create_graph=True)
            w = {k: w[k] - config.lr * g for k, g in zip(names, gs, strict=True)}
        lv = val_loss(w, h)
        hg = _grads(lv, hl)
    return UnrolledResult(
        hypergradients={k: g.detach() for k, g in zip(h, hg, strict=True)},
        val_loss=float(lv.detach()),
        params={k: t.detach() for k, t in w.items()},
    )
