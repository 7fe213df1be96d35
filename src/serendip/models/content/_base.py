"""The content family's shared machinery.

Every content model turns the catalogue into item vectors (sparse TF-IDF, dense embeddings or
one-hot features), L2-normalised so dot products are cosines. A user's profile is the weighted
sum of the vectors of the items they interacted with (event type, listen count and recency set the
weights, see `WeightingConfig`), normalised; an item's score is the cosine of the profile and the
item. Items that nobody has interacted with yet but that have metadata have vectors like any other,
so they are recommendable from day one.

Users without history fall back to their declared interests (user_meta.interests matched against
tags, categories and words); unknown users to the items of their `context`; with neither,
popularity. Scoring goes a batch of users at a time: (batch x d) profiles times (d x n_items);
no n_items x n_items matrix is ever formed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence, Recommender
from serendip.models.content._text import interest_matrix, tag_token
from serendip.models.content._weights import (
    WeightingConfig,
    events_matrix,
    l2_rows,
    weighting_matrix_config,
)

__all__ = ["ContentRecommender", "ItemVectors"]

#: Weight of the popularity tie-break added to cosine scores: orders items whose content is
#: identical (e.g. the same genres) by popularity without overriding any real content difference.
_TIE = 1e-4

Vectors = sp.csr_matrix | np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class ItemVectors:
    """What a content model derives from the catalogue.

    vectors: (n_items, d) float, SciPy CSR or dense NumPy; need not be normalised.
    terms: float32 CSR (n_items, n_terms), non-negative: the words, tags or features of each
    item, used to name what an item shares with a user's history in explanations.
    term_names: str array (n_terms,), readable names of the term columns.
    """

    vectors: Vectors
    terms: sp.csr_matrix
    term_names: np.ndarray


def _dense(m: Any) -> np.ndarray:
    return np.asarray(m if isinstance(m, np.ndarray) else m.toarray(), dtype=np.float32)


def _term_key(name: str) -> str:
    """'#hip hop' / 'tag=Hip Hop' / 'rock' -> the folded token an interest is compared with."""
    return tag_token(name.split("=", 1)[-1].lstrip("#"))


WeightingConfigT = TypeVar("WeightingConfigT", bound=WeightingConfig)


class ContentRecommender(Recommender[WeightingConfigT]):
    """Base of the content models: subclasses implement `_item_vectors(dataset)` only."""

    family = "content"
    supports_update = True

    #: Optional progress callback (done, total) for long catalogue encodings; not saved.
    progress: Callable[[int, int], None] | None = None

    @abstractmethod
    def _item_vectors(self, dataset: Dataset) -> ItemVectors:
        """Vectors, terms and term names of every item of `dataset.items` (row i = item i)."""

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset) -> None:
        weights = dataset.matrix(weighting_matrix_config(self.config))
        self.weights_ = sp.csr_matrix(weights, dtype=np.float32, copy=True)
        no_history = np.diff(self.weights_.indptr) == 0
        self.interests_ = interest_matrix(dataset.item_meta, dataset.user_meta, no_history)
        self.user_interests_ = np.asarray(
            ["|".join(map(str, t)) for t in dataset.user_meta.interests], dtype=str
        )
        iv = self._item_vectors(dataset)
        self.vectors_: Vectors = self._normalised(iv.vectors)
        self.terms_ = sp.csr_matrix(iv.terms, dtype=np.float32)
        self.term_names_ = np.asarray(iv.term_names, dtype=str)
        self.titles_ = np.asarray(dataset.item_meta.title, dtype=str)

    @staticmethod
    def _normalised(vectors: Vectors) -> Vectors:
        if not isinstance(vectors, np.ndarray):
            return l2_rows(vectors)
        v = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.ascontiguousarray(np.divide(v, norms, out=np.zeros_like(v), where=norms > 0))

    # ------------------------------------------------------------------ scoring
    def _profile_weights(self, user_idx: np.ndarray) -> sp.csr_matrix:
        """(len(user_idx), n_items) weights of the items that make each user's profile: their
        weighted history, or for users without any, the items matching their interests."""
        rows = self.weights_[user_idx]
        empty = np.diff(rows.indptr) == 0
        if empty.any():
            rows = rows + sp.diags(empty.astype(np.float32)) @ self.interests_[user_idx]
        return sp.csr_matrix(rows, dtype=np.float32)

    def _tiebreak(self) -> np.ndarray:
        pop = np.log1p(self.popularity_.astype(np.float64))
        return (_TIE * pop / max(float(pop.max(initial=0.0)), 1e-12)).astype(np.float32)

    def _scores(self, weights: sp.csr_matrix) -> np.ndarray:
        """Cosine of each weighted profile with every item, plus the tie-break: (n, n_items)."""
        profiles = self._normalised(weights @ self.vectors_)
        if sp.issparse(profiles):
            scores = _dense(profiles @ self.vectors_.T)
        else:
            # BLAS sums a one-row product in another order than a batch; in float64 the
            # difference stays far below float32 resolution, so a user's scores do not depend
            # on the batch they are computed in.
            prod = profiles.astype(np.float64) @ np.asarray(self.vectors_, np.float64).T
            scores = prod.astype(np.float32)
        return scores + self._tiebreak()[None, :]

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        return self._scores(self._profile_weights(np.asarray(user_idx)))

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        ctx = np.unique(np.asarray(context, dtype=np.int64))
        if len(ctx) == 0:
            return self.popularity_.astype(np.float32)
        w = sp.csr_matrix(
            (np.ones(len(ctx), np.float32), (np.zeros(len(ctx), np.int64), ctx)),
            shape=(1, len(self.items_)),
        )
        return self._scores(w)[0]

    def _similar(self, item_idx: int) -> np.ndarray:
        return _dense(self.vectors_ @ self.vectors_[item_idx].T).ravel()

    # ------------------------------------------------------------------ explaining
    def _label(self, i: int) -> str:
        title = str(self.titles_[i]) if i < len(self.titles_) else ""
        return title or self.items_.id(i)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        w = self._profile_weights(np.array([user_idx]))
        from_interests = self.weights_[user_idx].nnz == 0
        profile = _dense(w @ self.vectors_).ravel()
        norm = float(np.linalg.norm(profile))
        evidence: list[Evidence] = []
        parts: list[str] = []
        if w.nnz and norm > 0 and not from_interests:
            # The cosine decomposes exactly over history items: sum_j w_j cos(j, i) / |profile|.
            hist, hw = w.indices, w.data
            contrib = hw * _dense(self.vectors_[hist] @ self.vectors_[item_idx].T).ravel() / norm
            for j in np.argsort(-contrib, kind="stable")[:3]:
                if contrib[j] > 0:
                    jj = int(hist[j])
                    evidence.append(
                        Evidence("item", self.items_.id(jj), float(contrib[j]), self._label(jj))
                    )
            if evidence:
                parts.append(f"Because you engaged with '{evidence[0].label}'")
        # Words / tags / features the item shares with what the profile is made of.
        user_terms = _dense(w @ self.terms_).ravel()
        row = self.terms_[item_idx]
        shared = row.data * user_terms[row.indices]
        names: list[str] = []
        for j in np.argsort(-shared, kind="stable"):
            name = str(self.term_names_[row.indices[j]])
            if shared[j] <= 0 or len(names) == 3:
                break
            if name not in names:
                names.append(name)
                evidence.append(Evidence("word", name, float(shared[j])))
        if from_interests:
            item_keys = {_term_key(str(self.term_names_[t])) for t in row.indices}
            matched = [
                x
                for x in str(self.user_interests_[user_idx]).split("|")
                if x and tag_token(x) in item_keys
            ]
            for x in matched:
                evidence.append(Evidence("feature", f"interest={x}", 1.0, "declared interest"))
            if matched:
                parts.append(f"Matches your interests: {', '.join(matched)}")
        if names:
            parts.append(f"shares {', '.join(names)}")
        return evidence, "; ".join(parts) if parts else "Similar in content to your history"

    # ------------------------------------------------------------------ updates and state
    def _update(self, events: pd.DataFrame) -> None:
        add = events_matrix(self, events, self.config)
        self.weights_ = sp.csr_matrix(self.weights_ + add, dtype=np.float32)

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {
            "vectors": self.vectors_,
            "weights": self.weights_,
            "interests": self.interests_,
            "terms": self.terms_,
            "term_names": self.term_names_,
            "titles": self.titles_,
            "user_interests": self.user_interests_,
        }, {}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        v = arrays["vectors"]
        self.vectors_ = (
            np.asarray(v, np.float32)
            if isinstance(v, np.ndarray)
            else sp.csr_matrix(v, dtype=np.float32)
        )
        self.weights_ = sp.csr_matrix(arrays["weights"], dtype=np.float32)
        self.interests_ = sp.csr_matrix(arrays["interests"], dtype=np.float32)
        self.terms_ = sp.csr_matrix(arrays["terms"], dtype=np.float32)
        self.term_names_ = np.asarray(arrays["term_names"], dtype=str)
        self.titles_ = np.asarray(arrays["titles"], dtype=str)
        self.user_interests_ = np.asarray(arrays["user_interests"], dtype=str)
