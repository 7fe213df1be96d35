"""Shared machinery of the neighbourhood family (also used by `serendip.models.linear`).

- `profile_config`: the user x item matrix a model scores from (binary, event-weighted, or
  listen counts through log1p / linear).
- `FeatureWeighting`: BM25 / TF-IDF re-weighting of "documents" (items or users) over "terms"
  (the other side), fitted once and re-applicable to new rows (fold-in, cold start).
- `knn_rows` / `all_pairs_knn`: sparse top-k similarities, computed in row chunks whose size is
  bounded by an estimate of the chunk product's non-zeros, so no dense n x n matrix ever exists.
- `topk_per_row`: keep the k largest entries of every row of a sparse matrix (ties: lower index).
- `fold_in_events`: add new events (external IDs) to a profile matrix and the binary `train_`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from serendip.data.dataset import EVENT_CODES, MatrixConfig
from serendip.errors import CapacityError, DataError
from serendip.models.base import Evidence, ModelConfig, Recommender

__all__ = [
    "Confidence",
    "FeatureWeighting",
    "ProfileConfig",
    "SimilaritySpec",
    "all_pairs_knn",
    "check_memory",
    "fold_in_events",
    "knn_rows",
    "neighbour_explanation",
    "popularity_fallback",
    "profile_config",
    "row_chunks",
    "topk_per_row",
]

#: How interactions weigh in the profile matrix: "binary" (every pair 1), "events" (event weights,
#: values ignored), "log1p" / "linear" (event weight times log(1 + value) / value, e.g. listen
#: counts; a missing value counts 1).
Confidence = Literal["binary", "events", "log1p", "linear"]

#: Upper bound on the non-zeros of one chunk product (about 40 bytes each while it is pruned).
DEFAULT_CHUNK_NNZ = 4_000_000


class ProfileConfig(ModelConfig):
    """Shared by the models that score from a weighted history profile (item- and user-kNN,
    RP3beta, EASE, User-EASE): how interactions weigh in it (see `Confidence`)."""

    confidence: Confidence = "binary"


def profile_config(confidence: Confidence) -> MatrixConfig:
    if confidence == "binary":
        return MatrixConfig(binary=True)
    if confidence == "events":
        return MatrixConfig()
    return MatrixConfig(value_transform=confidence)


def check_memory(model: str, n_bytes: float, limit_mb: float, what: str) -> None:
    """Raise `CapacityError` before allocating when `n_bytes` exceeds `limit_mb` MiB."""
    need = n_bytes / 2**20
    if need > limit_mb:
        raise CapacityError(
            f"model '{model}' would need about {need:,.0f} MiB for {what}, above its limit "
            f"max_memory_mb={limit_mb:,.0f}; lower k, sample the data, or raise max_memory_mb"
        )


def popularity_fallback(popularity: np.ndarray) -> np.ndarray:
    """Values in [-1, 0) ordered by popularity: below every positive neighbourhood score, so
    items no neighbour supports still come out most-popular-first instead of by index."""
    pop = popularity.astype(np.float64)
    return (pop / (pop.max(initial=0.0) + 1.0) - 1.0).astype(np.float32)


def neighbour_explanation(
    model: Recommender,
    item_idx: int,
    neigh: np.ndarray,
    contrib: np.ndarray,
    private: np.ndarray,
    n_neighbours: int | None = None,
) -> tuple[list[Evidence], str]:
    """Evidence of a user-to-user model: the neighbours `neigh` (user indices) by their
    contribution to the item's score, strongest first; up to three are named, private ones only
    counted (an explanation never names a user whose activity is private). `n_neighbours`: the
    size of the user's neighbourhood for the sentence (kNN); None for a model where every user
    is a neighbour with some weight."""
    order = np.argsort(-contrib, kind="stable")
    order = order[contrib[order] > 0]
    is_private = private[neigh[order]]
    named = order[~is_private][:3]
    ev = [
        Evidence("user", model.users_.id(int(neigh[j])), float(contrib[j]), "similar user")
        for j in named
    ]
    if len(order) == 0:
        pop = float(model.popularity_[item_idx])
        return [
            Evidence("popularity", model.items_.id(item_idx), pop, f"{int(pop)} users")
        ], "Popular with everyone (none of your nearest users has it)"
    text = (
        f"{len(order)} of your {n_neighbours} most similar users interacted with this"
        if n_neighbours is not None
        else f"{len(order)} users whose histories resemble yours interacted with this"
    )
    if ev:
        text += f", among them {', '.join(e.id for e in ev)}"
    if int(is_private.sum()):
        text += f" ({int(is_private.sum())} private)"
    return ev, text


# ----------------------------------------------------------------------------- weighting
@dataclass(frozen=True, slots=True, eq=False)
class FeatureWeighting:
    """Re-weighting of document rows over term columns, fitted on the training documents.

    kind "none": raw values; "tfidf": sqrt(tf) * idf; "bm25": Okapi BM25,
    tf * (k1 + 1) / (k1 * ((1 - b) + b * len / avg_len) + tf) * idf.
    idf: float64 (n_terms,) = log(n_docs / df), log(n_docs) for a term no document had.
    """

    kind: Literal["none", "bm25", "tfidf"]
    idf: np.ndarray
    avg_len: float
    k1: float = 1.2
    b: float = 0.75

    @classmethod
    def fit(
        cls,
        docs: sp.csr_matrix,
        kind: Literal["none", "bm25", "tfidf"],
        k1: float = 1.2,
        b: float = 0.75,
    ) -> FeatureWeighting:
        n_docs, n_terms = docs.shape
        df = np.bincount(docs.indices, minlength=n_terms).astype(np.float64)
        idf = np.log(max(n_docs, 1) / np.maximum(df, 1.0))
        lengths = np.asarray(docs.sum(axis=1)).ravel()
        avg = float(lengths.mean()) if n_docs else 1.0
        return cls(kind, idf, avg if avg > 0 else 1.0, k1, b)

    def apply(self, docs: sp.csr_matrix) -> sp.csr_matrix:
        """Weighted copy of `docs` (rows = documents, same term columns), float32 CSR."""
        out = sp.csr_matrix(docs, dtype=np.float64, copy=True)
        if self.kind == "none" or out.nnz == 0:
            return out.astype(np.float32)
        idf = self.idf[out.indices]
        if self.kind == "tfidf":
            out.data = np.sqrt(out.data) * idf
        else:
            lengths = np.asarray(out.sum(axis=1)).ravel()
            norm = (1.0 - self.b) + self.b * lengths / self.avg_len
            row_norm = np.repeat(norm, np.diff(out.indptr))
            tf = out.data
            out.data = tf * (self.k1 + 1.0) / (self.k1 * row_norm + tf) * idf
        out.eliminate_zeros()
        return out.astype(np.float32)


# ----------------------------------------------------------------------------- top-k
def topk_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The k largest stored entries of each row (ties: lower column first), CSR, sorted indices."""
    m = sp.csr_matrix(m)
    counts = np.diff(m.indptr)
    if m.nnz == 0 or counts.max() <= k:
        m.sort_indices()
        return m
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0]), counts)
    # primary key row, then -value; the sort is stable and columns are sorted within a row, so
    # ties keep the lower column first: positions of row r are indptr[r]..indptr[r+1]
    order = np.lexsort((-m.data, rows))
    rank = np.arange(m.nnz) - m.indptr[rows[order]]
    keep = order[rank < k]
    out = sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out


