"""Candidate sources of the two-stage pipeline, by name.

| name | what it proposes | evidence kinds |
|---|---|---|
| `in-network` | items followees authored, liked or shared, by tie strength, recency-decayed | followee, author |
| `collaborative` | a zoo model's top-n (default iALS) | the model's (item, user, factor, ...) |
| `collaborative-2` | a second zoo model's top-n (not in the default config) | as `collaborative` |
| `collaborative-oon` | a zoo model's best items outside the user's network, from deep in its ranking (not in the default config) | as `collaborative` |
| `recent-item-knn` | items co-interacted with the user's latest items | item |
| `content` | items similar in text/tags to the latest items or declared interests | item, interest |
| `trending` | time-decayed popularity at `ctx.now` (optionally in the user's categories) | popularity (id = category) |
| `fresh-followed` | newest items by followed authors (window before `now`) | author |
| `explore` | items liked by friends-of-friends and similar non-followed users, none a followee touched | user |

Every source: `fit(dataset)`, then `propose(ctx, n)` for any `UserContext` (unseen users too);
never proposes `ctx.history`, `ctx.exclude` or items created after `ctx.now`; evidence carries
external IDs; no private user's activity feeds others' candidates or evidence. Loading:
`make_source(name, **meta["params"])`, then `_set_state`. Shared social signals are public too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serendip.errors import ConfigError
from serendip.pipeline.candidates import CandidateSource
from serendip.pipeline.sources._base import SourceBase, SourceConfig, top_n
from serendip.pipeline.sources._rows import (
    gathers,
    rows_dot,
    rows_dot_row,
    rows_gram,
    rows_mean,
    rows_weighted_sum,
)
from serendip.pipeline.sources._social import (
    SOCIAL_EVENT_WEIGHTS,
    ActionMatrix,
    SocialStats,
    action_matrix,
    event_weight_vector,
    row_slices,
    social_stats,
)
from serendip.pipeline.sources.collaborative import CollaborativeSource, SecondCollaborativeSource
from serendip.pipeline.sources.collaborative_oon import CollaborativeOONSource
from serendip.pipeline.sources.content import ContentSource
from serendip.pipeline.sources.explore import ExploreSource
from serendip.pipeline.sources.fresh_followed import FreshFollowedSource
from serendip.pipeline.sources.in_network import InNetworkSource
from serendip.pipeline.sources.recent_item_knn import RecentItemKNNSource
from serendip.pipeline.sources.trending import TrendingSource

__all__ = [
    "SOCIAL_EVENT_WEIGHTS",
    "SOURCES",
    "ActionMatrix",
    "CollaborativeOONSource",
    "CollaborativeSource",
    "ContentSource",
    "ExploreSource",
    "FreshFollowedSource",
    "InNetworkSource",
    "RecentItemKNNSource",
    "SecondCollaborativeSource",
    "SocialStats",
    "SourceBase",
    "SourceConfig",
    "TrendingSource",
    "action_matrix",
    "event_weight_vector",
    "gathers",
    "make_source",
    "row_slices",
    "rows_dot",
    "rows_dot_row",
    "rows_gram",
    "rows_mean",
    "rows_weighted_sum",
    "social_stats",
    "top_n",
]

SOURCES: Mapping[str, type[SourceBase]] = {
    cls.name: cls
    for cls in (
        InNetworkSource,
        CollaborativeSource,
        SecondCollaborativeSource,
        CollaborativeOONSource,
        RecentItemKNNSource,
        ContentSource,
        TrendingSource,
        FreshFollowedSource,
        ExploreSource,
    )
}


def make_source(name: str, **params: Any) -> CandidateSource:
    """An unfitted source by name with validated parameters (`ConfigError` naming the valid
    sources or parameters otherwise).

    >>> make_source("trending", half_life_days=2.0)
    TrendingSource(half_life_days=2.0, top_categories=0)
    """
    cls = SOURCES.get(name)
    if cls is None:
        raise ConfigError(f"unknown candidate source '{name}'; valid: {', '.join(SOURCES)}")
    return cls(**params)
