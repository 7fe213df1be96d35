"""Personalised PageRank over the user-item-user graph, follow edges included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import (
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
    tie_strengths,
)

__all__ = ["SocialPPR", "SocialPPRConfig"]

#: Users walked at once, at most: a (n_users + n_items) x batch float32 block per step...
_WALK_BATCH = 256
#: ... and at most this many floats in that block (64M = 256 MB), for very large graphs.
_WALK_FLOATS = 1 << 26


class SocialPPRConfig(TieConfig):
    """Personalised PageRank hyperparameters (defaults tuned on Last.fm 2K, validation split).

    restart: probability of jumping back to the user at each step. social_weight: share of a
    user node's out-mass that follows follow edges (weighted by tie strength) instead of
    interaction edges. author_weight: an author-item edge weighs like an interaction of this
    weight. beta: item scores are divided by popularity ** beta (0 = plain PageRank mass, which
    favours the head). iterations: power-iteration steps (fixed, so that results do not depend
    on the batch a user is scored in).
    """

    restart: float = Field(default=0.6, gt=0, lt=1)
    social_weight: float = Field(default=0.01, ge=0, le=1)
    author_weight: float = Field(default=1.0, ge=0)
    beta: float = Field(default=0.25, ge=0, le=2)
    iterations: int = Field(default=10, ge=1, le=500)


class SocialPPR(Recommender[SocialPPRConfig]):
    """Random walk with restart on one graph of users and items: user -> item along interaction
    edges (weighted), item -> user back along them (and to the item's author), user -> user
    along follow edges (tie strength). The walk's stationary mass on item nodes, divided by
    popularity ** beta, is the score. Sparse power iteration, users in batches.

    Without a social graph it is a plain user-item random walk (a collaborative signal).
    """

    name = "social-ppr"
    family = "social"
    description = "Personalised PageRank over the user-item-user graph."
    Config: ClassVar[type[ModelConfig]] = SocialPPRConfig
    supports_update = True
    search_space: ClassVar[SearchSpace] = {
        "restart": FloatRange(0.05, 0.8),
        "social_weight": FloatRange(0.0, 0.3),
        "beta": FloatRange(0.0, 1.0),
        "iterations": IntRange(5, 40),
        "tie_overlap_weight": FloatRange(0.0, 100.0),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {}

    # ------------------------------------------------------------------ graph
    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        self.weights_ = sp.csr_matrix(
            dataset.matrix(weighting_matrix_config(cfg)), dtype=np.float32, copy=True
        )
        self.authored_ = authored_matrix(dataset)
        self.ties_ = tie_strengths(
            follow_matrix(dataset), self.train_, self.weights_, self.authored_, cfg
        )
        self.private_ = np.asarray(dataset.user_meta.private, dtype=bool)
        self._build_graph()

    def _build_graph(self) -> None:
        """Row-stochastic transition matrix P over nodes [users..., items...] (rows without
        out-edges stay empty: their mass jumps back to the restart), kept transposed."""
        cfg = self.config
        n_u = self.weights_.shape[0]
        ui = sp.csr_matrix(self.weights_ + cfg.author_weight * self.authored_, dtype=np.float64)
        has_items = np.diff(ui.indptr) > 0
        has_friends = np.diff(self.ties_.indptr) > 0
        gamma = np.where(has_friends, np.where(has_items, cfg.social_weight, 1.0), 0.0)
        user_to_user = sp.diags(gamma) @ row_normalised(self.ties_)
        user_to_item = sp.diags(1.0 - gamma) @ row_normalised(ui)
        item_to_user = row_normalised(sp.csr_matrix(ui.T))
        blocks: Any = sp.bmat([[user_to_user, user_to_item], [item_to_user, None]], format="csr")
        p = sp.csr_matrix(blocks, dtype=np.float64)
        p.eliminate_zeros()
        self.transition_t_ = sp.csr_matrix(p.T, dtype=np.float32)
        self.transition_ = p
        dangling = np.flatnonzero(np.diff(p.indptr) == 0)
        # A sparse row sums each column in the same order whatever the batch width (a NumPy
        # reduction may not), so a user's scores do not depend on who shares the batch.
        self.dangling_ = sp.csr_matrix(
            (np.ones(len(dangling), np.float32), (np.zeros(len(dangling), np.int64), dangling)),
            shape=(1, p.shape[0]),
        )
        self.n_users_ = n_u

    def walk(self, restart: sp.csr_matrix) -> np.ndarray:
        """Personalised PageRank vectors: `restart` (n_nodes, b) sparse, each column a
        distribution to jump back to -> the stationary distributions (n_nodes, b), float32, each
        column summing to 1 (up to `iterations` steps of power iteration).

        Nodes are users [0, n_users) then items [n_users, n_users + n_items).
        """
        a = self.config.restart
        r = sp.coo_matrix(restart)
        rows, cols, vals = r.row, r.col, r.data.astype(np.float32)
        x = np.zeros(restart.shape, np.float32)
        x[rows, cols] = vals
        for _ in range(self.config.iterations):
            lost = np.asarray(self.dangling_ @ x).ravel()  # mass at nodes without out-edges
            x = self.transition_t_ @ x
            x *= 1.0 - a
            # (row, col) pairs of `restart` are unique, so fancy += adds each once.
            x[rows, cols] += vals * (a + (1.0 - a) * lost[cols])
        return x

    def _item_scores(self, x: np.ndarray) -> np.ndarray:
        pop = np.maximum(self.popularity_.astype(np.float32), 1.0)
        out = np.ascontiguousarray(x[self.n_users_ :].T) / pop[None, :] ** self.config.beta
        silent = out.max(axis=1) <= 0  # nothing reachable: fall back to popularity
        if silent.any():
            out[silent] = self.popularity_[None, :]
        return out.astype(np.float32)

    def _restart(self, nodes: np.ndarray, cols: np.ndarray, b: int) -> sp.csr_matrix:
        w = np.ones(len(nodes), np.float32)
        w /= np.bincount(cols, minlength=b)[cols]
        return sp.csr_matrix((w, (nodes, cols)), shape=(self.transition_.shape[0], b))

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        out = np.empty((len(user_idx), len(self.items_)), np.float32)
        batch = max(1, min(_WALK_BATCH, _WALK_FLOATS // self.transition_.shape[0]))
        for s in range(0, len(user_idx), batch):
            ub = user_idx[s : s + batch]
            x = self.walk(self._restart(ub, np.arange(len(ub)), len(ub)))
            out[s : s + len(ub)] = self._item_scores(x)
        return out

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        ctx = np.unique(np.asarray(context, dtype=np.int64))
        if len(ctx) == 0:
            return self.popularity_.astype(np.float32)
        restart = self._restart(self.n_users_ + ctx, np.zeros(len(ctx), np.int64), 1)
        return self._item_scores(self.walk(restart))[0]

    def _similar(self, item_idx: int) -> np.ndarray:
        restart = self._restart(np.array([self.n_users_ + item_idx]), np.zeros(1, np.int64), 1)
        return self._item_scores(self.walk(restart))[0]

    # ------------------------------------------------------------------ explaining
    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        """The walk's strongest short paths into the item: u -> j -> v -> i through a history
        item j (mass of the 3-step paths) and u -> f -> i through a followee f (2 steps)."""
        p = self.transition_
        n_u = self.n_users_
        node_i = n_u + item_idx
        row = p[user_idx]
        into_i = np.asarray(p[:, node_i].toarray()).ravel()  # P[v, i] for every node v
        evidence: list[Evidence] = []
        item_nodes = row.indices[row.indices >= n_u]
        item_p = row.data[row.indices >= n_u]
        if len(item_nodes):
            via = item_p * np.asarray(p[item_nodes] @ into_i).ravel()
            for j in np.argsort(-via, kind="stable")[:3]:
                if via[j] > 0:
                    evidence.append(
                        Evidence("item", self.items_.id(int(item_nodes[j] - n_u)), float(via[j]))
                    )
        friends = row.indices[row.indices < n_u]
        friend_p = row.data[row.indices < n_u] * into_i[friends]
        public = [
            (int(f), float(w))
            for f, w in sorted(zip(friends, friend_p, strict=True), key=lambda t: -t[1])
            if w > 0 and not self.private_[f]
        ]
        evidence += [Evidence("followee", self.users_.id(f), w, "followee") for f, w in public[:3]]
        parts = []
        items = [e for e in evidence if e.kind == "item"]
        if items:
            parts.append(f"People who engaged with {items[0].id} also engaged with this")
        if public:
            names = ", ".join(self.users_.id(f) for f, _ in public[:3])
            parts.append(
                f"{len(public)} {'person' if len(public) == 1 else 'people'} you follow "
                f"engaged with it ({names})"
            )
        return evidence, "; ".join(parts) if parts else "Reached from your history in the graph"

    # ------------------------------------------------------------------ updates and state
    def _update(self, events: pd.DataFrame) -> None:
        add = events_matrix(self, events, self.config)
        self.weights_ = sp.csr_matrix(self.weights_ + add, dtype=np.float32)
        self._build_graph()

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {
            "weights": self.weights_,
            "authored": self.authored_,
            "ties": self.ties_,
            "private": self.private_,
        }, {}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.weights_ = sp.csr_matrix(arrays["weights"], dtype=np.float32)
        self.authored_ = sp.csr_matrix(arrays["authored"], dtype=np.float32)
        self.ties_ = sp.csr_matrix(arrays["ties"], dtype=np.float32)
        self.private_ = np.asarray(arrays["private"], dtype=bool)
        self._build_graph()
