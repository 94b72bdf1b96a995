"""Product quantisation of weights: sub-vectors of each row coded by k-means codebooks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from slimtune._rng import check_seed

__all__ = ["PQSpec", "PQWeight", "product_quantize"]


@dataclass(frozen=True, kw_only=True)
class PQSpec:
    """Rows of a weight (``out x in``) split into sub-vectors of ``block_size`` columns; each
    column block gets its own codebook of ``codebook_size`` centroids (<= 256: uint8 codes)."""

    block_size: int = 4
    codebook_size: int = 256
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
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"`iterations` must be an int >= 1, got {self.iterations!r}.")
        check_seed(self.seed)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "block_size": self.block_size,
            "codebook_size": self.codebook_size,
            "iterations": self.iterations,
            "seed": self.seed,
        }


@torch.no_grad()
def product_quantize(w: torch.Tensor, spec: PQSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, codebooks)`` of ``w``: uint8 ``(out, blocks)`` and float ``(blocks, K, d)``.

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
    k = min(spec.codebook_size, out)
    gen = torch.Generator().manual_seed(spec.seed)
    init = torch.stack([torch.randperm(out, generator=gen)[:k] for _ in range(x.shape[0])])
    cents = torch.gather(x, 1, init.unsqueeze(-1).expand(-1, -1, d)).clone()
    assign = torch.zeros(x.shape[0], out, dtype=torch.long)
    for _ in range(spec.iterations):
        assign = torch.cdist(x, cents).argmin(dim=2)
        sums = torch.zeros_like(cents).scatter_add_(1, assign.unsqueeze(-1).expand(-1, -1, d), x)
        counts = torch.zeros(x.shape[0], k).scatter_add_(1, assign, torch.ones_like(x[..., 0]))
        filled = counts > 0
        cents = torch.where(filled.unsqueeze(-1), sums / counts.clamp_min(1).unsqueeze(-1), cents)
    assign = torch.cdist(x, cents).argmin(dim=2)
    if k < spec.codebook_size:  # pad so that every codebook has the configured size
        pad = cents[:, :1].expand(-1, spec.codebook_size - k, -1)
        cents = torch.cat([cents, pad], dim=1)
    return assign.transpose(0, 1).to(torch.uint8).contiguous(), cents


def pq_reconstruct(codes: torch.Tensor, codebooks: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The weight of ``shape`` coded by ``codes`` ``(out, B)`` and ``codebooks`` ``(B, K, d)``."""
    idx = codes.long().transpose(0, 1)  # (B, out)
    d = codebooks.shape[2]
    vecs = torch.gather(codebooks, 1, idx.unsqueeze(-1).expand(-1, -1, d))  # (B, out, d)
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
