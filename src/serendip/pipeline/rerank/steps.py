"""The re-ranking steps: one small class per mechanism, each with one method (its kind).

A list is built greedily, slot by slot, over a `Pool` (one user's best candidates by relevance)
into a `Slate` (the candidates taken so far):

- `RelevanceStep.adjust(pool)`: shifts relevance once before the list is built --
  `OutOfNetworkBoost`, `PopularityPenalty`;
- `Constraint.allowed(slate)`: what the next slot may take (none: the list ends) -- `AuthorCap`;
- `Target.prefer(slate, mask)`: narrows the allowed set to the side a share asks for, when that
  side has any, in order -- `OutOfNetworkTarget`, `LongTailQuota`;
- `SlotCost.cost(slate)`: a cost off relevance at this slot -- `ExposurePenalty`;
- `Selector.pick(slate, mask, relevance)`: the slot's candidate -- `TopRelevance`,
  `MaximalMarginalRelevance`.

`compose.Reranker` runs them, `RerankParams` chooses and orders them. Steps are frozen and hold
only their knobs (one composition serves every user); a step whose signal is absent does nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from serendip.pipeline.sources._rows import gathers, rows_gram

__all__ = [
    "AuthorCap",
    "Constraint",
    "ExposurePenalty",
    "LongTailQuota",
    "MaximalMarginalRelevance",
    "OutOfNetworkBoost",
    "OutOfNetworkTarget",
    "Pool",
    "PopularityPenalty",
    "RelevanceStep",
    "Selector",
    "Slate",
    "SlotCost",
    "Target",
    "TopRelevance",
]


@dataclass(frozen=True, eq=False)
class Pool:
    """One user's candidates entering the re-ranking, every array aligned with `items`.

    items: int64 catalog indices; scores: float64 ranker scores; relevance: float64, what the
    list is built on, non-increasing along the pool. The signals are None when not given:
    in_network (bool), author (int64 code, -1 unknown), popularity (float64 in [0, 1]),
    long_tail (bool), exposure (float64, how often the item was already shown); content: the
    catalog's content vectors (rows by catalog index, L2-normalised).
    """

    items: np.ndarray
    scores: np.ndarray
    relevance: np.ndarray
    in_network: np.ndarray | None = None
    author: np.ndarray | None = None
    popularity: np.ndarray | None = None
    long_tail: np.ndarray | None = None
    exposure: np.ndarray | None = None
    content: sp.csr_matrix | None = None

    @classmethod
    def top(
        cls,
        items: np.ndarray,
        scores: np.ndarray,
        size: int,
        *,
        content: sp.csr_matrix | None = None,
        author: np.ndarray | None = None,
        in_network: np.ndarray | None = None,
        popularity: np.ndarray | None = None,
        long_tail: np.ndarray | None = None,
        exposure: np.ndarray | None = None,
    ) -> Pool:
        """The `size` best candidates by score (ties: the lower item index first), relevance the
        score min-max scaled to [0, 1] over them (all ones when they tie). Per-candidate inputs:
        items, scores, in_network, exposure; per catalog item: author, popularity, long_tail."""
        items = np.asarray(items, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        order = np.lexsort((items, -scores))[:size]
        items, scores = items[order], scores[order]
        lo, hi = (scores.min(), scores.max()) if len(scores) else (0.0, 0.0)
        rel = (scores - lo) / (hi - lo) if hi > lo else np.ones(len(items))

        def per_item(signal: np.ndarray | None, dtype: type) -> np.ndarray | None:
            return None if signal is None else np.asarray(signal, dtype)[items]

        def per_candidate(signal: np.ndarray | None, dtype: type) -> np.ndarray | None:
            return None if signal is None else np.asarray(signal, dtype)[order]

        return cls(
            items,
            scores,
            rel,
            in_network=per_candidate(in_network, bool),
            author=per_item(author, np.int64),
            popularity=per_item(popularity, np.float64),
            long_tail=per_item(long_tail, bool),
            exposure=per_candidate(exposure, np.float64),
            content=content,
        )

    def __len__(self) -> int:
        return len(self.items)

    def reordered(self, order: np.ndarray) -> Pool:
        """The same candidates in this order."""

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[order]

        return replace(
            self,
            items=self.items[order],
            scores=self.scores[order],
            relevance=self.relevance[order],
            in_network=take(self.in_network),
            author=take(self.author),
            popularity=take(self.popularity),
            long_tail=take(self.long_tail),
            exposure=take(self.exposure),
        )

    @cached_property
    def similarity(self) -> np.ndarray:
        """Dense (m, m) content similarity of the candidates (dot products of their content
        rows), computed on first use. Needs `content`."""
        assert self.content is not None
        # scipy's product, without building the sub-matrices (`rows_gram`), where it can
        gram = rows_gram(self.content, self.items) if gathers(self.content) else None
        if gram is None:
            sub = self.content[self.items]
            gram = (sub @ sub.T).todense()
        return np.asarray(gram, dtype=np.float64)


class Slate:
    """The list being built over a pool: the pool positions chosen so far, in list order, and
    what the steps ask about them. The running summaries (`redundancy`, `author_counts`) start
    when first asked for and are then kept up to date as candidates are taken: O(m) a slot."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.taken = np.zeros(len(pool), dtype=bool)  # per candidate: chosen already
        #: per candidate: not chosen yet (kept beside `taken`: the slot loop reads it as is)
        self.available = np.ones(len(pool), dtype=bool)
        self._order = np.zeros(len(pool), dtype=np.int64)
        self._n = 0
        self._redundancy: np.ndarray | None = None
        self._author_counts: np.ndarray | None = None
        self._by_author: dict[int, int] = {}  # author code -> items chosen by them
        self._full: dict[int, np.ndarray] = {}  # cap -> per candidate: its author is at the cap
        self._most = 0  # the most items chosen from one author

    @property
    def chosen(self) -> np.ndarray:
        """The chosen pool positions, in list order (a view: copy to keep)."""
        return self._order[: self._n]

    def __len__(self) -> int:
        return self._n

    def take(self, j: int) -> None:
        self._order[self._n] = j
        self._n += 1
        self.taken[j] = True
        self.available[j] = False
        if self._redundancy is not None:
            self._add_similarity(self._redundancy, j)
        if self._author_counts is not None:
            self._add_author(self._author_counts, j)
        author = self.pool.author
        if author is not None and author[j] >= 0:
            code = int(author[j])
            n = self._by_author[code] = self._by_author.get(code, 0) + 1
            self._most = max(self._most, n)
            for cap, full in self._full.items():
                if n == cap:
                    full |= author == code

    def count(self, flags: np.ndarray) -> int:
        """How many of the chosen candidates have this flag."""
        return int(np.count_nonzero(flags[self.chosen]))

    def redundancy(self) -> np.ndarray:
        """Per candidate, its greatest content similarity to the chosen items (0 before any).
        Needs the pool's `content`."""
        if self._redundancy is None:
            self._redundancy = np.zeros(len(self.pool))
            for j in self.chosen.tolist():
                self._add_similarity(self._redundancy, j)
        return self._redundancy

    def author_counts(self) -> np.ndarray:
        """Per candidate, how many chosen items are by its author (0 for an unknown author).
        Needs the pool's `author`."""
        if self._author_counts is None:
            self._author_counts = np.zeros(len(self.pool), dtype=np.int64)
            for j in self.chosen.tolist():
                self._add_author(self._author_counts, j)
        return self._author_counts

    def at_cap(self, cap: int) -> np.ndarray | None:
        """Per candidate: `cap` or more chosen items are by its author (None: no author is, yet).
        Kept up to date as candidates are taken, once asked for. Needs the pool's `author`."""
        full = self._full.get(cap)
        if full is None:
            author = self.pool.author
            assert author is not None
            full = self._full[cap] = np.zeros(len(author), dtype=bool)
            for code, n in self._by_author.items():
                if n >= cap:
                    full |= author == code
        return full if self._most >= cap else None

    def _add_similarity(self, redundancy: np.ndarray, j: int) -> None:
        np.maximum(redundancy, self.pool.similarity[j], out=redundancy)

    def _add_author(self, counts: np.ndarray, j: int) -> None:
        author = self.pool.author
        assert author is not None
        if author[j] >= 0:
            counts += author == author[j]


