"""Serving one request from a model snapshot and the live state.

A request for a user's list runs the serving contract in two halves. The expensive half -- the
user's context (the model's view plus live events and follows) and ranked candidates -- is
cached per user in the snapshot's `SnapshotCache`, stamped with the user's live-state version,
or read from the precomputed lists for a user with no live state; the cheap half -- the
request's filters (deleted, excluded, categories, authors), re-ranking, backfill -- runs on
every request over those candidates, so a hit returns exactly what a miss would. Explanations
are made for returned items only, once per cached entry. Then the live catalog step merges in
items the model does not know (`serendip.serving.fresh`).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from serendip.data.vocabulary import Vocabulary
from serendip.errors import ConfigError, SerendipError
from serendip.models.base import Explanation, ModelConfig, Recommender
from serendip.serving.cache import CachedCandidates, CatalogUpdates, SnapshotCache
from serendip.serving.context import UserContext
from serendip.serving.contract import (
    IncrementalServing,
    LiveUser,
    RecItem,
    ServingModel,
)
from serendip.serving.fresh import FreshIndex, with_fresh
from serendip.serving.precompute import ListsHolder
from serendip.serving.state import ItemInfo, OnlineState

__all__ = [
    "Request",
    "Snapshot",
    "fresh_index",
    "recommend",
    "refresh",
    "similar",
    "trending",
]

#: Cache key of the shared cold-start candidates (users the model never saw, no live state).
_COLD_KEY = "\x00cold"


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """One loaded, validated model version; never mutated after construction."""

    serving: ServingModel
    version: str
    directory: Path
    loaded_at: float
    metadata: Mapping[str, object] = field(default_factory=dict)
    #: per-snapshot serving caches: they belong to this model, so a swap starts empty ones
    cache: SnapshotCache | None = None
    #: precomputed ranked candidates of every known user (see `serendip.serving.precompute`)
    lists: ListsHolder | None = None

    @property
    def model(self) -> Recommender[ModelConfig]:
        """The fitted model."""
        return self.serving.model


@dataclass(frozen=True, slots=True)
class Request:
    """One request for a user's list. categories / authors: only items in these categories /
    by these authors (None = any); exclude: item IDs never to return (the context item
    included); context_item: the item the user is looking at now."""

    user: str
    k: int
    explain: bool = False
    categories: tuple[str, ...] | None = None
    authors: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    context_item: str | None = None


def allowed_mask(snap: Snapshot, state: OnlineState, req: Request) -> np.ndarray:
    """Bool mask over the model's items: not deleted, not excluded, and in the requested
    categories / by the requested authors (live catalog updates override fitted metadata).

    The deleted-items part is kept per snapshot until the next catalog change, so a request
    without filters costs O(1) here; the returned array may be that shared, read-only mask."""
    model = snap.serving.model
    version = state.catalog_version  # before reading the data it stamps
    base = snap.cache.deleted_mask(version) if snap.cache is not None else None
    if base is None:
        base = np.ones(len(model.items_), dtype=bool)
        deleted = list(state.deleted())
        if deleted:
            idx = model.items_.indices(deleted)
            base[idx[idx >= 0]] = False
        if snap.cache is not None:
            snap.cache.set_deleted_mask(version, base)
    categories, authors = req.categories, req.authors
    if not req.exclude and categories is None and authors is None:
        return base
    mask = base.copy()
    if req.exclude:
        idx = model.items_.indices(list(req.exclude))
        mask[idx[idx >= 0]] = False
    if categories is None and authors is None:
        return mask
    # factorized columns (cached per snapshot): one table lookup per item, then the live
    # catalog updates (cached per catalog version) override the fitted values
    cache = snap.cache if snap.cache is not None else SnapshotCache(0)
    cat_col, auth_col = cache.columns(model)
    upd = cache.updates(version)
    if upd is None:
        items = state.items()
        idx = model.items_.indices(list(items)) if items else np.zeros(0, np.int64)
        ok = idx >= 0
        infos = [info for info, keep in zip(items.values(), ok, strict=True) if keep]
        upd = CatalogUpdates(
            version,
            idx[ok],
            np.array([i.category for i in infos], dtype=object),
            np.array([i.author for i in infos], dtype=object),
        )
        cache.set_updates(upd)
    for wanted, col, live in (
        (categories, cat_col, upd.category),
        (authors, auth_col, upd.author),
    ):
        if wanted is None:
            continue
        names = {str(x) for x in wanted}
        member = col.member(names)
        if len(upd.idx):
            member[upd.idx] = pd.Index(live).isin(list(names))
        mask &= member
    return mask


def fresh_index(snap: Snapshot, state: OnlineState) -> FreshIndex:
    """The live items `snap`'s model does not know, indexed; rebuilt per catalog change."""
    version = state.catalog_version  # before reading the data it stamps
    cache = snap.cache
    index = cache.fresh() if cache is not None else None
    if index is None or index.version != version:
        index = FreshIndex.build(version, snap.serving.model, state, index)
        if cache is not None:
            cache.set_fresh(index)
    return index


