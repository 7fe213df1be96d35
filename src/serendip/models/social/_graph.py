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


def similar_users(seen: sp.csr_matrix, users: np.ndarray, k: int) -> sp.csr_matrix:
    """Float32 CSR n_users x n_users: for each user in `users`, their k most similar other users
    by cosine of binary histories (weights = cosine); other rows empty. Batched over `users`."""
    n = seen.shape[0]
    users = np.asarray(users, dtype=np.int64)
    if k <= 0 or len(users) == 0 or seen.nnz == 0:
        return empty_csr(n, n)
    norms = np.sqrt(np.diff(seen.indptr).astype(np.float64))
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    normed = sp.csr_matrix(sp.diags(inv) @ seen, dtype=np.float64)
    kk = min(k, n - 1)
    batch = max(1, (1 << 24) // max(n, 1))
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for s in range(0, len(users), batch):
        ub = users[s : s + batch]
        sims = np.asarray((normed[ub] @ normed.T).toarray())
        sims[np.arange(len(ub)), ub] = 0.0
        if kk <= 0:
            continue
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        val = np.take_along_axis(sims, part, axis=1)
        ok = val > 0
        rows.append(np.repeat(ub, kk)[ok.ravel()])
        cols.append(part[ok])
        vals.append(val[ok])
    if not rows:
        return empty_csr(n, n)
    out = sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )
    out.sort_indices()
    return out


def row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum 1 (empty rows stay empty); float64 CSR."""
    tot = np.asarray(m.sum(axis=1)).ravel().astype(np.float64)
    inv = np.divide(1.0, tot, out=np.zeros_like(tot), where=tot > 0)
    out = sp.csr_matrix(sp.diags(inv) @ m, dtype=np.float64)
    out.sort_indices()
    return out
