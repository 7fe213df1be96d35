"""Explore source: out-of-network discovery through friends-of-friends and similar strangers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence
from serendip.models.social import similar_users
from serendip.pipeline._arrays import among
from serendip.pipeline.candidates import Proposal, UserContext
from serendip.pipeline.sources._base import (
    SourceBase,
    SourceConfig,
    half_life_decay,
    per_context,
)
from serendip.pipeline.sources._social import (
    SOCIAL_EVENT_WEIGHTS,
    ActionMatrix,
    SocialStats,
    action_matrix,
    row_slices,
    social_stats,
)

__all__ = ["ExploreConfig", "ExploreSource"]


def _liked_weights() -> dict[str, float]:
    return {**SOCIAL_EVENT_WEIGHTS, "view": 0.0, "click": 0.0}


class ExploreConfig(SourceConfig):
    """fof_weight / similar_weight: how much a friend-of-friend (by summed tie strength of the
    followees who follow them, max-normalised) and a similar non-followed user (cosine of
    histories) count. k_similar: similar users kept per user. max_explorers: the strongest
    users kept per request. event_weights: what counts as liking (views and clicks do not; on
    a log with no liking event at all, such as listens, every interaction counts).
    half_life_days: recency decay of those likes relative to `ctx.now`.

    Defaults: chosen on a validation window of the synthetic `small` platform
    (docs/research-log.md, source defaults). A wide circle and a short half-life work because
    what strangers liked this week is what spreads next."""

    fof_weight: float = Field(default=1.0, ge=0)
    similar_weight: float = Field(default=1.0, ge=0)
    k_similar: int = Field(default=100, ge=0)
    max_explorers: int = Field(default=400, ge=1)
    event_weights: dict[str, float] = Field(default_factory=_liked_weights)
    half_life_days: float | None = Field(default=3.0, gt=0)
    tie_prior: float = Field(default=2.0, gt=0)


class ExploreSource(SourceBase[ExploreConfig]):
    """Items liked by users the viewer does not follow: friends of their (public) followees and
    the users most similar to them by history, never an item any followee interacted with or
    authored (that is in-network's job).

    Privacy: a private user is never an explorer (their likes are not used) and never a bridge
    (their follows are not walked). Evidence: the explorers who liked the item (kind "user",
    public users only, strongest first).
    """

    name = "explore"
    kind = "user"
    Config: ClassVar[type[SourceConfig]] = ExploreConfig

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        self.liked_ = action_matrix(dataset, cfg.event_weights)
        if self.liked_.weights.nnz == 0 and dataset.n_interactions:
            # a log of one implicit kind (listens, views): every interaction is the signal
            self.liked_ = action_matrix(dataset, {e: 1.0 for e in SOCIAL_EVENT_WEIGHTS})
        touched = action_matrix(dataset, {e: 1.0 for e in SOCIAL_EVENT_WEIGHTS})
        self.social_ = social_stats(dataset, touched, cfg.tie_prior)
        self.seen_ = sp.csr_matrix(touched.weights > 0, dtype=np.float32)
        self.seen_t_ = sp.csr_matrix(self.seen_.T, dtype=np.float32)
        users = np.arange(dataset.n_users)
        self.similar_ = similar_users(self.seen_, users, cfg.k_similar)
        self._index_authors()

    def _index_authors(self) -> None:
        """Users x items CSR of authorship (a followee's posts without a pass over the catalog)."""
        author = self.social_.author
        ok = np.flatnonzero((author >= 0) & (author < self.social_.n_users))
        self.authored_ = sp.csr_matrix(
            (np.ones(len(ok), np.float32), (author[ok], ok)),
            shape=(self.social_.n_users, len(author)),
        )

    # ------------------------------------------------------------------ explorers
    def _similar_row(self, ctx: UserContext) -> tuple[np.ndarray, np.ndarray]:
        u = ctx.user_idx
        indptr = self.similar_.indptr  # the row's bounds: scipy's `similar_[u]` copies the row
        if 0 <= u < self.social_.n_users and indptr[u + 1] > indptr[u]:
            s, e = indptr[u], indptr[u + 1]
            return self.similar_.indices[s:e].astype(np.int64), self.similar_.data[s:e].astype(
                np.float64
            )
        hist = np.unique(np.asarray(ctx.history, np.int64))
        hist = hist[(hist >= 0) & (hist < self.seen_t_.shape[0])]
        if len(hist) == 0 or self.config.k_similar == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        _, users, _ = row_slices(self.seen_t_, hist)
        counts = np.bincount(users, minlength=self.social_.n_users).astype(np.float64)
        n = np.diff(self.seen_.indptr).astype(np.float64)
        sims = np.divide(counts, np.sqrt(n * len(hist)), out=np.zeros_like(n), where=n > 0)
        if u >= 0:
            sims[u] = 0.0
        k = min(self.config.k_similar, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[sims[top] > 0]
        return top.astype(np.int64), sims[top]

    def _explorers(self, ctx: UserContext) -> tuple[np.ndarray, np.ndarray]:
        """Explorer user indices and weights (both sources max-normalised, then mixed)."""
        cfg = self.config
        n_users = self.social_.n_users
        f, tie = self.social_.followee_ties(ctx)
        parts_u: list[np.ndarray] = []
        parts_w: list[np.ndarray] = []
        if cfg.fof_weight > 0 and len(f):
            owner, fof, _ = row_slices(self.social_.follow, f)
            if len(fof):
                w = tie[owner]
                parts_u.append(fof)
                parts_w.append(cfg.fof_weight * w / w.max())
        if cfg.similar_weight > 0:
            su, sw = self._similar_row(ctx)
            if len(su) and sw.max() > 0:
                parts_u.append(su)
                parts_w.append(cfg.similar_weight * sw / sw.max())
        if not parts_u:
            return np.zeros(0, np.int64), np.zeros(0)
        users = np.concatenate(parts_u)
        uniq, inv = np.unique(users, return_inverse=True)
        weight = np.bincount(inv, weights=np.concatenate(parts_w))
        all_followees = np.asarray(ctx.followees, np.int64)
        ok = ~self.social_.private[uniq] & ~among(uniq, all_followees) & (uniq < n_users)
        if ctx.user_idx >= 0:
            ok &= uniq != ctx.user_idx
        uniq, weight = uniq[ok], weight[ok]
        if len(uniq) > cfg.max_explorers:
            top = np.lexsort((uniq, -weight))[: cfg.max_explorers]
            uniq, weight = uniq[top], weight[top]
        return uniq, weight

    def _followee_items(self, ctx: UserContext) -> np.ndarray:
        """Items any followee (private ones too) interacted with or authored."""
        f = np.asarray(ctx.followees, np.int64)
        f = f[(f >= 0) & (f < self.social_.n_users)]
        _, items, _ = row_slices(self.seen_, f)
        _, authored, _ = row_slices(self.authored_, f)
        return np.concatenate([items, authored])

    def _contributions(self, ctx: UserContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        users, weight = self._explorers(ctx)
        owner, items, pos = row_slices(self.liked_.weights, users)
        if len(items) == 0:
            z = np.zeros(0, np.int64)
            return z, z, np.zeros(0)
        w = weight[owner] * self.liked_.weights.data[pos]
        if np.isfinite(ctx.now):
            t = self.liked_.time[pos]
            w = np.where(t > ctx.now, 0.0, w) * half_life_decay(
                ctx.now - t, self.config.half_life_days
            )
        banned = self._followee_items(ctx)
        if len(banned):
            w = np.where(among(items, banned), 0.0, w)
        return users[owner], items, w

    def propose(self, ctx: UserContext, n: int) -> Proposal:
        self._check_fitted()
        _, items, w = self._contributions(ctx)
        keep = w > 0
        if not keep.any():
            return Proposal.empty()
        uniq, inv = np.unique(items[keep], return_inverse=True)
        return self._finish(ctx, uniq, np.bincount(inv, weights=w[keep]), n)

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        self._check_fitted()
        key = (self.social_, self.liked_)
        users, weight, banned = per_context(self, ctx, key, lambda: self._evidence_basis(ctx))
        who, w = self._item_contributions(ctx, users, weight, banned, item)
        sel = w > 0
        order = np.lexsort((who[sel], -w[sel]))
        return [
            Evidence("user", self.users_.id(int(v)), float(x), "outside your network")
            for v, x in zip(who[sel][order], w[sel][order], strict=True)
            if not self.social_.private[v]
        ]

    def _evidence_basis(self, ctx: UserContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What explaining any item for this context reads: the explorers and their weights
        (`_explorers`), and the items none of them is credited for (`_followee_items`)."""
        users, weight = self._explorers(ctx)
        return users, weight, self._followee_items(ctx)

    def _item_contributions(
        self,
        ctx: UserContext,
        users: np.ndarray,
        weight: np.ndarray,
        banned: np.ndarray,
        item: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`_contributions(ctx)`'s entries for `item` alone: (explorer, contribution) of each
        explorer who liked it, the same values, without gathering every like of every
        explorer (a list explains a few items; the explorers liked thousands)."""
        none = np.zeros(0, np.int64), np.zeros(0)
        if not 0 <= item < self.seen_t_.shape[0] or among(np.array([item]), banned)[0]:
            return none
        # who liked it: among those who touched it (every like is a touch: `seen_` holds
        # every pair of the log, `liked_` the pairs with a liking event)
        s, e = self.seen_t_.indptr[item], self.seen_t_.indptr[item + 1]
        likes = self.liked_.weights
        rows, pos = [], []
        for j in np.flatnonzero(among(users, self.seen_t_.indices[s:e])).tolist():
            start = int(likes.indptr[users[j]])
            at = np.flatnonzero(likes.indices[start : likes.indptr[users[j] + 1]] == item)
            if len(at):
                rows.append(j)
                pos.append(start + int(at[0]))
        if not rows:
            return none
        owner, where = np.array(rows, np.int64), np.array(pos, np.int64)
        w = weight[owner] * likes.data[where]
        if np.isfinite(ctx.now):
            t = self.liked_.time[where]
            w = np.where(t > ctx.now, 0.0, w) * half_life_decay(
                ctx.now - t, self.config.half_life_days
            )
        return users[owner], w

    # ------------------------------------------------------------------ state
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = self._base_state()
        arrays.update(self.social_.to_arrays())
        arrays.update(self.liked_.to_arrays("liked"))
        arrays["seen"] = self.seen_
        arrays["similar"] = self.similar_
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._set_base_state(arrays, meta)
        self.social_ = SocialStats.from_arrays(arrays)
        self.liked_ = ActionMatrix.from_arrays(arrays, "liked")
        self.seen_ = sp.csr_matrix(arrays["seen"], dtype=np.float32)
        self.seen_t_ = sp.csr_matrix(self.seen_.T, dtype=np.float32)
        self.similar_ = sp.csr_matrix(arrays["similar"], dtype=np.float32)
        self._index_authors()