@runtime_checkable
class RelevanceStep(Protocol):
    """Shifts every candidate's relevance once, before the list is built."""

    def adjust(self, pool: Pool) -> np.ndarray | None:
        """The pool's new relevance, None when the step cannot act (its signal is absent)."""
        ...


@runtime_checkable
class Constraint(Protocol):
    """A hard rule: candidates outside it are never taken."""

    def allowed(self, slate: Slate) -> np.ndarray | None:
        """Bool per candidate of the pool: may the next slot take it (None: all may)."""
        ...


@runtime_checkable
class Target(Protocol):
    """A soft share: the next slot goes to the side the share asks for when that side has an
    allowed candidate, else to the others."""

    def prefer(self, slate: Slate, mask: np.ndarray) -> np.ndarray:
        """`mask` (the candidates the slot may take, at least one) narrowed, never emptied."""
        ...


@runtime_checkable
class SlotCost(Protocol):
    """A cost on the relevance of every candidate at the next slot."""

    def cost(self, slate: Slate) -> np.ndarray | None:
        """Per candidate, taken off the relevance; None: no cost at this slot."""
        ...


@runtime_checkable
class Selector(Protocol):
    """Takes the next slot's candidate."""

    def pick(self, slate: Slate, mask: np.ndarray, relevance: np.ndarray | None) -> int:
        """The pool position of the chosen candidate among `mask` (not empty); relevance: this
        slot's relevance when a cost shifted it, None when it is the pool's (in pool order)."""
        ...


