"""In-network recommendations: what the people you follow authored, liked or shared."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import (
    Choice,
    Evidence,
    FloatRange,
    IntRange,
    ModelConfig,
    Recommender,
    SearchSpace,
)
from serendip.models.content import events_matrix, weighting_matrix_config
from serendip.models.social._graph import (
    TieConfig,
    authored_matrix,
    follow_matrix,
    row_normalised,
    similar_users,
    tie_strengths,
)

__all__ = ["InNetwork", "InNetworkConfig"]

_TIE = 1e-4


class InNetworkConfig(TieConfig):
    """In-network hyperparameters (defaults tuned on Last.fm 2K, validation split).

    author_weight: an item a followee authored counts like an interaction of this weight.
    normalize_followees: scale each followee's item weights to sum 1, so a very active
    followee does not drown the others. popularity_weight: share of (max-normalised) popularity
    added to the (max-normalised) network score; also the fallback where the network is silent.
    similar_users: users who follow nobody (or every user, on a dataset without a social graph)
    use their k most similar users by co-interaction as an implicit network (0 = off: such
    users get popularity).
    """

    author_weight: float = Field(default=4.0, ge=0)
    normalize_followees: bool = False
    popularity_weight: float = Field(default=0.3, ge=0)
    similar_users: int = Field(default=20, ge=0)


class InNetwork(Recommender[InNetworkConfig]):
    """Score(u, i) = sum over u's followees v of tie(u, v) * source(v, i), where source(v, i) is
    v's (event- and value-weighted) engagement with i plus `author_weight` if v authored i, and
    tie(u, v) is learned from u's and v's interactions (see `TieConfig`). Scores are normalised
    to max 1 per user and blended with popularity, which carries users whose network is silent.

    Private users' activity still counts in scores, but explanations never name a private user:
    they are neither listed as followees nor as authors.
    """

    name = "in-network"
    family = "social"
    description = "Items followees authored, liked or shared, weighted by tie strength."
    Config: ClassVar[type[ModelConfig]] = InNetworkConfig
    supports_update = True
    search_space: ClassVar[SearchSpace] = {
        "tie_overlap_weight": FloatRange(0.0, 100.0),
        "reciprocity_weight": FloatRange(0.0, 2.0),
        "normalize_followees": Choice((True, False)),
        "popularity_weight": FloatRange(0.0, 1.0),
        "similar_users": IntRange(0, 100),
        "value_transform": Choice(("none", "log1p")),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {}

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        self.weights_ = sp.csr_matrix(
            dataset.matrix(weighting_matrix_config(cfg)), dtype=np.float32, copy=True
        )
        self.authored_ = authored_matrix(dataset)
        follow = follow_matrix(dataset)
        ties = tie_strengths(follow, self.train_, self.weights_, self.authored_, cfg)
        silent = np.diff(follow.indptr) == 0
        implicit = similar_users(self.train_, np.flatnonzero(silent), cfg.similar_users)
        self.network_ = sp.csr_matrix(ties + implicit, dtype=np.float32)
        self.implicit_ = silent & (np.diff(implicit.indptr) > 0)
        self.private_ = np.asarray(dataset.user_meta.private, dtype=bool)
        self._build_sources()

    def _build_sources(self) -> None:
        cfg = self.config
        src = self.weights_ + cfg.author_weight * self.authored_
        self.sources_ = (
            row_normalised(src) if cfg.normalize_followees else sp.csr_matrix(src, dtype=np.float64)
        )

    # ------------------------------------------------------------------ scoring
    def _pop_norm(self) -> np.ndarray:
        pop = self.popularity_.astype(np.float64)
        return pop / max(float(pop.max(initial=0.0)), 1.0)

    def _finish(self, network_scores: np.ndarray) -> np.ndarray:
        top = network_scores.max(axis=1, keepdims=True)
        net = np.divide(network_scores, top, out=np.zeros_like(network_scores), where=top > 0)
        w = self.config.popularity_weight + _TIE
        return (net + w * self._pop_norm()[None, :]).astype(np.float32)

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        return self._finish(np.asarray((self.network_[user_idx] @ self.sources_).toarray()))

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        """Unknown user: no followees, so the implicit network of users who engaged with the
        context items (cosine of histories), if enabled; else popularity."""
        ctx = np.unique(np.asarray(context, dtype=np.int64))
        k = self.config.similar_users
        if len(ctx) == 0 or k == 0:
            return self.popularity_.astype(np.float32)
        counts = np.asarray(self.train_[:, ctx].sum(axis=1)).ravel()
        n = np.diff(self.train_.indptr).astype(np.float64)
        sims = np.divide(counts, np.sqrt(n * len(ctx)), out=np.zeros_like(n), where=n > 0)
        order = np.lexsort((np.arange(len(sims)), -sims))[:k]
        order = order[sims[order] > 0]
        row = sp.csr_matrix(
            (sims[order], (np.zeros(len(order), np.int64), order)), shape=(1, len(sims))
        )
        return self._finish(np.asarray((row @ self.sources_).toarray()))[0]

    # ------------------------------------------------------------------ explaining
    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        row = self.network_[user_idx]
        contrib = (
            row.data.astype(np.float64)
            * np.asarray(self.sources_[row.indices, item_idx].toarray()).ravel()
        )
        order = [j for j in np.argsort(-contrib, kind="stable") if contrib[j] > 0]
        public = [int(row.indices[j]) for j in order if not self.private_[row.indices[j]]]
        weight = {int(row.indices[j]): float(contrib[j]) for j in order}
        implicit = bool(self.implicit_[user_idx])
        kind, who = (
            ("user", "people with similar taste")
            if implicit
            else (
                "followee",
                "people you follow",
            )
        )
        evidence = [
            Evidence(kind, self.users_.id(v), weight[v], "similar user" if implicit else "followee")
            for v in public[:5]
        ]
        parts: list[str] = []
        if public:
            names = [self.users_.id(v) for v in public[:3]]
            more = len(public) - len(names)
            listed = ", ".join(names) + (f" and {more} more" if more else "")
            noun = who if len(public) > 1 else who.replace("people", "person", 1)
            parts.append(f"{len(public)} {noun} liked this ({listed})")
        author = (
            self.users_.get(str(self.item_author_[item_idx])) if self.item_author_[item_idx] else -1
        )
        if author >= 0 and not self.private_[author]:
            follows_author = author in set(row.indices.tolist()) and not implicit
            evidence.append(
                Evidence(
                    "author",
                    self.users_.id(author),
                    float(self.authored_[author, item_idx]),
                    "you follow the author" if follows_author else "author",
                )
            )
            parts.append(
                f"posted by {self.users_.id(author)}"
                + (", whom you follow" if follows_author else "")
            )
        if not public:
            n = int(self.popularity_[item_idx])
            evidence.append(Evidence("popularity", self.items_.id(item_idx), float(n)))
            parts.insert(0, f"Popular: {n} people interacted with this")
        text = "; ".join(parts)
        return evidence, text[:1].upper() + text[1:]

    # ------------------------------------------------------------------ updates and state
    def _update(self, events: pd.DataFrame) -> None:
        add = events_matrix(self, events, self.config)
        self.weights_ = sp.csr_matrix(self.weights_ + add, dtype=np.float32)
        self._build_sources()

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {
            "weights": self.weights_,
            "authored": self.authored_,
            "network": self.network_,
            "implicit": self.implicit_,
            "private": self.private_,
        }, {}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.weights_ = sp.csr_matrix(arrays["weights"], dtype=np.float32)
        self.authored_ = sp.csr_matrix(arrays["authored"], dtype=np.float32)
        self.network_ = sp.csr_matrix(arrays["network"], dtype=np.float32)
        self.implicit_ = np.asarray(arrays["implicit"], dtype=bool)
        self.private_ = np.asarray(arrays["private"], dtype=bool)
        self._build_sources()
