"""Trending source: time-decayed popularity relative to the request time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence
from serendip.models.content import tag_token
from serendip.pipeline.candidates import Proposal, UserContext
from serendip.pipeline.sources._base import SourceBase, SourceConfig

__all__ = ["TrendingConfig", "TrendingSource"]

_DAY = 86_400.0


class TrendingConfig(SourceConfig):
    """half_life_days: an interaction `a` days before `ctx.now` counts 0.5 ** (a / half-life).
    top_categories: when > 0, only items of the user's top categories (by history share; by
    declared interests without history) are proposed, falling back to all items when the user
    has neither; 0 = global trending. The 3-day half-life suits data whose timestamps are sparser
    than a feed's (ratings, listens); a busy platform may want 1 day (docs/research-log.md,
    source defaults)."""

    half_life_days: float = Field(default=3.0, gt=0)
    top_categories: int = Field(default=0, ge=0)


class TrendingSource(SourceBase[TrendingConfig]):
    """Items by decayed interaction count at `ctx.now`. Counts are kept as per-interaction
    log-decay-weights at fit (relative to the newest training interaction); a request at a later
    `now` scales them all by the same factor, so the order is the fitted one, and a request at an
    earlier `now` recounts without the interactions after it. Evidence: kind "popularity", id =
    the item's category, weight = its decayed count."""

    name = "trending"
    kind = "popularity"
    Config: ClassVar[type[SourceConfig]] = TrendingConfig

    def _fit(self, dataset: Dataset) -> None:
        it = dataset.interactions
        self.ref_ = float(np.nanmax(it.timestamp)) if it.has_timestamps else 0.0
        ts = np.nan_to_num(it.timestamp, nan=self.ref_)
        order = np.argsort(ts, kind="stable")
        self.event_item_ = it.item[order].astype(np.int64)
        self.event_time_ = ts[order]
        self.counts_ = self._decayed_counts(self.ref_, len(self.event_item_))
        self.order_ = np.lexsort((np.arange(len(self.counts_)), -self.counts_))
        cats = np.asarray(dataset.item_meta.category, dtype=str)
        self.categories_, self.item_cat_ = np.unique(cats, return_inverse=True)
        self.item_cat_ = self.item_cat_.astype(np.int64)

    def _decayed_counts(self, now: float, upto: int) -> np.ndarray:
        age = (now - self.event_time_[:upto]).clip(min=0.0) / _DAY
        return np.bincount(
            self.event_item_[:upto],
            weights=np.exp2(-age / self.config.half_life_days),
            minlength=len(self.created_at_),
        )

    def _scale_after_fit(self, now: float) -> float | None:
        """At or after the fit's reference time every count decays by the same factor (the
        fitted order holds); None before it, where counts are recomputed from the events."""
        if not np.isfinite(now) or now == self.ref_:
            return 1.0
        if now > self.ref_:
            return float(np.exp2(-(now - self.ref_) / _DAY / self.config.half_life_days))
        return None

    def counts_at(self, now: float) -> np.ndarray:
        """Decayed interaction counts of every item at `now` (float64, n_items)."""
        scale = self._scale_after_fit(now)
        if scale == 1.0:
            return self.counts_
        if scale is not None:
            return self.counts_ * scale
        upto = int(np.searchsorted(self.event_time_, now, side="right"))
        return self._decayed_counts(now, upto)

    def _user_categories(self, ctx: UserContext) -> np.ndarray:
        k = self.config.top_categories
        hist = np.asarray(ctx.history, np.int64)
        hist = hist[(hist >= 0) & (hist < len(self.item_cat_))]
        if len(hist):
            counts = np.bincount(self.item_cat_[hist], minlength=len(self.categories_))
            top = np.lexsort((np.arange(len(counts)), -counts))[:k]
            return top[counts[top] > 0]
        keys = {tag_token(str(x)) for x in ctx.interests}
        folded = np.array([tag_token(str(c)) for c in self.categories_], dtype=object)
        return np.flatnonzero(np.isin(folded, list(keys)))[:k] if keys else np.zeros(0, np.int64)

    def propose(self, ctx: UserContext, n: int) -> Proposal:
        self._check_fitted()
        scale = self._scale_after_fit(ctx.now)
        if self.config.top_categories > 0:
            cats = self._user_categories(ctx)
            if len(cats):
                counts = self.counts_at(ctx.now)
                items = np.flatnonzero(np.isin(self.item_cat_, cats) & (counts > 0))
                return self._finish(ctx, items, counts[items], n)
        if scale is not None:
            # walk the fitted order (no pass over the catalog): only a prefix is needed unless
            # many items are filtered
            order = self.order_
            m = n + len(ctx.history) + len(ctx.exclude) + 64
            while True:
                head = order[:m]
                head = head[self.counts_[head] > 0]
                prop = self._finish(ctx, head, self.counts_[head] * scale, n)
                if len(prop.items) >= n or m >= len(order):
                    return prop
                m *= 4
        counts = self.counts_at(ctx.now)
        items = np.flatnonzero(counts > 0)
        return self._finish(ctx, items, counts[items], n)

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        self._check_fitted()
        scale = self._scale_after_fit(ctx.now)
        count = (
            float(self.counts_[item]) * scale
            if scale is not None
            else float(self.counts_at(ctx.now)[item])
        )
        if count <= 0:
            return []
        cat = str(self.categories_[self.item_cat_[item]])
        return [Evidence("popularity", cat, count, f"trending in {cat}" if cat else "trending")]

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = self._base_state()
        arrays.update(
            {
                "event_item": self.event_item_,
                "event_time": self.event_time_,
                "categories": self.categories_.astype(str),
                "item_cat": self.item_cat_,
            }
        )
        meta["ref"] = self.ref_
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._set_base_state(arrays, meta)
        self.ref_ = float(meta["ref"])
        self.event_item_ = np.asarray(arrays["event_item"], np.int64)
        self.event_time_ = np.asarray(arrays["event_time"], np.float64)
        self.categories_ = np.asarray(arrays["categories"]).astype(str)
        self.item_cat_ = np.asarray(arrays["item_cat"], np.int64)
        self.counts_ = self._decayed_counts(self.ref_, len(self.event_item_))
        self.order_ = np.lexsort((np.arange(len(self.counts_)), -self.counts_))
