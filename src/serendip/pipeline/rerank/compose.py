"""The re-ranking as a composition of steps: `Reranker`, and `rerank`, the call the pipeline
makes with its `RerankParams`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TypeVar

import numpy as np
import scipy.sparse as sp

from serendip.pipeline.config import RerankParams, RerankStepName
from serendip.pipeline.rerank.steps import (
    AuthorCap,
    Constraint,
    ExposurePenalty,
    LongTailQuota,
    MaximalMarginalRelevance,
    OutOfNetworkBoost,
    OutOfNetworkTarget,
    Pool,
    PopularityPenalty,
    RelevanceStep,
    Selector,
    Slate,
    SlotCost,
    Target,
    TopRelevance,
)

__all__ = ["STEP_BUILDERS", "Reranker", "rerank"]

T = TypeVar("T")
Step = RelevanceStep | Constraint | Target | SlotCost | Selector


def _set(knob: T | None) -> T:
    assert knob is not None  # an optional knob's step runs only when it is set
    return knob


#: Each named step of `RerankParams.steps`, built from its knobs.
STEP_BUILDERS: dict[RerankStepName, Callable[[RerankParams], Step]] = {
    "oon-boost": lambda p: OutOfNetworkBoost(p.oon_boost),
    "popularity-penalty": lambda p: PopularityPenalty(p.popularity_penalty),
    "author-cap": lambda p: AuthorCap(_set(p.author_cap)),
    "oon-target": lambda p: OutOfNetworkTarget(_set(p.oon_target)),
    "tail-quota": lambda p: LongTailQuota(_set(p.tail_target)),
    "exposure-penalty": lambda p: ExposurePenalty(p.exposure_penalty, p.exposure_free_top),
    "mmr": lambda p: MaximalMarginalRelevance(p.mmr_lambda),
}


_TOP = TopRelevance()


@dataclass(frozen=True)
class Reranker:
    """Builds one user's final list from a `Pool` of candidates with these steps.

    The `relevance` steps shift the pool's relevance in order (the pool is then re-sorted by it,
    ties to the lower item index). Then, slot by slot until k items or no allowed candidate: the candidates
    not yet taken that every constraint allows, narrowed by the targets in order, go to the
    selector with this slot's relevance (less the slot costs). Displayed scores are the ranker
    scores made non-increasing along the list (a running minimum), so the list reads as sorted
    where a step reordered it.
    """

    relevance: tuple[RelevanceStep, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    targets: tuple[Target, ...] = ()
    costs: tuple[SlotCost, ...] = ()
    selector: Selector = _TOP

    @classmethod
    def of(cls, steps: list[Step]) -> Reranker:
        """The steps sorted into their kinds by the method they have, in the order given; the
        last selector picks (none: `TopRelevance`)."""
        selectors = [s for s in steps if isinstance(s, Selector)]
        return cls(
            relevance=tuple(s for s in steps if isinstance(s, RelevanceStep)),
            constraints=tuple(s for s in steps if isinstance(s, Constraint)),
            targets=tuple(s for s in steps if isinstance(s, Target)),
            costs=tuple(s for s in steps if isinstance(s, SlotCost)),
            selector=selectors[-1] if selectors else _TOP,
        )

    @classmethod
    def from_params(cls, params: RerankParams) -> Reranker:
        """The steps whose knobs are on, in the config's order (`RerankParams.active_steps`)."""
        return _from_params(params)

    def __call__(self, pool: Pool, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The final list of at most k items (indices from the pool's `items`) and its displayed
        scores."""
        pool = self._shift(pool)
        slate = Slate(pool)
        n = min(k, len(pool))
        while len(slate) < n:
            mask = slate.available
            for constraint in self.constraints:
                allowed = constraint.allowed(slate)
                if allowed is not None:
                    mask = mask & allowed
            if not mask.any():
                break
            for target in self.targets:
                mask = target.prefer(slate, mask)
            relevance = self._slot_relevance(slate) if self.costs else None
            slate.take(self.selector.pick(slate, mask, relevance))
        idx = slate.chosen
        return pool.items[idx], np.minimum.accumulate(pool.scores[idx]).astype(np.float32)

    def _shift(self, pool: Pool) -> Pool:
        """The relevance steps applied in order; the pool re-sorted when one acted."""
        shifted = False
        for step in self.relevance:
            rel = step.adjust(pool)
            if rel is not None:
                pool = replace(pool, relevance=rel)
                shifted = True
        return pool.reordered(np.lexsort((pool.items, -pool.relevance))) if shifted else pool

    def _slot_relevance(self, slate: Slate) -> np.ndarray | None:
        """This slot's relevance less the slot costs, None when no cost applies."""
        rel = None
        for step in self.costs:
            cost = step.cost(slate)
            if cost is not None:
                rel = (slate.pool.relevance if rel is None else rel) - cost
        return rel


@lru_cache(maxsize=64)
def _from_params(params: RerankParams) -> Reranker:
    steps = [STEP_BUILDERS[name](params) for name in params.active_steps()]
    return Reranker.of(steps)


def rerank(
    items: np.ndarray,
    scores: np.ndarray,
    k: int,
    params: RerankParams,
    *,
    content: sp.csr_matrix | None = None,
    author: np.ndarray | None = None,
    in_network: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    long_tail: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The final list of at most k items (indices from `items`) and its displayed scores, built
    by the steps `params` turns on, in its order (`Reranker.from_params`).

    items, scores: one user's allowed candidates and ranker scores; the `params.pool` best
    enter. Per catalog item: content (L2-normalised vectors, MMR's similarity), author (code,
    -1 = unknown, never capped), popularity (in [0, 1]), long_tail (bool, outside the popular
    head). Per candidate: in_network (bool; after p items, floor(oon_target x p + 0.5) of them
    out of network, the other side filling a slot whose side ran out), exposure (times already
    shown, see `ExposureCounter`; the result then depends on the order users are served in). A
    step whose signal is not given does nothing. Deterministic: ties keep the higher-scored,
    then lower-indexed, candidate.
    """
    if len(items) == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    pool = Pool.top(
        items,
        scores,
        params.pool,
        content=content,
        author=author,
        in_network=in_network,
        popularity=popularity,
        long_tail=long_tail,
        exposure=exposure,
    )
    return Reranker.from_params(params)(pool, k)