@dataclass(frozen=True)
class OutOfNetworkBoost:
    """Relevance plus `boost` for out-of-network candidates: a soft preference for discovery
    beyond the network -- an out-of-network item overtakes in-network ones only when it is
    within the boost of them (where `OutOfNetworkTarget` takes the best out-of-network items
    however weak)."""

    boost: float

    def adjust(self, pool: Pool) -> np.ndarray | None:
        if pool.in_network is None:
            return None
        return pool.relevance + self.boost * ~pool.in_network


@dataclass(frozen=True)
class PopularityPenalty:
    """Relevance minus `weight` x popularity (in [0, 1], e.g. log popularity over its maximum):
    a calibrated push toward the long tail -- a learned ranker leans on popularity, which keeps
    catalog coverage below that of the single models; the penalty trades a little relevance for
    exposure (tuned on validation)."""

    weight: float

    def adjust(self, pool: Pool) -> np.ndarray | None:
        if pool.popularity is None:
            return None
        return pool.relevance - self.weight * pool.popularity


@dataclass(frozen=True)
class AuthorCap:
    """At most `cap` items by one author (an unknown author, code -1, is never capped)."""

    cap: int

    def allowed(self, slate: Slate) -> np.ndarray | None:
        if slate.pool.author is None:
            return None
        full = slate.at_cap(self.cap)
        return None if full is None else ~full  # None: no author at the cap, all may come


def _due(share: float, position: int) -> int:
    """How many of the first `position` + 1 items a share asks for: floor(share x p + 0.5), so
    every prefix of the list -- any k -- meets it."""
    return math.floor(share * (position + 1) + 0.5)


def _narrowed(mask: np.ndarray, side: np.ndarray) -> np.ndarray:
    within = mask & side
    return within if within.any() else mask


@dataclass(frozen=True)
class OutOfNetworkTarget:
    """A share of the list out of network: after p items, floor(share x p + 0.5) of them are
    out of network (`in_network` False) -- exactly, while both sides have candidates."""

    share: float

    def prefer(self, slate: Slate, mask: np.ndarray) -> np.ndarray:
        net = slate.pool.in_network
        if net is None:
            return mask
        want_oon = _due(self.share, len(slate)) > slate.count(~net)
        return _narrowed(mask, ~net if want_oon else net)


@dataclass(frozen=True)
class LongTailQuota:
    """At least a share of the list from the long tail: after p items, at least
    floor(share x p + 0.5) of them are tail items -- a floor, not a mix: the ranker may still
    choose more of them. Tail items differ from user to user, so the quota guarantees exposure
    to the catalog's long tail -- the lever on catalog coverage."""

    share: float

    def prefer(self, slate: Slate, mask: np.ndarray) -> np.ndarray:
        tail = slate.pool.long_tail
        if tail is None or _due(self.share, len(slate)) <= slate.count(tail):
            return mask
        return _narrowed(mask, tail)


@dataclass(frozen=True)
class ExposurePenalty:
    """Relevance minus `weight` x log(1 + times shown), from position `free_top` on (the first
    positions stay the most relevant: they carry most of the list's value). Later lists of a
    batch move past items it has already shown many times toward nearly as relevant ones it has
    not, which spreads exposure over the catalog (catalog coverage; creators get reach)."""

    weight: float
    free_top: int = 0

    def cost(self, slate: Slate) -> np.ndarray | None:
        shown = slate.pool.exposure
        if shown is None or len(slate) < self.free_top:
            return None
        return self.weight * np.log1p(np.maximum(shown, 0.0))


@dataclass(frozen=True)
class TopRelevance:
    """The most relevant allowed candidate (ties: the earlier in the pool)."""

    def pick(self, slate: Slate, mask: np.ndarray, relevance: np.ndarray | None) -> int:
        if relevance is None:
            return int(np.argmax(mask))  # the pool is in relevance order
        return int(np.argmax(np.where(mask, relevance, -np.inf)))


@dataclass(frozen=True)
class MaximalMarginalRelevance:
    """Maximal marginal relevance (Carbonell & Goldstein, 1998): the allowed candidate with the
    highest  lam x relevance - (1 - lam) x its greatest content similarity to the items already
    chosen; lam = 1 is pure relevance, lower is more diverse. Without content vectors there is
    no similarity, and the pick is `TopRelevance`'s."""

    lam: float

    def pick(self, slate: Slate, mask: np.ndarray, relevance: np.ndarray | None) -> int:
        pool = slate.pool
        if pool.content is None:
            return _TOP.pick(slate, mask, relevance)
        now = pool.relevance if relevance is None else relevance
        value = self.lam * now
        value -= (1.0 - self.lam) * slate.redundancy()
        value[~mask] = -np.inf
        return int(np.argmax(value))


_TOP = TopRelevance()
