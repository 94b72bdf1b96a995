"""Hypergradients of a validation loss through the implicit function theorem.

At a minimum ``w*(lam)`` of the training loss ``L_T(w, lam)``, ``dL_T/dw = 0`` defines ``w*`` as
a function of the hyperparameters, and

    dL_V/dlam = dL_V/dlam|_direct - (d^2 L_T / dlam dw)^T H^{-1} dL_V/dw,   H = d^2 L_T / dw^2.

``H^{-1} v`` is approximated with conjugate gradients (``method="cg"``, for a positive-definite
Hessian) or the Neumann series ``alpha * sum_j (I - alpha H)^j v`` (``method="neumann"``, after
Lorraine et al. 2020), using only Hessian-vector products from ``torch.autograd``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

__all__ = ["ImplicitConfig", "LossFn", "implicit_hypergradient", "inverse_hvp"]

LossFn = Callable[[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]], torch.Tensor]
"""``loss(params, hparams) -> scalar tensor``; both arguments map names to tensors."""

_METHODS = ("cg", "neumann")


@dataclass(frozen=True, kw_only=True)
class ImplicitConfig:
    """How :func:`implicit_hypergradient` approximates ``H^{-1} v``.

    ``iterations``: CG iterations or Neumann terms. ``alpha``: the Neumann step, below
    ``2 / lambda_max(H)``. ``damping``: added to the Hessian's diagonal (``H + damping I``),
    which keeps CG stable on non-convex losses. ``tol``: CG stops when the residual norm is
    below ``tol`` times the norm of ``v``.
    """

    method: str = "cg"
    iterations: int = 20
    alpha: float = 0.01
    damping: float = 0.0
    tol: float = 1e-10

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"`method` must be 'cg' or 'neumann', got {self.method!r}.")
        it = self.iterations
        if isinstance(it, bool) or not isinstance(it, int) or it < 1:
            raise ValueError(f"`iterations` must be an int >= 1, got {it!r}.")
        for name, low_ok in (("alpha", False), ("damping", True), ("tol", True)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"`{name}` must be a finite real number, got {v!r}.")
            if v < 0 or (v == 0 and not low_ok):
                rule = ">= 0" if low_ok else "> 0"
                raise ValueError(f"`{name}` must be {rule}, got {v!r}.")


def _check_tensors(name: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if not isinstance(tensors, Mapping) or not tensors:
        raise TypeError(
            f"`{name}` must be a non-empty mapping of names to tensors, got {tensors!r}. "
            "Pass e.g. dict(model.named_parameters())."
        )
    out = {}
    for key, t in tensors.items():
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"`{name}[{key!r}]` must be a floating-point tensor, got {t!r}.")
        out[key] = t
    return out


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """Sum of elementwise products over tensor lists, read back to the host once."""
    parts = [(x * y).sum() for x, y in zip(a, b, strict=True)]
    if not parts:
        return 0.0
    device = parts[0].device
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    return float(torch.stack([t.to(device, dtype) for t in parts]).sum())


def _grads(
    out: torch.Tensor | Sequence[torch.Tensor],
    inputs: Sequence[torch.Tensor],
    *,
    grad_outputs: Sequence[torch.Tensor] | None = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
) -> list[torch.Tensor]:
    gs = torch.autograd.grad(
        out,
        list(inputs),
        grad_outputs=None if grad_outputs is None else list(grad_outputs),
        create_graph=create_graph,
        retain_graph=retain_graph,
        allow_unused=True,
    )
    return [torch.zeros_like(x) if g is None else g for g, x in zip(gs, inputs, strict=True)]


def inverse_hvp(
    hvp: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    v: Sequence[torch.Tensor],
    config: ImplicitConfig,
) -> list[torch.Tensor]:
    """Approximate ``H^{-1} v`` from a Hessian-vector product ``hvp`` (CG or Neumann)."""
    v = [x.detach() for x in v]
    damp = config.damping

    def a(x: list[torch.Tensor]) -> list[torch.Tensor]:
        hx = hvp(x)
        return [h.detach() + damp * xi for h, xi in zip(hx, x, strict=True)] if damp else hx

    if config.method == "neumann":
        term = list(v)
        total = list(v)
        for _ in range(config.iterations - 1):
            hx = a(term)
            term = [t - config.alpha * h.detach() for t, h in zip(term, hx, strict=True)]
            total = [s + t for s, t in zip(total, term, strict=True)]
        return [config.alpha * s for s in total]
    # conjugate gradients on A x = v, x0 = 0
    x = [torch.zeros_like(t) for t in v]
    r = list(v)
    p = list(r)
    rs = float(_dot(r, r))
    stop = config.tol**2 * rs
    for _ in range(config.iterations):
        if rs <= stop or rs == 0.0:
            break
        ap = [t.detach() for t in a(p)]
        pap = float(_dot(p, ap))
        if pap <= 0 or not math.isfinite(pap):  # not positive definite along p: stop here
            break
        step = rs / pap
        x = [xi + step * pi for xi, pi in zip(x, p, strict=True)]
        r = [ri - step * api for ri, api in zip(r, ap, strict=True)]
        rs_new = float(_dot(r, r))
        p = [ri + (rs_new / rs) * pi for ri, pi in zip(r, p, strict=True)]
        rs = rs_new
    return x


def implicit_hypergradient(
    train_loss: LossFn,
    val_loss: LossFn,
    params: Mapping[str, torch.Tensor],
    hparams: Mapping[str, torch.Tensor],
    config: ImplicitConfig | None = None,
) -> dict[str, torch.Tensor]:
    """``dL_V / d hparams`` at ``params`` (assumed near a minimum of ``train_loss``).

    ``params`` and ``hparams`` map names to tensors that require grad (model parameters and
    hyperparameter leaves, e.g. ``{"log_wd": torch.zeros((), requires_grad=True)}``); both loss
    functions are called as ``loss(params, hparams)``. Returns one gradient per hyperparameter;
    neither the parameters nor their ``.grad`` are modified.
    """
    config = ImplicitConfig() if config is None else config
    if not isinstance(config, ImplicitConfig):
        raise TypeError(f"`config` must be an ImplicitConfig, got {config!r}.")
    p = _check_tensors("params", params)
    h = _check_tensors("hparams", hparams)
    for name, group in (("params", p), ("hparams", h)):
        for key, t in group.items():
            if not t.requires_grad:
                raise ValueError(
                    f"`{name}[{key!r}]` does not require grad. Create it with requires_grad=True."
                )
    pl, hl = list(p.values()), list(h.values())
    with torch.enable_grad():
        lv = val_loss(p, h)
        g_all = _grads(lv, pl + hl)
        g_w, direct = g_all[: len(pl)], g_all[len(pl) :]
        lt = train_loss(p, h)
        dw = _grads(lt, pl, create_graph=True)

        def hvp(x: list[torch.Tensor]) -> list[torch.Tensor]:
            return _grads(dw, pl, grad_outputs=x, retain_graph=True)

        v = inverse_hvp(hvp, g_w, config)
        mixed = _grads(dw, hl, grad_outputs=v, retain_graph=False)
    return {k: (d - m).detach() for k, d, m in zip(h, direct, mixed, strict=True)}
