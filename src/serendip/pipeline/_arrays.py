"""Small array helpers of the request path."""

from __future__ import annotations

import numpy as np

__all__ = ["among"]


def among(items: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bool per item: is it among `values`? `np.isin` for integer arrays, without its default
    of sorting both arrays together on every call (what dominates when a user's few hundred
    history items meet a source's thousands): a lookup table over the values' range where
    that range is small next to the items (tens of thousands of items against a catalog's
    indices), else a binary search in the sorted values."""
    items = np.asarray(items)
    ref = np.asarray(values).ravel()
    if len(ref) == 0 or items.size == 0:
        return np.zeros(items.shape, dtype=bool)
    lo, hi = int(ref.min()), int(ref.max())
    if hi - lo < 4 * items.size:
        return np.asarray(np.isin(items, ref, kind="table"), dtype=bool)
    ref = np.sort(ref)
    pos = np.minimum(np.searchsorted(ref, items), len(ref) - 1)
    return np.asarray(ref[pos] == items, dtype=bool)
