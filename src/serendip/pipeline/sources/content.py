"""Content source: items whose text and tags resemble the user's recent items or interests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence
from serendip.models.content import (
    ContentRecommender,
    SentenceContent,
    TfidfContent,
    l2_rows,
    tag_token,
)
from serendip.models.neighborhood import topk_per_row
from serendip.pipeline.candidates import Proposal, UserContext
from serendip.pipeline.sources._base import SourceBase, SourceConfig, top_n
from serendip.pipeline.sources._rows import (
    columns_sum,
    gathers,
    gathers_columns,
    rows_dot,
    rows_dot_row,
    rows_weighted_sum,
)
from serendip.pipeline.sources._social import row_slices
from serendip.scoped import ScopedCache

__all__ = [
    "ContentConfig",
    "ContentSource",
    "fit_item_vectors",
    "impact_postings",
    "shared_item_vectors",
]


#: Most scores one dense block of `ContentSource.propose_batch` holds (items x users; 32 MB).
_DENSE_BLOCK = 1 << 22


class ContentConfig(SourceConfig):
    """vectors: "tfidf" (default; `serendip.models.content` TF-IDF over title, text and tags) or
    "sbert" (the bundled offline sentence-embedding model; slower to fit). n_recent: latest
    distinct history items in the profile; recency_decay: the r-th counts recency_decay ** r.
    interest_weight: how much a match with a declared interest adds (users without history
    rely on it alone). min_df: the TF-IDF word pruning threshold (see `TfidfConfig`).

    Large catalogs: from `postings_from_items` items on (0 = always), TF-IDF scoring reads an
    impact-ordered inverted index instead of a dense pass over the catalog: the profile's
    `profile_terms` strongest terms and the declared interests' terms each bring their
    `max_postings` highest-weighted items, and the best candidates are re-scored exactly. The
    per-user cost is bounded by profile_terms x max_postings whatever the catalog's size
    (agreement with the dense pass: `benchmarks/bench_sources_scale.py`)."""

    vectors: Literal["tfidf", "sbert"] = "tfidf"
    n_recent: int = Field(default=20, ge=1)
    recency_decay: float = Field(default=0.9, gt=0, le=1)
    interest_weight: float = Field(default=0.5, ge=0)
    min_df: float = Field(default=0.001, gt=0)
    postings_from_items: int = Field(default=100_000, ge=0)
    profile_terms: int = Field(default=32, ge=1)
    max_postings: int = Field(default=1_000, ge=1)


ItemVectorTriple = tuple[sp.csr_matrix | np.ndarray, sp.csr_matrix, np.ndarray]

#: inside `shared_item_vectors`: the catalogue's vectors and inverted indexes, made once
_SHARED = ScopedCache()


def shared_item_vectors() -> AbstractContextManager[None]:
    """Within this block `fit_item_vectors` vectorises each item table once per (kind, min_df)
    and the content source builds each inverted index once. A pipeline fit asks for the same
    catalogue's vectors four times (content source and features, in the label window's stage
    and the final one; the windows share the item table), which at 1M items is minutes of
    TF-IDF each. Both depend on the item metadata alone, so the results are the same; the
    cache is dropped when the outermost block ends."""
    return _SHARED.scope()


def fit_item_vectors(
    dataset: Dataset, kind: Literal["tfidf", "sbert"] = "tfidf", min_df: float = 0.001
) -> ItemVectorTriple:
    """L2-normalised item vectors (CSR for TF-IDF, dense float32 for embeddings), the
    row-normalised term matrix and the term names, by the content family's vectorisation.
    Shared within `shared_item_vectors` (callers must not modify the arrays)."""

    def make() -> ItemVectorTriple:
        model: ContentRecommender = (
            TfidfContent(min_df=min_df) if kind == "tfidf" else SentenceContent()
        )
        iv = model._item_vectors(dataset)
        vectors = ContentRecommender._normalised(iv.vectors)
        terms = l2_rows(sp.csr_matrix(iv.terms, dtype=np.float32))
        return vectors, terms, np.asarray(iv.term_names, dtype=str)

    meta = dataset.item_meta
    return _SHARED.get(("vectors", id(meta), kind, float(min_df)), make, meta)


def impact_postings(vectors: sp.csr_matrix, max_postings: int) -> sp.csr_matrix:
    """Inverted index of an items x terms matrix: float32 CSR terms x items whose row t holds
    the `max_postings` items with the largest weight on t (all of them where fewer; ties: the
    lower item index), in item order."""
    by_term = sp.csr_matrix(vectors.T)
    return sp.csr_matrix(topk_per_row(by_term, max_postings), dtype=np.float32)


class ContentSource(SourceBase[ContentConfig]):
    """score(i) = cos(profile, v_i) + interest_weight * interest match of i, where the profile is
    the recency-weighted sum of the user's latest items' vectors, and the interest match the
    item's (normalised) weight on the terms that equal a declared interest (as a tag, category
    or word). Every item with metadata has a vector, so brand-new items (no interactions) are
    proposed as soon as they exist, and brand-new users as soon as they declare interests.
    Evidence: the most similar recent item (kind "item") and matched interests (kind
    "interest", id = the interest as declared)."""

    name = "content"
    kind = "item"
    Config: ClassVar[type[SourceConfig]] = ContentConfig

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        self.vectors_, self.terms_, self.term_names_ = fit_item_vectors(
            dataset, cfg.vectors, cfg.min_df
        )
        self._index_terms()
        self._build_postings()

    def _index_terms(self) -> None:
        self.term_index_ = {str(t): j for j, t in enumerate(self.term_names_)}
        self.terms_csc_ = sp.csc_matrix(self.terms_)

    @property
    def uses_postings(self) -> bool:
        """True when proposals read the inverted index (a large TF-IDF catalog)."""
        return sp.issparse(self.vectors_) and self.n_items >= self.config.postings_from_items

    def _build_postings(self) -> None:
        v = self.vectors_
        if self.uses_postings and sp.issparse(v):
            m, t = self.config.max_postings, self.terms_
            self.postings_: sp.csr_matrix | None = _SHARED.get(
                ("postings", id(v), m), lambda: impact_postings(v, m), v
            )
            self.interest_postings_: sp.csr_matrix | None = _SHARED.get(
                ("postings", id(t), m), lambda: impact_postings(t, m), t
            )
        else:
            self.postings_ = self.interest_postings_ = None

    # ------------------------------------------------------------------ scoring
    def _seeds(self, ctx: UserContext) -> tuple[np.ndarray, np.ndarray]:
        hist = np.asarray(ctx.history, np.int64)
        hist = hist[(hist >= 0) & (hist < self.n_items)]
        _, first = np.unique(hist, return_index=True)
        seeds = hist[np.sort(first)][: self.config.n_recent]
        return seeds, self.config.recency_decay ** np.arange(len(seeds), dtype=np.float64)

    def _profile(self, ctx: UserContext) -> np.ndarray | None:
        seeds, w = self._seeds(ctx)
        if len(seeds) == 0:
            return None
        if gathers(self.vectors_):  # scipy's `vectors_[seeds].T @ w` without the sub-matrix
            p = rows_weighted_sum(self.vectors_, seeds, w)
        else:
            v: Any = self.vectors_[seeds]
            p = np.asarray(v.T @ w, dtype=np.float64).ravel()
        norm = float(np.linalg.norm(p))
        return p / norm if norm > 0 else None

    def _interest_terms(self, interest: str) -> list[int]:
        key = tag_token(str(interest))
        return [self.term_index_[t] for t in (f"#{key}", key) if t in self.term_index_]

    def _interest_scores(self, ctx: UserContext) -> np.ndarray | None:
        cols = sorted({j for x in ctx.interests for j in self._interest_terms(x)})
        if not cols:
            return None
        t = self.terms_csc_
        if gathers_columns(t):  # scipy's `t[:, cols].sum(axis=1)` without the sub-matrix
            return np.asarray(columns_sum(t, np.array(cols, np.int64)), dtype=np.float64)
        return np.asarray(t[:, cols].sum(axis=1), dtype=np.float64).ravel()

    def scores(self, ctx: UserContext) -> np.ndarray | None:
        """Dense content scores of every item for this user (None: nothing to go on)."""
        p = self._profile(ctx)
        return self._scores(ctx, None if p is None else self.vectors_ @ p)

    def _scores(self, ctx: UserContext, similarity: np.ndarray | None) -> np.ndarray | None:
        """`scores` from the profile's similarity to every item (None: no profile)."""
        out = None if similarity is None else np.asarray(similarity, dtype=np.float64).ravel()
        w = self.config.interest_weight
        if w > 0 and ctx.interests:
            s = self._interest_scores(ctx)
            if s is not None:
                out = w * s if out is None else out + w * s
        return out

    def _propose_postings(self, ctx: UserContext, n: int) -> Proposal:
        """Candidates from the inverted index, the best re-scored exactly (see the config)."""
        assert self.postings_ is not None and self.interest_postings_ is not None
        cfg = self.config
        p = self._profile(ctx)
        parts_i: list[np.ndarray] = []
        parts_w: list[np.ndarray] = []
        if p is not None:
            nz = np.flatnonzero(p)
            top = nz[np.lexsort((nz, -p[nz]))[: cfg.profile_terms]]
            owner, items, pos = row_slices(self.postings_, top)
            parts_i.append(items)
            parts_w.append(p[top][owner] * self.postings_.data[pos])
        cols: np.ndarray = np.zeros(0, np.int64)
        if cfg.interest_weight > 0 and ctx.interests:
            cols = np.array(
                sorted({j for x in ctx.interests for j in self._interest_terms(x)}), np.int64
            )
            _, items, pos = row_slices(self.interest_postings_, cols)
            parts_i.append(items)
            parts_w.append(cfg.interest_weight * self.interest_postings_.data[pos])
        gathered = np.concatenate(parts_i) if parts_i else np.zeros(0, np.int64)
        if len(gathered) == 0:
            return Proposal.empty()
        items, inv = np.unique(gathered, return_inverse=True)
        rough = np.bincount(inv, weights=np.concatenate(parts_w), minlength=len(items))
        # the best few re-scored exactly: the full profile (not only its top terms) and interest
        cand = self._finish(ctx, items, np.where(rough > 0, rough, -np.inf), 4 * n).items
        if len(cand) == 0:
            return Proposal.empty()
        exact = np.zeros(len(cand))
        if p is not None:
            exact += np.asarray(self.vectors_[cand] @ p, dtype=np.float64).ravel()
        if len(cols):
            sub = self.terms_[cand][:, cols]
            exact += cfg.interest_weight * np.asarray(sub.sum(axis=1), np.float64).ravel()
        return self._finish(ctx, cand, np.where(exact > 0, exact, -np.inf), n)

    def propose(self, ctx: UserContext, n: int) -> Proposal:
        self._check_fitted()
        if self.postings_ is not None:
            return self._propose_postings(ctx, n)
        p = self._profile(ctx)
        v = self.vectors_
        if p is not None and gathers(v):
            found = self._propose_screened(ctx, v, p, n)
            if found is not None:
                return found
        return self._finish_scores(ctx, self._scores(ctx, None if p is None else v @ p), n)

    def _propose_screened(
        self, ctx: UserContext, v: sp.csr_matrix, p: np.ndarray, n: int
    ) -> Proposal | None:
        """`propose`'s dense pass screened in float32: the catalog scored with float32 sums
        (scipy's float32 kernel, about 40% cheaper than the float64 one), then only the items
        that can reach the top n -- approximate score within twice the float32 error bound of
        the n-th best -- scored exactly (`rows_dot`, bitwise the float64 pass) and ranked as
        the dense pass ranks them. None (take the dense pass): too few items clear the bound,
        or the n-th and next best exact scores tie (the dense pass's choice among ties is
        argpartition's, which only it can make).

        The bound: a float32 dot product of m terms is off by at most about (m + 2) * 2**-24
        * sum |a_t p_t| <= (m + 2) * 2**-24 * |a| |p|; with the longest row's m and largest
        row norm (`_screen_bound`) and a margin of 2, every item of the exact top n (exact >=
        the n-th best exact >= the n-th best approximate - bound) is among the screened."""
        longest, norm = self._screen_bound(v)
        bound = (longest + 4) * 2.0**-23 * norm * float(np.linalg.norm(p))
        approx = np.asarray(v @ p.astype(np.float32), dtype=np.float64)
        w = self.config.interest_weight
        interest = self._interest_scores(ctx) if w > 0 and ctx.interests else None
        if interest is not None:
            approx = approx + w * interest
        # the dense pass's filters, on the approximate scores
        blocked = self._blocked(ctx)
        approx[blocked[(blocked >= 0) & (blocked < len(approx))]] = -np.inf
        if np.isfinite(ctx.now):
            approx[self.created_at_ > ctx.now] = -np.inf
        if not 0 < n < len(approx):
            return None
        nth = float(np.partition(approx, len(approx) - n)[len(approx) - n])
        if not nth - 2 * bound > 0:
            return None
        cand = np.flatnonzero(approx >= nth - 2 * bound)
        exact = rows_dot(v, cand, p)
        if interest is not None:
            exact = exact + w * interest[cand]
        exact = np.where(exact > 0, exact, -np.inf)
        if len(cand) > n:
            ranked = -np.sort(-exact)
            if ranked[n - 1] == ranked[n]:
                return None
            best = np.argpartition(-exact, n - 1)[:n]
            cand, exact = cand[best], exact[best]
        return top_n(cand, exact, n)

    def _screen_bound(self, v: sp.csr_matrix) -> tuple[int, float]:
        """(most values in a row, largest row norm) of the item vectors `v`, computed once."""
        cached: tuple[int, float] | None = getattr(self, "_screen", None)
        if cached is None or getattr(self, "_screen_of", None) is not v:
            norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1), np.float64).ravel())
            longest = int(np.diff(v.indptr).max()) if v.shape[0] else 0
            cached = (longest, float(norms.max()) if len(norms) else 0.0)
            self._screen, self._screen_of = cached, v
        return cached

    def _finish_scores(self, ctx: UserContext, s: np.ndarray | None, n: int) -> Proposal:
        if s is None:
            return Proposal.empty()
        s = np.where(s > 0, s, -np.inf)
        return self._dense_finish(ctx, s, n)

    def propose_batch(self, contexts: Sequence[UserContext], n: int) -> list[Proposal]:
        """`propose` for each context. Over a TF-IDF catalog without the inverted index, the
        batch's dense pass is one sparse x dense product, `vectors_ @ [p_1 ... p_b]`: the same
        sums as each user's `vectors_ @ p` (bitwise; scipy adds each row in the same order),
        at about a third of their cost."""
        self._check_fitted()
        if self.postings_ is not None or not gathers(self.vectors_) or len(contexts) < 2:
            return [self.propose(c, n) for c in contexts]
        out: list[Proposal] = []
        step = max(1, _DENSE_BLOCK // max(self.n_items, 1))  # bounds the (items x users) block
        for start in range(0, len(contexts), step):
            part = contexts[start : start + step]
            profiles = [self._profile(c) for c in part]
            found = [p for p in profiles if p is not None]
            block = self.vectors_ @ np.stack(found, axis=1) if found else None
            col = 0
            for ctx, p in zip(part, profiles, strict=True):
                similarity = None
                if p is not None and block is not None:
                    similarity, col = block[:, col], col + 1
                out.append(self._finish_scores(ctx, self._scores(ctx, similarity), n))
        return out

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        self._check_fitted()
        ev: list[Evidence] = []
        seeds, _ = self._seeds(ctx)
        if len(seeds):
            v = self.vectors_
            # scipy's `v[seeds] @ v[item].T` without the sub-matrices, where it can
            sims = rows_dot_row(v, seeds, item) if gathers(v) else None
            if sims is None:
                sims = (
                    np.asarray((v[seeds] @ v[item].T).toarray()).ravel()
                    if sp.issparse(v)
                    else np.asarray(v[seeds] @ v[item], dtype=np.float64)
                )
            order = np.lexsort((seeds, -sims))[:3]
            ev += [
                Evidence("item", self.items_.id(int(seeds[j])), float(sims[j]), "similar to")
                for j in order
                if sims[j] > 0
            ]
        t = self.terms_  # the item's row, read in place (scipy's `terms_[item]` copies it)
        s, e = int(t.indptr[item]), int(t.indptr[item + 1])
        weight = dict(zip(t.indices[s:e].tolist(), t.data[s:e].tolist(), strict=True))
        for x in ctx.interests:
            w = sum(weight.get(j, 0.0) for j in self._interest_terms(x))
            if w > 0:
                ev.append(Evidence("interest", str(x), float(w), "declared interest"))
        return ev

    # ------------------------------------------------------------------ state
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = self._base_state()
        arrays.update(
            {"vectors": self.vectors_, "terms": self.terms_, "term_names": self.term_names_}
        )
        if self.postings_ is not None and self.interest_postings_ is not None:
            arrays["postings"] = self.postings_
            arrays["interest_postings"] = self.interest_postings_
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._set_base_state(arrays, meta)
        v = arrays["vectors"]
        self.vectors_ = (
            sp.csr_matrix(v, dtype=np.float32)
            if sp.issparse(v) or self.config.vectors == "tfidf"
            else np.asarray(v, np.float32)
        )
        self.terms_ = sp.csr_matrix(arrays["terms"], dtype=np.float32)
        self.term_names_ = np.asarray(arrays["term_names"]).astype(str)
        self._index_terms()
        if self.uses_postings and "postings" in arrays:
            self.postings_ = sp.csr_matrix(arrays["postings"], dtype=np.float32)
            self.interest_postings_ = sp.csr_matrix(arrays["interest_postings"], dtype=np.float32)
        else:  # built here where an older artifact has none
            self._build_postings()
