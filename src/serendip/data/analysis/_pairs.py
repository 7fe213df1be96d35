"""Interactions grouped by distinct (user, item) pair: the one sort the analysis shares.

Sorting the pair keys once gives, per distinct pair, its number of rows, its earliest timestamp
and the set of event types, which the counts, the funnel, the duplicate check and the
in-network measure all reuse instead of re-grouping the log each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import Dataset


@dataclass(frozen=True, slots=True, eq=False)
class PairIndex:
    """Distinct (user, item) pairs of a dataset's interactions, sorted by pair key.

    Pairs are ordered by key = user * n_items + item. `order` (int64, n_interactions) lists interaction rows
    grouped by pair; the rows of pair p are `order[starts[p] : starts[p] + sizes[p]]`.
    `first_ts` (float64, n_pairs) is the earliest known timestamp of the pair (NaN if none);
    `events` (uint8, n_pairs) has bit e set when the pair has an event of code e.
    `users`, `items` (int32, n_pairs): the pair's user and item (users ascending).
    """

    n_users: int
    n_items: int
    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    first_ts: np.ndarray
    events: np.ndarray
    users: np.ndarray
    items: np.ndarray
    _csr: sp.csr_array | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.starts)

    @classmethod
    def build(cls, ds: Dataset) -> PairIndex:
        it = ds.interactions
        n = len(it)
        n_items = max(ds.n_items, 1)
        if n == 0:
            empty_i = np.zeros(0, np.int64)
            empty32 = np.zeros(0, np.int32)
            return cls(
                ds.n_users,
                n_items,
                empty_i,
                empty_i,
                empty_i,
                np.zeros(0),
                np.zeros(0, np.uint8),
                empty32,
                empty32,
            )
        key = it.user.astype(np.int64) * n_items + it.item
        # Quicksort (not stable): only grouping matters, and it is faster than a stable sort.
        order = np.argsort(key)
        sorted_key = key[order]
        del key
        boundary = np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1
        starts = np.concatenate([[0], boundary]).astype(np.int64)
        keys = sorted_key[starts]
        del sorted_key
        sizes = np.diff(np.append(starts, n))
        first_ts = np.fmin.reduceat(it.timestamp[order], starts)
        bits = np.left_shift(np.uint8(1), it.event.astype(np.uint8))
        events = np.bitwise_or.reduceat(bits[order], starts)
        users = (keys // n_items).astype(np.int32)
        items = (keys - users.astype(np.int64) * n_items).astype(np.int32)
        return cls(ds.n_users, n_items, order, starts, sizes, first_ts, events, users, items)

    def first_seen_by_user(self) -> np.ndarray:
        """Earliest known timestamp of each user (float64, n_users; NaN = none known)."""
        out = np.full(self.n_users, np.nan)
        if len(self):
            starts = np.flatnonzero(np.r_[True, self.users[1:] != self.users[:-1]])
            out[self.users[starts]] = np.fmin.reduceat(self.first_ts, starts)
        return out

    def first_seen_by_item(self) -> np.ndarray:
        """Earliest known timestamp of each item (float64, n_items; NaN = none known)."""
        out = np.full(self.n_items, np.nan)
        if len(self):
            # A CSR -> CSC conversion is a linear-time counting sort in C; a per-column fmin
            # over it is faster than np.fmin.at (unbuffered, one element at a time).
            m = sp.csr_array(
                (self.first_ts, self.items, self._indptr()), shape=(self.n_users, self.n_items)
            )
            c = m.tocsc()
            nonempty = np.flatnonzero(np.diff(c.indptr))
            out[nonempty] = np.fmin.reduceat(c.data, c.indptr[nonempty])
        return out

    def _indptr(self) -> np.ndarray:
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        if len(self):
            np.cumsum(np.bincount(self.users, minlength=self.n_users), out=indptr[1:])
        return indptr

    def csr(self) -> sp.csr_array:
        """n_users x n_items CSR whose entry (u, i) is 1 + the position of pair (u, i), 0 if absent.

        The pairs are already sorted by (user, item), so this is built without another sort.
        Looking up many pairs through it (`lookup`) binary-searches one short row each, which is
        far faster than a binary search over all pair keys (cache misses dominate that).
        """
        if self._csr is None:
            data = np.arange(1, len(self) + 1, dtype=np.int64)
            m = sp.csr_array((data, self.items, self._indptr()), shape=(self.n_users, self.n_items))
            m.has_sorted_indices = True
            object.__setattr__(self, "_csr", m)
        assert self._csr is not None
        return self._csr

    def lookup(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Pair position of each (user, item) (int64), -1 where the pair does not occur."""
        if len(users) == 0 or len(self) == 0:
            return np.full(len(users), -1, dtype=np.int64)
        return np.asarray(self.csr()[users, items], dtype=np.int64) - 1
