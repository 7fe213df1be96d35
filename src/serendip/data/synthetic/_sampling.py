"""Vectorised weighted sampling within groups (CSR layout), the workhorse of the generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GroupedSampler", "csr_from_groups", "expand_ranges"]


@dataclass(frozen=True, slots=True)
class GroupedSampler:
    """Draw one element per query from its group, with probability proportional to weight.

    Groups are contiguous slices `indptr[g]:indptr[g+1]` of an element array; `cum` holds, for
    element j of group g, g + (cumulative weight up to and including j) / (group total), so a
    single `searchsorted` on g + u (u uniform in [0, 1)) samples every query at once.
    """

    indptr: np.ndarray
    cum: np.ndarray

    @classmethod
    def build(cls, indptr: np.ndarray, weights: np.ndarray) -> GroupedSampler:
        indptr = np.asarray(indptr, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64)
        n_groups = len(indptr) - 1
        sizes = np.diff(indptr)
        group = np.repeat(np.arange(n_groups, dtype=np.float64), sizes)
        csum = np.cumsum(w)
        start = np.concatenate([[0.0], csum])[indptr[:-1]]
        total = np.concatenate([[0.0], csum])[indptr[1:]] - start
        total[total <= 0] = 1.0
        within = (csum - np.repeat(start, sizes)) / np.repeat(total, sizes)
        return cls(indptr=indptr, cum=group + np.minimum(within, 1.0))

    def sample(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Element positions (int64), -1 where the group is empty."""
        g = np.asarray(groups, dtype=np.int64)
        u = rng.random(len(g))
        x = g + u
        if len(x) > 64 and len(self.cum) > 4096:  # sorted probes are far faster on big arrays
            order = np.argsort(x)
            pos = np.empty(len(x), dtype=np.int64)
            pos[order] = np.searchsorted(self.cum, x[order], side="right")
        else:
            pos = np.searchsorted(self.cum, x, side="right")
        lo, hi = self.indptr[g], self.indptr[g + 1]
        pos = np.clip(pos, lo, np.maximum(hi - 1, lo))
        return np.where(hi > lo, pos, -1)

    def group_size(self, groups: np.ndarray) -> np.ndarray:
        g = np.asarray(groups, dtype=np.int64)
        return self.indptr[g + 1] - self.indptr[g]


def csr_from_groups(
    group: np.ndarray, n_groups: int, order_key: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, order): `order` lists element positions grouped by `group`, by `order_key` within."""
    keys = (group,) if order_key is None else (order_key, group)
    order = np.lexsort(keys)
    counts = np.bincount(group, minlength=n_groups)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, order


def expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All positions in [lo[j], hi[j]) for every j: (positions, owner j), both int64."""
    lengths = np.maximum(np.asarray(hi, dtype=np.int64) - np.asarray(lo, dtype=np.int64), 0)
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    pos = (
        np.arange(int(lengths.sum()), dtype=np.int64)
        - np.repeat(starts, lengths)
        + np.repeat(lo, lengths)
    )
    return pos, owner
