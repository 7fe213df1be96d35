"""Graph pieces shared by the social models: follow matrix, learned tie strengths, authorship,
similar-user fallbacks, and the rule that private users are never named."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.content import WeightingConfig, empty_csr

__all__ = [
    "TieConfig",
    "authored_matrix",
    "follow_matrix",
    "row_normalised",
    "similar_users",
    "tie_strengths",
]

_EDGE_CHUNK = 65_536


class TieConfig(WeightingConfig):
    """How strong a follow edge u -> v is, learned from the two users' interactions:

    tie(u, v) = 1 + tie_author_weight * log1p(weight of u's interactions with items v authored)
                  + tie_overlap_weight * cosine(u's items, v's items)
                  + reciprocity_weight * [v also follows u]
    """

    tie_author_weight: float = Field(default=1.0, ge=0)
    tie_overlap_weight: float = Field(default=50.0, ge=0)
    reciprocity_weight: float = Field(default=0.5, ge=0)


def follow_matrix(dataset: Dataset) -> sp.csr_matrix:
    """Binary float32 CSR n_users x n_users, F[u, v] = 1 when u follows v (self-loops dropped)."""
    n = dataset.n_users
    if not dataset.has_social:
        return empty_csr(n, n)
    f = dataset.social.adjacency(n).tocsr().astype(np.float32)
    f.setdiag(0.0)
    f.eliminate_zeros()
    f.sort_indices()
    return sp.csr_matrix(f)


def authored_matrix(dataset: Dataset) -> sp.csr_matrix:
    """Binary float32 CSR n_users x n_items, A[v, i] = 1 when user v authored item i."""
    author = dataset.item_author_index()
    ok = np.flatnonzero(author >= 0)
    return sp.csr_matrix(
        (np.ones(len(ok), np.float32), (author[ok], ok)),
        shape=(dataset.n_users, dataset.n_items),
        dtype=np.float32,
    )


def _edge_dots(
    a: sp.csr_matrix, rows: np.ndarray, b: sp.csr_matrix, cols: np.ndarray
) -> np.ndarray:
    """dot(a[rows[e]], b[cols[e]]) for every edge e, in chunks (no n_users x n_users product)."""
    out = np.zeros(len(rows), np.float64)
    for s in range(0, len(rows), _EDGE_CHUNK):
        r, c = rows[s : s + _EDGE_CHUNK], cols[s : s + _EDGE_CHUNK]
        out[s : s + len(r)] = np.asarray(a[r].multiply(b[c]).sum(axis=1)).ravel()
    return out


def tie_strengths(
    follow: sp.csr_matrix,
    seen: sp.csr_matrix,
    weights: sp.csr_matrix,
    authored: sp.csr_matrix,
    config: TieConfig,
) -> sp.csr_matrix:
    """Float32 CSR with the sparsity of `follow`: the tie strength of every follow edge (see
    `TieConfig`). seen: binary users x items; weights: weighted users x items; authored: users x
    items authorship."""
    coo = follow.tocoo()
    u, v = coo.row.astype(np.int64), coo.col.astype(np.int64)
    tie = np.ones(len(u), np.float64)
    if len(u) == 0:
        return empty_csr(*follow.shape)
    if config.tie_author_weight > 0 and authored.nnz:
        tie += config.tie_author_weight * np.log1p(_edge_dots(weights, u, authored, v))
    if config.tie_overlap_weight > 0:
        dots = _edge_dots(seen, u, seen, v)
        n = np.diff(seen.indptr).astype(np.float64)
        denom = np.sqrt(n[u] * n[v])
        tie += config.tie_overlap_weight * np.divide(
            dots, denom, out=np.zeros_like(dots), where=denom > 0
        )
    if config.reciprocity_weight > 0:
        recip = np.asarray(follow[v, u]).ravel() > 0
        tie += config.reciprocity_weight * recip
    out = sp.csr_matrix((tie.astype(np.float32), (u, v)), shape=follow.shape, dtype=np.float32)
    out.sort_indices()
    return out


#: Above this many scalar products (the sparse user x user product costs the sum over items of
#: their user count squared, scaled to the users asked for), `similar_users` ranks neighbours by
#: cosine in a truncated-SVD space instead: the exact product at the platform preset (100K users,
#: 1M items) runs for tens of minutes and its memory keeps growing.
EXACT_SIMILAR_BUDGET = 2_000_000_000
#: Dimensions of that space.
SIMILAR_SVD_DIM = 64
_SIMILAR_BATCH = 1024
_DENSE_USERS = 20_000


def similar_users(
    seen: sp.csr_matrix,
    users: np.ndarray,
    k: int,
    *,
    exact_budget: float = EXACT_SIMILAR_BUDGET,
    seed: int = 0,
) -> sp.csr_matrix:
    """Float32 CSR n_users x n_users: for each user in `users`, their k most similar other users
    by cosine of binary histories (weights = cosine); other rows empty. Batched over `users`.

    Where the exact product would cost more than `exact_budget` scalar products, the neighbours
    and weights come from the cosine of the users' rows in a seeded truncated SVD of the
    row-normalised matrix (`SIMILAR_SVD_DIM` dimensions, exact inner-product search with faiss):
    the per-user cost no longer grows with how popular the users' items are."""
    n = seen.shape[0]
    users = np.asarray(users, dtype=np.int64)
    if k <= 0 or len(users) == 0 or seen.nnz == 0:
        return empty_csr(n, n)
    norms = np.sqrt(np.diff(seen.indptr).astype(np.float64))
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    normed = sp.csr_matrix(sp.diags(inv) @ seen, dtype=np.float64)
    kk = min(k, n - 1)
    if kk <= 0:
        return empty_csr(n, n)
    pop = np.bincount(seen.indices, minlength=seen.shape[1]).astype(np.float64)
    cost = float(pop @ pop) * len(users) / max(n, 1)
    if cost > exact_budget:
        rows, cols, vals = _similar_svd(normed, users, kk, seed)
    else:
        rows, cols, vals = _similar_exact(normed, users, kk)
    if len(rows) == 0:
        return empty_csr(n, n)
    out = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out


def _similar_exact(
    normed: sp.csr_matrix, users: np.ndarray, kk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-kk cosine neighbours, a batch of users at a time. Up to `_DENSE_USERS` users the
    batch's rows are made dense (fast when most users share an item); beyond, neighbours are
    selected inside the sparse product, so only users who share an item are touched."""
    normed_t = sp.csr_matrix(normed.T)
    rows: list[np.ndarray] = [np.zeros(0, np.int64)]
    cols: list[np.ndarray] = [np.zeros(0, np.int64)]
    vals: list[np.ndarray] = [np.zeros(0)]
    n = normed.shape[0]
    if n <= _DENSE_USERS:
        batch = max(1, (1 << 24) // max(n, 1))
        for s in range(0, len(users), batch):
            ub = users[s : s + batch]
            dense = np.asarray((normed[ub] @ normed_t).toarray())
            dense[np.arange(len(ub)), ub] = 0.0
            part = np.argpartition(-dense, kk - 1, axis=1)[:, :kk]
            val = np.take_along_axis(dense, part, axis=1)
            ok = val > 0
            rows.append(np.repeat(ub, kk)[ok.ravel()])
            cols.append(part[ok])
            vals.append(val[ok])
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    for s in range(0, len(users), _SIMILAR_BATCH):
        ub = users[s : s + _SIMILAR_BATCH]
        sims = sp.csr_matrix(normed[ub] @ normed_t)
        sims.data[sims.data <= 0] = 0.0
        indptr, indices, data = sims.indptr, sims.indices, sims.data
        for r, u in enumerate(ub):  # O(row length) selection per user, no global sort
            lo, hi = indptr[r], indptr[r + 1]
            val, other = data[lo:hi], indices[lo:hi]
            val = np.where(other == u, 0.0, val)
            if hi - lo > kk:
                part = np.argpartition(-val, kk - 1)[:kk]
                val, other = val[part], other[part]
            ok = val > 0
            rows.append(np.full(int(ok.sum()), u, np.int64))
            cols.append(other[ok].astype(np.int64))
            vals.append(val[ok])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _similar_svd(
    normed: sp.csr_matrix, users: np.ndarray, kk: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import faiss
    from sklearn.utils.extmath import randomized_svd

    dim = max(1, min(SIMILAR_SVD_DIM, min(normed.shape) - 1))
    u, s, _ = randomized_svd(normed, dim, n_iter=4, random_state=seed)
    emb = np.ascontiguousarray(u * s, dtype=np.float32)
    lengths = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, lengths, out=np.zeros_like(emb), where=lengths > 0)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb)
    sims, found = index.search(emb[users], kk + 1)
    # results come best first; a user's own row is dropped and at most kk others kept
    valid = (found >= 0) & (found != users[:, None]) & (sims > 0)
    keep = valid & (np.cumsum(valid, axis=1) <= kk)
    owner = np.broadcast_to(users[:, None], found.shape)
    return owner[keep], found[keep].astype(np.int64), sims[keep].astype(np.float64)


def row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum 1 (empty rows stay empty); float64 CSR."""
    tot = np.asarray(m.sum(axis=1)).ravel().astype(np.float64)
    inv = np.divide(1.0, tot, out=np.zeros_like(tot), where=tot > 0)
    out = sp.csr_matrix(sp.diags(inv) @ m, dtype=np.float64)
    out.sort_indices()
    return out
