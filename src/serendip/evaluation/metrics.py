"""Top-K recommendation metrics as plain, vectorised functions.

Shared conventions. `recs`: int (n, K) item indices, row = one user's ranked list over the full
catalog (no sampled negatives), unique items, -1 padded; a short list's missing slots are misses
(precision divides by K). `hits`: bool (n, K), an item of the row's test set (`hit_matrix`).
`n_truth`: int (n,), test items per row. Per-user metrics return float64 (n,); rows with
empty truth score 0 on accuracy, rows with an empty list 0 on list metrics.

For list R (|R| <= K), test items T and 1-based hit positions p:
- precision@K = |R ∩ T| / K; recall@K = |R ∩ T| / |T|; capped recall@K = |R ∩ T| / min(|T|, K)
- NDCG@K = Σ_hits 1/log2(p+1) / Σ_{q=1..min(|T|,K)} 1/log2(q+1)   (binary relevance)
- AP@K = Σ_hits precision@p / min(|T|, K) (MAP@K: its mean); RR@K = 1 / first hit position
  (0 without a hit); HitRate@K = 1 if any hit
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from serendip.data.dataset import ItemTable
from serendip.errors import ConfigError

__all__ = [
    "TIE",
    "TIE_SE",
    "average_popularity",
    "average_precision",
    "capped_recall",
    "catalog_coverage",
    "check_recs",
    "content_features",
    "exposure",
    "gini",
    "hit_matrix",
    "hit_rate",
    "intra_list_distance",
    "member",
    "ndcg",
    "novelty",
    "out_of_network",
    "precision",
    "recall",
    "reciprocal_rank",
    "serendipity",
    "standard_error",
    "ties",
    "unexpected_vs_baseline",
    "unexpected_vs_popularity",
]

# Rows of recs processed at once by the batched metrics; bounds their temporary memory.
_MAX_BATCH_CELLS = 20_000_000
# Cells of the reusable boolean lookup buffer (4 MB: mostly cache-resident, measured fastest).
_MAX_BUFFER_CELLS = 1 << 22


# --------------------------------------------------------------------------- validation
def check_recs(recs: np.ndarray, n_items: int) -> np.ndarray:
    """Validate a (n, K) item-index array: in [-1, n_items), no repeated item within a row.

    Returns it as int64. Raises `ConfigError` naming the first bad row.
    """
    arr = np.asarray(recs)
    if arr.ndim != 2:
        raise ConfigError(f"recommendations must be a 2-D array (users x K), got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ConfigError(f"recommendations must be integer item indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        bad = (arr < -1) | (arr >= n_items)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ConfigError(
                f"recommendation row {r}, position {c}: item index {arr[r, c]} is not in [0, {n_items})"
            )
        srt = np.sort(arr, axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        if dup.any():
            r = int(np.flatnonzero(dup.any(axis=1))[0])
            raise ConfigError(f"recommendation row {r} lists an item more than once")
    return arr


# --------------------------------------------------------------------------- hits
def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + length) for every pair (int64)."""
    lengths = lengths.astype(np.int64, copy=False)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = starts.astype(np.int64) - np.r_[0, np.cumsum(lengths)[:-1]]
    return np.repeat(shift, lengths) + np.arange(total, dtype=np.int64)


def _row_entries(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in `rows`, column) of every stored entry of m's rows `rows` (int64 arrays)."""
    starts = m.indptr[rows]
    lengths = m.indptr[rows + 1] - starts
    cols = m.indices[_ranges(starts, lengths)].astype(np.int64)
    return np.repeat(np.arange(len(rows), dtype=np.int64), lengths), cols


