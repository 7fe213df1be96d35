"""The serving contract: what the HTTP service needs of a fitted model.

A request has an expensive half -- the user's context and candidates, ranked -- that depends
only on the model and the user's state, so the server may compute it ahead in batch and cache
it per user; and a cheap half -- the request's filters, re-ranking, the final k -- that runs on
every request. `ServingModel` declares both halves, explanations and the live updates a server
applies between fits. The pipeline implements it (`serendip.pipeline.serving`); every zoo model
is served through one adapter (`serendip.serving.zoo.ZooServing`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from serendip.models.base import Explanation, ModelConfig, Recommender
from serendip.serving.context import UserContext

__all__ = [
    "IncrementalServing",
    "LiveEvent",
    "LiveUser",
    "RankedCandidates",
    "RecItem",
    "ServingModel",
]


#: One live event of a user: (item ID, epoch seconds, event type).
LiveEvent = tuple[str, float, str]


@dataclass(frozen=True, slots=True)
class LiveUser:
    """What the server learned about one user since the model's fit: their events (oldest
    first; a request's context item counts as the newest) and follow changes."""

    user: str
    events: tuple[LiveEvent, ...] = ()
    followed: frozenset[str] = field(default_factory=frozenset)
    unfollowed: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True, eq=False)
class RankedCandidates:
    """One user's ranked candidates: item indices, scores (non-increasing), per-source scores
    and ranks (n x len(sources), NaN where a source did not propose the item), and how many
    candidates passed the rules before a depth cut (`total` > len(items): the list was cut)."""

    items: np.ndarray
    scores: np.ndarray
    sources: tuple[str, ...]
    source_score: np.ndarray
    source_rank: np.ndarray
    total: int

    @classmethod
    def empty(cls, sources: tuple[str, ...] = ()) -> RankedCandidates:
        n = len(sources)
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
            sources,
            np.zeros((0, n), np.float32),
            np.zeros((0, n), np.float32),
            0,
        )


@dataclass(frozen=True, slots=True)
class RecItem:
    """One served item: external ID, score (higher = better; comparable within a list only)
    and the explanation (`Explanation.to_dict()` form) when asked for."""

    item: str
    score: float
    explanation: Mapping[str, object] | None = None


@runtime_checkable
class ServingModel(Protocol):
    """What the service calls on the active model. Item indices are the fitted vocabulary's."""

    @property
    def model(self) -> Recommender[ModelConfig]:
        """The fitted model: vocabularies, catalog columns, popularity, `similar_items`."""
        ...

    @property
    def sources(self) -> tuple[str, ...]:
        """Names of the candidate sources, in the order of `RankedCandidates` columns."""
        ...

    @property
    def caches_candidates(self) -> bool:
        """Are the candidates worth computing ahead and caching per user? (False: the final
        list does the work, and `candidates` returns empty lists.)"""
        ...

    @property
    def rerank_pool(self) -> int:
        """How many of the best allowed candidates enter the re-ranking."""
        ...

    @property
    def stateless_rerank(self) -> bool:
        """Does a final list depend only on the candidates and the request? Then a server may
        compute it ahead and reuse it."""
        ...

    def knows(self, user: str) -> bool:
        """Does the model hold state of its own for `user` (fitted or folded in)?"""
        ...

    def contexts(self, live: Sequence[LiveUser]) -> list[UserContext]:
        """Each user's context: the model's view of them plus what happened since the fit."""
        ...

    def candidates(
        self, contexts: Sequence[UserContext], *, depth: int | None = None
    ) -> list[RankedCandidates]:
        """The expensive half, batch first: each context's ranked candidates that pass the
        static rules, cut to the `depth` best (None: all)."""
        ...

    def final_list(
        self,
        ctx: UserContext,
        candidates: RankedCandidates,
        k: int,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The cheap half: (item indices, displayed scores) of the k items served, given the
        candidates and the request's bool mask over the catalog."""
        ...

    def explain(
        self,
        ctx: UserContext,
        item: int,
        source_score: np.ndarray,
        source_rank: np.ndarray,
        score: float,
    ) -> Explanation:
        """Why `item` is served, from its per-source scores and ranks (NaN: not proposed)."""
        ...

    def followees(self, user: str) -> frozenset[str]:
        """Whom `user` follows in the fitted data (external IDs; empty where the model keeps
        no follow graph)."""
        ...

    def followers(self, users: Sequence[str]) -> list[str]:
        """Every user who follows one of `users` in the fitted data."""
        ...

    def interests(self, user: str) -> tuple[str, ...]:
        """The user's declared interests, where the model keeps them."""
        ...

    def recent_items(self, user: str) -> np.ndarray:
        """Item indices of the user's fitted history, most telling first."""
        ...

    def is_private(self, user: str) -> bool:
        """May explanations not name `user`?"""
        ...

    def set_private(self, flags: Mapping[str, bool]) -> list[str]:
        """Apply privacy changes (user -> private) at once; returns the users whose flag
        changed (their followers' lists may cite them)."""
        ...


@runtime_checkable
class IncrementalServing(ServingModel, Protocol):
    """A serving model that can update a user's precomputed candidates with their live state
    instead of computing them anew (the fast path for users active since the fit)."""

    def update_candidates(
        self, ctx: UserContext, base: RankedCandidates, live: LiveUser
    ) -> RankedCandidates:
        """`base` -- the user's candidates as precomputed from the fitted view, columns in
        `sources` order -- updated for `ctx` (the context with `live` merged in)."""
        ...