def recommend(
    snap: Snapshot,
    state: OnlineState,
    req: Request,
    *,
    fresh_slots: int,
    hidden: frozenset[str] = frozenset(),
    incremental: bool = True,
) -> list[RecItem]:
    """Top-k for a known or unknown user, with live history, filters and explanations, then
    the live catalog step (at most `fresh_slots` live items). hidden: users made private since
    the start, whom explanations computed before must not cite. incremental: serve a known
    user with live state from their precomputed candidates updated with it (`_incremental`),
    rather than the whole pipeline."""
    if req.k < 1:
        raise ConfigError(f"k must be at least 1, got {req.k}")
    allowed = allowed_mask(snap, state, req)
    served = _recommend(snap, state, req, allowed, hidden, incremental)
    if fresh_slots == 0:
        return served
    return with_fresh(
        snap.serving,
        fresh_index(snap, state),
        state,
        req.user,
        req.k,
        served,
        slots=fresh_slots,
        explain=req.explain,
        categories=req.categories,
        authors=req.authors,
        exclude=req.exclude,
    )


def refresh(
    snap: Snapshot, state: OnlineState, user: str, *, k: int, hidden: frozenset[str] = frozenset()
) -> bool:
    """Compute ahead, and cache, what a live user's next unfiltered request for up to `k`
    items needs: their candidates updated with their live state (`_incremental`), the final
    list and its explanations. Only where the incremental path applies (a known user, lists
    ready, not touched or erased since the start); False: nothing done."""
    holder, serving = snap.lists, snap.serving
    if (
        snap.cache is None
        or not snap.cache.capacity
        or holder is None
        or holder.lists is None
        or not isinstance(serving, IncrementalServing)
        or state.fitted_view_stale(user)
        or serving.model.users_.get(user) < 0
    ):
        return False
    req = Request(str(user), k, explain=True)
    _recommend(snap, state, req, allowed_mask(snap, state, req), hidden)
    return True


def _recommend(
    snap: Snapshot,
    state: OnlineState,
    req: Request,
    allowed: np.ndarray,
    hidden: frozenset[str],
    incremental: bool = True,
) -> list[RecItem]:
    serving = snap.serving
    user, k = req.user, req.k
    cache = snap.cache if serving.caches_candidates else None
    stamp = state.user_version(user)  # before the data it stamps
    # a user the model never saw, with no live state: the context is everyone's cold start
    # context, so all of them share one entry (only the ID differs, set per request). Any
    # per-user input added to the context later (e.g. live interests) must bump
    # `user_version`, which takes the user out of this shared entry.
    anonymous = (
        cache is not None and req.context_item is None and stamp == 0 and not serving.knows(user)
    )
    key = (_COLD_KEY, None) if anonymous else (user, req.context_item)
    pool = serving.rerank_pool
    entry = cache.get(key, stamp) if cache is not None and cache.capacity else None
    if entry is not None and entry.cut and not _enough(entry.items, allowed, pool):
        entry = None  # this request's filters leave too few of the cut list: in full
    path = "hit"
    if entry is None:
        # from the lists: rebuilt per request (cheap), never cached -- the LRU would only
        # duplicate them, and a full one makes every garbage collection walk its entries
        path = "precomputed"
        entry = _precomputed(snap, user, stamp, req.context_item, allowed, pool)
        if entry is None and incremental:
            path = "incremental"
            entry = _incremental(snap, state, req, stamp, allowed, pool)
        if entry is None:
            path = "full"
            ctx = serving.contexts([state.live_user(user, req.context_item)])[0]
            entry = CachedCandidates(ctx, serving.candidates([ctx])[0], stamp)
        if cache is not None and path != "precomputed":
            cache.put(key, entry)
    if snap.cache is not None:
        snap.cache.count(path)
    ctx = dataclasses.replace(entry.ctx, user=user) if anonymous else entry.ctx
    final = _final_of(entry, k, allowed, pool) if serving.stateless_rerank else None
    if final is None:
        items, shown = serving.final_list(ctx, entry.ranked, k, allowed)
        if (
            serving.stateless_rerank
            and not anonymous
            and not (req.exclude or req.categories is not None or req.authors is not None)
            and (entry.final is None or len(items) > len(entry.final[0]))
            and allowed[entry.items[:pool]].all()
        ):
            # the unfiltered answer (the mask removes none of the pool): the entry's next
            # requests for up to k items take it as the precomputed lists' final list
            entry.final = (items, shown)
    else:
        items, shown = final
    ids = serving.model.items_.lookup(items)
    out = []
    for i, iid, sc in zip(items.tolist(), ids, shown.tolist(), strict=True):
        expl = None
        if req.explain:
            expl = _explanation(serving, entry, ctx, i, sc, anonymous=anonymous, hidden=hidden)
        out.append(RecItem(str(iid), sc, expl))
    return out


