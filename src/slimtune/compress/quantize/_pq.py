"""Product quantisation of weights: sub-vectors of each row coded by k-means codebooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from slimtune._rng import check_seed

__all__ = ["PQSpec", "PQWeight", "product_quantize"]


@dataclass(frozen=True, kw_only=True)
class PQSpec:
    """Rows of a weight (``out x in``) split into sub-vectors of ``block_size`` columns, each
    replaced by the nearest of ``codebook_size`` centroids (<= 256: uint8 codes).

    ``codebooks="layer"`` shares one codebook by all column blocks of a layer (small files, as
    in Stock et al., 2020); ``"block"`` gives every column block its own codebook (lower error,
    but ``in_features * codebook_size`` floats of codebooks per layer).
    """

    block_size: int = 4
    codebook_size: int = 256
    codebooks: Literal["layer", "block"] = "layer"
    iterations: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"`block_size` must be an int >= 1, got {self.block_size!r}.")
        if not isinstance(self.codebook_size, int) or not 2 <= self.codebook_size <= 256:
            raise ValueError(
                f"`codebook_size` must be an int in [2, 256] (uint8 codes), got "
                f"{self.codebook_size!r}."
            )
        if self.codebooks not in ("layer", "block"):
            raise ValueError(f"`codebooks` must be 'layer' or 'block', got {self.codebooks!r}.")
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"`iterations` must be an int >= 1, got {self.iterations!r}.")
        check_seed(self.seed)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "block_size": self.block_size,
            "codebook_size": self.codebook_size,
            "codebooks": self.codebooks,
            "iterations": self.iterations,
            "seed": self.seed,
        }


@torch.no_grad()
def product_quantize(w: torch.Tensor, spec: PQSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, codebooks)`` of ``w``: uint8 ``(out, blocks)`` and float ``(C, K, d)`` with
    ``C = 1`` (``codebooks="layer"``) or ``C = blocks``; ``K <= codebook_size`` (fewer when
    there are fewer sub-vectors than centroids).

    The number of input elements per row (``w[0].numel()``) must be divisible by ``block_size``.
    """
    rows = w.detach().float().reshape(w.shape[0], -1)
    out, n_in = rows.shape
    d = spec.block_size
    if n_in % d:
        raise ValueError(
            f"`block_size`={d} must divide the {n_in} input elements per row of a weight of "
            f"shape {tuple(w.shape)}; pick a divisor."
        )
    x = rows.reshape(out, n_in // d, d).transpose(0, 1).contiguous()  # (B, out, d)
    if spec.codebooks == "layer":
        x = x.reshape(1, -1, d)
    points = x.shape[1]
    k = min(spec.codebook_size, points)
    gen = torch.Generator().manual_seed(spec.seed)
    init = torch.stack([torch.randperm(points, generator=gen)[:k] for _ in range(x.shape[0])])
    cents = torch.gather(x, 1, init.unsqueeze(-1).expand(-1, -1, d)).clone()
    for _ in range(spec.iterations):
        assign = _nearest(x, cents)
        sums = torch.zeros_like(cents).scatter_add_(1, assign.unsqueeze(-1).expand(-1, -1, d), x)
        counts = torch.zeros(x.shape[0], k).scatter_add_(1, assign, torch.ones_like(x[..., 0]))
        filled = counts > 0
        cents = torch.where(filled.unsqueeze(-1), sums / counts.clamp_min(1).unsqueeze(-1), cents)
    assign = _nearest(x, cents)  # (C, points)
    codes = assign.reshape(-1, out)  # (B, out): point b * out + o is block b of row o
    return codes.transpose(0, 1).to(torch.uint8).contiguous(), cents


def _nearest(x: torch.Tensor, cents: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """Index of the nearest centroid for every point, in chunks to bound memory."""
    return torch.cat(
        [torch.cdist(part, cents).argmin(dim=2) for part in x.split(chunk, dim=1)], dim=1
    )


def pq_reconstruct(codes: torch.Tensor, codebooks: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The weight of ``shape`` coded by ``codes`` ``(out, B)`` and ``codebooks`` ``(C, K, d)``
    (``C`` is 1 for a shared codebook or ``B``)."""
    idx = codes.long().transpose(0, 1)  # (B, out)
    d = codebooks.shape[2]
    if codebooks.shape[0] == 1 and idx.shape[0] > 1:
        vecs = codebooks[0][idx]  # (B, out, d)
    else:
        vecs = torch.gather(codebooks, 1, idx.unsqueeze(-1).expand(-1, -1, d))
    return vecs.transpose(0, 1).reshape(shape)


class PQWeight(nn.Module):
    """Replaces a weight by its product-quantised reconstruction (fixed; not trainable)."""

    codes: torch.Tensor
    codebooks: torch.Tensor

    def __init__(self, w: torch.Tensor, spec: PQSpec) -> None:
        super().__init__()
        self.spec = spec
        codes, books = product_quantize(w, spec)
        self.register_buffer("codes", codes)
        self.register_buffer("codebooks", books)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return pq_reconstruct(self.codes, self.codebooks, w.shape).to(w.dtype)
