"""Tune continuous hyperparameters by hypergradient during one training run, recorded in a study.

``theta_{t+1} = theta_t - eta * grad_theta J(theta_t)``: every ``hyper_interval`` training steps
the hypergradient of the validation loss ``J`` (implicit or unrolled) moves the hyperparameters
``theta`` one step of a torch optimizer. The study gets one trial per run: ``trial.report(step,
val_loss)`` at each hyperstep, the trajectory in the user attribute ``"hparam_trajectory"``, and
the final validation loss as the trial's value.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from slimtune.hpo.hypergrad._implicit import (
    ImplicitConfig,
    LossFn,
    _check_tensors,
    implicit_hypergradient,
)
from slimtune.hpo.hypergrad._online import HypergradientOptimizer
from slimtune.hpo.hypergrad._unrolled import UnrolledConfig, unrolled_hypergradient

if TYPE_CHECKING:
    from slimtune.study import Study, Trial

__all__ = ["HypergradTuner", "fit_with_hypergradients"]

logger = logging.getLogger(__name__)

TRAJECTORY_KEY = "hparam_trajectory"


def _as_json(t: torch.Tensor) -> float | list[Any]:
    value: float | list[Any] = t.detach().cpu().tolist()
    return value


class HypergradTuner:
    """Hyperparameter steps by hypergradient; one trial of ``study`` (or the given ``trial``).

    ``hparams``: leaf tensors with ``requires_grad=True`` (e.g. ``log_wd`` per parameter group,
    ``log_l2``, ``logit_smoothing``); parametrise them so any real value is valid (log, logit).
    ``method``: :class:`ImplicitConfig` (default) or :class:`UnrolledConfig`.
    ``hyper_optimizer``: a torch optimizer over the ``hparams`` tensors; default
    ``Adam(lr=hyper_lr)``. ``bounds``: optional ``{name: (low, high)}`` clamps after each step.
    """

    def __init__(
        self,
        hparams: Mapping[str, torch.Tensor],
        *,
        method: ImplicitConfig | UnrolledConfig | None = None,
        hyper_optimizer: torch.optim.Optimizer | None = None,
        hyper_lr: float = 0.05,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        study: Study | None = None,
        trial: Trial | None = None,
    ) -> None:
        h = _check_tensors("hparams", hparams)
        for key, t in h.items():
            if not t.is_leaf or not t.requires_grad:
                raise ValueError(
                    f"`hparams[{key!r}]` must be a leaf tensor with requires_grad=True, got "
                    f"{t!r}. Create it with torch.tensor(value, requires_grad=True)."
                )
        method = ImplicitConfig() if method is None else method
        if not isinstance(method, ImplicitConfig | UnrolledConfig):
            raise TypeError(
                f"`method` must be an ImplicitConfig or an UnrolledConfig, got {method!r}."
            )
        if isinstance(hyper_lr, bool) or not isinstance(hyper_lr, int | float) or hyper_lr <= 0:
            raise ValueError(f"`hyper_lr` must be a real number > 0, got {hyper_lr!r}.")
        bounds = dict(bounds or {})
        for key, b in bounds.items():
            if key not in h:
                raise ValueError(f"`bounds` names {key!r}, which is not in `hparams` {list(h)}.")
            if not (isinstance(b, tuple) and len(b) == 2 and b[0] < b[1]):
                raise ValueError(f"`bounds[{key!r}]` must be a tuple (low, high), got {b!r}.")
        if study is not None and trial is not None:
            raise ValueError("pass either `study` or `trial`, not both.")
        if study is not None:
            if list(study.directions) != ["minimize"]:
                raise ValueError(
                    f"`study` must minimise one objective (the validation loss), got directions "
                    f"{study.directions}. Create it with direction='minimize'."
                )
            trial = study.ask()
        self.hparams = h
        self.method = method
        self.hyper_optimizer = (
            torch.optim.Adam(list(h.values()), lr=float(hyper_lr))
            if hyper_optimizer is None
            else hyper_optimizer
        )
        self.bounds = bounds
        self.trial = trial
        self.trajectory: list[dict[str, Any]] = []
        self.last_val_loss: float | None = None
        if trial is not None:
            trial.set_user_attr("hparams_initial", {k: _as_json(t) for k, t in h.items()})
            trial.set_user_attr("hypergrad_method", type(method).__name__)

    def values(self) -> dict[str, float | list[Any]]:
        """The current hyperparameter values (JSON-able)."""
        return {k: _as_json(t) for k, t in self.hparams.items()}

    def hypergradient(
        self, train_loss: LossFn, val_loss: LossFn, params: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], float]:
        """The hypergradient at ``params`` and the validation loss it refers to."""
        if isinstance(self.method, UnrolledConfig):
            res = unrolled_hypergradient(train_loss, val_loss, params, self.hparams, self.method)
            return res.hypergradients, res.val_loss
        grads = implicit_hypergradient(train_loss, val_loss, params, self.hparams, self.method)
        with torch.no_grad():
            v = float(val_loss(params, self.hparams))
        return grads, v

    def step(
        self,
        train_loss: LossFn,
        val_loss: LossFn,
        params: Mapping[str, torch.Tensor],
        *,
        step: int,
    ) -> dict[str, torch.Tensor]:
        """One hyperparameter step at training step ``step``; records it; returns the gradients."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"`step` must be a non-negative int, got {step!r}.")
        grads, v = self.hypergradient(train_loss, val_loss, params)
        finite = all(bool(torch.isfinite(g).all()) for g in grads.values())
        if finite:
            self.hyper_optimizer.zero_grad()
            for k, t in self.hparams.items():
                t.grad = grads[k].to(t.dtype)
            self.hyper_optimizer.step()
            with torch.no_grad():
                for k, (low, high) in self.bounds.items():
                    self.hparams[k].clamp_(low, high)
        else:
            logger.warning("hypergradient at step %d is not finite; hyperparameters kept", step)
        self.last_val_loss = v
        entry = {
            "step": step,
            "val_loss": v,
            "hparams": self.values(),
            "hypergradients": {k: _as_json(g) for k, g in grads.items()},
        }
        self.trajectory.append(entry)
        if self.trial is not None:
            if math.isfinite(v):
                self.trial.report(step, v)
            self.trial.set_user_attr(TRAJECTORY_KEY, self.trajectory)
        return grads

    def finish(self) -> None:
        """Finish the trial with the last validation loss (FAILED if there is none)."""
        if self.trial is None:
            return
        self.trial.set_user_attr("hparams_final", self.values())
        self.trial.study.tell(self.trial, self.last_val_loss)