def _gather_rows(
    rows: np.ndarray, cols: np.ndarray, n_cols: int, fill: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """out[r, p] = whether column cols[r, p] is among the flat cell ids `fill(batch)` marks.

    Works in row batches through one reusable bool buffer (batch x n_cols, about 4 MB) that
    is cleared by resetting only the cells that were set, so the cost is O(entries + queries).
    `fill(batch_rows)` returns flat ids position_in_batch * n_cols + column.
    """
    n, k = cols.shape
    out = np.zeros((n, k), dtype=bool)
    if n == 0 or n_cols == 0:
        return out
    step = max(1, _MAX_BUFFER_CELLS // n_cols)
    buf = np.zeros(min(step, n) * n_cols, dtype=bool)
    for start in range(0, n, step):
        r = rows[start : start + step]
        cells = fill(r)
        buf[cells] = True
        c = cols[start : start + len(r)]
        flat = np.arange(len(r), dtype=np.int64)[:, None] * n_cols + np.maximum(c, 0)
        out[start : start + len(r)] = buf[flat] & (c >= 0)
        buf[cells] = False
    return out


def member(rows: np.ndarray, cols: np.ndarray, m: sp.csr_matrix) -> np.ndarray:
    """bool (n, K): whether m[rows[r], cols[r, p]] is a stored entry (cols < 0 -> False).

    rows: (n,) row of m for each row of cols (n, K).
    """
    m = m.tocsr()
    n_cols = m.shape[1]

    def fill(r: np.ndarray) -> np.ndarray:
        pos, c = _row_entries(m, r)
        return pos * n_cols + c

    return _gather_rows(
        np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), n_cols, fill
    )


def hit_matrix(recs: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """bool (n, K): recs[r, p] is a stored entry of truth row r (rows aligned; -1 never hits)."""
    return member(np.arange(recs.shape[0]), recs, truth)


# --------------------------------------------------------------------------- accuracy
def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def precision(hits: np.ndarray) -> np.ndarray:
    """Per-user |R ∩ T| / K, with K = hits.shape[1]."""
    return hits.sum(axis=1) / max(hits.shape[1], 1)


def recall(hits: np.ndarray, n_truth: np.ndarray) -> np.ndarray:
    """Per-user |R ∩ T| / |T| (0 when T is empty)."""
    return _safe_div(hits.sum(axis=1), n_truth)


def capped_recall(hits: np.ndarray, n_truth: np.ndarray) -> np.ndarray:
    """Per-user |R ∩ T| / min(|T|, K): 1 is reachable even when |T| > K."""
    return _safe_div(hits.sum(axis=1), np.minimum(n_truth, hits.shape[1]))


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg(hits: np.ndarray, n_truth: np.ndarray) -> np.ndarray:
    """Per-user binary NDCG@K; the ideal list puts min(|T|, K) hits first."""
    k = hits.shape[1]
    disc = _discounts(k)
    dcg = hits.astype(np.float64) @ disc
    ideal_cum = np.r_[0.0, np.cumsum(disc)]
    idcg = ideal_cum[np.minimum(n_truth, k)]
    return _safe_div(dcg, idcg)


def average_precision(hits: np.ndarray, n_truth: np.ndarray) -> np.ndarray:
    """Per-user AP@K: Σ over hit positions p of precision@p, divided by min(|T|, K)."""
    k = hits.shape[1]
    h = hits.astype(np.float64)
    prec_at = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    return _safe_div((prec_at * h).sum(axis=1), np.minimum(n_truth, k))


def reciprocal_rank(hits: np.ndarray) -> np.ndarray:
    """Per-user 1 / position of the first hit (0 without a hit)."""
    any_hit = hits.any(axis=1)
    first = hits.argmax(axis=1).astype(np.float64)
    return np.asarray(np.where(any_hit, 1.0 / (first + 1.0), 0.0), dtype=np.float64)


def hit_rate(hits: np.ndarray) -> np.ndarray:
    """Per-user 1.0 if the list has at least one hit."""
    return np.asarray(hits.any(axis=1), dtype=np.float64)


# --------------------------------------------------------------------------- catalog
def exposure(recs: np.ndarray, n_items: int) -> np.ndarray:
    """How many lists show each catalog item (int64, length n_items)."""
    valid = recs[recs >= 0]
    return np.bincount(valid, minlength=n_items)


def catalog_coverage(recs: np.ndarray, n_items: int) -> float:
    """Distinct recommended items / catalog size (0 for an empty catalog)."""
    if n_items == 0:
        return 0.0
    return float((exposure(recs, n_items) > 0).sum() / n_items)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (e.g. exposure over ALL catalog items).

    0 = every item equally exposed, (n-1)/n = one item takes all exposure. All-zero values
    (nothing recommended) give 0.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    total = x.sum()
    if n == 0 or total <= 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float((2.0 * (i * x).sum()) / (n * total) - (n + 1.0) / n)


# --------------------------------------------------------------------------- popularity
def _list_mean(recs: np.ndarray, per_item: np.ndarray) -> np.ndarray:
    valid = recs >= 0
    vals = np.where(valid, per_item[np.where(valid, recs, 0)], 0.0)
    return _safe_div(vals.sum(axis=1), valid.sum(axis=1))


def novelty(recs: np.ndarray, popularity: np.ndarray, n_population: int) -> np.ndarray:
    """Per-user mean self-information -log2(pop_i / n_population) of the listed items, in bits.

    popularity: (n_items,) number of training users who interacted with each item;
    n_population: number of training users. An item no training user touched counts as touched
    by one (the largest finite novelty, log2(n_population)). Empty lists score 0.
    """
    if n_population <= 0:
        return np.zeros(recs.shape[0])
    info = -np.log2(np.maximum(popularity, 1).astype(np.float64) / n_population)
    return _list_mean(recs, info)


def average_popularity(recs: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Per-user mean training popularity (number of users) of the listed items; 0 if empty."""
    return _list_mean(recs, np.asarray(popularity, dtype=np.float64))


# --------------------------------------------------------------------------- diversity
def content_features(items: ItemTable) -> sp.csr_matrix:
    """Binary CSR (n_items x n_features) of each item's content set: its tags and its category.

    Tags and categories live in separate namespaces (a tag "jazz" is not the category "jazz").
    """
    n = len(items)
    n_tags = np.fromiter((len(t) for t in items.tags), dtype=np.int64, count=n)
    tag_tokens = ["t:" + t for tags in items.tags for t in tags]
    has_cat = items.category != ""
    cat_tokens = ["c:" + c for c in items.category[has_cat]]
    rows = np.r_[np.repeat(np.arange(n), n_tags), np.flatnonzero(has_cat)]
    codes, uniq = pd.factorize(pd.Series(tag_tokens + cat_tokens, dtype=object))
    m = sp.csr_matrix((np.ones(len(rows)), (rows.astype(np.int64), codes)), shape=(n, len(uniq)))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def intra_list_distance(
    recs: np.ndarray,
    *,
    features: sp.csr_matrix | None = None,
    embeddings: np.ndarray | None = None,
    method: Literal["auto", "dense", "sparse"] = "auto",
) -> np.ndarray:
    """Per-user mean pairwise distance between the listed items' content; lists with fewer
    than two items score 0. Exactly one of:
    - `features`: binary CSR (n_items x n_features) of content sets (`content_features`);
      Jaccard distance 1 - |A ∩ B| / |A ∪ B|; two items without content count as identical, so
      missing metadata never looks like diversity;
    - `embeddings`: (n_items, d); cosine distance 1 - cos(a, b) (a zero vector: distance 1).
    Cost: embeddings O(n K d) through |Σ e|² = Σ_i Σ_j e_i·e_j. Features: "sparse" (a
    block-diagonal sparse Gram product) costs the item pairs of a list that share a feature;
    "dense" (batched K x K Gram blocks) n K² F. "auto" takes dense only for at most 64 features
    that most pairs share (>= 0.4 expected shared features per pair); both are exact.
    """
    if (features is None) == (embeddings is None):
        raise ConfigError("intra_list_distance needs exactly one of features or embeddings")
    valid = recs >= 0
    n_valid = valid.sum(axis=1)
    n_pairs = n_valid * (n_valid - 1) / 2.0
    if embeddings is not None:
        return _ild_cosine(recs, valid, n_valid, np.asarray(embeddings, dtype=np.float64))
    assert features is not None
    feats = features.tocsr().astype(np.float64)
    feats.data[:] = 1.0
    sizes = np.asarray(feats.sum(axis=1)).ravel()
    if method == "auto":
        # Expected shared features of two listed items: Σ_f (share of listed items with f)².
        listed = exposure(recs, feats.shape[0]).astype(np.float64)
        share = (feats.T @ listed) / max(listed.sum(), 1.0)
        dense = feats.shape[1] <= 64 and float(share @ share) >= 0.4
        method = "dense" if dense else "sparse"
    if method == "dense":
        total = _ild_jaccard_dense(recs, valid, feats, sizes)
    elif method == "sparse":
        total = _ild_jaccard_sparse(recs, valid, feats, sizes)
    else:
        raise ConfigError(f"method must be 'auto', 'dense' or 'sparse', got {method!r}")
    return _safe_div(total, n_pairs)


def _ild_cosine(
    recs: np.ndarray, valid: np.ndarray, n_valid: np.ndarray, emb: np.ndarray
) -> np.ndarray:
    """Mean pairwise cosine distance per row, from |Σ e|² = Σ|e|² + 2 Σ_pairs e_i·e_j."""
    norms = np.linalg.norm(emb, axis=1)
    unit = _safe_div(emb, norms[:, None])
    nonzero = (norms > 0).astype(np.float64)
    n, k = recs.shape
    out = np.zeros(n)
    step = _step(n, k * max(emb.shape[1], 1))
    for start in range(0, n, step):
        v = valid[start : start + step].ravel()
        r = recs[start : start + step].ravel()[v]
        b = min(step, n - start)
        rows = np.repeat(np.arange(b), k)[v]
        ind = sp.csr_matrix((np.ones(len(rows)), (rows, r)), shape=(b, len(emb)))
        s = ind @ unit
        self_sim = ind @ nonzero
        pair_sim = ((s * s).sum(axis=1) - self_sim) / 2.0
        nv = n_valid[start : start + b]
        pairs = nv * (nv - 1) / 2.0
        out[start : start + b] = _safe_div(pairs - pair_sim, pairs)
    return out


def _step(n_rows: int, cells_per_row: int) -> int:
    """Rows per batch so that a batch holds about `_MAX_BATCH_CELLS` temporary values."""
    return max(1, _MAX_BATCH_CELLS // max(cells_per_row, 1))


def _ild_jaccard_dense(
    recs: np.ndarray, valid: np.ndarray, feats: sp.csr_matrix, sizes: np.ndarray
) -> np.ndarray:
    """Σ over pairs of Jaccard distance per row, through dense (B, K, K) Gram blocks.

    Padding maps to an all-zero feature row, so its pairs have intersection 0 and add no
    similarity; the diagonal adds 1 per non-empty item, taken back out.
    """
    n, k = recs.shape
    f = feats.shape[1]
    dense = np.vstack([feats.toarray(), np.zeros((1, f))])  # last row: padding
    size_pad = np.r_[sizes, 0.0]
    pad = len(dense) - 1
    item = np.where(valid, recs, pad)
    n_valid = valid.sum(axis=1)
    n_empty = (valid & (size_pad[item] == 0)).sum(axis=1)
    # Pairs with a non-empty union start at distance 1; similarities subtract below.
    total = n_valid * (n_valid - 1) / 2.0 - n_empty * (n_empty - 1) / 2.0
    nonempty = n_valid - n_empty
    step = max(1, _step(n, k * max(k, f)) // 2)
    for start in range(0, n, step):
        idx = item[start : start + step]
        x = dense[idx]  # (B, K, F)
        inter = np.matmul(x, x.transpose(0, 2, 1))
        s = size_pad[idx]
        union = s[:, :, None] + s[:, None, :]
        union -= inter
        # Both empty: union 0 and intersection 0, left as 0.
        np.divide(inter, union, out=inter, where=union > 0)
        sims = (inter.sum(axis=(1, 2)) - nonempty[start : start + len(idx)]) / 2.0
        total[start : start + len(idx)] -= sims
    return total


def _segment_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Sum of values[indptr[i]:indptr[i + 1]] for every i (0 for empty segments)."""
    out = np.zeros(len(indptr) - 1)
    filled = np.diff(indptr) > 0
    if filled.any():
        # reduceat over the starts of non-empty segments only: each runs to the next start.
        out[filled] = np.add.reduceat(values, indptr[:-1][filled])
    return out


def _ild_jaccard_sparse(
    recs: np.ndarray, valid: np.ndarray, feats: sp.csr_matrix, sizes: np.ndarray
) -> np.ndarray:
    """Σ over pairs of Jaccard distance per row, through a block-diagonal sparse Gram product.

    Each row's features get their own column block, so Y @ Y.T pairs only positions of the same
    list. Pairs sharing no feature have distance 1 (or 0 when both sets are empty), so only the
    pairs the product finds need a division.
    """
    n, k = recs.shape
    f = feats.shape[1]
    total = np.zeros(n)
    item = np.where(valid, recs, 0)
    empty = valid & (sizes[item] == 0)
    n_valid = valid.sum(axis=1)
    n_empty = empty.sum(axis=1)
    # Pairs with a non-empty union start at distance 1; shared features subtract below.
    total += n_valid * (n_valid - 1) / 2.0 - n_empty * (n_empty - 1) / 2.0
    avg_nnz = max(1, int(np.ceil(feats.nnz / max(feats.shape[0], 1))))
    step = _step(n, k * max(k, avg_nnz))
    for start in range(0, n, step):
        flat = recs[start : start + step].ravel()
        b = len(flat) // k
        flat_valid = flat >= 0
        positions = np.flatnonzero(flat_valid)
        position_of_entry, cols = _row_entries(feats, flat[positions])
        per_position = np.zeros(b * k, dtype=np.int64)
        per_position[positions] = np.diff(feats.indptr)[flat[positions]]
        indptr = np.r_[0, np.cumsum(per_position)]
        # Entries come out in position order, so they already form the CSR of Y.
        block = positions[position_of_entry] // k
        y = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), block * f + cols, indptr), shape=(b * k, b * f)
        )
        gram = (y @ y.T).tocsr()
        # Every entry, the diagonal included (an item shares all its features with itself:
        # similarity 1 for each non-empty position, taken back out below).
        counts = np.diff(gram.indptr)
        sz = sizes[np.where(flat_valid, flat, 0)]
        inter = gram.data.astype(np.float64)  # exact small integers (float32 product)
        sim = inter / (np.repeat(sz, counts) - inter + sz[gram.indices])
        per_position = _segment_sums(sim, gram.indptr)
        nonempty = (flat_valid & (sz > 0)).reshape(b, k).sum(axis=1)
        # Both (p, q) and (q, p) are present: halve.
        total[start : start + b] -= (per_position.reshape(b, k).sum(axis=1) - nonempty) / 2.0
    return total


