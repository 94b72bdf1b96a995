"""Students built from the teacher: fewer layers (DistilBERT-style) or low-rank Linear layers.

Both return a new model and leave the teacher alone; the student starts from the teacher's
corresponding weights.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["LowRankLinear", "keep_every_kth_layer", "low_rank"]

logger = logging.getLogger(__name__)


def _sequential(model: nn.Module, path: str) -> nn.Sequential:
    try:
        seq = model.get_submodule(path)
    except AttributeError as err:
        raise ValueError(
            f"`paths` names {path!r}, which {type(model).__name__} does not have; use the name "
            "of an nn.Sequential of blocks, e.g. paths=('blocks',)."
        ) from err
    if not isinstance(seq, nn.Sequential):
        raise TypeError(
            f"`paths` entry {path!r} is a {type(seq).__name__}, not an nn.Sequential of blocks."
        )
    return seq


def _units(seq: nn.Sequential) -> list[list[int]]:
    """Group children into layers: a child with parameters plus the parameter-free children
    (activations, pooling, dropout) that follow it."""
    units: list[list[int]] = []
    for i, child in enumerate(seq):
        has_params = any(True for _ in child.parameters())
        if has_params or not units:
            units.append([i])
        else:
            units[-1].append(i)
    return units


def keep_every_kth_layer(
    model: nn.Module,
    *,
    k: int,
    paths: Sequence[str],
    example_inputs: torch.Tensor,
) -> nn.Module:
    """A copy of ``model`` that keeps layers 0, k, 2k, ... of each ``nn.Sequential`` in ``paths``.

    Only *shape-preserving* layers (output shape equal to input shape on ``example_inputs``,
    e.g. transformer blocks, or residual blocks after a stage's first) can be dropped; a layer
    that changes the shape is always kept, and counting restarts after it. A layer is a child
    with parameters together with the parameter-free children that follow it (so ``Linear,
    ReLU`` of an MLP drop together). The kept layers keep the teacher's weights (DistilBERT
    initialises its 6 layers from every second of BERT's 12).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be an int >= 1, got {k!r}. Use k=2 to keep every other layer.")
    if isinstance(paths, str) or not paths:
        raise TypeError(f"`paths` must be a non-empty sequence of module names, got {paths!r}.")
    seqs = {path: _sequential(model, path) for path in paths}
    shapes: dict[tuple[str, int], tuple[torch.Size, torch.Size]] = {}
    handles = []
    for path, seq in seqs.items():
        for i, child in enumerate(seq):

            def hook(
                _m: nn.Module,
                inp: tuple[torch.Tensor, ...],
                out: torch.Tensor,
                key: tuple[str, int] = (path, i),
            ) -> None:
                shapes[key] = (inp[0].shape, out.shape)

            handles.append(child.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(example_inputs).shape
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    student = copy.deepcopy(model)
    for path, seq in seqs.items():
        keep: list[int] = []
        run = 0
        for unit in _units(seq):
            first, last = (path, unit[0]), (path, unit[-1])
            if first not in shapes or last not in shapes:
                raise ValueError(
                    f"layer {path}.{unit[0]} did not run on `example_inputs`; pass inputs that "
                    "exercise every block."
                )
            preserving = shapes[first][0] == shapes[last][1]
            if not preserving:
                keep.extend(unit)
                run = 0
                continue
            if run % k == 0:
                keep.extend(unit)
            run += 1
        new_seq = nn.Sequential(*[copy.deepcopy(seq[i]) for i in keep])
        parent_name, _, attr = path.rpartition(".")
        parent = student.get_submodule(parent_name) if parent_name else student
        setattr(parent, attr, new_seq)
        logger.debug("%s: kept %d of %d children", path, len(keep), len(seq))
    with torch.no_grad():
        student.eval()
        got = student(example_inputs).shape
    student.train(was_training)
    if got != expected:  # pragma: no cover - guarded by the shape rule above
        raise RuntimeError(f"student output shape {tuple(got)} != teacher's {tuple(expected)}.")
    return student


class LowRankLinear(nn.Module):
    """``Linear(in, out)`` factorised as ``second(first(x))`` with ``first: in -> rank`` (no
    bias) and ``second: rank -> out`` (the original bias)."""

    def __init__(self, in_features: int, out_features: int, rank: int, *, bias: bool) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)

    @property
    def rank(self) -> int:
        return int(self.first.out_features)

    @classmethod
    def from_linear(cls, linear: nn.Linear, rank: int) -> LowRankLinear:
        """The best rank-``rank`` approximation of ``linear`` (truncated SVD, split as
        ``U sqrt(S)`` and ``sqrt(S) V^T``)."""
        weight = linear.weight.detach()
        u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
        root = s[:rank].sqrt()
        out = cls(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
        with torch.no_grad():
            out.first.weight.copy_((root[:, None] * vh[:rank]).to(weight.dtype))
            out.second.weight.copy_((u[:, :rank] * root[None, :]).to(weight.dtype))
            if linear.bias is not None:
                out.second.bias.copy_(linear.bias.detach())
        return out.to(weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def low_rank(
    model: nn.Module,
    *,
    rank_ratio: float,
    include: Sequence[str] | None = None,
) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers are replaced by :class:`LowRankLinear`.

    Each replaced layer gets rank ``max(1, round(rank_ratio * min(in, out)))``; a layer is only
    replaced when the factorised pair has fewer parameters than the original. ``include``
    limits the replacement to the named Linear modules (default: every Linear).
    """
    if (
        isinstance(rank_ratio, bool)
        or not isinstance(rank_ratio, int | float)
        or not 0.0 < rank_ratio <= 1.0
    ):
        raise ValueError(f"`rank_ratio` must be a float in (0, 1], got {rank_ratio!r}.")
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    if include is not None:
        missing = sorted(set(include) - set(linears))
        if missing:
            raise ValueError(
                f"`include` names {missing}, which are not nn.Linear modules of "
                f"{type(model).__name__}; pick names from model.named_modules()."
            )
        linears = {n: linears[n] for n in include}
    student = copy.deepcopy(model)
    replaced = 0
    for name in linears:
        layer = student.get_submodule(name)
        assert isinstance(layer, nn.Linear)
        n_in, n_out = layer.in_features, layer.out_features
        rank = max(1, round(rank_ratio * min(n_in, n_out)))
        if rank * (n_in + n_out) >= n_in * n_out:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = student.get_submodule(parent_name) if parent_name else student
        setattr(parent, attr, LowRankLinear.from_linear(layer, rank))
        replaced += 1
    logger.debug("low_rank: replaced %d of %d Linear layers", replaced, len(linears))
    return student
