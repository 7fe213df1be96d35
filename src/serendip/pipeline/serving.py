"""The pipeline's serving half: `PipelineRecommender` behind the serving contract.

The expensive half of a request is the pipeline's stage one and ranker over a `UserContext`
(the fitted view of the user plus the live events and follows merged in); the cheap half is its
filters, re-ranking and backfill. `serving_model` picks the adapter for any fitted model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from serendip.data.dataset import EVENT_CODES
from serendip.data.vocabulary import Vocabulary
from serendip.models.base import Explanation, Recommender
from serendip.pipeline.context import dedupe_history
from serendip.pipeline.recommender import PipelineRecommender
from serendip.serving.context import UserContext
from serendip.serving.contract import LiveUser, RankedCandidates, ServingModel
from serendip.serving.zoo import ZooServing

__all__ = ["PipelineServing", "serving_model"]

#: How many of a user's most recent history items the live catalog step reads for their most
#: read category (a taste that moved on should not keep pulling the old category).
_RECENT_HISTORY = 50


#: Up to this many IDs are looked up one by one (`_indices`).
_FEW_IDS = 64


def _indices(vocab: Vocabulary, ids: Sequence[str]) -> np.ndarray:
    """`vocab.indices(ids)` (-1: unknown). A request's few live IDs are looked up one by one:
    the vectorised lookup converts its input to a string array and builds a pandas index per
    call (0.1 ms and more), as much as a hundred single lookups."""
    if len(ids) > _FEW_IDS:
        return vocab.indices(ids)
    return np.array([vocab.get(str(x)) for x in ids], dtype=np.int64)


def serving_model(model: Recommender) -> ServingModel:
    """The serving adapter of a fitted model: the pipeline's own, or the zoo adapter."""
    if isinstance(model, PipelineRecommender):
        return PipelineServing(model)
    return ZooServing(model)


class PipelineServing:
    """The serving contract over one fitted `PipelineRecommender`."""

    caches_candidates = True

    def __init__(self, model: PipelineRecommender) -> None:
        self._model = model
        self._sources = tuple(model.stage_.sources)

    @property
    def model(self) -> PipelineRecommender:
        return self._model

    @property
    def sources(self) -> tuple[str, ...]:
        return self._sources

    @property
    def rerank_pool(self) -> int:
        return self._model.rerank_pool

    @property
    def stateless_rerank(self) -> bool:
        return self._model.stateless_rerank

    def knows(self, user: str) -> bool:
        return self._model.users_.get(user) >= 0 or user in self._model.live_

    def contexts(self, live: Sequence[LiveUser]) -> list[UserContext]:
        fitted = self._model.user_contexts([lu.user for lu in live])
        return [self._merge(ctx, lu) for ctx, lu in zip(fitted, live, strict=True)]

    def _merge(self, ctx: UserContext, live: LiveUser) -> UserContext:
        """The fitted context plus the live events (with their times and event types, so
        recent-history sources weigh them) and the live follows."""
        model = self._model
        events = live.events
        if events:
            idx = _indices(model.items_, [e[0] for e in events])
            ok = idx >= 0
            times = np.array([e[1] for e in events], np.float64)[ok]
            codes = np.array([EVENT_CODES.get(e[2], 0) for e in events], np.int8)[ok]
            items, times_all, codes_all = dedupe_history(
                np.concatenate([ctx.history, idx[ok]]),
                np.concatenate([ctx.history_time, times]),
                np.concatenate([ctx.history_event, codes]),
            )
            now = ctx.now
            if len(times) and np.isfinite(times).any():
                latest = float(np.nanmax(times))
                now = latest if not math.isfinite(now) else max(now, latest)
            ctx = dataclasses.replace(
                ctx, history=items, history_time=times_all, history_event=codes_all, now=now
            )
        if live.followed or live.unfollowed:
            fol = {int(x) for x in ctx.followees}
            add = _indices(model.users_, sorted(live.followed))
            drop = _indices(model.users_, sorted(live.unfollowed))
            fol |= {int(x) for x in add if x >= 0}
            fol -= {int(x) for x in drop if x >= 0}
            ctx = dataclasses.replace(ctx, followees=np.array(sorted(fol), dtype=np.int64))
        return ctx

    def candidates(
        self, contexts: Sequence[UserContext], *, depth: int | None = None
    ) -> list[RankedCandidates]:
        return self._model.ranked_candidates(contexts, depth=depth)

    def update_candidates(
        self, ctx: UserContext, base: RankedCandidates, live: LiveUser
    ) -> RankedCandidates:
        """`base` (the user's precomputed candidates) updated with what `live` holds, the
        sources that follow it proposed anew (`serendip.pipeline.incremental`)."""
        from serendip.pipeline.incremental import rerun_sources, update_ranked

        follows = bool(live.followed or live.unfollowed)
        rerun = rerun_sources(self._sources, events=bool(live.events), follows=follows)
        return update_ranked(self._model, ctx, base, rerun)

    def final_list(
        self,
        ctx: UserContext,
        candidates: RankedCandidates,
        k: int,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._model.final_list(ctx, candidates.items, candidates.scores, k, allowed)

    def explain(
        self,
        ctx: UserContext,
        item: int,
        source_score: np.ndarray,
        source_rank: np.ndarray,
        score: float,
    ) -> Explanation:
        return self._model.explain_candidate(
            ctx, item, self._sources, source_score, source_rank, score
        )

    def followees(self, user: str) -> frozenset[str]:
        model = self._model
        u = model.users_.get(user)
        if u < 0:
            return frozenset()
        follow = model.follow_
        row = follow.indices[follow.indptr[u] : follow.indptr[u + 1]]
        return frozenset(str(x) for x in model.users_.lookup(row))

    def followers(self, users: Sequence[str]) -> list[str]:
        model = self._model
        idx = model.users_.indices(np.asarray(list(users), dtype=object))
        found = sp.csc_matrix(model.follow_)[:, idx[idx >= 0]].nonzero()[0]
        return [str(model.users_.id(int(u))) for u in np.unique(found)]

    def interests(self, user: str) -> tuple[str, ...]:
        u = self._model.users_.get(user)
        if u < 0:
            return ()
        return tuple(str(x) for x in (self._model.interests_[u] or ()))

    def recent_items(self, user: str) -> np.ndarray:
        """The user's most recent history items (fitted, deduplicated, newest first)."""
        model = self._model
        u = model.users_.get(user)
        if u < 0:
            return np.zeros(0, np.int64)
        indptr = model.hist_indptr_
        return np.asarray(model.hist_items_[indptr[u] : indptr[u + 1]][:_RECENT_HISTORY])

    def is_private(self, user: str) -> bool:
        return bool(self._model.explainer_.is_private(user))

    def set_private(self, flags: Mapping[str, bool]) -> list[str]:
        return self._model.set_private(flags)
