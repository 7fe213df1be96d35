"""Explanations for the pipeline's recommendations: structured evidence and one short sentence.

The explainer takes the source that proposed the item most strongly (`CandidateSource.evidence`),
checks its evidence against the data and writes the sentence: "Because you liked <title>"
(content: "Similar to <title>"), "<n> people you follow liked this", "New from <author>, whom
you follow", "Trending in <category>", "Matches your interest in <x>", a sentence naming nobody
for exploration, "Popular with everyone". Whatever a source says, a cited item must be in the
user's history, a cited followee followed and active on the item in the fitted data, a cited
author the item's and followed, and nobody private (`UserTable.private`) is ever cited, counted
or named. Evidence failing a check is dropped; a source left with nothing yields to the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from serendip.data.vocabulary import Vocabulary
from serendip.models.base import Evidence, Explanation
from serendip.pipeline.candidates import CandidateSource, UserContext

__all__ = ["Explainer", "SourceHit"]

#: Which source wins a tie in rank: the more personal reason first.
_PRIORITY: tuple[str, ...] = (
    "fresh-followed",
    "in-network",
    "recent-item-knn",
    "collaborative",
    "collaborative-2",
    "content",
    "explore",
    "trending",
)

_CONTENT_KINDS = frozenset({"content"})
_TRENDING_KINDS = frozenset({"trending", "popularity"})


@dataclass(frozen=True, slots=True)
class SourceHit:
    """One source's proposal of the item: its name, score and 1-based rank."""

    source: str
    score: float
    rank: float


def _priority(name: str) -> int:
    return _PRIORITY.index(name) if name in _PRIORITY else len(_PRIORITY)


def _holds(values: np.ndarray, x: int) -> bool:
    """Is `x` among `values` (a context's history or followees)? `np.isin` for one value,
    without its set machinery: one comparison pass over a short array."""
    return bool((np.asarray(values) == x).any())


class Explainer:
    """Turns source evidence into checked `Explanation`s.

    items / users: the fitted vocabularies; titles, categories, item_authors: item metadata
    aligned with `items` (authors as external user IDs, "" unknown); private: bool per fitted
    user; interactions: CSR users x items of the fitted data (any nonzero = the user interacted),
    the ground truth a cited followee is checked against.
    """

    def __init__(
        self,
        *,
        items: Vocabulary,
        users: Vocabulary,
        titles: np.ndarray,
        categories: np.ndarray,
        item_authors: np.ndarray,
        private: np.ndarray,
        interactions: sp.csr_matrix,
        model: str = "pipeline",
    ) -> None:
        self.items = items
        self.users = users
        self.titles = np.asarray(titles, dtype=object)
        self.categories = np.asarray(categories, dtype=object)
        self.item_authors = np.asarray(item_authors, dtype=object)
        self.private = np.asarray(private, dtype=bool)
        self.interactions = sp.csr_matrix(interactions)
        self.interactions.sort_indices()
        self.model = model

    # ------------------------------------------------------------------ checks
    def title(self, item: int) -> str:
        t = str(self.titles[item]) if item < len(self.titles) else ""
        return t or str(self.items.id(item))

    def is_private(self, user_id: str) -> bool:
        u = self.users.get(user_id)
        return bool(u >= 0 and self.private[u])

    def interacted(self, user: int, item: int) -> bool:
        m = self.interactions
        if not (0 <= user < m.shape[0]):
            return False
        row = m.indices[m.indptr[user] : m.indptr[user + 1]]
        pos = int(np.searchsorted(row, item))
        return pos < len(row) and int(row[pos]) == item

    def _check(self, ctx: UserContext, item: int, ev: Evidence) -> Evidence | None:
        """The evidence if it is true and may be shown to this viewer, else None."""
        if ev.kind == "item":
            i = self.items.get(ev.id)
            if i < 0 or not _holds(ctx.history, i):
                return None
            return Evidence("item", ev.id, ev.weight, ev.label or self.title(i))
        if ev.kind in ("followee", "user"):
            u = self.users.get(ev.id)
            if u < 0 or self.private[u] or u == ctx.user_idx:
                return None
            if ev.kind == "followee" and not _holds(ctx.followees, u):
                return None
            if not self.interacted(u, item):
                return None
            return ev
        if ev.kind == "author":
            if ev.id != str(self.item_authors[item]) or self.is_private(ev.id):
                return None
            u = self.users.get(ev.id)
            if u < 0 or not _holds(ctx.followees, u):
                return None
            return ev
        if ev.kind in ("source", "factor", "feature", "word", "popularity", "category"):
            return ev
        if ev.kind == "interest":
            return ev if ev.id in ctx.interests else None
        return None

    # ------------------------------------------------------------------ sentences
    def _sentence(self, source: CandidateSource, item: int, evidence: list[Evidence]) -> str:
        kinds = {e.kind for e in evidence}
        if "followee" in kinds:
            n = sum(e.kind == "followee" for e in evidence)
            return (
                "1 person you follow liked this" if n == 1 else f"{n} people you follow liked this"
            )
        if "author" in kinds:
            author = next(e for e in evidence if e.kind == "author")
            return f"New from {author.id}, whom you follow"
        if "item" in kinds:
            first = next(e for e in evidence if e.kind == "item")
            title = self.title(self.items.index(first.id))
            if source.kind in _CONTENT_KINDS or source.name == "content":
                return f"Similar to {title}"
            return f"Because you liked {title}"
        if "interest" in kinds:
            first = next(e for e in evidence if e.kind == "interest")
            return f"Matches your interest in {first.id}"
        if source.kind in _TRENDING_KINDS or source.name == "trending":
            cat = str(self.categories[item])
            return f"Trending in {cat}" if cat else "Trending now"
        if "popularity" in kinds:
            return "Popular with everyone"
        if "user" in kinds:
            return "Popular with people close to your network"
        return ""

    # ------------------------------------------------------------------ explain
    def explain(
        self,
        ctx: UserContext,
        item: int,
        hits: Sequence[SourceHit],
        sources: Mapping[str, CandidateSource],
        score: float,
    ) -> Explanation:
        """The explanation of `item` (an item index) for `ctx`.

        hits: the sources that proposed the item for this user (from the candidate frame);
        tried from the best rank (ties: the more personal source first) until one has checked
        evidence and a sentence. With none, the item is explained by the strongest source alone
        ("Recommended for you") or, proposed by nobody, as popular.
        """
        ordered = sorted(hits, key=lambda h: (h.rank, _priority(h.source), h.source))
        for hit in ordered:
            source = sources.get(hit.source)
            if source is None:
                continue
            raw = source.evidence(ctx, item)
            checked = [e for e in (self._check(ctx, item, ev) for ev in raw) if e is not None]
            text = self._sentence(source, item, checked)
            if text:
                head = Evidence("source", hit.source, float(hit.score), f"rank {int(hit.rank)}")
                return self._make(ctx, item, score, [head, *checked], text)
        if ordered:
            hit = ordered[0]
            head = Evidence("source", hit.source, float(hit.score), f"rank {int(hit.rank)}")
            return self._make(ctx, item, score, [head], "Recommended for you")
        return self._make(ctx, item, score, [], "Popular right now")

    def _make(
        self, ctx: UserContext, item: int, score: float, evidence: list[Evidence], text: str
    ) -> Explanation:
        return Explanation(
            ctx.user, str(self.items.id(item)), self.model, float(score), tuple(evidence), text
        )
