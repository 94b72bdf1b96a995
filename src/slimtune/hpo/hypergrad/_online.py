"""Online hypergradient descent of the learning rate (and momentum) around a torch optimizer.

After Baydin et al. (2018), "Online Learning Rate Adaptation with Hypergradient Descent". The
update of SGD, SGD with momentum, Adam and AdamW is linear in the learning rate, so the change of
the parameters in one step divided by the learning rate is the derivative of the new parameters
with respect to the learning rate, ``d theta_t / d lr``. At the next step the hypergradient is
``h = grad f(theta_t) . d theta_t / d lr`` and the learning rate moves against it:
``lr <- lr - hyper_lr * h`` (``mode="additive"``) or, scale-free,
``lr <- lr * (1 - hyper_lr * cos(grad, d theta / d lr))`` (``mode="multiplicative"``).

With ``tune_momentum=True`` the momentum of SGD (or ``beta1`` of Adam / AdamW) moves the same way,
using the one-step derivative of the update with respect to it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from slimtune.hpo.hypergrad._implicit import _dot

if TYPE_CHECKING:
    from slimtune.study import Trial

__all__ = ["HDConfig", "HypergradientOptimizer"]

logger = logging.getLogger(__name__)

_MODES = ("additive", "multiplicative")
_MOMENTUM_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {rule}, got {value!r}.")
    return v


@dataclass(frozen=True, kw_only=True)
class HDConfig:
    """Settings of :class:`HypergradientOptimizer`.

    ``hyper_lr`` is the learning rate of the learning rate (``beta`` in the paper); for
    ``mode="multiplicative"`` it is the relative change per step at full gradient alignment
    (e.g. 0.02). ``lr_bounds`` clamps the learning rate. ``momentum_hyper_lr`` is used with
    ``tune_momentum=True``; ``momentum_bounds`` clamps the momentum (or Adam's ``beta1``).
    """

    hyper_lr: float = 1e-3
    mode: str = "additive"
    lr_bounds: tuple[float, float] = (1e-8, 10.0)
    tune_momentum: bool = False
    momentum_hyper_lr: float = 1e-3
    momentum_bounds: tuple[float, float] = (0.0, 0.999)
    record_every: int = field(default=1)

    def __post_init__(self) -> None:
        _positive("hyper_lr", self.hyper_lr)
        _positive("momentum_hyper_lr", self.momentum_hyper_lr)
        if self.mode not in _MODES:
            raise ValueError(f"`mode` must be 'additive' or 'multiplicative', got {self.mode!r}.")
        for name in ("lr_bounds", "momentum_bounds"):
            bounds = getattr(self, name)
            ok = (
                isinstance(bounds, tuple)
                and len(bounds) == 2
                and all(isinstance(b, int | float) and math.isfinite(b) for b in bounds)
                and 0 <= bounds[0] < bounds[1]
            )
            if not ok:
                raise ValueError(
                    f"`{name}` must be a tuple (low, high) with 0 <= low < high, got {bounds!r}."
                )
        if self.lr_bounds[0] <= 0:
            raise ValueError(f"`lr_bounds` low must be > 0, got {self.lr_bounds!r}.")
        if self.momentum_bounds[1] >= 1:
            raise ValueError(f"`momentum_bounds` high must be < 1, got {self.momentum_bounds!r}.")
        if not isinstance(self.tune_momentum, bool):
            raise TypeError(f"`tune_momentum` must be a bool, got {self.tune_momentum!r}.")
        if (
            isinstance(self.record_every, bool)
            or not isinstance(self.record_every, int)
            or self.record_every < 1
        ):
            raise ValueError(f"`record_every` must be an int >= 1, got {self.record_every!r}.")


def _momentum_key(optimizer: torch.optim.Optimizer) -> str:
    if isinstance(optimizer, torch.optim.SGD):
        return "momentum"
    return "betas"


class HypergradientOptimizer:
    """Wrap ``optimizer`` so that each ``step()`` also adapts its learning rate (per group).

    Use it like the wrapped optimizer::

        opt = HypergradientOptimizer(torch.optim.SGD(model.parameters(), lr=0.01),
                                     HDConfig(hyper_lr=1e-4))
        for x, y in batches:
            opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        opt.history  # [{"step": 0, "lr": [...], ...}, ...]

    Works for any optimizer whose update is linear in ``lr`` (SGD with or without momentum and
    weight decay, Adam, AdamW, RMSprop, ...). ``history`` records the learning rate (and momentum)
    of every group; :meth:`record` writes it into a study trial.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: HDConfig | None = None) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"`optimizer` must be a torch.optim.Optimizer, got {optimizer!r}. Pass e.g. "
                "torch.optim.SGD(model.parameters(), lr=0.01)."
            )
        config = HDConfig() if config is None else config
        if not isinstance(config, HDConfig):
            raise TypeError(f"`config` must be an HDConfig, got {config!r}.")
        for i, group in enumerate(optimizer.param_groups):
            lr = group.get("lr")
            if isinstance(lr, torch.Tensor) or not isinstance(lr, int | float) or lr <= 0:
                raise ValueError(
                    f"param group {i} of `optimizer` must have a positive float `lr`, got {lr!r}."
                )
        if config.tune_momentum:
            if not isinstance(optimizer, _MOMENTUM_OPTIMIZERS):
                raise ValueError(
                    f"`tune_momentum=True` supports SGD, Adam and AdamW, got "
                    f"{type(optimizer).__name__}. Set tune_momentum=False."
                )
            for i, group in enumerate(optimizer.param_groups):
                if isinstance(optimizer, torch.optim.SGD) and (
                    group.get("momentum", 0) <= 0 or group.get("nesterov", False)
                ):
                    raise ValueError(
                        f"`tune_momentum=True` needs SGD with momentum > 0 and nesterov=False; "
                        f"param group {i} has momentum={group.get('momentum')!r}, "
                        f"nesterov={group.get('nesterov')!r}."
                    )
        self.optimizer = optimizer
        self.config = config
        self.history: list[dict[str, Any]] = []
        self._step = 0
        self._dir_lr: list[list[torch.Tensor] | None] = [None] * len(optimizer.param_groups)
        self._dir_mom: list[list[torch.Tensor] | None] = [None] * len(optimizer.param_groups)

    # torch.optim.Optimizer look-alike ---------------------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:
        return self.optimizer.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)

    @property
    def lrs(self) -> list[float]:
        """The current learning rate of each parameter group."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def momenta(self) -> list[float]:
        """The current momentum (SGD) or ``beta1`` (Adam) of each parameter group."""
        key = _momentum_key(self.optimizer)
        out = []
        for g in self.optimizer.param_groups:
            value = g.get(key, 0.0)
            out.append(float(value[0] if key == "betas" else value))
        return out

    # the step ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _hyper_update(self) -> None:
        cfg = self.config
        for gi, group in enumerate(self.optimizer.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            direction = self._dir_lr[gi]
            if direction is None or len(direction) != len(params):
                continue
            grads = [p.grad for p in params]
            h = _dot(grads, direction)
            lr = float(group["lr"])
            if cfg.mode == "additive":
                lr = lr - cfg.hyper_lr * h
            else:
                gn = math.sqrt(_dot(grads, grads))
                dn = math.sqrt(_dot(direction, direction))
                if gn > 0 and dn > 0:
                    lr = lr * (1.0 - cfg.hyper_lr * h / (gn * dn))
            if not math.isfinite(lr):
                logger.warning("hypergradient of group %d is not finite; lr kept", gi)
                lr = float(group["lr"])
            group["lr"] = min(max(lr, cfg.lr_bounds[0]), cfg.lr_bounds[1])
            mom_dir = self._dir_mom[gi]
            if cfg.tune_momentum and mom_dir is not None and len(mom_dir) == len(params):
                hm = _dot(grads, mom_dir)
                self._set_momentum(group, self._get_momentum(group) - cfg.momentum_hyper_lr * hm)

    def _get_momentum(self, group: dict[str, Any]) -> float:
        if isinstance(self.optimizer, torch.optim.SGD):
            return float(group["momentum"])
        return float(group["betas"][0])

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        low, high = self.config.momentum_bounds
        if not math.isfinite(value):
            return
        value = min(max(value, low), high)
        if isinstance(self.optimizer, torch.optim.SGD):
            group["momentum"] = value
        else:
            group["betas"] = (value, group["betas"][1])

    @torch.no_grad()
    def _momentum_direction(self, group: dict[str, Any], params: list[torch.Tensor]) -> list[Any]:
        """One-step derivative of the coming update with respect to the momentum, or None."""
        out: list[Any] = []
        lr = float(group["lr"])
        for p in params:
            st = self.optimizer.state.get(p, {})
            if isinstance(self.optimizer, torch.optim.SGD):
                buf = st.get("momentum_buffer")
                # p <- p - lr * (mu * buf + g'): d/d mu = -lr * buf
                out.append(None if buf is None else -lr * buf.clone())
            else:
                exp_avg, exp_avg_sq = st.get("exp_avg"), st.get("exp_avg_sq")
                if exp_avg is None or exp_avg_sq is None:
                    out.append(None)
                    continue
                beta1, beta2 = group["betas"]
                step = float(st["step"]) + 1
                assert p.grad is not None
                v = beta2 * exp_avg_sq + (1 - beta2) * p.grad * p.grad
                denom = (v / (1 - beta2**step)).sqrt() + group["eps"]
                # m = beta1 m' + (1 - beta1) g: dm/dbeta1 = m' - g (bias correction held fixed)
                out.append(-lr * (exp_avg - p.grad) / ((1 - beta1**step) * denom))
        return out

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Adapt the learning rate from the current gradients, then take the optimizer step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._hyper_update()
        olds: list[list[torch.Tensor]] = []
        mom_dirs: list[list[Any]] = []
        for group in self.optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            olds.append([p.detach().clone() for p in params])
            mom_dirs.append(
                self._momentum_direction(group, params) if self.config.tune_momentum else []
            )
        self.optimizer.step()
        with torch.no_grad():
            for gi, group in enumerate(self.optimizer.param_groups):
                params = [p for p in group["params"] if p.grad is not None]
                lr = float(group["lr"])
                # d theta / d lr = (new - old) / lr, computed in the buffer of the old values
                self._dir_lr[gi] = [
                    old.neg_().add_(p.detach()).div_(lr)
                    for p, old in zip(params, olds[gi], strict=True)
                ]
                md = mom_dirs[gi]
                self._dir_mom[gi] = None if not md or any(d is None for d in md) else list(md)
        if self._step % self.config.record_every == 0:
            entry: dict[str, Any] = {"step": self._step, "lr": self.lrs}
            if self.config.tune_momentum:
                entry["momentum"] = self.momenta()
            self.history.append(entry)
        self._step += 1
        return loss

    def record(self, trial: Trial, *, key: str = "lr_trajectory") -> None:
        """Write :attr:`history` into ``trial``'s user attribute ``key``."""
        trial.set_user_attr(key, list(self.history))
