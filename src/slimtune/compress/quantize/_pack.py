"""Bit packing of integer codes: 1, 2 and 4-bit values stored several to a byte."""

from __future__ import annotations

import torch

__all__ = ["pack_bits", "unpack_bits"]


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack non-negative integers ``< 2**bits`` (bits in 1, 2, 4, 8) into a flat uint8 tensor."""
    if bits not in (1, 2, 4, 8):
        raise ValueError(f"`bits` must be 1, 2, 4 or 8 for packing, got {bits!r}.")
    flat = values.reshape(-1).to(torch.int64)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= 2**bits):
        raise ValueError(f"values must lie in [0, {2**bits - 1}] to pack into {bits} bits.")
    if bits == 8:
        return flat.to(torch.uint8)
    per_byte = 8 // bits
    pad = (-flat.numel()) % per_byte
    flat = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, per_byte)
    shifts = torch.arange(per_byte, dtype=torch.int64) * bits
    return (flat << shifts).sum(dim=1).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: the first ``count`` values, as int64."""
    if bits not in (1, 2, 4, 8):
        raise ValueError(f"`bits` must be 1, 2, 4 or 8 for packing, got {bits!r}.")
    flat = packed.reshape(-1).to(torch.int64)
    if bits == 8:
        return flat[:count]
    per_byte = 8 // bits
    shifts = torch.arange(per_byte, dtype=torch.int64) * bits
    return ((flat.unsqueeze(1) >> shifts) & (2**bits - 1)).reshape(-1)[:count]