def row_chunks(
    left: sp.csr_matrix, right_row_nnz: np.ndarray, n_cols: int, budget: int
) -> Iterator[tuple[int, int]]:
    """Row ranges [s, e) of `left` whose product with a matrix having `right_row_nnz` non-zeros
    per row holds at most about `budget` non-zeros (bounded per row by `n_cols`)."""
    pattern = sp.csr_matrix(
        (np.ones(left.nnz, np.float64), left.indices, left.indptr), shape=left.shape
    )
    cost = np.minimum(pattern @ right_row_nnz.astype(np.float64), n_cols) + 1.0
    bounds = np.cumsum(cost)
    s = 0
    n = left.shape[0]
    while s < n:
        base = bounds[s - 1] if s else 0.0
        e = int(np.searchsorted(bounds, base + budget, side="right"))
        e = min(max(e, s + 1), n)
        yield s, e
        s = e


@dataclass(frozen=True, slots=True)
class SimilaritySpec:
    """similarity: "cosine" = dot / (|q| |d| + shrink); "asymmetric" = dot / (sq_q^(1-alpha)
    sq_d^alpha + shrink) with sq = sum of squares (alpha 0.5 = cosine); "jaccard" = dot /
    (sq_q + sq_d - dot + shrink) (Tanimoto on weighted rows). Then sim ** locality, top k."""

    similarity: Literal["cosine", "asymmetric", "jaccard"]
    k: int
    shrink: float = 0.0
    alpha: float = 0.5
    locality: float = 1.0


def _normalise_block(
    block: sp.csr_matrix,
    q_sq: np.ndarray,
    d_sq: np.ndarray,
    spec: SimilaritySpec,
    self_index: np.ndarray | None,
) -> sp.csr_matrix:
    block = sp.csr_matrix(block, dtype=np.float64)
    rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    cols = block.indices
    dot = block.data
    if spec.similarity == "jaccard":
        den = q_sq[rows] + d_sq[cols] - dot + spec.shrink
    else:
        a = 0.5 if spec.similarity == "cosine" else spec.alpha
        den = np.power(q_sq[rows], 1.0 - a) * np.power(d_sq[cols], a) + spec.shrink
    sim = np.divide(dot, den, out=np.zeros_like(dot), where=den > 0)
    if spec.locality != 1.0:
        sim = np.power(np.clip(sim, 0.0, None), spec.locality)
    if self_index is not None:
        sim[cols == self_index[rows]] = 0.0
    block.data = sim
    block.data[block.data <= 0] = 0.0
    block.eliminate_zeros()
    return block


