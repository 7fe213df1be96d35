"""Out-of-network collaborative source: a zoo model's ranking, deep, restricted to items outside
the user's network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Recommender
from serendip.pipeline.candidates import Proposal, UserContext
from serendip.pipeline.sources._base import SourceConfig
from serendip.pipeline.sources.collaborative import CollaborativeConfig, CollaborativeSource

__all__ = ["CollaborativeOONConfig", "CollaborativeOONSource"]


class CollaborativeOONConfig(CollaborativeConfig):
    """model / params: as `collaborative`. depth: how far down the model's ranking to look for
    out-of-network items (the model is asked for at least this many items per user; the
    proposal keeps the best n of them that no followee touched)."""

    depth: int = Field(default=500, ge=1, le=20_000)


class CollaborativeOONSource(CollaborativeSource):
    """The wrapped model's ranking with every in-network item removed: never an item any
    followee of the user (private ones too) interacted with in the fitted data or authored --
    the complement of what the out-of-network metrics count as in-network. Where the
    collaborative source's top-n is mostly what the network already knows, this source
    reaches the model's best out-of-network items however deep they rank.

    Scores are the model's own (comparable with `collaborative` when both wrap the same model);
    the ranker also sees this source's rank among the out-of-network items. Evidence: the
    model's `explain`, as `collaborative`.
    """

    name = "collaborative-oon"
    kind = "item"
    Config: ClassVar[type[SourceConfig]] = CollaborativeOONConfig
    config: CollaborativeOONConfig

    @classmethod
    def from_model(cls, model: Recommender, dataset: Dataset) -> Self:
        src = super().from_model(model, dataset)
        src._network_state(dataset)
        return src

    def _fit(self, dataset: Dataset) -> None:
        super()._fit(dataset)
        self._network_state(dataset)

    def _network_state(self, dataset: Dataset) -> None:
        """Who touched what (binary users x items) and each item's author (user index)."""
        self.seen_ = sp.csr_matrix(dataset.seen(), dtype=np.float32)
        self.author_ = np.asarray(dataset.item_author_index(), dtype=np.int64)

    # ------------------------------------------------------------------ network
    def network_items(self, ctx: UserContext) -> np.ndarray:
        """Item indices in the user's network: touched or authored by any followee."""
        self._check_fitted()
        f = np.asarray(ctx.followees, np.int64)
        f = f[(f >= 0) & (f < self.seen_.shape[0])]
        if len(f) == 0:
            return np.zeros(0, np.int64)
        s = self.seen_
        touched = [s.indices[s.indptr[v] : s.indptr[v + 1]] for v in f]
        authored = np.flatnonzero(np.isin(self.author_, f))
        return np.unique(np.concatenate([*touched, authored]).astype(np.int64))

    # ------------------------------------------------------------------ proposing
    def propose_batch(self, contexts: Sequence[UserContext], n: int) -> list[Proposal]:
        self._check_fitted()
        if not contexts or n <= 0:
            return [Proposal.empty() for _ in contexts]
        depth = max(self.config.depth, n)
        deep = super().propose_batch(contexts, depth)
        out = []
        for ctx, p in zip(contexts, deep, strict=True):
            net = self.network_items(ctx)
            keep = ~np.isin(p.items, net) if len(net) else np.ones(len(p.items), bool)
            items, scores = p.items[keep][:n], p.scores[keep][:n]
            out.append(Proposal(items, scores))
        return out

    # ------------------------------------------------------------------ state
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = super()._state()
        arrays["oon_seen"] = self.seen_
        arrays["oon_author"] = self.author_
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.seen_ = sp.csr_matrix(arrays["oon_seen"], dtype=np.float32)
        self.author_ = np.asarray(arrays["oon_author"], dtype=np.int64)
