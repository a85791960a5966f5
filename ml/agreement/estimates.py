"""Estimates with 95% percentile-bootstrap confidence intervals, and the vectorised resampling
behind them (the package docstring says why a multinomial draw equals item resampling).

The formulas themselves (the percentile interval, kappa of a confusion matrix, the safe ratio)
live once in :mod:`ml.metrics`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.metrics import percentile_ci

N_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% bootstrap CI: ``value`` and ``low``/``high`` may each be ``None``
    (see the package's table of degenerate cases); ``n`` is the number of items behind it."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        """``{"value", "ci": [low, high] or None, "n"}``."""
        ci = None if self.low is None or self.high is None else [self.low, self.high]
        return {"value": self.value, "ci": ci, "n": self.n}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        """Inverse of :meth:`to_dict`."""
        low, high = data["ci"] if data.get("ci") else (None, None)
        return cls(value=data["value"], low=low, high=high, n=int(data.get("n", 0)))


def estimate(value: float | None, replicates: np.ndarray | None, n: int) -> Estimate:
    """Wrap a point value and its bootstrap replicates; no CI for fewer than 2 items."""
    if value is None or replicates is None or n < 2:
        return Estimate(value=value, n=n)
    ci = percentile_ci(replicates, CONFIDENCE)
    low, high = ci if ci else (None, None)
    return Estimate(value=value, low=low, high=high, n=n)


def multinomial_counts(counts: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of a count vector: ``(R, K)`` counts of ``counts.sum()`` items drawn
    with replacement, i.e. item resampling expressed over the ``K`` distinct outcomes."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    out = np.zeros((n_resamples, counts.size), dtype=np.int64)
    nonzero = np.flatnonzero(counts)
    if total:
        rng = np.random.default_rng(seed)
        out[:, nonzero] = rng.multinomial(total, counts[nonzero] / total, size=n_resamples)
    return out


def bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Means of the rows of ``values`` ``(D, n)`` over ``n`` items resampled with replacement,
    the same resample for every row: float64 ``(R, D)``; ``(0, D)`` for fewer than 2 items."""
    values = np.asarray(values, dtype=np.float64)
    dims, n = values.shape
    if n < 2:
        return np.zeros((0, dims))
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, dims), dtype=np.float64)
    chunk = max(1, 2_000_000 // n)  # bounds the index block to ~8 MB
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
        out[start:stop] = values[:, idx].mean(axis=2).T
    return out
