"""Social pieces shared by the in-network and explore sources and the feature builder: who acted
on what and when (event-weighted), learned tie strengths of follow edges, and the privacy rule.

Privacy rule (one place): a user whose `user_meta.private` is true has activity hidden from
others. Their likes, shares and views never produce a candidate, a feature or an evidence entry
for anyone else, so neither the list nor its explanation can reveal it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import EVENT_TYPES, Dataset
from serendip.models.content import empty_csr
from serendip.pipeline.candidates import UserContext

__all__ = [
    "ActionMatrix",
    "SocialStats",
    "action_matrix",
    "event_weight_vector",
    "row_slices",
    "social_stats",
]

_EDGE_CHUNK = 32_768

#: Event weights of social signals: a view says little, a share says most.
SOCIAL_EVENT_WEIGHTS: dict[str, float] = {
    "view": 0.1,
    "click": 0.3,
    "like": 1.0,
    "comment": 1.2,
    "share": 1.5,
    "rating": 1.0,
}


def event_weight_vector(weights: Mapping[str, float]) -> np.ndarray:
    """Weights indexed by event code (missing events weigh 0)."""
    return np.array([float(weights.get(e, 0.0)) for e in EVENT_TYPES], dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class ActionMatrix:
    """Per (user, item) pair: summed event weight and the latest action time.

    weights: float32 CSR n_users x n_items, sorted indices; time: float64 aligned with
    `weights.data` (epoch seconds of the user's latest action on the item; NaN unknown);
    first: float64 aligned, the earliest action time.
    """

    weights: sp.csr_matrix
    time: np.ndarray
    first: np.ndarray

    def to_arrays(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}.weights": self.weights,
            f"{prefix}.time": self.time,
            f"{prefix}.first": self.first,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], prefix: str) -> ActionMatrix:
        w = sp.csr_matrix(arrays[f"{prefix}.weights"], dtype=np.float32)
        return cls(
            w,
            np.asarray(arrays[f"{prefix}.time"], np.float64),
            np.asarray(arrays[f"{prefix}.first"], np.float64),
        )


def action_matrix(dataset: Dataset, event_weights: Mapping[str, float]) -> ActionMatrix:
    """Aggregate the interaction log into one entry per (user, item) pair. Pairs whose summed
    weight is 0 are dropped (e.g. views when views weigh 0)."""
    it = dataset.interactions
    n_items = dataset.n_items
    w = event_weight_vector(event_weights)[it.event]
    ts = it.timestamp
    order, uniq, start = dataset.pair_groups()  # by pair, then time (NaN last)
    total = np.add.reduceat(w[order], start) if len(start) else np.zeros(0)
    t_sorted = ts[order]
    first = t_sorted[start] if len(start) else np.zeros(0)
    # latest known time of each pair (NaN = unknown counts as -inf, then back to NaN)
    filled = np.where(np.isnan(t_sorted), -np.inf, t_sorted)
    last = np.maximum.reduceat(filled, start) if len(start) else np.zeros(0)
    last = np.where(np.isneginf(last), np.nan, last)
    keep = total > 0
    rows = (uniq[keep] // n_items).astype(np.int64)
    cols = (uniq[keep] % n_items).astype(np.int64)
    # CSR built from sorted (row, col) keys keeps the data in key order, aligned with time
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dataset.n_users))])
    weights = sp.csr_matrix(
        (total[keep].astype(np.float32), cols.astype(np.int32), indptr.astype(np.int64)),
        shape=(dataset.n_users, n_items),
    )
    return ActionMatrix(weights, last[keep].astype(np.float64), first[keep].astype(np.float64))


def row_slices(
    m: sp.csr_matrix | sp.csc_matrix, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated (owner position, column, data position) of the given CSR rows (of a CSC
    matrix: its columns, and their row indices): a cheap gather for a few rows (no scipy fancy
    indexing). owner[k] is the position in `rows`."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    starts = m.indptr[rows]
    ends = m.indptr[rows + 1]
    lens = ends - starts
    total = int(lens.sum())
    if total == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    owner = np.repeat(np.arange(len(rows)), lens)
    offsets = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
    pos = np.repeat(starts, lens) + offsets
    return owner, m.indices[pos].astype(np.int64), pos


@dataclass(frozen=True, slots=True, eq=False)
class SocialStats:
    """Follow graph, learned tie strengths and privacy flags of a fitted dataset.

    tie(u, v) for an edge u -> v = (|F(u)| * hits(u, v) + prior) / (total(u) + prior), where
    hits(u, v) is the (event-weighted) activity of u on items v authored plus on items v acted on
    before u did, total(u) all of u's activity, |F(u)| u's number of followees and `prior` a
    smoothing mass: a plain follow with no shared activity is worth prior / (total + prior) (1 for
    a user without history), a followee who accounts for all of u's activity about |F(u)|.

    follow: float32 CSR n_users x n_users (1 per edge); ties: float32 CSR, same pattern;
    total: float64 (n_users,); private: bool (n_users,); author: int64 (n_items,) author's user
    index or -1.
    """

    follow: sp.csr_matrix
    ties: sp.csr_matrix
    total: np.ndarray
    private: np.ndarray
    author: np.ndarray
    prior: float

    def to_arrays(self) -> dict[str, Any]:
        return {
            "social.follow": self.follow,
            "social.ties": self.ties,
            "social.total": self.total,
            "social.private": self.private,
            "social.author": self.author,
            "social.prior": np.array([self.prior]),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> SocialStats:
        return cls(
            sp.csr_matrix(arrays["social.follow"], dtype=np.float32),
            sp.csr_matrix(arrays["social.ties"], dtype=np.float32),
            np.asarray(arrays["social.total"], np.float64),
            np.asarray(arrays["social.private"], bool),
            np.asarray(arrays["social.author"], np.int64),
            float(np.asarray(arrays["social.prior"])[0]),
        )

    @property
    def n_users(self) -> int:
        return len(self.private)

    def followee_ties(self, ctx: UserContext) -> tuple[np.ndarray, np.ndarray]:
        """The context's public followees (fitted user indices) and their tie strengths.

        Followees come from the context (so live follows count); a follow the fitted data does
        not hold gets the plain-follow prior. Private followees are dropped (privacy rule)."""
        f = np.unique(np.asarray(ctx.followees, dtype=np.int64))
        f = f[(f >= 0) & (f < self.n_users)]
        f = f[~self.private[f]]
        if ctx.user_idx >= 0:
            f = f[f != ctx.user_idx]
        if len(f) == 0:
            return f, np.zeros(0, np.float64)
        u = ctx.user_idx
        if not 0 <= u < self.n_users:
            return f, np.ones(len(f), np.float64)  # no activity known: a plain follow's tie
        tie = np.full(len(f), self.prior / (self.total[u] + self.prior))
        s, e = self.ties.indptr[u], self.ties.indptr[u + 1]
        cols, vals = self.ties.indices[s:e], self.ties.data[s:e]
        if len(cols):
            pos = np.minimum(np.searchsorted(cols, f), len(cols) - 1)
            found = cols[pos] == f
            tie[found] = vals[pos[found]]
        return f, tie


def social_stats(dataset: Dataset, actions: ActionMatrix, prior: float = 2.0) -> SocialStats:
    """Learn tie strengths from `actions` (see `SocialStats`). Edges are processed in chunks:
    memory stays O(chunk x history length), never n_users x n_users dense."""
    n_users, n_items = dataset.n_users, dataset.n_items
    private = np.asarray(dataset.user_meta.private, dtype=bool)
    author = dataset.item_author_index().astype(np.int64)
    w = actions.weights
    total = np.asarray(w.sum(axis=1), dtype=np.float64).ravel()
    if dataset.has_social:
        f = dataset.social.adjacency(n_users).tocsr().astype(np.float32)
        f.setdiag(0.0)
        f.eliminate_zeros()
        f.sort_indices()
        follow = sp.csr_matrix(f)
    else:
        follow = empty_csr(n_users, n_users)
    coo = follow.tocoo()
    u_all, v_all = coo.row.astype(np.int64), coo.col.astype(np.int64)
    hits = np.zeros(len(u_all), np.float64)
    if len(u_all):
        ok = author >= 0
        authored = sp.csr_matrix(
            (np.ones(int(ok.sum()), np.float32), (author[ok], np.flatnonzero(ok))),
            shape=(n_users, n_items),
        )
        # first-action time matrix, shifted so every stored value is positive
        t = actions.first
        tmin = np.nanmin(t) if np.isfinite(t).any() else 0.0
        tshift = np.nan_to_num(t - tmin + 1.0, nan=1.0)
        first = sp.csr_matrix((tshift, w.indices, w.indptr), shape=w.shape)
        pattern = sp.csr_matrix((np.ones(w.nnz, np.float32), w.indices, w.indptr), shape=w.shape)
        for s in range(0, len(u_all), _EDGE_CHUNK):
            u, v = u_all[s : s + _EDGE_CHUNK], v_all[s : s + _EDGE_CHUNK]
            wu = w[u]
            h = np.asarray(wu.multiply(authored[v]).sum(axis=1)).ravel()
            tu = first[u].multiply(pattern[v])  # u's first time on shared items
            tv = first[v].multiply(pattern[u])  # v's first time on the same items
            earlier = (tu - tv) > 0  # v acted strictly before u
            h += np.asarray(wu.multiply(earlier).sum(axis=1)).ravel()
            hits[s : s + len(u)] = h
    n_followees = np.diff(follow.indptr).astype(np.float64)
    tie = (n_followees[u_all] * hits + prior) / (total[u_all] + prior)
    ties = sp.csr_matrix((tie.astype(np.float32), (u_all, v_all)), shape=(n_users, n_users))
    ties.sort_indices()
    return SocialStats(follow, ties, total, private, author, float(prior))
