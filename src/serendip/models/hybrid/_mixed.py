"""Mixed hybrid: members' lists interleaved with per-source quotas, duplicates dropped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from serendip.models.base import (
    Evidence,
    ModelConfig,
    RecRequest,
    SearchSpace,
    empty_lists,
    top_k,
)
from serendip.models.hybrid._members import HybridBase, MemberSpec, members_of, parse_members

__all__ = ["MixedHybrid", "MixedHybridConfig", "interleave"]


class MixedHybridConfig(ModelConfig):
    """members: {key: params} (key = registry name, optionally "name@label"); quotas: {key:
    share >= 0} of each list (normalised to sum 1; a member without a quota gets 1); depth: how
    many positions of the interleaving `score` and nesting in other hybrids see (items beyond
    it score 0)."""

    members: dict[str, dict[str, Any]] = Field(default_factory=lambda: members_of("ease", "tfidf"))
    quotas: dict[str, float] = Field(default_factory=lambda: {"ease": 0.8, "tfidf": 0.2})
    depth: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _check(self) -> MixedHybridConfig:
        if not self.members:
            raise ValueError("members: at least one member is needed")
        unknown = set(self.quotas) - set(self.members)
        if unknown:
            raise ValueError(
                f"quotas name keys that are not members: {sorted(unknown)}; members: "
                f"{list(self.members)}"
            )
        if any(not np.isfinite(q) or q < 0 for q in self.quotas.values()):
            raise ValueError("quotas must be finite and non-negative")
        if sum(self.quotas.get(k, 1.0) for k in self.members) <= 0:
            raise ValueError("at least one member needs a positive quota")
        return self


def interleave(
    lists: Sequence[np.ndarray], quotas: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge ranked item lists (best first; -1 = padding) into one of at most k unique items.

    Position by position, the source furthest behind its quota (quota_s * positions so far
    minus items taken from it) gives its best item not already listed; ties go to the earlier
    source. A source that runs out leaves its share to the others. With quotas summing to 1 the
    counts after k positions are within one of quota_s * k (exact when that is a whole number).
    Returns (items int64, source index int64), both of length <= k.
    """
    q = np.asarray(quotas, dtype=np.float64)
    q = q / q.sum()
    pointers = [0] * len(lists)
    taken = np.zeros(len(lists))
    clean = [np.asarray(x, dtype=np.int64)[np.asarray(x) >= 0] for x in lists]
    used: set[int] = set()
    items: list[int] = []
    sources: list[int] = []
    while len(items) < k:
        for s, lst in enumerate(clean):  # skip what is already listed
            while pointers[s] < len(lst) and int(lst[pointers[s]]) in used:
                pointers[s] += 1
        active = [s for s, lst in enumerate(clean) if pointers[s] < len(lst) and q[s] > 0]
        if not active:
            active = [s for s, lst in enumerate(clean) if pointers[s] < len(lst)]
        if not active:
            break
        pos = len(items) + 1
        s = max(active, key=lambda j: (q[j] * pos - taken[j], -j))
        item = int(clean[s][pointers[s]])
        pointers[s] += 1
        used.add(item)
        items.append(item)
        sources.append(s)
        taken[s] += 1
    return np.asarray(items, np.int64), np.asarray(sources, np.int64)


class MixedHybrid(HybridBase[MixedHybridConfig]):
    """Each member recommends on its own (with the same exclusions, candidates and filters);
    the lists are interleaved with per-source quotas and de-duplicated (see `interleave`).

    Scores are positional: 1 / (1 + position in the mixed list). Cold users get the mix of the
    members' cold-start lists. Explanations: the member that placed the item, as the "source".
    """

    name = "mixed-hybrid"
    description = "Interleaved lists with per-source quotas."
    Config: ClassVar[type[ModelConfig]] = MixedHybridConfig
    search_space: ClassVar[SearchSpace] = {}
    quick_params: ClassVar[Mapping[str, Any]] = {
        "members": {"category-popularity": {}, "popularity": {}},
        "quotas": {"category-popularity": 0.6, "popularity": 0.4},
        "depth": 50,
    }

    def _specs(self) -> list[MemberSpec]:
        return parse_members(self.config.members, "members")

    def _quotas(self) -> np.ndarray:
        c = self.config
        return np.array([float(c.quotas.get(k, 1.0)) for k in c.members])

    # -------------------------------------------------------------- recommending
    def _recommend_rows(self, request: RecRequest) -> tuple[np.ndarray, np.ndarray]:
        """Every member ranks under the same exclusions, candidates and filters, so quotas count
        only items that may be shown."""
        # a source skips at most k - 1 duplicates while giving at most k items
        per_member = [
            m.recommend(
                request.users,
                2 * request.k,
                exclude_seen=request.exclude_seen,
                candidates=request.candidates,
                filters=request.filters,
                context=request.context,
                batch_size=request.batch_size,
            )
            for m in self.members_.values()
        ]
        out_items, out_scores = empty_lists(len(request), request.k)
        quotas = self._quotas()
        for r in range(len(request)):
            items, _ = interleave([p.items[r] for p in per_member], quotas, request.k)
            out_items[r, : len(items)] = items
            out_scores[r, : len(items)] = _positional(len(items))
        return out_items, out_scores

    # -------------------------------------------------------------- full-catalog scores
    def _mixed_rows(
        self, member_scores: list[np.ndarray], exclude_rows: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        depth = min(self.config.depth, len(self.items_))
        lists = []
        for s in member_scores:
            s = np.asarray(s, dtype=np.float32).copy()
            for r, ex in enumerate(exclude_rows):
                s[r, ex] = -np.inf
            lists.append(top_k(s, depth)[0])
        quotas = self._quotas()
        mixed = [
            interleave([lst[r] for lst in lists], quotas, depth) for r in range(len(exclude_rows))
        ]
        return [m[0] for m in mixed], [m[1] for m in mixed]

    def _scores_from(self, items: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(items), len(self.items_)), np.float32)
        for r, row in enumerate(items):
            out[r, row] = _positional(len(row))
        return out

    def _history(self, user_idx: np.ndarray) -> list[np.ndarray]:
        t = self.train_
        return [t.indices[t.indptr[u] : t.indptr[u + 1]] for u in user_idx]

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        scores = [m._score_warm(user_idx) for m in self.members_.values()]
        items, _ = self._mixed_rows(scores, self._history(user_idx))
        return self._scores_from(items)

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        scores = [np.asarray(m._score_cold(context))[None, :] for m in self.members_.values()]
        items, _ = self._mixed_rows(scores, [np.asarray(context, np.int64)])
        return self._scores_from(items)[0]

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        u = np.array([user_idx])
        keys = list(self.members_)
        scores = [m._score_warm(u) for m in self.members_.values()]
        items, sources = self._mixed_rows(scores, self._history(u))
        hit = np.flatnonzero(items[0] == item_idx)
        if len(hit):
            key, pos = keys[int(sources[0][hit[0]])], int(hit[0])
            weight, label = 1.0 / (1 + pos), f"placed at position {pos + 1} by {key}"
        else:  # beyond the mixed depth: the member ranking the item highest
            ranks = [int((np.asarray(s[0]) > s[0][item_idx]).sum()) for s in scores]
            key = keys[int(np.argmin(ranks))]
            weight, label = 0.0, f"ranked {min(ranks) + 1} by {key}"
        return self._member_explanation(key, user_idx, item_idx, weight, label)


def _positional(n: int) -> np.ndarray:
    return (1.0 / (1.0 + np.arange(n))).astype(np.float32)
