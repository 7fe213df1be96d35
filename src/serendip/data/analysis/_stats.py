"""Small numeric helpers shared by the analysis sections (all NaN-free in their output)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from serendip.data.analysis._model import Distribution, Histogram

QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99)


def finite_or_none(x: float | np.floating | None) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def ratio(num: float, den: float) -> float | None:
    """num / den, or None when den is 0 (a share of nothing is undefined, not 0)."""
    return float(num) / float(den) if den else None


def distribution(values: np.ndarray) -> Distribution:
    """Count, mean, std, min, max, median and `QUANTILES` of the finite values.

    One partition pass computes every quantile (the median is p50); nothing is fully sorted.
    """
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.all():
        x = x[finite]
    if x.size == 0:
        return Distribution(0, None, None, None, None, None, {_qname(q): None for q in QUANTILES})
    qs = np.quantile(x, (0.0, *QUANTILES, 1.0))
    quantiles = {_qname(q): float(v) for q, v in zip(QUANTILES, qs[1:-1], strict=True)}
    return Distribution(
        count=int(x.size),
        mean=float(x.mean()),
        std=float(x.std()),
        min=float(qs[0]),
        max=float(qs[-1]),
        median=quantiles["p50"],
        quantiles=quantiles,
    )


def _qname(q: float) -> str:
    return f"p{round(q * 100)}"


def gini(values: np.ndarray) -> float | None:
    """Gini coefficient of non-negative values (0 = all equal, -> 1 = one holds everything).

    G = 2 * sum_k k * x_(k) / (n * sum x) - (n + 1) / n, with x sorted ascending, k = 1..n.
    None for an empty sample or an all-zero one.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    total = x.sum()
    if n == 0 or total <= 0:
        return None
    k = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * np.dot(k, x) / (n * total) - (n + 1.0) / n)


def log_histogram(values: np.ndarray, n_bins: int = 40) -> Histogram | None:
    """Histogram of positive values with geometric bins (integer-aligned for counts)."""
    x = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(x) & (x > 0)
    if not keep.all():
        x = x[keep]
    if x.size == 0:
        return None
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return Histogram((lo, lo + 1.0), (int(x.size),), log_scale=False)
    edges = np.geomspace(lo, hi, n_bins + 1)
    if np.array_equal(x, np.round(x)):
        # Integer data (counts, degrees): snap edges to integers so no bin is empty by construction.
        edges = np.unique(np.round(edges))
    return Histogram(tuple(float(e) for e in edges), _bin_counts(x, edges), log_scale=True)


def linear_histogram(
    values: np.ndarray, n_bins: int = 40, hi: float | None = None
) -> Histogram | None:
    """Histogram with equal-width bins over [min, hi] (default hi: the maximum); values above
    `hi` are left out of the counts (pass a high quantile to keep outliers from flattening it)."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.all():
        x = x[finite]
    if x.size == 0:
        return None
    lo = float(x.min())
    top = float(x.max()) if hi is None else float(hi)
    if top <= lo:
        top = lo + 1.0
    counts, edges = np.histogram(x, bins=n_bins, range=(lo, top))
    return Histogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts), log_scale=False)


def _bin_counts(x: np.ndarray, edges: np.ndarray) -> tuple[int, ...]:
    """Counts of x in [edges[k], edges[k+1]), last bin closed; values outside are dropped.

    A binary search into the few edges plus a bincount, O(n log bins): np.histogram with
    uneven bins sorts the data.
    """
    k = np.searchsorted(edges, x, side="right") - 1
    k[x == edges[-1]] = len(edges) - 2
    k = k[(k >= 0) & (k < len(edges) - 1)]
    return tuple(int(c) for c in np.bincount(k, minlength=len(edges) - 1))


def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC ("2021-03-04T05:06:07Z"), None for unknown/out of range."""
    if ts is None or not math.isfinite(ts):
        return None
    try:
        return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None
