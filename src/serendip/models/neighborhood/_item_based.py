"""The scoring half every item-to-item model shares: score = profile @ W.

W is (n_items, n_items): W[j, i] = how much having item j in a history supports recommending
item i. Item-kNN and RP3beta keep a sparse top-k W; EASE (serendip.models.linear) a dense one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from serendip.data.dataset import MatrixConfig
from serendip.models.base import Evidence, Recommender, history_of
from serendip.models.neighborhood._common import (
    ProfileConfig,
    fold_in_events,
    popularity_fallback,
    profile_config,
)

__all__ = ["ItemToItem", "because_sentence"]

ProfileConfigT = TypeVar("ProfileConfigT", bound=ProfileConfig)


def because_sentence(ids: list[str]) -> str:
    if not ids:
        return ""
    if len(ids) == 1:
        return f"Because you interacted with {ids[0]}"
    return f"Because you interacted with {', '.join(ids[:-1])} and {ids[-1]}"


class ItemToItem(Recommender[ProfileConfigT]):
    """Base of item-to-item models. Subclasses set `W_` in `_fit` (sparse CSR or dense ndarray,
    float32, history item x target item) and `profile_` (users x items, the weighted history).

    Scores are non-negative for sparse W; an item no history item supports gets a popularity
    fallback in [-1, 0) so short neighbourhoods still fill a list with popular items, not by ID.
    """

    supports_update = True
    W_: sp.csr_matrix | np.ndarray
    profile_: sp.csr_matrix

    # ---------------------------------------------------------------- config helpers
    def _profile_config(self) -> MatrixConfig:
        return profile_config(self.config.confidence)

    def _init_scoring(self) -> None:
        self.fallback_ = popularity_fallback(self.popularity_)

    # ---------------------------------------------------------------- scoring
    def _raw_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        out = rows @ self.W_
        dense = out.toarray() if sp.issparse(out) else np.asarray(out)
        return dense.astype(np.float32, copy=False)

    def _finish(self, scores: np.ndarray) -> np.ndarray:
        if sp.issparse(self.W_):
            scores = np.where(scores > 0, scores, self.fallback_[None, :])
        return scores.astype(np.float32, copy=False)

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        return self._finish(self._raw_scores(self.profile_[np.asarray(user_idx)]))

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        """A fold-in history (item indices, each weighing 1) scored like a known user's."""
        ctx = np.unique(np.asarray(context, dtype=np.int64))
        if len(ctx) == 0:
            return self.popularity_.astype(np.float32)
        row = sp.csr_matrix(
            (np.ones(len(ctx), np.float32), (np.zeros(len(ctx), np.int64), ctx)),
            shape=(1, len(self.items_)),
        )
        return self._finish(self._raw_scores(row))[0]

    # ---------------------------------------------------------------- similarity, explanations
    def _column(self, item_idx: int) -> np.ndarray:
        """W[:, item_idx] as a dense float64 vector (support of each history item)."""
        if sp.issparse(self.W_):
            if not hasattr(self, "_Wt"):
                self._Wt = sp.csr_matrix(self.W_.T)
            return self._Wt[item_idx].toarray().ravel().astype(np.float64)
        return np.asarray(self.W_[:, item_idx], dtype=np.float64)

    def _similar(self, item_idx: int) -> np.ndarray:
        """W[item_idx]: the items `item_idx` supports; -inf where it has no stored weight."""
        if sp.issparse(self.W_):
            out = np.full(len(self.items_), -np.inf, np.float32)
            row = self.W_[item_idx]
            out[row.indices] = row.data
            return out
        return np.asarray(self.W_[item_idx], dtype=np.float32)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        """History items j by contribution profile[u, j] * W[j, i], strongest first (top 3)."""
        hist = history_of(self.profile_, user_idx)
        weights = self.profile_.data[
            self.profile_.indptr[user_idx] : self.profile_.indptr[user_idx + 1]
        ]
        contrib = weights.astype(np.float64) * self._column(item_idx)[hist]
        order = np.argsort(-contrib, kind="stable")
        order = order[contrib[order] > 0][:3]
        ev = [
            Evidence("item", self.items_.id(int(hist[j])), float(contrib[j]), "history item")
            for j in order
        ]
        if not ev:
            pop = float(self.popularity_[item_idx])
            return [
                Evidence("popularity", self.items_.id(item_idx), pop, f"{int(pop)} users")
            ], "Popular with everyone (nothing in your history points to it)"
        return ev, because_sentence([e.id for e in ev])

    # ---------------------------------------------------------------- updates, state
    def _update(self, events: pd.DataFrame) -> None:
        self.profile_, _ = fold_in_events(self, self.profile_, events, self._profile_config())

    def _profile_state(self) -> dict[str, Any]:
        # the binary profile is train_ itself, which the base artifact already holds
        if self.config.confidence == "binary":
            return {}
        return {"profile": self.profile_}

    def _restore_profile(self, arrays: Mapping[str, Any]) -> None:
        src = arrays["profile"] if "profile" in arrays else arrays["_train"]
        self.profile_ = sp.csr_matrix(src, dtype=np.float32)
        self._init_scoring()
