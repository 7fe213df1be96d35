"""Recent-item kNN source: items similar (co-interaction cosine) to the user's latest items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence
from serendip.models.neighborhood import SimilaritySpec, all_pairs_knn, profile_config
from serendip.pipeline.candidates import Proposal, UserContext
from serendip.pipeline.sources._base import SourceBase, SourceConfig
from serendip.pipeline.sources._social import action_matrix, row_slices

__all__ = ["RecentItemKNNConfig", "RecentItemKNNSource"]


class RecentItemKNNConfig(SourceConfig):
    """k: neighbours kept per item (sparse top-k). shrink: cosine shrinkage (damps similarities
    resting on few co-interactions). n_recent: how many of the user's latest distinct items seed
    the search. recency_decay: weight of the r-th most recent seed is recency_decay ** r.
    confidence: the matrix similarities are computed on (see neighbourhood models).
    max_user_items: users with more distinct items contribute only their latest this many to the
    similarities (None = all): the cost grows with the square of a user's history, and the
    heaviest users' old items say least about what goes together. pair_budget: on a large log
    that cap is lowered until the item pairs the similarities cost (sum over users of their
    counted items squared) stay within this many (None = no budget): at the platform preset
    (20M events) the capped pairs number billions and the fit runs for most of an hour."""

    k: int = Field(default=50, ge=1)
    shrink: float = Field(default=10.0, ge=0)
    n_recent: int = Field(default=20, ge=1)
    recency_decay: float = Field(default=0.9, gt=0, le=1)
    confidence: Literal["binary", "events", "log1p", "linear"] = "binary"
    max_user_items: int | None = Field(default=300, ge=1)
    pair_budget: int | None = Field(default=500_000_000, ge=1)


class RecentItemKNNSource(SourceBase[RecentItemKNNConfig]):
    """score(i) = sum over the user's n_recent latest distinct items j of
    recency_decay ** rank(j) * cos(j, i). The item-item matrix is sparse top-k, built in chunks
    (`serendip.models.neighborhood`), so it scales to large catalogues. Works for users unknown to
    the fitted data as soon as their context has a history. Evidence: the recent items (kind
    "item") by contribution."""

    name = "recent-item-knn"
    kind = "item"
    Config: ClassVar[type[SourceConfig]] = RecentItemKNNConfig

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        profile = dataset.matrix(profile_config(cfg.confidence))
        cap = budget_cap(np.diff(profile.indptr), cfg.max_user_items, cfg.pair_budget)
        if cap is not None:
            profile = _latest_per_user(dataset, profile, cap)
        items_users = sp.csr_matrix(profile.T)
        spec = SimilaritySpec("cosine", cfg.k, cfg.shrink)
        self.sim_ = all_pairs_knn(items_users, spec)

    def _seeds(self, ctx: UserContext) -> tuple[np.ndarray, np.ndarray]:
        hist = np.asarray(ctx.history, np.int64)
        hist = hist[(hist >= 0) & (hist < self.sim_.shape[0])]
        _, first = np.unique(hist, return_index=True)
        seeds = hist[np.sort(first)][: self.config.n_recent]  # distinct, most recent first
        return seeds, self.config.recency_decay ** np.arange(len(seeds), dtype=np.float64)

    def propose(self, ctx: UserContext, n: int) -> Proposal:
        self._check_fitted()
        seeds, w = self._seeds(ctx)
        owner, items, pos = row_slices(self.sim_, seeds)
        if len(items) == 0:
            return Proposal.empty()
        uniq, inv = np.unique(items, return_inverse=True)
        scores = np.bincount(inv, weights=w[owner] * self.sim_.data[pos])
        return self._finish(ctx, uniq, scores, n)

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        self._check_fitted()
        seeds, w = self._seeds(ctx)
        owner, items, pos = row_slices(self.sim_, seeds)
        sel = items == item
        contrib = w[owner[sel]] * self.sim_.data[pos[sel]]
        src = seeds[owner[sel]]
        order = np.lexsort((src, -contrib))
        return [
            Evidence("item", self.items_.id(int(j)), float(c), "recent item")
            for j, c in zip(src[order], contrib[order], strict=True)
            if c > 0
        ]

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = self._base_state()
        arrays["sim"] = self.sim_
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._set_base_state(arrays, meta)
        self.sim_ = sp.csr_matrix(arrays["sim"], dtype=np.float32)


def budget_cap(lengths: np.ndarray, cap: int | None, budget: int | None) -> int | None:
    """The largest per-user cap <= `cap` whose pairs, sum(min(length, cap) ** 2), stay within
    `budget` (None: `cap` as given; at least 10)."""
    if budget is None:
        return cap
    lengths = np.sort(np.asarray(lengths, np.float64))
    hi = int(lengths.max(initial=0)) if cap is None else min(cap, int(lengths.max(initial=0)))

    def pairs(c: int) -> float:
        return float(np.square(np.minimum(lengths, c)).sum())

    if pairs(hi) <= budget:
        return cap
    lo = 10
    while lo < hi:  # the largest c with pairs(c) <= budget
        mid = (lo + hi + 1) // 2
        if pairs(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _latest_per_user(dataset: Dataset, profile: sp.csr_matrix, cap: int) -> sp.csr_matrix:
    """`profile` restricted to each user's `cap` most recently touched items."""
    if np.diff(profile.indptr).max(initial=0) <= cap:
        return profile
    latest = action_matrix(
        dataset,
        {"view": 1.0, "click": 1.0, "like": 1.0, "comment": 1.0, "share": 1.0, "rating": 1.0},
    )
    w = latest.weights
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    order = np.lexsort((-np.nan_to_num(latest.time, nan=-np.inf), rows))
    rank = np.arange(w.nnz) - w.indptr[rows[order]]
    keep = order[rank < cap]
    mask = sp.csr_matrix(
        (np.ones(len(keep), np.float32), (rows[keep], w.indices[keep])), shape=w.shape
    )
    out = sp.csr_matrix(profile.multiply(mask), dtype=np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out
