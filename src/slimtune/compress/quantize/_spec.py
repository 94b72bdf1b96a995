"""Quantiser specs: bit-width, range mode, granularity and the observer that sets the range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Granularity", "ObserverName", "QuantSpec", "check_bits"]

Granularity = Literal["tensor", "channel", "group"]
ObserverName = Literal["minmax", "moving_average", "percentile", "mse", "histogram"]

_GRANULARITIES = ("tensor", "channel", "group")
_OBSERVERS = ("minmax", "moving_average", "percentile", "mse", "histogram")


def check_bits(bits: object, *, name: str = "bits") -> int:
    """Validate a bit-width: an int in [1, 8]."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"`{name}` must be an int in [1, 8], got {bits!r}. Pass e.g. {name}=8.")
    return bits


@dataclass(frozen=True, kw_only=True)
class QuantSpec:
    """How one tensor (a weight or an activation) is quantised on a uniform grid.

    ``symmetric=True`` uses a signed grid ``[-2**(bits-1), 2**(bits-1) - 1]`` with zero point 0
    (needs ``bits >= 2``; use ``method="binary"`` for 1-bit weights); ``symmetric=False`` uses an
    unsigned affine grid ``[0, 2**bits - 1]`` with a zero point. ``granularity``: one scale per
    tensor, per channel (along ``axis``) or per group of ``group_size`` consecutive elements of a
    channel. ``observer`` chooses the clipping range from calibration data; ``learnable=True``
    makes the step size a parameter trained by LSQ (Esser et al., 2020).
    """

    bits: int = 8
    symmetric: bool = True
    granularity: Granularity = "tensor"
    axis: int = 0
    group_size: int = 128
    observer: ObserverName = "minmax"
    percentile: float = 99.99
    averaging_constant: float = 0.01
    learnable: bool = False

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if self.symmetric and self.bits < 2:
            raise ValueError(
                "`bits`=1 needs an affine grid: pass symmetric=False, or use method='binary' for "
                "sign weights."
            )
        if self.granularity not in _GRANULARITIES:
            raise ValueError(
                f"`granularity` must be one of {_GRANULARITIES}, got {self.granularity!r}."
            )
        if self.observer not in _OBSERVERS:
            raise ValueError(f"`observer` must be one of {_OBSERVERS}, got {self.observer!r}.")
        if isinstance(self.axis, bool) or not isinstance(self.axis, int):
            raise TypeError(f"`axis` must be an int, got {self.axis!r}.")
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise ValueError(f"`group_size` must be an int >= 1, got {self.group_size!r}.")
        if not 50.0 < self.percentile <= 100.0:
            raise ValueError(f"`percentile` must be in (50, 100], got {self.percentile!r}.")
        if not 0.0 < self.averaging_constant <= 1.0:
            raise ValueError(
                f"`averaging_constant` must be in (0, 1], got {self.averaging_constant!r}."
            )
        if self.observer == "histogram" and self.granularity != "tensor":
            raise ValueError(
                "`observer`='histogram' (KL) works per tensor only, got "
                f"granularity={self.granularity!r}. Use observer='mse' per channel or group."
            )

    @property
    def qmin(self) -> int:
        """Smallest integer code."""
        return -(2 ** (self.bits - 1)) if self.symmetric else 0

    @property
    def qmax(self) -> int:
        """Largest integer code."""
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2**self.bits - 1

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the inverse of ``QuantSpec(**d)``)."""
        return {
            "bits": self.bits,
            "symmetric": self.symmetric,
            "granularity": self.granularity,
            "axis": self.axis,
            "group_size": self.group_size,
            "observer": self.observer,
            "percentile": self.percentile,
            "averaging_constant": self.averaging_constant,
            "learnable": self.learnable,
        }
