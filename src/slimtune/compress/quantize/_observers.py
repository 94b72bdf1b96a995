"""Observers: pick a clipping range ``[lo, hi]`` per group from the data they have seen.

``minmax`` (running extremes), ``moving_average`` (exponential average of batch extremes),
``percentile`` (average of batch percentiles), ``mse`` (the clipping ratio of the min-max range
that minimises the quantisation MSE, per group) and ``histogram`` (the threshold minimising the KL
divergence between the clipped-and-quantised and the original distributions, TensorRT style).
All observers receive grouped views ``(G, n)`` and return ``(G,)`` tensors.
"""

from __future__ import annotations

import torch

from slimtune.compress.quantize._affine import fake_quantize, qparams
from slimtune.compress.quantize._spec import QuantSpec

__all__ = ["Observer", "make_observer"]

_SAMPLE_CAP = 1 << 18  # values kept per group-set for the MSE and histogram searches


class Observer:
    """Running statistics of grouped views; :meth:`range` gives the clipping range."""

    def __init__(self, spec: QuantSpec) -> None:
        self.spec = spec
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None
        self.batches = 0

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.lo = self.hi = None
        self.batches = 0

    @torch.no_grad()
    def update(self, v: torch.Tensor) -> None:
        """Record one grouped view ``(G, n)``."""
        v = v.detach().float()
        lo, hi = self._batch_range(v)
        if self.lo is None or self.hi is None or self.lo.shape != lo.shape:
            self.lo, self.hi = lo, hi
        else:
            self.lo, self.hi = self._combine(self.lo, self.hi, lo, hi)
        self.batches += 1

    def _batch_range(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return v.amin(dim=1), v.amax(dim=1)

    def _combine(
        self, lo: torch.Tensor, hi: torch.Tensor, new_lo: torch.Tensor, new_hi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.minimum(lo, new_lo), torch.maximum(hi, new_hi)

    @property
    def ready(self) -> bool:
        """Whether any data has been seen."""
        return self.lo is not None

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The clipping range ``(lo, hi)``, each ``(G,)``."""
        if self.lo is None or self.hi is None:
            raise RuntimeError("the observer has seen no data; run calibration batches first.")
        return self.lo, self.hi


class MovingAverageObserver(Observer):
    """Exponential moving average of the batch extremes (the usual QAT activation observer)."""

    def _combine(
        self, lo: torch.Tensor, hi: torch.Tensor, new_lo: torch.Tensor, new_hi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.spec.averaging_constant
        return lo + c * (new_lo - lo), hi + c * (new_hi - hi)


class PercentileObserver(Observer):
    """Mean over batches of the lower and upper ``percentile`` of each group."""

    def _batch_range(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = _subsample(v)
        q = self.spec.percentile / 100.0
        return torch.quantile(v, 1.0 - q, dim=1), torch.quantile(v, q, dim=1)

    def _combine(
        self, lo: torch.Tensor, hi: torch.Tensor, new_lo: torch.Tensor, new_hi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.batches
        return (lo * n + new_lo) / (n + 1), (hi * n + new_hi) / (n + 1)


class _SampleObserver(Observer):
    """Keeps min-max and a bounded sample of the data for a search at :meth:`range` time."""

    def __init__(self, spec: QuantSpec) -> None:
        super().__init__(spec)
        self.samples: list[torch.Tensor] = []

    def reset(self) -> None:
        super().reset()
        self.samples = []

    @torch.no_grad()
    def update(self, v: torch.Tensor) -> None:
        super().update(v)
        if self.samples and self.samples[0].shape[0] != v.shape[0]:
            self.samples = []
        self.samples.append(_subsample(v.detach().float()))
        total = sum(s.shape[1] for s in self.samples)
        while len(self.samples) > 1 and total > _SAMPLE_CAP:
            total -= self.samples.pop(0).shape[1]

    def _data(self) -> torch.Tensor:
        return torch.cat(self.samples, dim=1)


class MSEObserver(_SampleObserver):
    """Per group, the shrink factor of the min-max range with the least quantisation MSE."""

    ratios = torch.linspace(0.3, 1.0, 36)

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = super().range()
        data = self._data()
        best = torch.full_like(lo, float("inf"))
        best_lo, best_hi = lo.clone(), hi.clone()
        for r in self.ratios.tolist():
            c_lo, c_hi = lo * r, hi * r
            scale, zero = qparams(c_lo, c_hi, self.spec)
            err = (fake_quantize(data, scale, zero, self.spec) - data).pow(2).mean(dim=1)
            better = err < best
            best = torch.where(better, err, best)
            best_lo = torch.where(better, c_lo, best_lo)
            best_hi = torch.where(better, c_hi, best_hi)
        return best_lo, best_hi


class HistogramObserver(_SampleObserver):
    """The clipping threshold minimising KL(P || Q) over a 2048-bin histogram (per tensor)."""

    bins = 2048

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = super().range()
        data = self._data()[0]
        signed = bool(lo[0] < 0)
        levels = self.spec.qmax - self.spec.qmin + 1
        if signed:
            levels //= 2
        mags = data.abs() if signed else data.clamp_min(0)
        top = float(mags.max())
        if top <= 0.0:
            return lo, hi
        hist = torch.histc(mags, bins=self.bins, min=0.0, max=top).double()
        best_t, best_kl = self.bins, float("inf")
        for t in range(max(levels, 16), self.bins + 1, 16):
            kl = _kl_for_threshold(hist, t, levels)
            if kl < best_kl:
                best_kl, best_t = kl, t
        thr = top * best_t / self.bins
        t_lo = torch.full_like(lo, -thr) if signed else lo.clamp_min(-thr)
        return torch.maximum(lo, t_lo), torch.minimum(hi, torch.full_like(hi, thr))


def _kl_for_threshold(hist: torch.Tensor, t: int, levels: int) -> float:
    p = hist[:t].clone()
    p[t - 1] += hist[t:].sum()
    if p.sum() <= 0:
        return float("inf")
    h = hist[:t]
    nonzero = (h > 0).double()
    n_chunks = min(levels, t)
    chunk = torch.arange(t) * n_chunks // t
    sums = torch.zeros(n_chunks, dtype=h.dtype).scatter_add_(0, chunk, h)
    counts = torch.zeros(n_chunks, dtype=h.dtype).scatter_add_(0, chunk, nonzero)
    q = nonzero * sums[chunk] / counts[chunk].clamp_min(1.0)
    p, q = p / p.sum(), q / q.sum().clamp_min(1e-30)
    keep = p > 0
    return float((p[keep] * torch.log(p[keep] / q[keep].clamp_min(1e-30))).sum())


def _subsample(v: torch.Tensor) -> torch.Tensor:
    """A deterministic strided subsample of the columns, at most ``_SAMPLE_CAP / G`` per row."""
    per_row = max(_SAMPLE_CAP // max(v.shape[0], 1), 64)
    if v.shape[1] <= per_row:
        return v
    step = -(-v.shape[1] // per_row)
    return v[:, ::step]


def make_observer(spec: QuantSpec) -> Observer:
    """The observer named by ``spec.observer``."""
    kinds: dict[str, type[Observer]] = {
        "minmax": Observer,
        "moving_average": MovingAverageObserver,
        "percentile": PercentileObserver,
        "mse": MSEObserver,
        "histogram": HistogramObserver,
    }
    return kinds[spec.observer](spec)