def _explanation(
    serving: ServingModel,
    entry: CachedCandidates,
    ctx: UserContext,
    item: int,
    score: float,
    *,
    anonymous: bool,
    hidden: frozenset[str],
) -> dict[str, object]:
    """The explanation of a served item with the score shown: from the precomputed lists, the
    entry's earlier explanations, or made now. Explanations made before a user turned private
    may cite them: those are made anew."""
    ready = entry.final_explained.get(item)
    if ready is not None and not anonymous:
        # computed with the lists for this user and this displayed score
        done: dict[str, object] = json.loads(ready)
        if not hidden or not _cites(done.get("evidence", ()), hidden):
            return {**done, "score": score}
    base: Explanation | None = entry.explained.get(item)
    if base is not None and hidden and _cites(base.to_dict()["evidence"], hidden):
        base = None
    if base is None:
        j = entry.position(item)
        ranked = entry.ranked
        if j >= 0:
            row_score, row_rank = ranked.source_score[j], ranked.source_rank[j]
        else:  # backfill: no source proposed it
            row_score = row_rank = np.full(len(ranked.sources), np.nan, np.float32)
        try:
            base = serving.explain(ctx, item, row_score, row_rank, score)
        except SerendipError as exc:  # a model without explanations still serves
            return {
                "user": ctx.user,
                "item": str(serving.model.items_.id(item)),
                "model": serving.model.name,
                "text": "",
                "evidence": [],
                "error": str(exc),
            }
        entry.explained[item] = base
    return dataclasses.replace(base, score=score, user=ctx.user).to_dict()


def _precomputed(
    snap: Snapshot,
    user: str,
    stamp: int,
    context_item: str | None,
    allowed: np.ndarray,
    pool: int,
) -> CachedCandidates | None:
    """The user's entry from the precomputed lists: only for a known user with no live
    state (their context is the fitted one the lists were ranked from) and no context item,
    and only when exact for this request (see `_enough`)."""
    holder = snap.lists
    if holder is None or holder.lists is None or stamp != 0 or context_item is not None:
        return None
    serving = snap.serving
    u = serving.model.users_.get(user)
    pre = holder.lists.get(u) if u >= 0 else None
    if pre is None or (pre.cut and not _enough(pre.items, allowed, pool)):
        return None
    ctx = serving.contexts([LiveUser(user)])[0]
    return CachedCandidates(
        ctx,
        pre.ranked(holder.lists.sources),
        stamp,
        cut=pre.cut,
        final=(pre.final_items, pre.final_scores),
        final_explained=pre.explanations,
    )


def _incremental(
    snap: Snapshot, state: OnlineState, req: Request, stamp: int, allowed: np.ndarray, pool: int
) -> CachedCandidates | None:
    """The entry of a known user with live state (events, follows, a context item) from their
    precomputed candidates updated with it (`IncrementalServing.update_candidates`): the cost of
    a few sources' proposals and one ranker pass over about the lists' depth, not the whole
    pipeline. None (compute in full): no lists, a model that cannot update, a user touched or
    erased since the start, or a cut list this request's filters leave too short."""
    holder = snap.lists
    serving = snap.serving
    if holder is None or holder.lists is None or not isinstance(serving, IncrementalServing):
        return None
    if state.fitted_view_stale(req.user):
        return None
    u = serving.model.users_.get(req.user)
    pre = holder.lists.get(u) if u >= 0 else None
    if pre is None:
        return None
    live = state.live_user(req.user, req.context_item)
    ctx = serving.contexts([live])[0]
    ranked = serving.update_candidates(ctx, pre.ranked(holder.lists.sources), live)
    if pre.cut and not _enough(ranked.items, allowed, pool):
        return None
    return CachedCandidates(ctx, ranked, stamp, cut=pre.cut)


