"""Any zoo model behind the serving contract (`ZooServing`).

A zoo model ranks the whole catalog per request, so there is nothing to compute ahead: its
candidates are empty and the final list does the work. A user's live events since the fit reach
the model in one of two ways: models whose cold-start path folds a history in exactly as fitting
would (user factors, content profiles; `supports_update`) score a known user from their training
history plus the live events, under a request-local alias; every other model gets the live
history as `context`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from serendip.errors import SerendipError
from serendip.models.base import Evidence, Explanation, ModelConfig, Recommender
from serendip.serving.context import UserContext
from serendip.serving.contract import LiveUser, RankedCandidates

__all__ = ["FOLD_IN_FAMILIES", "ZooServing"]

#: Families whose cold-start path folds a history in exactly as fitting would (user factors,
#: content profiles): a known user with live events is re-scored from train + live history.
FOLD_IN_FAMILIES = frozenset({"factorization", "content"})
#: Prefix of the request-local alias under which a known user is folded in (never a real ID:
#: external IDs are printable strings).
_ALIAS = "\x00live:"
_EMPTY = np.zeros(0, np.int64)


class ZooServing:
    """The serving contract over one fitted zoo model."""

    sources: tuple[str, ...] = ()
    caches_candidates = False
    rerank_pool = 0
    stateless_rerank = True

    def __init__(self, model: Recommender[ModelConfig]) -> None:
        self._model = model

    @property
    def model(self) -> Recommender[ModelConfig]:
        return self._model

    def knows(self, user: str) -> bool:
        return self._model.users_.get(user) >= 0

    def contexts(self, live: Sequence[LiveUser]) -> list[UserContext]:
        users = self._model.users_
        return [
            UserContext(
                user=lu.user,
                user_idx=int(users.get(lu.user)),
                history=_EMPTY,
                history_time=np.zeros(0),
                history_event=np.zeros(0, np.int8),
                followees=_EMPTY,
                live=tuple(item for item, _, _ in lu.events),
            )
            for lu in live
        ]

    def candidates(
        self, contexts: Sequence[UserContext], *, depth: int | None = None
    ) -> list[RankedCandidates]:
        return [RankedCandidates.empty() for _ in contexts]

    def final_list(
        self,
        ctx: UserContext,
        candidates: RankedCandidates,
        k: int,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model's top-k under the request's mask, the live history folded in or given as
        context."""
        model = self._model
        ask, history = ctx.user, list(ctx.live)
        fold_in = model.supports_update and model.family in FOLD_IN_FAMILIES
        if ctx.user_idx >= 0 and history and fold_in:
            train = model.train_
            u = ctx.user_idx
            past = model.items_.lookup(train.indices[train.indptr[u] : train.indptr[u + 1]])
            history = [str(x) for x in past] + history
            ask = _ALIAS + ctx.user
        mask = allowed
        recs = model.recommend(
            [ask],
            k,
            filters=None if mask is None else (lambda idx: mask[idx]),
            context={ask: history} if history else None,
        )
        items = recs.items[0]
        n = int(np.count_nonzero(items >= 0))
        return items[:n], recs.scores[0][:n]

    def explain(
        self,
        ctx: UserContext,
        item: int,
        source_score: np.ndarray,
        source_rank: np.ndarray,
        score: float,
    ) -> Explanation:
        """The model's own explanation for a known user; for a user the model never saw, the
        live history items most similar to `item` (where the model defines similarity)."""
        model = self._model
        item_id = str(model.items_.id(item))
        base = model.explain(ctx.user, item_id)
        if ctx.user_idx >= 0:
            return base
        hist = model.items_.indices(list(dict.fromkeys(ctx.live)))
        hist = hist[hist >= 0]
        if len(hist) == 0:
            return base
        try:
            sims = np.asarray(model.item_similarities(item), dtype=np.float64)[hist]
        except SerendipError:
            return base
        order = np.argsort(-sims, kind="stable")[:3]
        evidence = tuple(
            Evidence("item", str(model.items_.id(int(hist[j]))), float(sims[j]))
            for j in order
            if sims[j] > 0
        )
        if not evidence:
            return base
        text = f"Because you interacted with {evidence[0].id}"
        return Explanation(ctx.user, item_id, model.name, base.score, evidence, text)

    def followees(self, user: str) -> frozenset[str]:
        return frozenset()

    def followers(self, users: Sequence[str]) -> list[str]:
        return []

    def interests(self, user: str) -> tuple[str, ...]:
        return ()

    def recent_items(self, user: str) -> np.ndarray:
        """The user's training row."""
        u = self._model.users_.get(user)
        if u < 0:
            return _EMPTY
        train = self._model.train_
        return np.asarray(train.indices[train.indptr[u] : train.indptr[u + 1]], np.int64)

    def is_private(self, user: str) -> bool:
        return False

    def set_private(self, flags: Mapping[str, bool]) -> list[str]:
        return []