# --------------------------------------------------------------------------- serendipity
def unexpected_vs_popularity(
    recs: np.ndarray,
    users: np.ndarray,
    seen: sp.csr_matrix,
    popularity: np.ndarray,
    *,
    in_seen: np.ndarray | None = None,
) -> np.ndarray:
    """bool (n, K): the item is NOT in the popularity baseline's top-K for that row's user.

    The baseline ranks items by `popularity` (descending, ties by lower item index) and skips
    the user's training items (`seen`: binary CSR users x items), as any recommender here does.
    users: (n,) user index of each row; in_seen: optional precomputed `member(users, recs, seen)`.
    Padding (-1) is never unexpected.

    The baseline's top-K of user u is every unseen item ranked at or above T_u = K - 1 + m_u,
    where m_u counts u's training items whose rank s_j (sorted, 0-based j) has s_j - j <= K - 1:
    those are exactly the training items that push the K-th unseen item down one place.
    """
    users = np.asarray(users, dtype=np.int64)
    n_items = len(popularity)
    k = recs.shape[1]
    order = np.lexsort((np.arange(n_items), -np.asarray(popularity, dtype=np.float64)))
    rank = np.empty(n_items, dtype=np.int64)
    rank[order] = np.arange(n_items)
    seen = seen.tocsr()
    row, col = _row_entries(seen, users)
    key = np.sort(row * n_items + rank[col])
    row_sorted = key // n_items
    starts = np.searchsorted(row_sorted, np.arange(len(users)))
    j = np.arange(len(key)) - starts[row_sorted]
    pushes = (key % n_items) - j <= k - 1
    threshold = k - 1 + np.bincount(row_sorted[pushes], minlength=len(users))
    if in_seen is None:
        in_seen = member(users, recs, seen)
    valid = recs >= 0
    in_baseline = ~in_seen & (rank[np.where(valid, recs, 0)] <= threshold[:, None])
    return valid & ~in_baseline


