"""Features of every (user, candidate) pair of a `CandidateFrame`, for the learned ranker.

Per pair: each source's score and rank (absent -> a sentinel, so a tree can split on "not
proposed"), item popularity and age at `ctx.now`, the user's affinity to the item's author and
category, how many of the user's (public) followees acted on it and the strongest tie among them,
content similarity to the user's recent items, the user's activity level, an in-network flag, and
recency as of `ctx.now`: the item's rank in the catalog by decayed interaction count at several
half-lives (ranks, not counts, so a quiet and a busy training window mean the same), days since
its last and first interaction, days since the user's last event, and how soon after an item's
first interaction the user tends to take it (their appetite for new items). All per-pair work
is vectorised per user; nothing forms a users x items dense matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, NotFittedError, SerendipError
from serendip.pipeline._arrays import among
from serendip.pipeline.candidates import CandidateFrame, UserContext
from serendip.pipeline.sources import (
    SOCIAL_EVENT_WEIGHTS,
    ActionMatrix,
    SocialStats,
    action_matrix,
    gathers,
    row_slices,
    rows_dot,
    rows_mean,
    social_stats,
)
from serendip.pipeline.sources.content import fit_item_vectors

__all__ = ["RANK_MISSING", "SCORE_MISSING", "FeatureBuilder"]

#: What a source's score / rank column holds where the source did not propose the pair.
SCORE_MISSING = -1000.0
RANK_MISSING = 10_000.0
#: Item age where the creation time is unknown.
AGE_MISSING = -1.0

_DAY = 86_400.0
#: Half-lives (days) of the decayed-count trend features.
TREND_HALF_LIVES: tuple[float, ...] = (1.0, 7.0, 30.0)
#: Days-since features where there is no such event (the item was never interacted with before
#: `now`): far beyond any real gap, so a tree keeps them apart.
DAYS_MISSING = 100_000.0

PAIR_FEATURES: tuple[str, ...] = (
    "item_log_popularity",
    "item_age_days",
    "author_affinity",
    "followees_involved",
    "max_tie_strength",
    "content_similarity",
    "user_log_activity",
    "category_match",
    "in_network",
    # recency, as of `ctx.now` (only interactions up to it count): what a temporal protocol
    # rewards and what absolute popularity cannot tell apart
    *(f"item_trend_log_rank_{h:g}d" for h in TREND_HALF_LIVES),
    "item_days_since_last",
    "item_days_since_first",
    "user_days_since_last",
    "user_new_item_affinity_days",
)
#: The column of PAIR_FEATURES where the item recency block (`_item_recency`) starts.
_ITEM_RECENCY_AT = PAIR_FEATURES.index(f"item_trend_log_rank_{TREND_HALF_LIVES[0]:g}d")


class FeatureBuilder:
    """Turns a `CandidateFrame` and its contexts into a float32 (m, f) matrix, no NaN.

    sources: the source names, in the frame's column order (None: taken from the first frame
    built, then fixed). n_recent: latest distinct history items in the content profile.
    vectors: content vectors ("tfidf" default, "sbert" for the offline sentence model).

    >>> fb = FeatureBuilder(["in-network", "trending"]).fit(train)  # doctest: +SKIP
    >>> X = fb.build(frame, contexts)  # doctest: +SKIP
    >>> X.shape[1] == len(fb.feature_names)  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        sources: Sequence[str] | None = None,
        *,
        n_recent: int = 20,
        vectors: Literal["tfidf", "sbert"] = "tfidf",
        tie_prior: float = 2.0,
    ) -> None:
        if n_recent < 1:
            raise ConfigError(f"n_recent must be at least 1, got {n_recent}")
        self.sources: tuple[str, ...] | None = tuple(sources) if sources is not None else None
        self.n_recent = n_recent
        self.vectors = vectors
        self.tie_prior = tie_prior
        self._fitted = False

    @property
    def feature_names(self) -> list[str]:
        if self.sources is None:
            raise NotFittedError("feature names are known once the sources are (build a frame)")
        names = [f"score_{s}" for s in self.sources] + [f"rank_{s}" for s in self.sources]
        return names + list(PAIR_FEATURES)

    # ------------------------------------------------------------------ fitting
    def fit(self, dataset: Dataset) -> Self:
        """Item statistics, content vectors and social ties of the training window."""
        self.log_pop_ = np.log1p(dataset.item_counts().astype(np.float64))
        self.created_at_ = np.asarray(dataset.item_published_at(), np.float64)
        self.author_ = dataset.item_author_index().astype(np.int64)
        cats = np.asarray(dataset.item_meta.category, dtype=str)
        self.categories_, codes = np.unique(cats, return_inverse=True)
        self.item_cat_ = codes.astype(np.int64)
        self.vectors_, _, _ = fit_item_vectors(dataset, self.vectors)
        self.actions_ = action_matrix(dataset, SOCIAL_EVENT_WEIGHTS)
        self.social_ = social_stats(dataset, self.actions_, self.tie_prior)
        it = dataset.interactions
        timed = ~np.isnan(it.timestamp)
        order = np.argsort(it.timestamp[timed], kind="stable")
        self.event_time_ = np.asarray(it.timestamp[timed][order], np.float64)
        self.event_item_ = np.asarray(it.item[timed][order], np.int64)
        self._derive_temporal()
        self._fitted = True
        return self

    def _derive_temporal(self) -> None:
        """Each item's first interaction time (NaN: none) and an empty per-`now` cache."""
        self.first_time_ = np.full(len(self.log_pop_), np.nan)
        uniq, at = np.unique(self.event_item_, return_index=True)
        self.first_time_[uniq] = self.event_time_[at]
        self._temporal_cache: dict[float, np.ndarray] = {}

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError("FeatureBuilder is not fitted: call fit(dataset) first")

    # ------------------------------------------------------------------ building
    def build(self, frame: CandidateFrame, contexts: Sequence[UserContext]) -> np.ndarray:
        """float32 (len(frame), len(feature_names)); rows aligned with the frame's."""
        self._check_fitted()
        if self.sources is None:
            self.sources = tuple(frame.sources)
        if tuple(frame.sources) != self.sources:
            raise ConfigError(
                f"frame sources {list(frame.sources)} differ from the builder's "
                f"{list(self.sources)}"
            )
        m = len(frame)
        if m and (int(frame.row.max()) >= len(contexts) or int(frame.row.min()) < 0):
            raise ConfigError("frame rows refer to contexts that were not given")
        score = np.where(np.isnan(frame.score), SCORE_MISSING, frame.score)
        rank = np.where(np.isnan(frame.rank), RANK_MISSING, frame.rank)
        pair = np.zeros((m, len(PAIR_FEATURES)), np.float64)
        if m:
            order = np.argsort(frame.row, kind="stable")
            rows = frame.row[order]
            bounds = np.searchsorted(rows, np.arange(len(contexts) + 1))
            for r in np.flatnonzero(np.diff(bounds)):
                sel = order[bounds[r] : bounds[r + 1]]
                pair[sel] = self._pair_features(contexts[int(r)], frame.item[sel])
        k = len(self.sources)
        out = np.hstack([score.reshape(m, k), rank.reshape(m, k), pair]).astype(np.float32)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    def _item_recency_rows(self, now: float, items: np.ndarray) -> np.ndarray:
        """`_item_recency(now)[items]`, without recomputing the catalog for each request time
        after the newest fitted event (a live user's `now`): every fitted event has then aged by
        the same amount, so the trend ranks are those at the newest event (a common decay factor
        keeps the order) and the day counts grow by the elapsed days."""
        t = self.event_time_
        if not (len(t) and np.isfinite(now) and now > float(t[-1])):
            return self._item_recency(now)[items]
        rows = self._item_recency(float(t[-1]))[items]  # a copy (fancy indexing)
        days = rows[:, -2:]
        days[days != DAYS_MISSING] += (now - float(t[-1])) / _DAY
        return rows

    def _item_recency(self, now: float) -> np.ndarray:
        """float64 (n_items, 5): log trend rank at each half-life, days since the item's last and
        first interaction, all as of `now` (NaN: the newest fitted event). Cached per `now`: a
        batch, and every request between two updates, share one request time."""
        key = float(now) if np.isfinite(now) else -np.inf  # NaN never equals itself as a key
        cached = self._temporal_cache.get(key)
        if cached is not None:
            return cached
        n_items = len(self.log_pop_)
        out = np.empty((n_items, len(TREND_HALF_LIVES) + 2), np.float64)
        t = self.event_time_
        if np.isfinite(key):
            upto = int(np.searchsorted(t, key, side="right"))
            ref = key
        else:
            upto = len(t)
            ref = float(t[-1]) if len(t) else 0.0
        times, items = t[:upto], self.event_item_[:upto]
        age = (ref - times).clip(min=0.0) / _DAY
        for j, hl in enumerate(TREND_HALF_LIVES):
            counts = np.bincount(items, weights=np.exp2(-age / hl), minlength=n_items)
            rank = np.empty(n_items, np.float64)
            rank[np.lexsort((np.arange(n_items), -counts))] = np.arange(1, n_items + 1)
            # items without any interaction before now share the last rank
            out[:, j] = np.log(np.where(counts > 0, rank, n_items + 1))
        last = np.full(n_items, DAYS_MISSING)
        first = np.full(n_items, DAYS_MISSING)
        if upto:
            rev_items, rev_at = np.unique(items[::-1], return_index=True)
            last[rev_items] = age[upto - 1 - rev_at]
            fwd_items, fwd_at = np.unique(items, return_index=True)
            first[fwd_items] = age[fwd_at]
        out[:, -2] = last
        out[:, -1] = first
        if len(self._temporal_cache) >= 8:  # offline windows and a few live times at most
            self._temporal_cache.clear()
        self._temporal_cache[key] = out
        return out

    def _user_recency(self, ctx: UserContext) -> tuple[float, float]:
        """(days since the user's last timed event, median days between an item's first
        interaction and the user's, over the latest `n_recent` timed history items)."""
        times = np.asarray(ctx.history_time, np.float64)[: len(ctx.history)]
        ok = np.isfinite(times)
        if not ok.any():
            return AGE_MISSING, AGE_MISSING
        since = (ctx.now - float(times[ok].max())) / _DAY if np.isfinite(ctx.now) else 0.0
        items = np.asarray(ctx.history, np.int64)[: len(times)][ok][: self.n_recent]
        t = times[ok][: self.n_recent]
        valid = (items >= 0) & (items < len(self.first_time_))
        gaps = (t[valid] - self.first_time_[items[valid]]) / _DAY
        gaps = gaps[np.isfinite(gaps)]
        return max(since, 0.0), _median(gaps) if len(gaps) else AGE_MISSING

    def _pair_features(self, ctx: UserContext, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, np.int64)
        k = len(items)
        out = np.zeros((k, len(PAIR_FEATURES)), np.float64)
        n_items = len(self.log_pop_)
        valid = (items >= 0) & (items < n_items)
        it = np.where(valid, items, 0)
        hist = np.asarray(ctx.history, np.int64)
        hist = hist[(hist >= 0) & (hist < n_items)]
        out[:, 0] = np.where(valid, self.log_pop_[it], 0.0)
        age = (ctx.now - self.created_at_[it]) / _DAY
        out[:, 1] = np.where(np.isfinite(age) & valid, age, AGE_MISSING)
        author = np.where(valid, self.author_[it], -1)
        if len(hist):
            out[:, 2] = _share(self.author_[hist], author)
            out[:, 7] = _share(self.item_cat_[hist], np.where(valid, self.item_cat_[it], -1))
        involved, max_tie = self._followee_signal(ctx, it)
        out[:, 3] = np.where(valid, involved, 0.0)
        out[:, 4] = np.where(valid, max_tie, 0.0)
        out[:, 5] = np.where(valid, self._content_similarity(hist, it), 0.0)
        out[:, 6] = np.log1p(len(hist))
        followed = among(author, np.asarray(ctx.followees, np.int64)) & (author >= 0)
        out[:, 8] = (followed | (out[:, 3] > 0)).astype(np.float64)
        recency = self._item_recency_rows(ctx.now, it)
        at = _ITEM_RECENCY_AT
        out[:, at : at + recency.shape[1]] = np.where(valid[:, None], recency, 0.0)
        out[:, at + recency.shape[1] :] = self._user_recency(ctx)
        return out

    def _followee_signal(
        self, ctx: UserContext, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        f, tie = self.social_.followee_ties(ctx)
        owner, acted, _ = row_slices(self.actions_.weights, f)
        # only the actions on the candidates count: the followees' other items (often
        # thousands) never reach the per-item count and maximum below
        on_candidate = among(acted, items)
        owner, acted = owner[on_candidate], acted[on_candidate]
        if len(acted) == 0:
            return np.zeros(len(items)), np.zeros(len(items))
        uniq, inv = np.unique(acted, return_inverse=True)
        count = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
        best = np.zeros(len(uniq))
        np.maximum.at(best, inv, tie[owner])
        pos = np.minimum(np.searchsorted(uniq, items), len(uniq) - 1)
        hit = uniq[pos] == items
        return np.where(hit, count[pos], 0.0), np.where(hit, best[pos], 0.0)

    def _content_similarity(self, hist: np.ndarray, items: np.ndarray) -> np.ndarray:
        if len(hist) == 0:
            return np.zeros(len(items))
        _, first = np.unique(hist, return_index=True)
        seeds = hist[np.sort(first)][: self.n_recent]
        v = self.vectors_
        # scipy's `v[seeds].mean(axis=0)` and `v[items] @ p` without the sub-matrices, where it can
        if gathers(v):
            p = np.asarray(rows_mean(v, seeds), dtype=np.float64)
        elif sp.issparse(v):
            p = np.asarray(v[seeds].mean(axis=0), dtype=np.float64).ravel()
        else:
            p = np.asarray(v[seeds], dtype=np.float64).mean(axis=0)
        norm = float(np.linalg.norm(p))
        if norm == 0:
            return np.zeros(len(items))
        if gathers(v):
            return rows_dot(v, items, p / norm)
        return np.asarray(v[items] @ (p / norm), dtype=np.float64).ravel()

    # ------------------------------------------------------------------ state
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        self._check_fitted()
        arrays: dict[str, Any] = {
            "log_pop": self.log_pop_,
            "created_at": self.created_at_,
            "author": self.author_,
            "categories": self.categories_.astype(str),
            "item_cat": self.item_cat_,
            "vectors": self.vectors_,
            **self.actions_.to_arrays("actions"),
            **self.social_.to_arrays(),
            "event_time": self.event_time_,
            "event_item": self.event_item_,
        }
        meta = {
            "sources": list(self.sources) if self.sources is not None else None,
            "n_recent": self.n_recent,
            "vectors": self.vectors,
            "tie_prior": self.tie_prior,
        }
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        src = meta.get("sources")
        self.sources = tuple(src) if src is not None else None
        self.n_recent = int(meta["n_recent"])
        self.vectors = meta["vectors"]
        self.tie_prior = float(meta["tie_prior"])
        self.log_pop_ = np.asarray(arrays["log_pop"], np.float64)
        self.created_at_ = np.asarray(arrays["created_at"], np.float64)
        self.author_ = np.asarray(arrays["author"], np.int64)
        self.categories_ = np.asarray(arrays["categories"]).astype(str)
        self.item_cat_ = np.asarray(arrays["item_cat"], np.int64)
        v: Any = arrays["vectors"]
        self.vectors_ = (
            sp.csr_matrix(arrays["vectors"], dtype=np.float32)
            if sp.issparse(v)
            else np.asarray(v, np.float32)
        )
        self.actions_ = ActionMatrix.from_arrays(arrays, "actions")
        self.social_ = SocialStats.from_arrays(arrays)
        if "event_time" not in arrays:
            raise SerendipError(
                "a pipeline artifact without the ranker's recency features (saved by an older "
                "version): refit the pipeline"
            )
        self.event_time_ = np.asarray(arrays["event_time"], np.float64)
        self.event_item_ = np.asarray(arrays["event_item"], np.int64)
        self._derive_temporal()
        self._fitted = True


def _median(values: np.ndarray) -> float:
    """`np.median` of a short array without NaN (the middle value, or the mean of the two
    middle ones as np.median takes it), without its general machinery (tens of microseconds
    for the ~20 values of a request)."""
    s = np.sort(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else float((s[mid - 1] + s[mid]) / 2)


def _share(history_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Share of the history whose key (author, category) equals each candidate's key; keys < 0
    (unknown) never match."""
    hk = history_keys[history_keys >= 0]
    if len(hk) == 0:
        return np.zeros(len(keys))
    uniq, counts = np.unique(hk, return_counts=True)
    pos = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1)
    hit = (uniq[pos] == keys) & (keys >= 0)
    return np.where(hit, counts[pos] / len(history_keys), 0.0)