def _final_of(
    entry: CachedCandidates, k: int, allowed: np.ndarray, pool: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The precomputed final list's first k items when they are this request's answer: k is
    within it and the request's mask removes none of the re-ranking pool nor of the list
    (then the pool, the greedy re-ranking and any backfill are the same; the list is greedy,
    so its first k are the k-item answer). None: compute it."""
    if entry.final is None:
        return None
    items, shown = entry.final
    if k > len(items) or (len(items) < k and entry.cut):
        return None
    if not (allowed[entry.items[:pool]].all() and allowed[items].all()):
        return None
    return items[:k], shown[:k]


def _cites(evidence: object, users: frozenset[str]) -> bool:
    """Does this evidence (explanation dicts' entries) cite any of `users`?"""
    if not isinstance(evidence, Iterable):
        return False
    return any(
        isinstance(ev, Mapping)
        and ev.get("kind") in ("followee", "user", "author")
        and str(ev.get("id")) in users
        for ev in evidence
    )


def _enough(items: np.ndarray, allowed: np.ndarray, pool: int) -> bool:
    """Does a cut candidate list still hold a full re-ranking pool under this request's mask?
    Then the pool -- the best allowed candidates by score -- is the same as the full list's,
    and so is the final list."""
    return int(np.count_nonzero(allowed[items])) >= pool


def similar(snap: Snapshot, state: OnlineState, item: str, k: int) -> list[RecItem]:
    """The k items most like `item` (deleted items filtered; over-fetched to keep k)."""
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    deleted = state.deleted()
    if str(item) in deleted:
        raise SerendipError(f"item '{item}' was deleted")
    recs = snap.serving.model.similar_items(str(item), k + len(deleted))
    out = [
        RecItem(iid, float(sc))
        for iid, sc in zip(recs.item_ids(0), recs.scores[0].tolist(), strict=False)
        if iid not in deleted
    ]
    return out[:k]


def trending(
    snap: Snapshot, state: OnlineState, k: int, category: str | None = None
) -> list[RecItem]:
    """Most active items now: the model's training popularity (counted as one half-life
    old when the live events start, then decaying like them) plus the live event counts,
    decayed with the state's half-life. New catalog items enter as soon as they get events;
    deleted items never appear."""
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    model = snap.serving.model
    live, clock, first = state.counts()
    deleted = state.deleted()
    updates = state.items()
    loaded = snap.metadata.get("live_clock_at_load", -math.inf)
    anchor = max(float(loaded) if isinstance(loaded, (int, float)) else -math.inf, first)
    age = max(0.0, clock - anchor) if math.isfinite(clock) and math.isfinite(anchor) else 0.0
    prior = 0.5 ** (1.0 + age / state.half_life_s)
    pop = np.asarray(model.popularity_, dtype=np.float64) * prior
    if category is not None:
        cat, _ = _item_columns(model.item_category_, model.item_author_, model.items_, updates)
        pop = np.where(cat.astype(str) == str(category), pop, 0.0)
    scores: dict[str, float] = {}
    for i in np.argsort(-pop, kind="stable")[: k + len(deleted) + len(live)]:
        if pop[i] > 0:
            scores[str(model.items_.id(int(i)))] = float(pop[i])
    for iid, c in live.items():
        if category is not None:
            info = updates.get(iid)
            j = model.items_.get(iid)
            c_cat = info.category if info else (str(model.item_category_[j]) if j >= 0 else "")
            if c_cat != str(category):
                continue
        scores[iid] = scores.get(iid, 0.0) + c
    ranked = heapq.nsmallest(
        k, ((i, s) for i, s in scores.items() if i not in deleted), key=lambda x: (-x[1], x[0])
    )
    return [RecItem(i, s) for i, s in ranked]


def _item_columns(
    category: np.ndarray, author: np.ndarray, items: Vocabulary, updates: Mapping[str, ItemInfo]
) -> tuple[np.ndarray, np.ndarray]:
    """Category and author of every model item, with live catalog updates applied."""
    cat = np.asarray(category, dtype=object)
    auth = np.asarray(author, dtype=object)
    if updates:
        idx = items.indices(list(updates))
        if (idx >= 0).any():
            cat, auth = cat.copy(), auth.copy()
            for j, info in zip(idx, updates.values(), strict=True):
                if j >= 0:
                    cat[j], auth[j] = info.category, info.author
    return cat, auth


def smoke_lists(
    serving: ServingModel, users: Sequence[str], k: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each user's final list of an unfiltered request, through both halves (a load's check
    that the model serves)."""
    contexts = serving.contexts([LiveUser(u) for u in users])
    ranked = serving.candidates(contexts)
    return [serving.final_list(c, r, k, None) for c, r in zip(contexts, ranked, strict=True)]
