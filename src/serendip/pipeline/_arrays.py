"""Small array helpers of the request path."""

from __future__ import annotations

import numpy as np

__all__ = ["among"]


def among(items: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bool per item: is it among `values`? `np.isin` for integer arrays, by a binary search in
    the sorted values: `np.isin` sorts both arrays together on every call, which dominates
    when a few hundred values (a user's history) meet a few thousand items (a source's)."""
    items = np.asarray(items)
    ref = np.sort(np.asarray(values).ravel())
    if len(ref) == 0 or items.size == 0:
        return np.zeros(items.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(ref, items), len(ref) - 1)
    return np.asarray(ref[pos] == items, dtype=bool)
