"""A live user's ranked candidates, updated from their precomputed ones instead of recomputed.

The full path runs every source for a user with events since the fit. The sources whose
proposals for a known user follow the fitted data -- the collaborative model's fitted user
vector, the explore source's fitted similar users (its followee part aside) -- do not move with
live events, and they are the dearest per user; the update keeps their columns from the
precomputed candidates and proposes anew with the others, which read the new events or the
request time they move (recent-item kNN: neighbours of the new items through its sparse top-k
index; content: the new profile; in-network, trending, fresh-followed: decayed to the new
`now`). The proposals are merged into the precomputed candidates (replacing those sources'
columns) and the union is re-scored by the ranker on the user's current context (author and
category affinity, content similarity, counters, recency). Candidates no source proposes any
more are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from serendip.pipeline._arrays import among
from serendip.pipeline.candidates import CandidateFrame, UserContext
from serendip.pipeline.recommender import PipelineRecommender
from serendip.serving.contract import RankedCandidates

__all__ = ["FITTED_SOURCES", "SOCIAL_SOURCES", "rerun_sources", "update_ranked"]

#: Sources kept from the precomputed candidates after live events (see the module docstring).
FITTED_SOURCES: tuple[str, ...] = ("collaborative", "explore")
#: ... of which these are proposed anew after follow changes (they read the followees).
SOCIAL_SOURCES: tuple[str, ...] = ("explore",)


def rerun_sources(sources: Iterable[str], *, events: bool, follows: bool) -> tuple[str, ...]:
    """The sources to propose anew for a user with live events and/or follow changes."""
    if not events and not follows:
        return ()
    kept = set(FITTED_SOURCES) - (set(SOCIAL_SOURCES) if follows else set())
    return tuple(s for s in sources if s not in kept)


def update_ranked(
    model: PipelineRecommender,
    ctx: UserContext,
    base: RankedCandidates,
    rerun: Iterable[str],
) -> RankedCandidates:
    """`base` (the user's fitted ranked candidates, columns in the model's source order) with
    the sources in `rerun` proposed anew for `ctx` and every candidate re-scored; the result
    passes the static rules, best first (ties by item index), `total` kept from `base` where it
    was cut (candidates beyond its depth stay unknown)."""
    stage = model.stage_
    names = tuple(stage.sources)
    if tuple(base.sources) != names:
        raise ValueError(f"candidates of sources {base.sources} for a model with {names}")
    cols = {name: j for j, name in enumerate(names)}
    fresh = {name: stage.sources[name] for name in rerun if name in stage.sources}
    proposals = {
        name: src.propose_batch([ctx], stage.quotas[name])[0] for name, src in fresh.items()
    }
    items = np.unique(
        np.concatenate(
            [np.asarray(base.items, np.int64)]
            + [np.asarray(p.items, np.int64) for p in proposals.values()]
        )
    )
    n, n_src = len(items), len(names)
    score = np.full((n, n_src), np.nan, np.float32)
    rank = np.full((n, n_src), np.nan, np.float32)
    at = np.searchsorted(items, np.asarray(base.items, np.int64))
    score[at] = base.source_score
    rank[at] = base.source_rank
    for name, prop in proposals.items():
        j = cols[name]
        score[:, j] = rank[:, j] = np.nan
        pos = np.searchsorted(items, np.asarray(prop.items, np.int64))
        score[pos, j] = np.asarray(prop.scores, np.float32)
        rank[pos, j] = np.arange(1, len(pos) + 1, dtype=np.float32)
    keep = ~np.isnan(rank).all(axis=1)  # a candidate no source proposes now is gone
    keep &= model._rules_allow(items, ctx, None, model.config.filters.exclude_seen)
    items, score, rank = items[keep], score[keep], rank[keep]
    frame = CandidateFrame(np.zeros(len(items), np.int64), items, names, score, rank)
    scores = np.asarray(model._rank(frame, [ctx]), dtype=np.float32)
    order = np.lexsort((items, -scores.astype(np.float64)))
    dropped = len(base.items) - int(among(base.items, items).sum())
    total = max(len(order), base.total - dropped) if base.total > len(base.items) else len(order)
    return RankedCandidates(
        items=items[order],
        scores=scores[order],
        sources=names,
        source_score=score[order],
        source_rank=rank[order],
        total=int(total),
    )
