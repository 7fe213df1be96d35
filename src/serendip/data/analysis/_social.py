"""Social graph statistics and the share of consumption that is in-network."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from serendip.data.analysis._model import InNetworkStats, SocialStats
from serendip.data.analysis._pairs import PairIndex
from serendip.data.analysis._stats import distribution, log_histogram, ratio
from serendip.data.dataset import Dataset

#: Above this many (interaction, followee) lookups the followee part runs on a sample.
EXACT_LOOKUP_BUDGET = 30_000_000
#: Lookups per vectorised chunk (bounds the temporary arrays to a few hundred MB).
_CHUNK_LOOKUPS = 4_000_000
#: Interaction rows per chunk of the author check.
_CHUNK_ROWS = 4_000_000


def _follow_matrix(ds: Dataset, *, drop_self: bool) -> sp.csr_matrix:
    """n_users x n_users CSR with sorted column indices, A[follower, followee] = 1."""
    f, g = ds.social.follower, ds.social.followee
    if drop_self:
        keep = f != g
        f, g = f[keep], g[keep]
    n = ds.n_users
    a = sp.csr_matrix((np.ones(len(f), np.int8), (f, g)), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1
    a.sort_indices()
    return a


def social_stats(ds: Dataset) -> SocialStats:
    """Degrees, reciprocity and weak components of the follow graph (O(E + n_users))."""
    n = ds.n_users
    a = _follow_matrix(ds, drop_self=False)
    out_deg = np.diff(a.indptr).astype(np.int64)
    in_deg = np.bincount(a.indices, minlength=n).astype(np.int64)
    n_self = int(np.count_nonzero(ds.social.follower == ds.social.followee))

    # Reciprocity over non-self edges: an edge's reverse key is looked up among the sorted keys
    # (CSR rows in order with sorted columns, so row * n + col is already ascending).
    rows = np.repeat(np.arange(n, dtype=np.int64), out_deg)
    cols = a.indices.astype(np.int64)
    nonself = rows != cols
    keys = rows * n + cols
    rev = cols[nonself] * n + rows[nonself]
    pos = np.minimum(np.searchsorted(keys, rev), max(len(keys) - 1, 0))
    reciprocal = int(np.count_nonzero(keys[pos] == rev)) if len(keys) else 0

    in_graph = (out_deg + in_deg) > 0
    n_in_graph = int(in_graph.sum())
    if n_in_graph:
        _, labels = connected_components(a, directed=True, connection="weak")
        sizes = np.bincount(labels[in_graph])
        sizes = sizes[sizes > 0]
        n_components, largest = len(sizes), int(sizes.max())
    else:
        n_components, largest = 0, 0

    return SocialStats(
        n_nodes=n,
        n_edges=len(ds.social),
        n_users_in_graph=n_in_graph,
        in_degree=distribution(in_deg),
        out_degree=distribution(out_deg),
        in_degree_histogram=log_histogram(in_deg),
        out_degree_histogram=log_histogram(out_deg),
        max_in_degree=int(in_deg.max()) if n else 0,
        max_out_degree=int(out_deg.max()) if n else 0,
        reciprocity=ratio(reciprocal, int(nonself.sum())),
        n_self_follows=n_self,
        n_components=n_components,
        largest_component_size=largest,
        largest_component_share=ratio(largest, n_in_graph),
        largest_component_share_of_all_users=ratio(largest, n),
        users_without_followees=int(np.count_nonzero(out_deg == 0)),
        users_without_followees_share=ratio(int(np.count_nonzero(out_deg == 0)), n),
        users_without_followers=int(np.count_nonzero(in_deg == 0)),
        isolated_users=int(n - n_in_graph),
        isolated_users_share=ratio(n - n_in_graph, n),
    )


def in_network_stats(
    ds: Dataset,
    pairs: PairIndex,
    *,
    sample_size: int = 200_000,
    seed: int = 0,
    exact_budget: int = EXACT_LOOKUP_BUDGET,
) -> InNetworkStats:
    """Share of interactions on in-network content (see `InNetworkStats`).

    The author part is exact: each row's author is binary-searched in its user's sorted
    followee row, O(N log deg). The followee part expands each evaluated row (u, i, t)
    into its (followee f, i) pairs and binary-searches i in f's row of distinct interaction
    pairs, whose earliest timestamp says whether f touched i before t: O(sum of out-degrees x
    log activity).
    When that sum exceeds `exact_budget` lookups (the 20M-interaction platform: ~1e9), the
    followee part runs on a uniform sample of `sample_size` rows drawn with `seed`.
    """
    it = ds.interactions
    n = len(it)
    a = _follow_matrix(ds, drop_self=True)
    out_deg = np.diff(a.indptr).astype(np.int64)
    follows = sp.csr_array(a)

    author = ds.item_author_index()
    author_followed = np.zeros(n, dtype=bool)
    known_author = 0
    for lo in range(0, n, _CHUNK_ROWS):
        hi = min(lo + _CHUNK_ROWS, n)
        au = author[it.item[lo:hi]]
        ok = au >= 0
        known_author += int(ok.sum())
        if ok.any() and follows.nnz:
            # Sampling the CSR binary-searches the user's short followee row: far cheaper than a
            # search over all edge keys.
            author_followed[lo:hi][ok] = np.asarray(follows[it.user[lo:hi][ok], au[ok]]) > 0

    row_deg = out_deg[it.user] if n else np.zeros(0, np.int64)
    total_lookups = int(row_deg.sum())
    if total_lookups <= exact_budget or n <= sample_size:
        method: str = "exact"
        rows = np.arange(n, dtype=np.int64)
        sample_seed = None
    else:
        method = "sample"
        rows = np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))
        sample_seed = seed

    timed = it.has_timestamps
    followee_hit = _followee_interacted(ds, pairs, a, out_deg, rows, timed=timed)
    either = followee_hit | author_followed[rows]
    note = (
        f"followee part evaluated on all {n} interactions ({total_lookups} lookups)"
        if method == "exact"
        else f"followee part evaluated on a uniform sample of {len(rows)} of {n} interactions "
        f"(seed {seed}); exact would need {total_lookups} lookups"
    )
    return InNetworkStats(
        n_interactions=n,
        share_with_known_author=ratio(known_author, n),
        share_author_followed=ratio(int(author_followed.sum()), n),
        share_followee_interacted=ratio(int(followee_hit.sum()), len(rows)),
        share_in_network=ratio(int(either.sum()), len(rows)),
        share_by_users_with_followees=ratio(int(np.count_nonzero(row_deg > 0)), n),
        method="exact" if method == "exact" else "sample",
        n_evaluated=len(rows),
        sample_seed=sample_seed,
        timing="strictly before" if timed else "at any time",
        note=note,
    )


def _followee_interacted(
    ds: Dataset,
    pairs: PairIndex,
    a: sp.csr_matrix,
    out_deg: np.ndarray,
    rows: np.ndarray,
    *,
    timed: bool,
) -> np.ndarray:
    """For each interaction row: did some followee of its user interact with its item before it?

    Rows are processed in chunks of about `_CHUNK_LOOKUPS` (row, followee) expansions. A row
    with an unknown timestamp (or a dataset without any) counts a followee's interaction at any
    time; a followee pair without a known time never counts as "before" a timed row.
    """
    it = ds.interactions
    hit = np.zeros(len(rows), dtype=bool)
    if len(rows) == 0 or len(pairs) == 0:
        return hit
    deg = out_deg[it.user[rows]]
    cum = np.cumsum(deg)
    # Chunk boundaries where the running number of lookups crosses each multiple of the budget.
    cuts = np.searchsorted(
        cum, np.arange(_CHUNK_LOOKUPS, int(cum[-1]) + 1, _CHUNK_LOOKUPS), side="right"
    )
    bounds = np.unique(np.concatenate([[0], cuts, [len(rows)]]))
    for lo, hi in itertools.pairwise(bounds):
        r = rows[lo:hi]
        d = deg[lo:hi]
        total = int(d.sum())
        if total == 0:
            continue
        u = it.user[r].astype(np.int64)
        local = np.repeat(np.arange(len(r), dtype=np.int64), d)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(d) - d, d)
        followee = a.indices[np.repeat(a.indptr[u], d) + offsets].astype(np.int64)
        pos = pairs.lookup(followee, it.item[r][local])
        found = pos >= 0
        if timed:
            t = it.timestamp[r][local]
            before = pairs.first_ts[np.where(found, pos, 0)] < t
            found &= before | np.isnan(t)
        hit[lo:hi] = np.bincount(local[found], minlength=len(r)) > 0
    return hit
