"""``Distiller``: a student, a frozen teacher and the combined distillation loss in one module."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from slimtune.compress.distill._capture import capture_attention, capture_outputs
from slimtune.compress.distill._config import DistillConfig
from slimtune.compress.distill._losses import attention_loss, distillation_loss, feature_loss

__all__ = ["DistillOutput", "Distiller", "HintProjection"]

logger = logging.getLogger(__name__)


class HintProjection(nn.Module):
    """FitNets regressor from the student's feature width to the teacher's.

    A bias-free 1x1 convolution for ``(N, C, H, W)`` maps (channels on dimension 1), a
    bias-free ``Linear`` on the last dimension otherwise.
    """

    def __init__(self, in_width: int, out_width: int, *, conv: bool) -> None:
        super().__init__()
        self.conv = conv
        self.proj: nn.Module = (
            nn.Conv2d(in_width, out_width, 1, bias=False)
            if conv
            else nn.Linear(in_width, out_width, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


@dataclass
class DistillOutput:
    """What :meth:`Distiller.forward` returns: the student's logits, the total loss (a scalar
    with a graph into the student) and its detached parts by name."""

    logits: torch.Tensor
    loss: torch.Tensor
    parts: dict[str, float] = field(default_factory=dict)


def _width(shape: torch.Size) -> tuple[int, bool]:
    return (int(shape[1]), True) if len(shape) == 4 else (int(shape[-1]), False)


class Distiller(nn.Module):
    """Train ``student`` against a frozen ``teacher``; ``forward`` returns :class:`DistillOutput`.

    The teacher is put in eval mode, always runs under ``torch.no_grad()`` and is **not** a
    registered submodule: ``distiller.parameters()``, ``state_dict()``, ``train()`` and
    ``to()`` cover the student and the hint projections only, so an optimizer built on
    ``distiller.parameters()`` cannot touch the teacher (move the teacher to the device
    yourself). The teacher's parameters and buffers stay bit-identical.

    ``example_inputs`` (a batch of inputs) is needed when ``config.features`` is set: it runs
    both models once, in eval mode under no_grad, to size the hint projections.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        config: DistillConfig | None = None,
        *,
        example_inputs: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        config = DistillConfig() if config is None else config
        if not isinstance(config, DistillConfig):
            raise TypeError(f"`config` must be a DistillConfig, got {type(config).__name__}.")
        if not isinstance(student, nn.Module) or not isinstance(teacher, nn.Module):
            raise TypeError("`student` and `teacher` must both be torch.nn.Module instances.")
        teacher_params = {id(p) for p in teacher.parameters()}
        if student is teacher or any(id(p) in teacher_params for p in student.parameters()):
            raise ValueError(
                "`student` shares parameters with `teacher`; the teacher must stay unchanged. "
                "Pass a copy: student = copy.deepcopy(teacher) or a student builder."
            )
        self.config = config
        self.student = student
        self._teacher = [teacher]  # a list hides it from nn.Module registration
        teacher.eval()
        self.projections = nn.ModuleDict()
        self._cache: dict[str, torch.Tensor] | None = None
        # validate the names early (raises for unknown modules / non-attention modules)
        with capture_attention(student, [s for s, _ in config.attention], param="attention"):
            pass
        with capture_attention(teacher, [t for _, t in config.attention], param="attention"):
            pass
        if config.features:
            if example_inputs is None:
                raise ValueError(
                    "`example_inputs` is None but `config.features` is set; pass a batch of "
                    "inputs so the hint projections can be sized."
                )
            self._build_projections(example_inputs)

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a registered submodule)."""
        return self._teacher[0]

    def _build_projections(self, example_inputs: torch.Tensor) -> None:
        cfg = self.config
        was_training = self.student.training
        self.student.eval()
        try:
            with torch.no_grad():
                with capture_outputs(
                    self.student, [s for s, _ in cfg.features], param="features"
                ) as s_out:
                    self.student(example_inputs)
                with capture_outputs(
                    self.teacher, [t for _, t in cfg.features], param="features"
                ) as t_out:
                    self.teacher(example_inputs)
        finally:
            self.student.train(was_training)
        for i, (s_name, t_name) in enumerate(cfg.features):
            s_shape, t_shape = s_out[s_name].shape, t_out[t_name].shape
            (s_w, s_conv), (t_w, t_conv) = _width(s_shape), _width(t_shape)
            if s_conv != t_conv:
                raise ValueError(
                    f"feature pair ({s_name!r}, {t_name!r}) mixes a conv map {tuple(s_shape)} "
                    f"with {tuple(t_shape)}; pair modules of the same kind."
                )
            rest_s = s_shape[2:] if s_conv else s_shape[:-1]
            rest_t = t_shape[2:] if t_conv else t_shape[:-1]
            if rest_s != rest_t:
                raise ValueError(
                    f"feature pair ({s_name!r}, {t_name!r}) has shapes {tuple(s_shape)} and "
                    f"{tuple(t_shape)}, which differ beyond the channel width; pair modules "
                    "whose outputs have the same spatial / sequence size."
                )
            if s_w != t_w:
                self.projections[str(i)] = HintProjection(s_w, t_w, conv=s_conv)

    def train(self, mode: bool = True) -> Distiller:
        """Set the student's (and projections') mode; the teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def _teacher_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.config
        teacher = self.teacher
        if teacher.training:
            teacher.eval()
        with ExitStack() as stack:
            feats = stack.enter_context(
                capture_outputs(teacher, [t for _, t in cfg.features], param="features")
            )
            attn = stack.enter_context(
                capture_attention(teacher, [t for _, t in cfg.attention], param="attention")
            )
            logits = teacher(x)
        out = {"logits": logits}
        out.update({f"feature:{i}": feats[t] for i, (_, t) in enumerate(cfg.features)})
        out.update({f"attention:{i}": attn[t] for i, (_, t) in enumerate(cfg.attention)})
        return out

    @torch.no_grad()
    def cache_teacher(self, inputs: torch.Tensor, *, batch_size: int = 256) -> None:
        """Run the teacher once over a fixed data set ``inputs`` and keep its outputs; later
        calls ``forward(x, labels, index=idx)`` read rows ``idx`` of the cache instead of
        running the teacher (``x`` must then be ``inputs[idx]``)."""
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
        chunks: dict[str, list[torch.Tensor]] = {}
        for i in range(0, len(inputs), batch_size):
            for key, value in self._teacher_outputs(inputs[i : i + batch_size]).items():
                chunks.setdefault(key, []).append(value)
        self._cache = {key: torch.cat(values) for key, values in chunks.items()}
        logger.debug("cached teacher outputs for %d inputs", len(inputs))

    def clear_cache(self) -> None:
        """Drop the cached teacher outputs."""
        self._cache = None

    @property
    def cached(self) -> bool:
        """Whether teacher outputs are cached."""
        return self._cache is not None

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, *, index: Any = None
    ) -> DistillOutput:
        """Run the student (and the teacher, or read its cache at ``index``); combine the losses."""
        cfg = self.config
        if index is not None:
            if self._cache is None:
                raise ValueError(
                    "`index` was given but no teacher outputs are cached; call "
                    "cache_teacher(inputs) first or pass index=None."
                )
            t_out = {key: value[index] for key, value in self._cache.items()}
        else:
            t_out = self._teacher_outputs(x)
        with ExitStack() as stack:
            s_feats = stack.enter_context(
                capture_outputs(self.student, [s for s, _ in cfg.features], param="features")
            )
            s_attn = stack.enter_context(
                capture_attention(self.student, [s for s, _ in cfg.attention], param="attention")
            )
            logits = self.student(x)
        if logits.shape != t_out["logits"].shape:
            raise ValueError(
                f"student logits {tuple(logits.shape)} and teacher logits "
                f"{tuple(t_out['logits'].shape)} differ; the models must predict the same classes."
            )
        loss = distillation_loss(
            logits, t_out["logits"], labels, alpha=cfg.alpha, temperature=cfg.temperature
        )
        parts = {"logits": float(loss.detach())}
        for i, (s_name, _) in enumerate(cfg.features):
            feat = s_feats[s_name]
            key = str(i)
            if key in self.projections:
                feat = self.projections[key](feat)
            part = feature_loss(feat, t_out[f"feature:{i}"], kind=cfg.feature_kind)
            parts[f"feature:{s_name}"] = float(part.detach())
            loss = loss + cfg.feature_weight * part
        for i, (s_name, _) in enumerate(cfg.attention):
            part = attention_loss(s_attn[s_name], t_out[f"attention:{i}"], kind=cfg.attention_kind)
            parts[f"attention:{s_name}"] = float(part.detach())
            loss = loss + cfg.attention_weight * part
        return DistillOutput(logits=logits, loss=loss, parts=parts)