def unexpected_vs_baseline(recs: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """bool (n, K): the item is NOT in the same row of `baseline` (n, K_b), -1 padded."""
    base = np.asarray(baseline, dtype=np.int64)
    if base.shape[0] != recs.shape[0]:
        raise ConfigError(
            f"baseline has {base.shape[0]} rows for {recs.shape[0]} recommendation rows"
        )
    n_cols = int(max(base.max(initial=-1), recs.max(initial=-1))) + 2
    rows = np.repeat(np.arange(len(base)), base.shape[1])
    flat = base.ravel()
    keep = flat >= 0
    m = sp.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], flat[keep])), shape=(len(base), n_cols)
    )
    return (recs >= 0) & ~member(np.arange(recs.shape[0]), recs, m)


def serendipity(hits: np.ndarray, unexpected: np.ndarray) -> np.ndarray:
    """Per-user share of the K slots that are hits a baseline would not have shown."""
    return (hits & unexpected).sum(axis=1) / max(hits.shape[1], 1)


# --------------------------------------------------------------------------- social
def out_of_network(
    recs: np.ndarray,
    users: np.ndarray,
    seen: sp.csr_matrix,
    follows: sp.csr_matrix,
    author: np.ndarray | None = None,
) -> np.ndarray:
    """bool (n, K): the listed item is outside the user's network.

    In network = some followee of the user interacted with it in training, or a followee
    authored it. seen: binary CSR (users x items) of training interactions; follows: CSR
    (users x users), follows[u, v] != 0 when u follows v; author: (n_items,) author user index
    or -1; users: (n,) user index of each row. Padding is never out of network.

    Cost: O(Σ over rows of Σ over followees of their training items), marked in a reusable
    boolean buffer; no users x items product is materialised.
    """
    users = np.asarray(users, dtype=np.int64)
    recs = np.asarray(recs, dtype=np.int64)
    seen = seen.tocsr()
    follows = follows.tocsr()
    n_items = seen.shape[1]

    def fill(r: np.ndarray) -> np.ndarray:
        owner, followee = _row_entries(follows, r)
        starts = seen.indptr[followee]
        lengths = seen.indptr[followee + 1] - starts
        items = seen.indices[_ranges(starts, lengths)].astype(np.int64)
        return np.repeat(owner, lengths) * n_items + items

    in_net = _gather_rows(users, recs, n_items, fill)
    valid = recs >= 0
    if author is not None:
        a = np.asarray(author, dtype=np.int64)[np.where(valid, recs, 0)]
        in_net |= member(users, np.where(valid, a, -1), follows)
    return valid & ~in_net


# --------------------------------------------------------------------------- noise
#: Single models whose validation NDCG@10 is within TIE_SE standard errors (paired per-user
#: difference) or within the share TIE of the best's are one statistical class with it.
TIE = 0.01
TIE_SE = 2.0


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean (sample standard deviation / sqrt(n); 0 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def ties(
    per_user_ndcg: Mapping[str, np.ndarray],
    best: str,
    *,
    tie: float = TIE,
    tie_se: float = TIE_SE,
) -> list[str]:
    """The models whose validation NDCG is statistically tied with `best`'s: the mean paired
    per-user difference within `tie_se` standard errors of zero, or within the share `tie` of
    the best's mean (a model evaluated on other users than the best counts by the share alone).
    """
    top = np.asarray(per_user_ndcg[best], dtype=np.float64)
    out = []
    for name, values in per_user_ndcg.items():
        values = np.asarray(values, dtype=np.float64)
        gap = float(top.mean() - values.mean())
        allowed = tie * float(top.mean())
        if len(values) == len(top) and len(top) > 1:
            diff = top - values
            allowed = max(allowed, tie_se * float(diff.std(ddof=1)) / np.sqrt(len(diff)))
        if gap <= allowed:
            out.append(name)
    return out