def knn_rows(
    queries: sp.csr_matrix,
    docs_t: sp.csr_matrix,
    d_sq: np.ndarray,
    spec: SimilaritySpec,
    self_index: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Top-k similar documents of each query row: CSR (n_queries, n_docs), float32.

    queries: (q, n_terms); docs_t: (n_terms, n_docs) transposed documents; d_sq: (n_docs,) sum of
    squares of each document; self_index: (q,) document index each query must not match (itself).
    Only positive similarities are kept.
    """
    q_sq = np.asarray(queries.multiply(queries).sum(axis=1)).ravel().astype(np.float64)
    block = _normalise_block(queries @ docs_t, q_sq, d_sq, spec, self_index)
    return topk_per_row(block, spec.k).astype(np.float32)


def all_pairs_knn(
    docs: sp.csr_matrix,
    spec: SimilaritySpec,
    *,
    chunk_nnz: int = DEFAULT_CHUNK_NNZ,
    progress: Callable[[int, int], None] | None = None,
) -> sp.csr_matrix:
    """Top-k neighbours of every document among the others: CSR (n_docs, n_docs), float32.

    Row r holds the k most similar documents to document r. Built chunk by chunk; peak memory is
    about 40 bytes x `chunk_nnz` plus the result (12 bytes x n_docs x k).
    progress: called with (rows done, total rows).
    """
    docs = sp.csr_matrix(docs, dtype=np.float32)
    n = docs.shape[0]
    docs_t = docs.T.tocsr()
    d_sq = np.asarray(docs.multiply(docs).sum(axis=1)).ravel().astype(np.float64)
    parts = []
    for s, e in row_chunks(docs, np.diff(docs_t.indptr), n, chunk_nnz):
        parts.append(knn_rows(docs[s:e], docs_t, d_sq, spec, np.arange(s, e)))
        if progress is not None:
            progress(e, n)
    if not parts:
        return sp.csr_matrix(
            (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(n + 1, np.int64)),
            shape=(n, n),
        )
    return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)


# ----------------------------------------------------------------------------- updates
def events_matrix(model: Recommender, events: pd.DataFrame, config: MatrixConfig) -> sp.csr_matrix:
    """New events (external IDs; optional event, value columns) as a users x items matrix in the
    model's index space, weighted like `config` (time decay is not applied to fold-ins).
    Events naming users or items the model does not know are skipped: the vocabularies are fixed
    until the next fit."""
    for col in ("user", "item"):
        if col not in events:
            raise DataError(f"events to fold in need a '{col}' column", field=col)
    u = model.users_.indices(events["user"].astype(str).to_numpy())
    i = model.items_.indices(events["item"].astype(str).to_numpy())
    n = len(events)
    if config.binary:
        w = np.ones(n)
    else:
        if "event" in events:
            names = events["event"].fillna("view").astype(str).str.lower()
            codes = names.map(EVENT_CODES)
            if codes.isna().any():
                bad = names[codes.isna()].iloc[0]
                raise DataError(f"unknown event type '{bad}'", field="event")
            ev_names = names.to_numpy()
        else:
            ev_names = np.full(n, "view", dtype=object)
        w = np.array([config.event_weights[e] for e in ev_names], dtype=np.float64)
        if config.value_transform != "none":
            v = (
                pd.to_numeric(events["value"], errors="coerce").to_numpy(dtype=np.float64)
                if "value" in events
                else np.ones(n)
            )
            v = np.nan_to_num(v, nan=1.0).clip(min=0.0)
            w = w * (v if config.value_transform == "linear" else np.log1p(v))
    ok = (u >= 0) & (i >= 0)
    shape = (len(model.users_), len(model.items_))
    return sp.csr_matrix((w[ok].astype(np.float32), (u[ok], i[ok])), shape=shape)


def fold_in_events(
    model: Recommender, profile: sp.csr_matrix, events: pd.DataFrame, config: MatrixConfig
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Add `events` to `profile` (same weighting as `config`) and mark them seen in
    `model.train_`. Returns the new profile and the (sorted, unique) user indices touched."""
    add = events_matrix(model, events, config)
    touched = np.unique(add.tocoo().row)
    if len(touched) == 0:
        return profile, touched
    seen = (model.train_ + add).tocsr()
    seen.data[:] = 1.0
    seen.sort_indices()
    model.train_ = seen
    merged = (profile + add).tocsr()
    if config.binary:
        merged.data[:] = 1.0
    merged.sort_indices()
    return sp.csr_matrix(merged, dtype=np.float32), touched