def fit_with_hypergradients(
    train_loss: LossFn,
    val_loss: LossFn,
    params: Mapping[str, torch.Tensor],
    tuner: HypergradTuner,
    *,
    optimizer: torch.optim.Optimizer | HypergradientOptimizer,
    steps: int,
    hyper_interval: int,
    finish: bool = True,
) -> list[dict[str, Any]]:
    """Train ``params`` with ``optimizer`` on ``train_loss`` for ``steps`` steps, taking a
    hyperparameter step every ``hyper_interval`` steps; returns the tuner's trajectory.

    The training step sees the hyperparameters detached (their values, not their gradients).
    ``optimizer`` may be a :class:`HypergradientOptimizer`, so the learning rate adapts online
    while the regularisation hyperparameters follow the validation hypergradient.
    """
    for name, v in (("steps", steps), ("hyper_interval", hyper_interval)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"`{name}` must be an int >= 1, got {v!r}.")
    if not isinstance(optimizer, torch.optim.Optimizer | HypergradientOptimizer):
        raise TypeError(
            f"`optimizer` must be a torch optimizer or a HypergradientOptimizer, got {optimizer!r}."
        )
    p = _check_tensors("params", params)
    for t in range(steps):
        optimizer.zero_grad()
        fixed = {k: v.detach() for k, v in tuner.hparams.items()}
        loss = train_loss(p, fixed)
        loss.backward()
        optimizer.step()
        if (t + 1) % hyper_interval == 0:
            tuner.step(train_loss, val_loss, p, step=t + 1)
    if finish:
        tuner.finish()
    return tuner.trajectory
